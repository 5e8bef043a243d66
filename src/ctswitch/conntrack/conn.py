"""The connection record (``Conn``) and the kernel's IPS_* status bits.

Theory of operation
-------------------
A ``Conn`` is one nf_conntrack entry: the original and reply tuples, the
status bits, the protocol state, the expiry time in ms, mark/label,
per-direction counters and the offload manager's slot.  It is built to be
small (a million entries) and cheap to update per packet:

* one object per connection: ``__slots__``, no per-connection lists (the
  counters are four int slots; ``packets``/``bytes`` are list-like views
  over them, ``[orig, reply]``), no lookup-key objects (the tracker indexes
  the ``orig``/``reply`` tuples themselves, see ``tracker.py``);
* TCP connections are ``TcpConn``: the kernel's ``ip_ct_tcp`` lives inline
  in the record's slots, one group of fields per direction (``end0``..
  ``flags0`` for the original direction's ``ip_ct_tcp_state``, ``end1``..
  ``flags1`` for the reply's) plus the ``last_*`` annotations.  ``conn.tcp``
  is a read/write view with the kernel's names (``tcp.seen[d].td_maxwin``,
  ``tcp.last_index``...) for tools and tests; ``tcp.py`` reads the slots.
* the twelve 32-bit sequence-space fields (``WIDE_FIELDS``: td_end, td_maxend, td_maxwin,
  td_maxack per direction, last_seq/ack/end/win) live in slots named with a leading underscore,
  behind properties of their own names.  Compiled, those slots are C unsigned 32-bit integers
  (conn.pxd: no int object per field, so a packet's window check reads and writes the
  connection itself, not a dozen scattered int objects); a value such an integer cannot hold
  (negative, wider, a float, None, a bool: nothing the parser or ``tcp.py`` produces, but any
  caller may store one) goes to ``odd``, a dict the properties read first, so every value reads
  back as stored, as in Python; ``tcp`` runs its Python source on a Python copy of such a
  connection.  As Python, the properties store and read the slots directly.
* while a TCP connection sits in the flow table its state is read again only
  when it leaves it or when a packet takes the slow path, so ``pack()``
  (called by ``Tracker.on_offload``) folds the twelve 32-bit fields
  (``WIDE_FIELDS``) into one int in ``wide`` and zeroes them (about ten int
  objects less per offloaded connection); ``unpack()`` restores them
  (``tcp.packet`` and ``Tracker.on_unoffload`` call it).  Views and
  ``to_state`` read through ``field()`` and see the same values either way.
* an offloaded connection nothing outside the tracker and the offload
  manager references is frozen into a packed row (``cold.py``, ~200 B) and
  thawed back into an equal object when anything needs it.

Tuples are ``(src, dst, sport, dport)`` ints.  For ICMP/ICMPv6 ``sport`` is
the echo id and ``dport`` is ``type << 8 | code`` (the kernel keeps the same
three values; this packing keeps every tuple four ints wide).

A Conn is "confirmed" once committed and inserted into the tracker's table.
The JSON form (``to_state``) is the one of the first, object-per-part
layout, so saved states load unchanged.
"""

from __future__ import annotations

import struct

# IPS_* status bits (include/uapi/linux/netfilter/nf_conntrack_common.h).
IPS_EXPECTED = 1 << 0
IPS_SEEN_REPLY = 1 << 1
IPS_ASSURED = 1 << 2
IPS_CONFIRMED = 1 << 3
IPS_SRC_NAT = 1 << 4
IPS_DST_NAT = 1 << 5
IPS_SEQ_ADJUST = 1 << 6
IPS_SRC_NAT_DONE = 1 << 7
IPS_DST_NAT_DONE = 1 << 8
IPS_DYING = 1 << 9
IPS_FIXED_TIMEOUT = 1 << 10
IPS_TEMPLATE = 1 << 11
IPS_UNTRACKED = 1 << 12
IPS_HELPER = 1 << 13
IPS_OFFLOAD = 1 << 14
IPS_HW_OFFLOAD = 1 << 15
# Conntrack extensions attached at creation (``Conn.ext``): counters, start timestamp.
EXT_ACCT = 1
EXT_TSTAMP = 2
IPS_NAT_MASK = IPS_SRC_NAT | IPS_DST_NAT

