"""The compact tier: offloaded connections at rest, as fixed-size binary rows.

Theory of operation
-------------------
While a connection sits in the flow table its conntrack state barely changes
(packets are answered by the flow table; ``TcpConn.pack`` already folds its
window fields).  At a million connections the Python objects of such a
connection (a slotted ``TcpConn``, two tuples, an ``OffloadRecord``, heap and
dict entries, int objects) cost ~1.1 KB; the same state as a packed row costs
about 200 B.  So the offload manager *freezes* an offloaded connection that no
one else references: its state moves into one row here and its objects are
dropped.  The tracker *thaws* the row back into an equal ``Conn`` (every slot,
the offload record included) whenever anything needs the connection: a packet
reaching conntrack for it, a lookup by tuple or id, the listing tools, aging,
flushes, deletes.  Rules:

1. Freezing is invisible.  A connection is frozen only when the tracker's and
   the manager's own references are the only ones (``sys.getrefcount``): no
   caller, cache (the datapath's ``FastEntry``), expectation or view can hold
   the object that disappears, so no one can tell the thawed object is new.
2. A row is exact or it is not made.  Every field is packed with a fixed
   ``struct`` width; a value that does not fit (a 5 GB counter, an IPv6
   address, a float time) raises ``struct.error`` and the connection simply
   stays an object.  Rare fields (label, helper, related, why) sit in the
   ``rare`` side dict, keyed by connection id.
3. One index, both directions (DESIGN §2.6): an open-addressing table of
   32-bit slots, ``tag << 24 | (row << 1 | direction) + 1`` (8-bit hash tag,
   linear probing, load <= 1/2, backward-shift deletion so no tombstones),
   keyed by (zone, ip_ver, proto) and the original or reply tuple, hashed
   with Python's own (unsalted) tuple hash.  A second, smaller table maps
   connection ids to rows (``Tracker.get``: the datapath's cached decisions
   name their connection by id).  Rows beyond ``MAX_ROWS`` are not made (the
   connection stays an object).
4. Rows live in fixed chunks (``CHUNK_ROWS`` rows of ``bytearray``), never
   moved, so NumPy views over them serve the vectorised scans (aging).  A
   freed row goes to a free list; a live row has a non-zero id.

The layout is a table (``KEY_FIELDS`` + ``CONN_FIELDS`` + the owner's
fields): the ``struct`` format and the NumPy dtype are both built from it.
``conn_row`` / ``row_conn`` convert a Conn; the offload manager converts its
record the same way (``OffloadManager.COLD_FIELDS``).  This module does not
decide *when* to freeze (the manager does) nor registers thawed connections
(the tracker does).
"""

from __future__ import annotations

import struct
from array import array
from operator import attrgetter

from .conn import WIDE_FIELDS, Conn, TcpConn

# (name, struct code): the lookup key first, at offset 0 (find() unpacks only it).
KEY_FIELDS = (("zp", "I"),  # zone << 12 | ip_ver << 8 | proto
              ("osrc", "I"), ("odst", "I"), ("osport", "H"), ("odport", "H"),
              ("rsrc", "I"), ("rdst", "I"), ("rsport", "H"), ("rdport", "H"))
SMALL_TCP = ("scale0", "flags0", "scale1", "flags1", "last_dir", "last_index", "last_wscale",
             "last_flags", "retrans")
CONN_FIELDS = (("id", "Q"), ("status", "H"), ("state", "B"), ("ext", "B"),
               ("cflags", "B"),  # CF_* bits
               ("timeout", "I"), ("mark", "I"),
               ("pk0", "I"), ("pk1", "I"), ("by0", "I"), ("by1", "I"),
               ("expires", "q"), ("age", "i"),  # age: expires - created (ms)
               ("wide", "48s")) + tuple((n, "B") for n in SMALL_TCP)  # TCP: WIDE_FIELDS, 4 bytes each