# Status names as OVS's ct-dpif prints them (bit order = kernel bit order).
STATUS_NAMES = ("EXPECTED", "SEEN_REPLY", "ASSURED", "CONFIRMED", "SRC_NAT", "DST_NAT",
                "SEQ_ADJUST", "SRC_NAT_DONE", "DST_NAT_DONE", "DYING", "FIXED_TIMEOUT",
                "TEMPLATE", "UNTRACKED")

DIR_ORIG = 0
DIR_REPLY = 1

# Event bits (IPCT_*), collected per packet, delivered as one [UPDATE] line.
EV_NEW = 1
EV_PROTOINFO = 2
EV_REPLY = 4
EV_ASSURED = 8
EV_MARK = 16
EV_LABEL = 32

# UDP: a replied flow becomes a stream once older than this (ms).
UDP_STREAM_AFTER_MS = 2000

# Kernel ip_ct_tcp_state field names -> slot name prefixes (suffix 0/1 = direction).
SIDE_FIELDS = (("td_end", "end"), ("td_maxend", "maxend"), ("td_maxwin", "maxwin"),
               ("td_maxack", "maxack"), ("td_scale", "scale"), ("flags", "flags"))
# ip_ct_tcp annotation fields, in their JSON order.
LAST_FIELDS = ("last_dir", "last_index", "last_seq", "last_ack", "last_end", "last_win",
               "last_wscale", "last_flags", "retrans")
TCP_NONE_SET = 5  # tcp.NONE_SET: the initial last_index
# The 32-bit TCP fields folded by TcpConn.pack(), lowest 32 bits first.
WIDE_FIELDS = ("end0", "maxend0", "maxwin0", "maxack0", "end1", "maxend1", "maxwin1", "maxack1",
               "last_seq", "last_ack", "last_end", "last_win")
_WIDE_SHIFT = {n: 32 * i for i, n in enumerate(WIDE_FIELDS)}
M32 = 0xFFFFFFFF
# ``wide`` as bytes is these twelve words little-endian: one struct call instead of twelve shifts.
_WIDE_WORDS = struct.Struct("<12I")
_pack_words = _WIDE_WORDS.pack
_unpack_words = _WIDE_WORDS.unpack
_from_bytes = int.from_bytes
# True when this module runs as Python: its slots hold any value, so the WIDE_FIELDS properties
# store and read their underscored slots directly (``odd`` stays None).
_DIRECT = __file__.endswith(".py")
C_FIELDS = not _DIRECT  # (a Python name: ``tcp`` reads it)


class _Pair:
    """``conn.packets`` / ``conn.bytes``: a list-like [orig, reply] view over two slots."""

    __slots__ = ("_c", "_a", "_b")

    def __init__(self, conn, a: str, b: str) -> None:
        self._c, self._a, self._b = conn, a, b

    def __getitem__(self, d: int) -> int:
        return getattr(self._c, self._b if d else self._a)

    def __setitem__(self, d: int, v: int) -> None:
        setattr(self._c, self._b if d else self._a, v)

    def __len__(self) -> int:
        return 2

    def __iter__(self):
        return iter((getattr(self._c, self._a), getattr(self._c, self._b)))

    def _list(self) -> list[int]:
        return [getattr(self._c, self._a), getattr(self._c, self._b)]

    def __eq__(self, other) -> bool:
        if isinstance(other, _Pair):
            other = other._list()
        return isinstance(other, list | tuple) and self._list() == list(other)

    def __lt__(self, other) -> bool:
        return self._list() < list(other)

    __hash__ = None  # mutable, like the list it stands for

    def __repr__(self) -> str:
        return repr(self._list())


def _init_conn(c: Conn, zone: int, ip_ver: int, proto: int, orig: tuple, reply: tuple, now: int) -> None:
    """The fields of a new Conn (``Conn.__init__``; ``TcpConn.__init__`` calls it directly, not
    through ``Conn.__init__``: compiled, one C call instead of a lookup and a Python call)."""
    c.id = 0
    c.zone = zone
    c.ip_ver = ip_ver
    c.proto = proto
    c.orig = orig
    c.reply = reply
    c.status = 0
    c.state = 0
    c.expires = now
    c.timeout = 0
    c.mark = 0
    c.label = 0
    c.pk0 = c.pk1 = c.by0 = c.by1 = 0
    c.created = now
    c.helper = 0
    c.related = False
    c.offload = None
    c.why = None
    c.confirmed = False
    c.ext = 0  # EXT_* bits, set by the tracker when it creates the connection


class Conn:
    """One tracked connection.

    Attributes (see docs/architecture.md): id, zone, ip_ver, proto, orig, reply,
    status (IPS_*), state (TCP state number, 0 for other protocols), expires (ms),
    timeout (ms of the last refresh, for events), mark, label, packets/bytes
    ([orig, reply] views over pk0/pk1/by0/by1), created (ms), helper (alg port,
    0 none), related, offload, why; okey/rkey (lookup keys, computed), tcp (a view
    of the TCP state, None for other protocols), stream_ts (UDP: ms after which a
    replied flow becomes a stream, computed), confirmed.
    """

    __slots__ = ("id", "zone", "ip_ver", "proto", "orig", "reply", "status", "state", "expires",
                 "timeout", "mark", "label", "pk0", "pk1", "by0", "by1", "created", "helper",
                 "related", "offload", "why", "confirmed", "ext")

    # Not a slot: ``offload.policy.tcp_state_name`` looks for a ``tcp_state`` first (other
    # connection objects store names there); None sends it to ``state`` without a miss.
    tcp_state = None

    def __init__(self, zone: int, ip_ver: int, proto: int, orig: tuple, reply: tuple, now: int) -> None:
        _init_conn(self, zone, ip_ver, proto, orig, reply, now)

    # -- list-like counters (the contract's ``packets=[orig, reply]``)
    @property
    def packets(self) -> _Pair:
        return _Pair(self, "pk0", "pk1")

    @packets.setter
    def packets(self, v) -> None:
        self.pk0, self.pk1 = v

    @property
    def bytes(self) -> _Pair:
        return _Pair(self, "by0", "by1")

    @bytes.setter
    def bytes(self, v) -> None:
        self.by0, self.by1 = v

    @property
    def okey(self) -> tuple:
        """(zone, ip_ver, proto, src, dst, sport, dport) of the original direction."""
        return (self.zone, self.ip_ver, self.proto) + self.orig

    @property
    def rkey(self) -> tuple:
        return (self.zone, self.ip_ver, self.proto) + self.reply

    @property
    def stream_ts(self) -> int:
        return self.created + UDP_STREAM_AFTER_MS

    @property
    def tcp(self):
        return None

    @property
    def offloaded(self) -> bool:
        return bool(self.status & IPS_OFFLOAD)

    def __repr__(self) -> str:
        return (f"Conn(id={self.id}, zone={self.zone}, proto={self.proto}, orig={self.orig}, "
                f"reply={self.reply}, status={self.status:#x}, state={self.state})")

    def _tcp_state(self) -> dict | None:
        return None

    def to_state(self) -> dict:
        return {"id": self.id, "zone": self.zone, "ip_ver": self.ip_ver, "proto": self.proto,
                "orig": list(self.orig), "reply": list(self.reply), "status": self.status,
                "state": self.state, "expires": self.expires, "timeout": self.timeout,
                "mark": self.mark, "label": str(self.label), "packets": [self.pk0, self.pk1],
                "bytes": [self.by0, self.by1], "created": self.created, "helper": self.helper,
                "related": self.related, "why": self.why, "stream_ts": self.stream_ts,
                "ext": self.ext, "tcp": self._tcp_state()}

    @classmethod
    def from_state(cls, s: dict) -> Conn:
        tcp = s.get("tcp")
        k = TcpConn if tcp is not None else Conn
        c = k(s["zone"], s["ip_ver"], s["proto"], tuple(s["orig"]), tuple(s["reply"]), s["created"])
        c.id = s["id"]
        c.status = s["status"]
        c.state = s["state"]
        c.expires = s["expires"]
        c.timeout = s["timeout"]
        c.mark = s["mark"]
        c.label = int(s["label"])
        c.pk0, c.pk1 = s["packets"]
        c.by0, c.by1 = s["bytes"]
        c.helper = s["helper"]
        c.related = s["related"]
        c.why = s["why"]
        c.ext = s.get("ext", 0)
        if tcp is not None:
            c._load_tcp(tcp)
        c.confirmed = True
        return c