N_KEY = len(KEY_FIELDS)
I_ID = N_KEY  # where the connection id sits in a row
N_CONN = N_KEY + len(CONN_FIELDS)  # the owner's fields start here
CF_TCP = 1  # a TcpConn
CF_PACKED = 2  # its WIDE_FIELDS were folded (TcpConn.pack) when it was frozen

CHUNK_SHIFT = 12
CHUNK_ROWS = 1 << CHUNK_SHIFT
MAX_ROWS = (1 << 23) - 1  # an index slot keeps 24 bits for (row << 1 | direction) + 1
_NP_CODE = {"I": "<u4", "H": "<u2", "B": "u1", "Q": "<u8", "q": "<i8", "i": "<i4", "48s": "V48"}
_WIDE = struct.Struct("<12I")  # WIDE_FIELDS in the "wide" bytes: TcpConn.wide, little-endian
_NO_TCP = (bytes(_WIDE.size),) + (0,) * len(SMALL_TCP)
_ZERO = (0,) * len(WIDE_FIELDS)
_wide_of = attrgetter(*WIDE_FIELDS)
_small_of = attrgetter(*SMALL_TCP)
_KEY = struct.Struct("<" + "".join(c for _, c in KEY_FIELDS))
_KEY_ID = struct.Struct(_KEY.format + "Q")  # the key and the id (0: a free row)
_ID = struct.Struct("<Q")  # the id alone, at offset _KEY.size
_IDMUL = 0x9E3779B97F4A7C15  # ids are consecutive: a multiplicative hash spreads them
_HMUL = 0x9E3779B1  # spreads the (zone, ip_ver, proto) word over the hash


def _hash(zp: int, tup: tuple) -> int:
    return hash(tup) ^ (zp * _HMUL)  # (ColdTier.find has it inline)


def conn_row(conn: Conn) -> tuple:
    """The row values of ``conn`` (KEY_FIELDS + CONN_FIELDS order); widths are checked by
    ``ColdTier.put``.  Raises struct.error for a state the row cannot hold."""
    o, r = conn.orig, conn.reply
    head = ((conn.zone << 12) | (conn.ip_ver << 8) | conn.proto, o[0], o[1], o[2], o[3], r[0], r[1], r[2], r[3],
            conn.id, conn.status, conn.state, conn.ext)
    body = (conn.timeout, conn.mark, conn.pk0, conn.pk1, conn.by0, conn.by1, conn.expires,
            conn.expires - conn.created)
    if conn.__class__ is not TcpConn:
        return head + (0,) + body + _NO_TCP
    w = conn.wide
    if w is None:
        cf, wide = CF_TCP, _WIDE.pack(*_wide_of(conn))
    else:  # TcpConn.pack folded them lowest first: the same bytes
        if _wide_of(conn) != _ZERO:  # pack() zeroes the slots; anything else is not representable
            raise struct.error("packed TCP state with non-zero slots")
        cf, wide = CF_TCP | CF_PACKED, w.to_bytes(_WIDE.size, "little")
    return head + (cf,) + body + (wide,) + _small_of(conn)