def _wide_field(name: str) -> property:
    """The property of WIDE_FIELDS' ``name`` (``TcpConn``): as Python it reads and stores the
    slot ``_name`` itself; compiled, where that slot is a C unsigned 32-bit integer, a value it
    cannot hold goes to the connection's ``odd`` dict (``TcpConn._put``), read first, so every
    value reads back as stored, as in Python."""
    slot = "_" + name

    def get(self):
        v = getattr(self, slot)
        odd = self.odd
        return v if _DIRECT or odd is None else odd.get(name, v)

    def put(self, v) -> None:
        if _DIRECT or (self.odd is None and type(v) is int and 0 <= v <= M32):
            setattr(self, slot, v)
        else:
            self._put(name, v)

    return property(get, put, doc=f"WIDE_FIELDS' {name} (slot {slot})")


class TcpConn(Conn):
    """A TCP connection: ``Conn`` plus the kernel's ``ip_ct_tcp``, inline."""

    # WIDE_FIELDS are stored under their names with a leading underscore (compiled: C unsigned
    # 32-bit integers, conn.pxd) behind properties of their own names; ``odd`` is None or, compiled,
    # a dict of the ones holding a value such an integer cannot (see ``_put``).
    __slots__ = ("_end0", "_maxend0", "_maxwin0", "_maxack0", "_end1", "_maxend1", "_maxwin1", "_maxack1",
                 "_last_seq", "_last_ack", "_last_end", "_last_win", "odd", "scale0", "flags0", "scale1",
                 "flags1", "wide", "last_dir", "last_index", "last_wscale", "last_flags", "retrans")

    def __init__(self, zone: int, ip_ver: int, proto: int, orig: tuple, reply: tuple, now: int) -> None:
        _init_conn(self, zone, ip_ver, proto, orig, reply, now)
        self._end0 = self._maxend0 = self._maxwin0 = self._maxack0 = self.scale0 = self.flags0 = 0
        self._end1 = self._maxend1 = self._maxwin1 = self._maxack1 = self.scale1 = self.flags1 = 0
        self.last_dir = self._last_seq = self._last_ack = self._last_end = self._last_win = 0
        self.last_wscale = self.last_flags = self.retrans = 0
        self.last_index = TCP_NONE_SET
        self.odd = None
        self.wide: int | None = None

    def _put(self, name: str, v) -> None:
        """Stores ``v`` in WIDE_FIELDS' ``name``: in its C integer when it is an int that holds it
        (and forgets an odd value of that name), otherwise in ``odd``, which the property reads
        first, so every value reads back as stored, as in Python."""
        odd = self.odd
        if type(v) is int and 0 <= v <= M32:
            setattr(self, "_" + name, v)
            if odd is not None:
                odd.pop(name, None)
                if not odd:
                    self.odd = None
        else:
            if odd is None:
                self.odd = odd = {}
            odd[name] = v

    # WIDE_FIELDS under their own names (``_wide_field``): the tracker's and tcp's hot code
    # reads and writes the underscored slots; these serve the views, tools, the store and tests.
    end0 = _wide_field("end0")
    maxend0 = _wide_field("maxend0")
    maxwin0 = _wide_field("maxwin0")
    maxack0 = _wide_field("maxack0")
    end1 = _wide_field("end1")
    maxend1 = _wide_field("maxend1")
    maxwin1 = _wide_field("maxwin1")
    maxack1 = _wide_field("maxack1")
    last_seq = _wide_field("last_seq")
    last_ack = _wide_field("last_ack")
    last_end = _wide_field("last_end")
    last_win = _wide_field("last_win")

    @property
    def tcp(self) -> TcpView:
        return TcpView(self)

    def field(self, name: str) -> int:
        """A TCP field by slot name, packed or not."""
        w = self.wide
        if w is not None and name in _WIDE_SHIFT:
            return (w >> _WIDE_SHIFT[name]) & M32
        return getattr(self, name)

    def set_field(self, name: str, v: int) -> None:
        self.unpack()
        setattr(self, name, v)

    def pack(self) -> None:
        """Folds WIDE_FIELDS into ``wide`` (no-op when packed or a value is not 32-bit)."""
        if self.wide is not None or (not _DIRECT and self.odd is not None):
            return
        # The fields read one by one (compiled: struct members) in WIDE_FIELDS order, and the
        # struct method and int.from_bytes bound once at import (no lookups per call).
        vals = (self._end0, self._maxend0, self._maxwin0, self._maxack0, self._end1, self._maxend1,
                self._maxwin1, self._maxack1, self._last_seq, self._last_ack, self._last_end,
                self._last_win)
        for x in vals:
            if type(x) is not int or not 0 <= x <= M32:
                return
        self.wide = _from_bytes(_pack_words(*vals), "little")
        self._end0 = self._maxend0 = self._maxwin0 = self._maxack0 = 0
        self._end1 = self._maxend1 = self._maxwin1 = self._maxack1 = 0
        self._last_seq = self._last_ack = self._last_end = self._last_win = 0

    def unpack(self) -> None:
        """Restores WIDE_FIELDS from ``wide``."""
        w = self.wide
        if w is None:
            return
        self.wide = None
        self.odd = None  # every field it could name is restored here
        (self._end0, self._maxend0, self._maxwin0, self._maxack0, self._end1, self._maxend1,
         self._maxwin1, self._maxack1, self._last_seq, self._last_ack, self._last_end,
         self._last_win) = _unpack_words(w.to_bytes(48, "little"))

    def _tcp_state(self) -> dict:
        f = self.field
        return {"seen": [[f(p + str(d)) for _, p in SIDE_FIELDS] for d in (0, 1)],
                "last": [f(n) for n in LAST_FIELDS]}

    def _load_tcp(self, s: dict) -> None:
        self.wide = None
        for d in (0, 1):
            for (_, p), v in zip(SIDE_FIELDS, s["seen"][d], strict=True):
                setattr(self, p + str(d), v)
        for n, v in zip(LAST_FIELDS, s["last"], strict=True):
            setattr(self, n, v)
        if self.status & IPS_OFFLOAD:
            self.pack()