def row_conn(v: tuple, rare: tuple | None) -> Conn:
    """A confirmed Conn equal to the one ``conn_row`` read (its ``offload`` left None).

    ``rare`` is (label, helper, related, why) or None for the defaults.
    """
    zp = v[0]
    cf = v[13]
    # __new__ and every slot set below: cheaper than the constructor's defaults, then these.
    c = TcpConn.__new__(TcpConn) if cf & CF_TCP else Conn.__new__(Conn)
    c.zone, c.ip_ver, c.proto = zp >> 12, (zp >> 8) & 0xF, zp & 0xFF
    c.orig, c.reply = (v[1], v[2], v[3], v[4]), (v[5], v[6], v[7], v[8])
    (c.id, c.status, c.state, c.ext, _, c.timeout, c.mark, c.pk0, c.pk1, c.by0, c.by1, c.expires,
     age) = v[9:N_KEY + 13]
    c.created = c.expires - age
    if rare is None:
        c.label, c.helper, c.related, c.why = 0, 0, False, None
    else:
        c.label, c.helper, c.related, c.why = rare
    c.offload = None
    c.confirmed = True
    if cf & CF_TCP:
        # Tuple assignments to the slots, written out (WIDE_FIELDS, SMALL_TCP order): a loop
        # of setattr costs twice as much, and a thaw is on the fast path of a cache hit.
        w = v[N_KEY + 13]
        c.odd = None  # (its WIDE_FIELDS are 32-bit, set below)
        if cf & CF_PACKED:  # as TcpConn.pack leaves it
            c.wide = int.from_bytes(w, "little")
            wide = _ZERO
        else:
            c.wide = None
            wide = _WIDE.unpack(w)
        (c.end0, c.maxend0, c.maxwin0, c.maxack0, c.end1, c.maxend1, c.maxwin1, c.maxack1, c.last_seq,
         c.last_ack, c.last_end, c.last_win) = wide
        small = v[N_KEY + 14:N_CONN]  # (a name of its own: Cython cannot unpack this slice in place)
        (c.scale0, c.flags0, c.scale1, c.flags1, c.last_dir, c.last_index, c.last_wscale, c.last_flags,
         c.retrans) = small
    return c


def rare_of(conn: Conn) -> tuple | None:
    """(label, helper, related, why) when any differs from a new connection's, else None."""
    if conn.label or conn.helper or conn.related or conn.why is not None:
        return (conn.label, conn.helper, conn.related, conn.why)
    return None


def _backshift(slots, mask: int, i: int, home) -> None:
    """Empties slot ``i`` of a linear-probing table and moves back every later slot of its probe
    run whose home position (``home(slot value)``) allows it, so lookups need no tombstones
    (both indexes of the tier delete this way)."""
    j = i
    while True:
        slots[i] = 0
        while True:
            j = (j + 1) & mask
            s = slots[j]
            if not s:
                return
            h = home(s)
            # Move s back to i unless its home lies cyclically in (i, j].
            if (j > i and (h <= i or h > j)) or (j < i and h <= i and h > j):
                break
        slots[i] = s
        i = j