# A TcpConn's every field by the name its value reads under (``tcp._on_copy`` copies them).
TCP_NAMES = Conn.__slots__ + WIDE_FIELDS + ("scale0", "flags0", "scale1", "flags1", "wide",
                                            "last_dir", "last_index", "last_wscale", "last_flags", "retrans")


class TcpSide:
    """One direction's window data (kernel ``ip_ct_tcp_state``): a view over a TcpConn's slots."""

    __slots__ = ("_c", "_d")

    def __init__(self, conn: TcpConn, d: int) -> None:
        self._c, self._d = conn, d

    def to_state(self) -> list[int]:
        return [getattr(self, k) for k, _ in SIDE_FIELDS]


def _side_prop(slot: str) -> property:
    def get(self):
        return self._c.field(slot + str(self._d))

    def put(self, v):
        self._c.set_field(slot + str(self._d), v)
    return property(get, put)


for _k, _p in SIDE_FIELDS:
    setattr(TcpSide, _k, _side_prop(_p))


class TcpInfo:
    """TCP tracking state of one connection (kernel ``ip_ct_tcp``): a view over a TcpConn."""

    __slots__ = ("_c",)

    def __init__(self, conn: TcpConn) -> None:
        self._c = conn

    @property
    def seen(self) -> tuple[TcpSide, TcpSide]:
        return (TcpSide(self._c, 0), TcpSide(self._c, 1))

    def to_state(self) -> dict:
        return self._c._tcp_state()


def _last_prop(name: str) -> property:
    def get(self):
        return self._c.field(name)

    def put(self, v):
        self._c.set_field(name, v)
    return property(get, put)


for _n in LAST_FIELDS:
    setattr(TcpInfo, _n, _last_prop(_n))

TcpView = TcpInfo