class ColdTier:
    """Rows of frozen connections and their two-direction index (see the module docstring).

    Attributes:
        n: live rows.
        rare: connection id -> (label, helper, related, why) for rows that have any.
        fields: the row layout, (name, struct code) pairs.
    """

    def __init__(self, owner_fields: tuple) -> None:
        self.fields = KEY_FIELDS + CONN_FIELDS + tuple(owner_fields)
        self.row = struct.Struct("<" + "".join(c for _, c in self.fields))
        self.size = self.row.size
        self.chunks: list[bytearray] = []
        self.free = array("i")
        self.n = 0
        self.used = 0  # rows ever handed out (live + free)
        self.rare: dict[int, tuple] = {}
        self.slots = array("I", bytes(4 * 1024))
        self.mask = 1023
        self.id_slots = array("I", bytes(4 * 512))  # row + 1, by connection id
        self.id_mask = 511
        self.id_shift = 64 - 9
        self._dtype = None

    # ------------------------------------------------------------------ rows
    def put(self, values: tuple) -> int:
        """Stores a row (KEY_FIELDS first) and indexes both of its tuples; returns the row.

        Raises:
            struct.error: a value does not fit its field (nothing is stored).
            OverflowError: MAX_ROWS rows are live.
        """
        if 2 * (2 * self.n + 2) > self.mask + 1:
            self._grow()
        if self.free:
            row = self.free.pop()
        else:
            row = self.used
            if row >= MAX_ROWS:
                raise OverflowError("cold tier full")
            if row >> CHUNK_SHIFT >= len(self.chunks):
                self.chunks.append(bytearray(CHUNK_ROWS * self.size))
            self.used += 1
        try:
            self.row.pack_into(self.chunks[row >> CHUNK_SHIFT], (row & (CHUNK_ROWS - 1)) * self.size, *values)
        except (struct.error, TypeError):
            self._release(row)
            raise struct.error("value out of range") from None
        zm = values[0] * _HMUL
        slots, mask = self.slots, self.mask
        h = hash(values[1:5]) ^ zm
        i = h & mask
        while slots[i]:
            i = (i + 1) & mask
        slots[i] = ((h >> 40) & 0xFF) << 24 | ((row << 1) + 1)
        h = hash(values[5:9]) ^ zm
        i = h & mask
        while slots[i]:
            i = (i + 1) & mask
        slots[i] = ((h >> 40) & 0xFF) << 24 | ((row << 1) + 2)
        ids, mask = self.id_slots, self.id_mask
        i = ((values[I_ID] * _IDMUL) & 0xFFFFFFFFFFFFFFFF) >> self.id_shift
        while ids[i]:
            i = (i + 1) & mask
        ids[i] = row + 1
        self.n += 1
        return row

    def values(self, row: int) -> tuple:
        return self.row.unpack_from(self.chunks[row >> CHUNK_SHIFT], (row & (CHUNK_ROWS - 1)) * self.size)

    def remove(self, row: int) -> None:
        """Unindexes and frees ``row``."""
        k = _KEY_ID.unpack_from(self.chunks[row >> CHUNK_SHIFT], (row & (CHUNK_ROWS - 1)) * self.size)
        zp = k[0]
        self._unindex(_hash(zp, k[1:5]), row << 1)
        self._unindex(_hash(zp, k[5:9]), row << 1 | 1)
        self._unindex_id(k[N_KEY], row)
        self._release(row)
        self.n -= 1

    def _release(self, row: int) -> None:
        # A zero id marks the row free for the vectorised scans.
        self.chunks[row >> CHUNK_SHIFT][(row & (CHUNK_ROWS - 1)) * self.size + _KEY.size:
                                        (row & (CHUNK_ROWS - 1)) * self.size + _KEY.size + 8] = bytes(8)
        self.free.append(row)

    def zp_of(self, row: int) -> int:
        """zone << 12 | ip_ver << 8 | proto of ``row``."""
        return self._key(row)[0]

    def _key(self, row: int) -> tuple:
        return _KEY.unpack_from(self.chunks[row >> CHUNK_SHIFT], (row & (CHUNK_ROWS - 1)) * self.size)

    def live_rows(self) -> list[int]:
        """Every live row, in row order (plain Python: NumPy is imported for the scans only)."""
        out = []
        append, unpack, size, used = out.append, _KEY_ID.unpack_from, self.size, self.used
        for i, ch in enumerate(self.chunks):
            base = i << CHUNK_SHIFT
            for r in range(min(CHUNK_ROWS, used - base)):
                if unpack(ch, r * size)[N_KEY]:
                    append(base + r)
        return out

    def views(self):
        """(first row, structured NumPy view) per chunk; free rows have id 0.  The views
        write through (the owner rewrites its deadlines when its timeouts change)."""
        import numpy as np

        if self._dtype is None:
            self._dtype = np.dtype([(n, _NP_CODE[c]) for n, c in self.fields])
            assert self._dtype.itemsize == self.size
        used = self.used
        for i, ch in enumerate(self.chunks):
            base = i << CHUNK_SHIFT
            if base >= used:
                break
            yield base, np.frombuffer(ch, self._dtype, min(CHUNK_ROWS, used - base))

    def find_id(self, conn_id: int) -> int:
        """The row of connection ``conn_id``, or -1."""
        if conn_id <= 0:
            return -1
        ids, mask, unpack, off = self.id_slots, self.id_mask, _ID.unpack_from, _KEY.size
        i = ((conn_id * _IDMUL) & 0xFFFFFFFFFFFFFFFF) >> self.id_shift
        while True:
            s = ids[i]
            if not s:
                return -1
            row = s - 1
            if unpack(self.chunks[row >> CHUNK_SHIFT], (row & (CHUNK_ROWS - 1)) * self.size + off)[0] == conn_id:
                return row
            i = (i + 1) & mask

    def _id_of(self, row: int) -> int:
        return _ID.unpack_from(self.chunks[row >> CHUNK_SHIFT], (row & (CHUNK_ROWS - 1)) * self.size + _KEY.size)[0]

    def _unindex_id(self, conn_id: int, row: int) -> None:
        """Removes ``row`` from the id table, shifting the rest of its probe run back."""
        ids, mask, shift = self.id_slots, self.id_mask, self.id_shift
        i = ((conn_id * _IDMUL) & 0xFFFFFFFFFFFFFFFF) >> shift
        while ids[i] != row + 1:
            i = (i + 1) & mask
        _backshift(ids, mask, i, lambda s: ((self._id_of(s - 1) * _IDMUL) & 0xFFFFFFFFFFFFFFFF) >> shift)

    # ------------------------------------------------------------------ index
    def find(self, zp: int, tup: tuple) -> int:
        """``row << 1 | direction`` of the row with ``tup`` as a tuple in ``zp``, or -1."""
        h = hash(tup) ^ (zp * _HMUL)
        slots, mask = self.slots, self.mask
        tag = (h >> 40) & 0xFF
        i = h & mask
        while True:
            s = slots[i]
            if not s:
                return -1
            if s >> 24 == tag:
                rd = (s & 0xFFFFFF) - 1
                k = self._key(rd >> 1)
                if k[0] == zp and (k[5:9] if rd & 1 else k[1:5]) == tup:
                    return rd
            i = (i + 1) & mask

    def _unindex(self, h: int, rd: int) -> None:
        """Removes ``rd``'s slot and shifts the rest of its probe run back (no tombstones)."""
        slots, mask = self.slots, self.mask
        i = h & mask
        want = rd + 1
        while (slots[i] & 0xFFFFFF) != want:
            i = (i + 1) & mask

        def home(s: int) -> int:
            srd = (s & 0xFFFFFF) - 1
            k = self._key(srd >> 1)
            return _hash(k[0], k[5:9] if srd & 1 else k[1:5]) & mask

        _backshift(slots, mask, i, home)

    def _grow(self) -> None:
        """Doubles both indexes and re-inserts every live row (the probe loops inlined: at a
        million rows this loop is the bulk of the growth)."""
        cap = 2 * (self.mask + 1)
        slots = self.slots = array("I", bytes(4 * cap))
        mask = self.mask = cap - 1
        ids = self.id_slots = array("I", bytes(2 * cap))  # half as many keys
        id_mask = self.id_mask = cap // 2 - 1
        shift = self.id_shift = 64 - (cap // 2).bit_length() + 1
        unpack, size, used = _KEY_ID.unpack_from, self.size, self.used
        for ci, ch in enumerate(self.chunks):
            base = ci << CHUNK_SHIFT
            for r in range(min(CHUNK_ROWS, used - base)):
                k = unpack(ch, r * size)
                if not k[N_KEY]:
                    continue  # a free row
                zm = k[0] * _HMUL
                v = ((base + r) << 1) + 1  # (row << 1 | direction) + 1, direction 0
                h = hash(k[1:5]) ^ zm
                i = h & mask
                while slots[i]:
                    i = (i + 1) & mask
                slots[i] = ((h >> 40) & 0xFF) << 24 | v
                h = hash(k[5:9]) ^ zm
                i = h & mask
                while slots[i]:
                    i = (i + 1) & mask
                slots[i] = ((h >> 40) & 0xFF) << 24 | (v + 1)
                i = ((k[N_KEY] * _IDMUL) & 0xFFFFFFFFFFFFFFFF) >> shift
                while ids[i]:
                    i = (i + 1) & id_mask
                ids[i] = base + r + 1

    def nbytes(self) -> int:
        """Bytes held: row chunks, both indexes, free list (not the ``rare`` dict)."""
        return (len(self.chunks) * CHUNK_ROWS * self.size + 4 * len(self.slots) + 4 * len(self.id_slots)
                + 4 * len(self.free))

