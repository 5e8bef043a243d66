"""Batched fast path for offloaded connections: flat NumPy table + Numba kernel.

The kernels and the row layout live in ``datapath/kernels.py``; this module is the Python side
(tables, connection map, batch receive loop), compiled with the rest of the core (``_native``).

Theory of operation
-------------------
This is the hardware-class counterpart of ``Datapath._fast`` (one packet at a
time over a dict of ``FastEntry``).  It handles exactly the packets the
eSwitch rule of an offloaded connection would: untagged IPv4 (ethertype
0x0800, IHL 5), not a fragment, TTL > 1, TCP without FIN/RST or UDP, with
a consistent IPv4 total length.  Everything else is a **miss** (``-1``) and
goes to the slow path, which is always correct: a miss never changes state.

Table (``FastTable``): one entry per *direction* of a connection.

* ``ent`` is one ``uint64`` array of shape (capacity, 11), one 88-byte row per
  entry (array of structs, so a hit touches two adjacent cache lines, or three
  for the rows that start at byte 48 or 56 of a line):

  ====  =====================================================================
  word  content
  ====  =====================================================================
  0-3   key: frame bytes 0..7, bytes 8..11 | in_port << 32, bytes 26..33,
        bytes 34..37 | ip_proto << 32 (little-endian loads of the raw frame,
        so building the key costs no byte swap)
  4-5   new Ethernet dst+src (12 bytes, bytes 0..11 of the output frame);
        word 5 also holds out_port (16 bits) << 32 and flags << 48
  6-7   new IPv4 src, dst, L4 sport, dport (the 12-byte block at 26..37);
        word 7 also holds the RFC 1624 constant of the IPv4 header checksum
        << 32 and of the TCP/UDP checksum << 48
  8-10  counters: packets, bytes, last-used ms
  ====  =====================================================================

  The key covers what the reference cache key covers (in_port, Ethernet
  src/dst, ethertype = 0x0800 and no VLAN by construction, IPv4 src/dst,
  protocol, ports); one table serves one bridge (the reference key starts
  with the bridge name).
* ``index`` is open addressing with linear probing, at most half full; a slot
  holds ``tag << 32 | entry id`` (``tag`` = 31 high hash bits, so most probes
  of foreign entries are rejected without touching their row), -1 when empty.
  Removal shifts later slots back (no tombstones), so entry ids are stable for
  the life of an entry and counters can be read back by id.
* RFC 1624: for a fixed rewrite ``m -> m'`` the new checksum is
  ``~(~HC + C)`` with ``C = sum(~m) + sum(m')`` folded; ``C`` is computed once
  at insert, so each packet pays one add and two folds per checksum.  A UDP
  checksum of 0 stays 0 and a computed 0 is sent as 0xFFFF.

Kernel: ``_classify(...)`` walks frames given as (offset, length) into one
``uint8`` buffer, rewrites hits into ``out`` (in place when ``out is buf``),
sets ``out_ports[i]`` and ``eids[i]`` (-1 on a miss) and updates the entry's
counters.  It goes in chunks of CHUNK frames, in passes: parse + hash +
software prefetch of the home index slot; walk of the index tags + prefetch of
every line of the candidate row; key check, rewrite and count in order.  A
prefetch does not wait for its data, so a chunk's misses overlap (an ordinary
load that misses blocks retirement, and the reorder window holds only one or two
frames' worth of parsing).  At a stop it also counts the frames right behind
the miss that no table could hit, so ``receive_batch`` sends them to the slow
path without re-entering the kernel.  With numba it is ``@njit(cache=True)``; without numba the same
functions run as plain Python (slow, identical results; ``NUMBA_DISABLE_JIT=1``
runs that path with numba installed).

Ordering rule (what makes it equivalent to the one-at-a-time path): a miss
may change the table (a FIN tears its connection down, a new connection gets
cached), so no frame after a miss may be handled before that miss.  Use
``process_until_miss`` (stops at the first miss) or ``run_in_order`` (calls
the slow path for each miss, in order, then resumes).  ``process`` classifies
a whole batch and is only for callers whose misses cannot touch the table.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from operator import itemgetter

import numpy as np

from ..flow.key import (
    DL_DST,
    DL_SRC,
    IPV6_DST,
    IPV6_SRC,
    NW_DST,
    NW_ECN,
    NW_SRC,
    NW_TOS,
    NW_TTL,
    TP_DST,
    TP_SRC,
)
from ..ofproto.bridge import credit_hits
from .kernels import (  # the kernels and the row layout they share with the tables below
    _L32,
    EMPTY,
    ETH_TYPE_IP,
    F_MAC,
    F_NET,
    HAVE_NUMBA,
    PROTO_TCP,
    PROTO_UDP,
    ROW_WORDS,
    S_CID1,
    S_FBY,
    S_FCREATED,
    S_FPK,
    S_FREE,
    S_FUSED1,
    S_ROWS,
    W_BYTES,
    W_MAC1,
    W_PKTS,
    W_USED,
    _classify,
    _cm_del,
    _cm_get,
    _cm_put,
    _cm_put_many,
    _find_flow,
    _find_row,
    _index_del,
    _insert_one,
    _insert_rows,
    _move_index,
    _mt_forget,
    _mt_put,
    _sync_take,
    _take,
    direct,
)


# ---------------------------------------------------------------- Python side
def _fold(x: int) -> int:
    while x >> 16:
        x = (x & 0xFFFF) + (x >> 16)
    return x


def _sum16(x: int, nwords: int) -> int:
    """Sum of the 16-bit words of the ``nwords``-word big-endian integer ``x`` (unfolded)."""
    s = 0
    for _ in range(nwords):
        s += x & 0xFFFF
        x >>= 16
    return s


def csum_const(old: bytes | int, new: bytes | int, nwords: int | None = None) -> int:
    """RFC 1624 constant ``sum(~m) + sum(m')`` (folded) for rewriting 16-bit words ``old`` -> ``new``.

    ``old``/``new`` are bytes, or big-endian integers of ``nwords`` 16-bit words.
    """
    if isinstance(old, bytes | bytearray):
        nwords = len(old) // 2
        old, new = int.from_bytes(old, "big"), int.from_bytes(new, "big")
    # sum(~m) over n words is n * 0xFFFF - sum(m).
    return _fold(nwords * 0xFFFF - _sum16(old, nwords) + _sum16(new, nwords))


def key_from_cache_key(ck: tuple) -> tuple | None:
    """The fast key of a reference cache key ``Datapath._cache_key``, or None when not eligible.

    ``ck`` is (bridge, in_port, dl_src, dl_dst, dl_type, vlan_tci, nw_src, nw_dst, ipv6_src,
    ipv6_dst, nw_proto, tp_src, tp_dst).
    """
    _br, in_port, dl_src, dl_dst, dl_type, vlan, nw_src, nw_dst, v6s, v6d, proto, sport, dport = ck
    if dl_type != ETH_TYPE_IP or vlan or v6s or v6d or proto not in (PROTO_TCP, PROTO_UDP):
        return None
    if not 0 <= in_port <= 0xFFFFFFFF:
        return None
    return (in_port, dl_src, dl_dst, nw_src, nw_dst, proto, sport, dport)


# The key bytes of a frame (0..11: Ethernet dst, src; 26..37: IPv4 src, dst, ports) packed from
# the flow-key integers, and the same 24 bytes read as the row's little-endian words 0, 1 (its low
# half), 2, 3 (its low half).  Two struct calls per direction instead of integer byte swaps:
# pack_row runs for every offloaded direction on the slow path.
_KEY_BYTES = struct.Struct(">HIHIIIHH")
_KEY_WORDS = struct.Struct("<QIQI")


def _key_words(dl_src: int, dl_dst: int, nw_src: int, nw_dst: int, sport: int, dport: int) -> tuple:
    return _KEY_WORDS.unpack(_KEY_BYTES.pack(dl_dst >> 32, dl_dst & _L32, dl_src >> 32, dl_src & _L32,
                                             nw_src, nw_dst, sport, dport))


def _words_key(w0: int, w1: int, w2: int, w3: int) -> tuple:
    """(dl_dst, dl_src, nw_src, nw_dst, sport, dport) of key words (``_key_words`` inverted)."""
    dh, dl, sh, sl, nw_src, nw_dst, sport, dport = _KEY_BYTES.unpack(_KEY_WORDS.pack(w0, w1 & _L32, w2,
                                                                                      w3 & _L32))
    return (dh << 32) | dl, (sh << 32) | sl, nw_src, nw_dst, sport, dport


def pack_key(key: tuple) -> list[int]:
    """The 4 key words of ``key`` (little-endian loads of frame bytes 0..11 and 26..37, see above)."""
    in_port, dl_src, dl_dst, nw_src, nw_dst, proto, sport, dport = key
    w0, w1, w2, w3 = _key_words(dl_src, dl_dst, nw_src, nw_dst, sport, dport)
    return [w0, w1 | (in_port << 32), w2, w3 | (proto << 32)]


def pack_row(key: tuple, out_port: int, new_dl_src: int | None = None, new_dl_dst: int | None = None,
             new_nw_src: int | None = None, new_nw_dst: int | None = None, new_tp_src: int | None = None,
             new_tp_dst: int | None = None) -> list[int]:
    """The 11-word table row of one direction (None: field unchanged). Counters start at 0.

    No bytes objects beyond two struct calls per side: it runs for every offloaded
    direction on the slow path.
    """
    in_port, dl_src, dl_dst, nw_src, nw_dst, proto, sport, dport = key
    nds = dl_src if new_dl_src is None else new_dl_src
    ndd = dl_dst if new_dl_dst is None else new_dl_dst
    nns = nw_src if new_nw_src is None else new_nw_src
    nnd = nw_dst if new_nw_dst is None else new_nw_dst
    nps = sport if new_tp_src is None else new_tp_src
    npd = dport if new_tp_dst is None else new_tp_dst
    flags = ((F_MAC if nds != dl_src or ndd != dl_dst else 0)
             | (F_NET if nns != nw_src or nnd != nw_dst or nps != sport or npd != dport else 0))
    # RFC 1624: sum(~m) + sum(m') over the 4 address words, then + the 2 port words.
    ipsum = (0x3FFFC - (nw_src >> 16) - (nw_src & 0xFFFF) - (nw_dst >> 16) - (nw_dst & 0xFFFF)
             + (nns >> 16) + (nns & 0xFFFF) + (nnd >> 16) + (nnd & 0xFFFF))
    ipc = _fold(ipsum)
    l4c = _fold(ipsum + 0x1FFFE - sport - dport + nps + npd)
    w0, w1, w2, w3 = _key_words(dl_src, dl_dst, nw_src, nw_dst, sport, dport)
    n0, n1, n2, n3 = _key_words(nds, ndd, nns, nnd, nps, npd)
    return [w0, w1 | (in_port << 32), w2, w3 | (proto << 32),
            n0, n1 | (out_port << 32) | (flags << 48), n2, n3 | (ipc << 32) | (l4c << 48),
            0, 0, 0]


HUGE = 2 << 20


def _alloc(shape, dtype) -> np.ndarray:
    """A zeroed array; big ones in anonymous memory advised for transparent huge pages.

    At 1M connections the table is ~230 MB of random accesses: with 4 KiB pages
    nearly every lookup also misses the TLB; 2 MiB pages remove most of that.
    """
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    if n < HUGE:
        return np.zeros(shape, dtype=dtype)
    import mmap

    size = -(-n // HUGE) * HUGE
    m = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(m, "madvise") and hasattr(mmap, "MADV_HUGEPAGE"):
        try:
            m.madvise(mmap.MADV_HUGEPAGE)
        except OSError:
            pass
    return np.frombuffer(m, dtype=dtype, count=int(np.prod(shape))).reshape(shape)


def _next_pow2(n: int) -> int:
    p = 1
    while p < n:
        p <<= 1
    return p


class FastTable:
    """The fast-path table of one bridge (see module docstring).

    ``insert``/``remove`` run on the slow path; ``process*`` on every batch.
    Capacity limits are return values: ``insert`` returns -1 when full.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.ent = _alloc((capacity, ROW_WORDS), np.uint64)
        size = _next_pow2(max(2 * capacity, 8))
        self.index = _alloc((size,), np.int64)
        self.index[:] = EMPTY
        self.mask = size - 1
        # Stack of free entry ids (top = self._nfree - 1); no per-entry Python objects.
        self._free = np.arange(capacity - 1, -1, -1, dtype=np.int64)
        self._nfree = capacity
        self.generation = 0  # for the caller: the bridge generation the entries belong to
        self._now1 = np.zeros(1, dtype=np.int64)
        self._row = np.zeros(ROW_WORDS, dtype=np.uint64)
        self.nins = 0  # inserts so far: a miss found by a scan stays one until the next insert

    def __len__(self) -> int:
        return self.capacity - self._nfree

    @property
    def nbytes(self) -> int:
        """Memory of the arrays (all of the table's memory)."""
        return self.ent.nbytes + self.index.nbytes + self._free.nbytes

    # ------------------------------------------------------------ slow-path side
    def insert(self, key: tuple, out_port: int, *, new_dl_src: int | None = None,
               new_dl_dst: int | None = None, new_nw_src: int | None = None, new_nw_dst: int | None = None,
               new_tp_src: int | None = None, new_tp_dst: int | None = None) -> int:
        """Adds (or replaces) one direction entry; returns its entry id, or -1 when the table is full.

        Args:
            key: (in_port, dl_src, dl_dst, nw_src, nw_dst, nw_proto, tp_src, tp_dst), flow-key ints.
            out_port: the OpenFlow port the packet goes out of (0..0xFFFF).
            new_*: rewritten header values; None keeps the packet's value.
        """
        if key[5] not in (PROTO_TCP, PROTO_UDP) or not 0 <= out_port <= 0xFFFF:
            raise ValueError(f"not a fast-path entry: key {key}, out_port {out_port}")
        return self.insert_row(pack_row(key, out_port, new_dl_src, new_dl_dst, new_nw_src, new_nw_dst,
                                        new_tp_src, new_tp_dst))

    def insert_row(self, row: list[int], staged: bool = False) -> int:
        """``insert`` of a ``pack_row`` result: one kernel call (a replaced entry keeps id and counters).
        ``staged``: ``row`` is ``self._row``, already filled."""
        r = self._row
        if not staged:
            r[:] = row
        nfree = self._nfree
        e = int(_insert_one(self.ent, self.index, self.mask, r, int(self._free[nfree - 1]) if nfree else -1))
        if nfree and e == self._free[nfree - 1]:
            self._nfree = nfree - 1
        self.nins += 1
        return e

    def _find_key(self, key: tuple) -> int:
        r = self._row
        r[:4] = pack_key(key)
        return int(_find_row(self.ent, self.index, self.mask, r))

    def insert_many(self, rows: np.ndarray) -> np.ndarray:
        """Bulk insert of rows from ``pack_row`` whose keys are all new; returns their entry ids.

        Returns an empty array (nothing inserted) when they do not all fit.
        """
        n = len(rows)
        if n > self._nfree:
            return np.empty(0, dtype=np.int64)
        eids = self._free[self._nfree - n:self._nfree][::-1].copy()
        self._nfree -= n
        self.nins += n
        res = np.zeros(n, dtype=np.int64)
        _insert_rows(self.ent, self.index, self.mask, np.ascontiguousarray(rows, dtype=np.uint64), eids, res)
        return eids

    def remove(self, key: tuple) -> bool:
        """Removes the entry of ``key``; False when absent."""
        e = self._find_key(key)
        if e < 0:
            return False
        self.remove_eid(e)
        return True

    def remove_eid(self, e: int) -> None:
        """Removes entry ``e`` (an id ``insert`` returned and not removed since)."""
        _index_del(self.ent, self.index, self.mask, e)
        self.ent[e] = 0
        self._free[self._nfree] = e
        self._nfree += 1

    def clear(self) -> None:
        self.ent[:] = 0
        self.index[:] = EMPTY
        self._free = np.arange(self.capacity - 1, -1, -1, dtype=np.int64)
        self._nfree = self.capacity

    def lookup(self, key: tuple) -> int:
        """Entry id of ``key``, or -1."""
        return self._find_key(key)

    def counters(self, eid: int) -> tuple[int, int, int]:
        """(packets, bytes, last-used ms) of an entry."""
        pk, by, used = self.ent[eid, W_PKTS:W_USED + 1].tolist()
        return pk, by, used

    def take_counters(self, eid: int) -> tuple[int, int, int]:
        """Like ``counters`` and resets packets/bytes to 0 (for crediting deltas)."""
        r = self.ent[eid]
        pk, by, used = r[W_PKTS:W_USED + 1].tolist()
        if pk:
            r[W_PKTS:W_BYTES + 1] = 0
        return pk, by, used

    def out_port(self, eid: int) -> int:
        return (int(self.ent[eid, W_MAC1]) >> 32) & 0xFFFF

    # ------------------------------------------------------------ packet side
    def _nows(self, now) -> tuple[np.ndarray, int]:
        if isinstance(now, np.ndarray):
            return now, 1
        self._now1[0] = now
        return self._now1, 0

    def process_range(self, buf: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, in_ports: np.ndarray,
                      now, out_ports: np.ndarray, eids: np.ndarray, *, start: int = 0, stop: int | None = None,
                      out: np.ndarray | None = None, stop_on_miss: bool = True) -> tuple[int, int]:
        """Runs frames ``start..stop-1``; returns (frames done, hits).

        Args:
            buf: uint8 buffer holding the frames.
            offsets, lengths: int64 per frame; in_ports: int64 per frame.
            now: ms, an int for the whole batch or an int64 array per frame.
            out_ports, eids: int32 / int64 per frame, written (-1 on a miss; with ``stop_on_miss``,
                eids -2 for the misses the fast path never takes, see ``_classify``).
            out: output buffer with the same layout (None or ``buf``: rewrite in place).
            stop_on_miss: stop at the first miss (frame ``start + done`` is the miss).
        """
        if stop is None:
            stop = len(offsets)
        nows, stride = self._nows(now)
        copy = out is not None and out is not buf
        if out is None:
            out = buf
        if HAVE_NUMBA:
            return _classify(buf, out, offsets, lengths, in_ports, nows, stride, start, stop, self.ent,
                             self.index, self.mask, out_ports, eids, copy, stop_on_miss)[:2]
        with np.errstate(over="ignore"):  # the plain-Python fallback: uint64 scalars warn on wrap-around
            return _classify(buf, out, offsets, lengths, in_ports, nows, stride, start, stop, self.ent,
                             self.index, self.mask, out_ports, eids, copy, stop_on_miss)[:2]

    def process(self, buf, offsets, lengths, in_ports, now, out_ports, eids=None, out=None) -> int:
        """Classifies the whole batch (misses do not stop it); returns the number of hits.

        Only for callers whose misses cannot change the table (see the ordering rule).
        """
        if eids is None:
            eids = np.empty(len(offsets), dtype=np.int64)
        return self.process_range(buf, offsets, lengths, in_ports, now, out_ports, eids, out=out,
                                  stop_on_miss=False)[1]

    def process_until_miss(self, buf, offsets, lengths, in_ports, now, out_ports, eids, start=0,
                           out=None) -> int:
        """Runs from ``start`` up to the first miss; returns its index (``len(offsets)``: none)."""
        done, _ = self.process_range(buf, offsets, lengths, in_ports, now, out_ports, eids, start=start,
                                     out=out, stop_on_miss=True)
        return start + done


def run_in_order(table: FastTable, buf, offsets, lengths, in_ports, now, out_ports, eids,
                 slow: Callable[[int], None], out=None) -> int:
    """Processes a batch in arrival order: fast hits in the kernel, ``slow(i)`` for each miss ``i``.

    ``slow`` may insert into or remove from ``table`` (the next frames see it),
    exactly as the one-at-a-time datapath would.  Returns the number of hits.
    """
    n = len(offsets)
    i = 0
    hits = 0
    while i < n:
        j = table.process_until_miss(buf, offsets, lengths, in_ports, now, out_ports, eids, i, out)
        hits += j - i
        if j >= n:
            break
        slow(j)
        i = j + 1
    return hits



# ---------------------------------------------------------------- Datapath adapter
# The one-call kernels of BatchFastPath's per-connection operations (add_output, forget); False:
# the general path of several calls (the same results; the tests compare the two).
_FUSED = True
_NEW_FIELD = {DL_SRC: "new_dl_src", DL_DST: "new_dl_dst", NW_SRC: "new_nw_src", NW_DST: "new_nw_dst",
              TP_SRC: "new_tp_src", TP_DST: "new_tp_dst"}


def mirror_args(ck: tuple, entry) -> tuple[tuple, int, dict] | None:
    """(key, out_port, new fields) to mirror a reference ``FastEntry`` cached under ``ck``, or None.

    Mirrored: one output, rewrites of MACs / IPv4 addresses / ports only, no ICMP extra.
    """
    key = key_from_cache_key(ck)
    if key is None or len(entry.outputs) != 1:
        return None
    extra = entry.extra
    if extra is not None and any(x is not None for x in extra):
        return None
    port, deltas = entry.outputs[0]
    if not 0 <= port <= 0xFFFF:
        return None
    new = {}
    for i, v in deltas:
        name = _NEW_FIELD.get(i)
        if name is None:
            return None
        new[name] = v
    return key, port, new


def _row_learns(key: tuple, learns) -> bool | None:
    """Whether a decision for fast key ``key`` that learns ``learns`` ((vlan, mac, ofport) ...)
    refreshes MAC learning at its hits, as a row records it (the key's own source MAC on its
    in_port, VLAN 0); None when it learns anything else (not mirrorable)."""
    for vlan, mac, port in learns:
        if vlan or mac != key[1] or port != key[0]:
            return None
    return bool(learns)


# Flow-key fields an output may change that a row cannot rewrite (datapath._REWRITABLE minus
# _NEW_FIELD): IPV6_SRC, IPV6_DST, NW_TOS, NW_ECN, NW_TTL.
_unmirrored_of = itemgetter(IPV6_SRC, IPV6_DST, NW_TOS, NW_ECN, NW_TTL)


def _any_set(extra) -> bool:
    """``any(x is not None for x in extra)`` without a generator (add_output is cpdef: no closure)."""
    for x in extra:
        if x is not None:
            return True
    return False


def row_key(w: list[int]) -> tuple:
    """The key (``key_from_cache_key`` order) of a row given as Python ints (``pack_key`` inverted)."""
    dl_dst, dl_src, nw_src, nw_dst, sport, dport = _words_key(w[0], w[1], w[2], w[3])
    return (w[1] >> 32, dl_src, dl_dst, nw_src, nw_dst, (w[3] >> 32) & 0xFF, sport, dport)


def row_new(w: list[int]) -> tuple:
    """(out_port, new dl_src, dl_dst, nw_src, nw_dst, tp_src, tp_dst) of a row (``pack_row`` inverted)."""
    dl_dst, dl_src, nw_src, nw_dst, sport, dport = _words_key(w[4], w[5], w[6], w[7])
    return (w[5] >> 32) & 0xFFFF, dl_src, dl_dst, nw_src, nw_dst, sport, dport


class ConnMap:
    """Connection id -> encoded entries (``table number << 32 | entry id``): two int64 arrays,
    at most half full (16 B a slot), grown by doubling; no per-entry Python object."""

    def __init__(self, size: int = 1024) -> None:
        self._reset(size)
        self._out = np.empty(8, dtype=np.int64)

    def _reset(self, size: int) -> None:
        # keys and vals are the rows of one array (``kv``): one argument for the per-connection kernels
        self.kv = kv = np.empty((2, size), dtype=np.int64)
        kv[0] = EMPTY
        self.keys = kv[0]
        self.vals = kv[1]
        self.mask = size - 1
        self.n = 0

    def __len__(self) -> int:
        return self.n

    def add(self, cid: int, v: int) -> None:
        if 2 * (self.n + 1) > len(self.keys):
            self._rebuild(2 * len(self.keys))
        _cm_put(self.keys, self.vals, self.mask, cid, v)
        self.n += 1

    def remove(self, cid: int, v: int) -> bool:
        if _cm_del(self.keys, self.vals, self.mask, cid, v):
            self.n -= 1
            return True
        return False

    def get(self, cid: int) -> list[int]:
        n = int(_cm_get(self.keys, self.vals, self.mask, cid, self._out))
        if n > len(self._out):
            self._out = np.empty(2 * n, dtype=np.int64)
            n = int(_cm_get(self.keys, self.vals, self.mask, cid, self._out))
        return self._out[:n].tolist()

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        sel = self.keys != EMPTY
        return self.keys[sel], self.vals[sel]

    def _rebuild(self, size: int, keep=None) -> None:
        ks, vs = self.items()
        if keep is not None:
            sel = keep(vs)
            ks, vs = ks[sel], vs[sel]
        self._reset(size)
        _cm_put_many(self.keys, self.vals, self.mask, ks, vs)
        self.n = len(ks)

    def drop_table(self, no: int) -> None:
        """Removes every entry of table ``no``."""
        self._rebuild(len(self.keys), lambda vs: (vs >> 32) != no)

    def clear(self) -> None:
        self._reset(1024)


class MirrorTable(FastTable):
    """A FastTable plus what a cached decision needs besides its row, as per-entry-id arrays
    (all zero when free, so untouched pages cost nothing):

    * ``cid1``: connection id + 1 (0: free entry id);
    * ``meta``: shape number << 1 | reply; a shape is ``(generation, rules, extra)``, shared by
      every entry of the same pipeline path (``shapes``, interned through ``shape_ids``);
    * ``fpk``, ``fby``, ``fused1``, ``fcreated``: the decision's credited packets, bytes, last
      use + 1 (0: never) and creation time (``FastEntry.packets/bytes/used/created``).

    A generation change does not drop entries: they move to ``sindex`` (stale entries, which
    the kernel does not see) and leave at their next use, as stale ``FastEntry`` objects do.
    """

    def __init__(self, capacity: int, no: int) -> None:
        super().__init__(capacity)
        self.no = no
        self._side()
        self.sindex = None
        self.nstale = 0
        # _mt_forget, _find_flow and _mt_put for this table's argument types (``direct``), once used, with
        # the kernel they were made of (a test may replace the module's kernel).
        self.forget_fn = self.forget_of = self.find_fn = self.find_of = self.put_fn = self.put_of = None

    def _side(self) -> None:
        c = self.capacity
        # cid1, fpk, fby, fused1, fcreated and the free stack are the rows of one array (``side``,
        # rows ``kernels.S_*``): one argument for the per-connection kernels (_mt_put, _mt_forget)
        self.side = side = np.zeros((S_ROWS, c), dtype=np.int64)
        side[S_FREE] = self._free
        self._free = side[S_FREE]
        self.cid1 = side[S_CID1]
        self.meta = np.zeros(c, dtype=np.int32)
        self.fpk = side[S_FPK]
        self.fby = side[S_FBY]
        self.fused1 = side[S_FUSED1]
        self.fcreated = side[S_FCREATED]
        self.mark = np.zeros(c, dtype=np.uint8)  # _sync_take's scratch (zero between calls)
        self.shapes: list[tuple] = []
        self.shape_ids: dict = {}

    def clear(self) -> None:
        super().clear()
        self._side()
        if self.sindex is not None:
            self.sindex[:] = EMPTY
        self.nstale = 0

    def shape(self, generation: int, rules, extra, learns: bool = False) -> int:
        """The number of the shape (generation, rules, extra, learns): ``learns``, its hits refresh
        the MAC learning of the row's (in_port, dl_src) on VLAN 0."""
        k = (generation, tuple(rules), extra, learns)  # (rules compare and hash by identity)
        s = self.shape_ids.get(k)
        if s is None:
            s = self.shape_ids[k] = len(self.shapes)
            self.shapes.append((generation, list(rules), extra, learns))
        return s

    def roll(self, generation: int) -> None:
        """The bridge's generation changed: every current entry becomes stale."""
        if len(self) == 0:
            self.shapes, self.shape_ids = [], {}
        elif len(self) > self.nstale:
            if self.sindex is None:
                self.sindex = self.index
                self.index = _alloc(self.sindex.shape, np.int64)
                self.index[:] = EMPTY
            elif self.nstale == 0:
                self.sindex, self.index = self.index, self.sindex
            else:
                _move_index(self.ent, self.index, self.sindex, self.mask)
            self.nstale = len(self)
        self.generation = generation

    def find_row(self, row, stale: bool = False) -> int:
        """Entry id of the key in ``row[:4]`` (a ``_row``-like array) among current or stale entries."""
        return int(_find_row(self.ent, self.sindex if stale else self.index, self.mask, row))

    def find_flow(self, current: bool, in_port: int, dl_src: int, dl_dst: int, nw_src: int, nw_dst: int,
                  proto: int, sport: int, dport: int) -> tuple[int, int, int, int]:
        """The entry of a flow key (``key_from_cache_key``'s fields) among the current entries (when
        ``current``), then the stale ones: (1, entry id, cid1, meta) for a current entry, (2, ...)
        for a stale one, (0, -1, 0, 0) for none.  One kernel call (``_find_flow``)."""
        stale = self.nstale != 0
        args = (self.ent, self.index, self.sindex if stale else self.index, stale, current, self.mask, self.cid1,
                self.meta, in_port, dl_src, dl_dst, nw_src, nw_dst, proto, sport, dport)
        fn = self.find_fn
        if self.find_of is not _find_flow:  # compiled for ints (int64) and bools, whatever these are
            fn = self.find_fn = direct(_find_flow, *args[:3], False, False, *args[5:8], 0, 0, 0, 0, 0, 0, 0, 0)
            self.find_of = _find_flow
        try:
            res = fn(*args)
        except OverflowError:  # an int no int64 holds
            res = (3, -1, 0, 0)
        if res[0] != 3:
            if type(res[2]) is not int:  # the plain-Python kernel (no numba): NumPy scalars
                res = (int(res[0]), int(res[1]), int(res[2]), int(res[3]))
            return res
        # A value out of the key words' range: as before the kernel (pack_key raises, or no entry).
        r = self._row
        r[:4] = pack_key((in_port, dl_src, dl_dst, nw_src, nw_dst, proto, sport, dport))
        e = self.find_row(r) if current else -1
        if e >= 0:
            return 1, e, int(self.cid1[e]), int(self.meta[e])
        if stale:
            e = self.find_row(r, True)
            if e >= 0:
                return 2, e, int(self.cid1[e]), int(self.meta[e])
        return 0, -1, 0, 0

    def drop(self, e: int) -> None:
        """Frees entry ``e`` (current or stale)."""
        if not _index_del(self.ent, self.index, self.mask, e):
            _index_del(self.ent, self.sindex, self.mask, e)
            self.nstale -= 1
        self.ent[e] = 0
        self.cid1[e] = 0
        self._free[self._nfree] = e
        self._nfree += 1

    def live_current(self) -> int:
        """How many entries the kernel sees (not stale)."""
        return self.capacity - self._nfree - self.nstale

    def cache_key(self, name: str, w: list[int]) -> tuple:
        """``Datapath._cache_key`` of a row (``w``: the row as Python ints)."""
        in_port, dl_src, dl_dst, nw_src, nw_dst, proto, sport, dport = row_key(w)
        return (name, in_port, dl_src, dl_dst, ETH_TYPE_IP, 0, nw_src, nw_dst, 0, 0, proto, sport, dport)


class BatchFastPath:
    """Batched front of ``Datapath``: one MirrorTable per bridge holds the mirrorable cached decisions.

    A decision ``mirror_args`` accepts lives only here (row + per-entry arrays, no ``FastEntry``,
    no dict entry), unless the table is full; the datapath's dict keeps the others.  ``conns``
    maps connection ids to their entries (``Datapath.forget_conn``).  Hits of the kernel are
    counted in the rows and credited to the connections, rules and ports by ``sync``.
    """

    def __init__(self, dp, capacity: int = 1 << 16) -> None:
        from . import datapath as _dpmod

        _dpmod._row_new = row_new  # for Datapath._fast_table
        self.dp = dp
        self.capacity = capacity
        self.tables: dict[str, MirrorTable] = {}
        self.by_no: list[MirrorTable | None] = []
        self.names: list[str] = []
        self.conns = ConnMap()
        self._fvals = np.empty(8, dtype=np.int64)  # forget's entries of a connection
        self._fout = np.empty((1, 8), dtype=np.uint64)  # the counters _credit_one credits (_take's row)
        self._sel = np.empty(0, dtype=np.int64)  # _sync_take's entry ids and counters
        self._sout = np.empty((0, 8), dtype=np.uint64)
        self.live = 0  # entries over all tables
        # Entry ids hit since their counters were last credited, per bridge.  Crediting is
        # deferred to sync() (each timer tick, before views and saves): per-hit crediting
        # would cost a Python call per packet.
        self.dirty: dict[str, list[np.ndarray]] = {}

    def __len__(self) -> int:
        return self.live

    def sync(self, name: str | None = None) -> None:
        """Credits every deferred hit (of bridge ``name``, or all) to the reference objects."""
        for brname in list(self.dirty) if name is None else [name]:
            chunks = self.dirty.pop(brname, None)
            t = self.tables.get(brname)
            if not chunks or t is None:
                continue
            self._credit_many(t, chunks[0] if len(chunks) == 1 else np.concatenate(chunks),
                              self.dp.switch.bridges.get(brname))

    def _table(self, name: str, generation: int) -> MirrorTable:
        t = self.tables.get(name)
        if t is None:
            t = self.tables[name] = MirrorTable(self.capacity, len(self.by_no))
            self.by_no.append(t)
            self.names.append(name)
            t.generation = generation
            br = self.dp.switch.bridges.get(name)
            if br is not None:  # hits refresh MAC learning when credited: before a MAC expires on lookup
                br.mac_sync = lambda: self.sync(name)
        elif t.generation != generation:
            self.sync(name)
            t.roll(generation)
        return t

    def add(self, ck: tuple, entry) -> int:
        """Stores the decision ``entry`` cached under ``ck``; returns its entry id, -1 (table full)
        or -2 (not mirrorable).  An entry of the same key goes first (credited), in every case:
        on -1/-2 the caller keeps ``entry`` in its dict."""
        args = mirror_args(ck, entry)
        if args is None:
            self.discard(ck)
            return -2
        key, port, new = args
        learns = _row_learns(key, entry.learns)
        if learns is None:
            self.discard(ck)
            return -2
        return self._put(ck, entry.generation, pack_row(key, port, **new), entry.cid, entry.reply, entry.rules,
                         entry.extra, entry.packets, entry.bytes, entry.used, entry.created, learns)

    def add_output(self, ck: tuple, generation: int, cid: int, reply: bool, port: int, key: list[int],
                   okey: list[int], rules: list, extra, now: int, learns: tuple = ()) -> int:
        """``add`` of a new decision with one output (``port``, header values ``okey`` for a packet
        of flow key ``key``), without a ``FastEntry`` first: the slow path caches every offloaded
        direction this way.  Same results and same mirroring rule as ``add``."""
        k = key_from_cache_key(ck)
        learn = None if k is None else _row_learns(k, learns)
        if (learn is None or not 0 <= port <= 0xFFFF or (extra is not None and _any_set(extra))
                or _unmirrored_of(okey) != _unmirrored_of(key)):
            self.discard(ck)
            return -2
        t = self._target(ck, generation)
        if t is None:
            return -2
        nds, ndd, nns, nnd, nps, npd = okey[DL_SRC], okey[DL_DST], okey[NW_SRC], okey[NW_DST], okey[TP_SRC], okey[TP_DST]
        conns = self.conns
        nfree = t._nfree
        if _FUSED and nfree and 2 * (conns.n + 1) <= len(conns.keys):
            # The common case in one kernel call: a free entry, no entry of the key (current or
            # stale), no growth of the connection map; the general path below otherwise.
            stale = t.nstale != 0
            args = (t.ent, t.index, t.sindex if stale else t.index, stale, t.mask, nfree, t.side, conns.kv,
                    conns.mask, t.no, k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], port, nds, ndd, nns, nnd, nps,
                    npd, cid, now)
            fn = t.put_fn
            if t.put_of is not _mt_put:  # compiled for ints (int64) and a bool, whatever these are
                fn = t.put_fn = direct(_mt_put, *args[:3], False, args[4], 0, *args[6:9], *(0,) * 18)
                t.put_of = _mt_put
            try:
                e = int(fn(*args))
            except OverflowError:  # an int no int64 holds: the dispatcher, as before the entry point
                e = int(_mt_put(*args))
            if e >= 0:
                t.meta[e] = (t.shape(generation, rules, extra, learn) << 1) | bool(reply)
                t._nfree = nfree - 1
                t.nins += 1
                conns.n += 1
                self.live += 1
                return e
        return self._put_row(t, pack_row(k, port, nds, ndd, nns, nnd, nps, npd), generation, cid, reply, rules,
                             extra, 0, 0, None, now, learn)

    def _target(self, ck: tuple, generation: int) -> MirrorTable | None:
        """The table a decision of bridge generation ``generation`` goes to; None (the decision
        under ``ck`` discarded) when the table is of a newer generation."""
        t = self.tables.get(ck[0])
        if t is not None:
            if t.generation == generation:
                return t  # (what _table returns: the table, of this generation)
            if generation < t.generation:
                self.discard(ck)
                return None  # an older generation's decision (enable_batch): the dict keeps it
        return self._table(ck[0], generation)

    def _put(self, ck: tuple, generation: int, row: list[int], cid: int, reply: bool, rules, extra,
             packets: int, nbytes: int, used: int | None, created: int, learns: bool = False) -> int:
        t = self._target(ck, generation)
        if t is None:
            return -2
        return self._put_row(t, row, generation, cid, reply, rules, extra, packets, nbytes, used, created, learns)

    def _put_row(self, t: MirrorTable, row: list[int], generation: int, cid: int, reply: bool, rules, extra,
                 packets: int, nbytes: int, used: int | None, created: int, learns: bool) -> int:
        r = t._row
        r[:] = row
        if t.live_current():
            o = t.find_row(r)
            if o >= 0:
                self.remove(t, o)
                r[:] = row
        if t.nstale:
            o = t.find_row(r, True)
            if o >= 0:
                self.remove(t, o)
                r[:] = row
        e = t.insert_row(r, True)
        if e < 0:
            return -1
        t.cid1[e] = cid + 1
        t.meta[e] = (t.shape(generation, rules, extra, learns) << 1) | bool(reply)
        t.fpk[e] = packets
        t.fby[e] = nbytes
        t.fused1[e] = 0 if used is None else used + 1
        t.fcreated[e] = created
        self.conns.add(cid, (t.no << 32) | e)
        self.live += 1
        return e

    def lookup(self, ck: tuple) -> tuple[MirrorTable | None, int, bool]:
        """(table, entry id, stale) of the decision cached under ``ck``; entry id -1 when none."""
        t = self.tables.get(ck[0])
        key = key_from_cache_key(ck)
        if t is None or key is None or len(t) == 0:
            return t, -1, False
        r = t._row
        r[:4] = pack_key(key)
        if t.live_current():
            e = t.find_row(r)
            if e >= 0:
                return t, e, False
        if t.nstale:
            e = t.find_row(r, True)
            if e >= 0:
                return t, e, True
        return t, -1, False

    def discard(self, ck: tuple) -> None:
        """Drops the decision cached under ``ck`` (any bridge: ``ck[0]`` is the bridge name), credited."""
        t, e, _stale = self.lookup(ck)
        if e >= 0:
            self.remove(t, e)

    def remove(self, t: MirrorTable, e: int, cid1: int | None = None) -> None:
        """Drops entry ``e`` of ``t``, its deferred hits credited first; nothing when it is free
        (or, with ``cid1``, holds another connection's decision now)."""
        c = int(t.cid1[e])
        if c == 0 or (cid1 is not None and c != cid1):
            return
        self._credit_one(t, e)
        cid = c - 1
        self.conns.remove(cid, (t.no << 32) | e)
        t.drop(e)
        self.live -= 1

    def forget(self, cid: int) -> None:
        """Drops every decision of connection ``cid``."""
        by_no = self.by_no
        if _FUSED and by_no:
            # One kernel call, plus one after each entry with hits to credit but the last (credited in
            # between, as the general path below does: its crediting may credit the bridge's other hits).
            # The kernel hands the taken counters back; the bridge and the connection, the same for
            # every entry (a crediting neither adds nor deletes bridges or connections), are looked
            # up at the first credit.
            conns = self.conns
            t = by_no[0]
            i = -1
            n = 0
            bridge = conn = off = stats = None
            looked = False
            while True:
                stale = t.sindex is not None
                args = (t.ent, t.index, t.sindex if stale else t.index, t.mask, t.side, t._nfree, t.meta, conns.kv,
                        conns.mask, cid, t.no, self._fvals, n, i)
                fn = t.forget_fn
                if t.forget_of is not _mt_forget:
                    fn = t.forget_fn = direct(_mt_forget, *args)
                    t.forget_of = _mt_forget
                s, n, d, ns, pk, by, used, cid1, meta, src, in_port, out_port = fn(*args)
                if s == -2:
                    break  # (a first call: nothing done)
                if s <= -3:
                    t = by_no[-3 - s]
                    continue
                if d:
                    t._nfree += d
                    t.nstale -= ns
                    conns.n -= d
                    self.live -= d
                if s < 0:
                    return
                if type(pk) is not int:  # the plain-Python kernel (no numba): NumPy scalars
                    pk, by, used, cid1, meta, src, in_port, out_port = (
                        int(pk), int(by), int(used), int(cid1), int(meta), int(src), int(in_port), int(out_port))
                if not looked:
                    looked = True
                    sw = self.dp.switch
                    bridge = sw.bridges.get(self.names[t.no])
                    conn = sw.tracker.get(cid1 - 1)
                    off = sw.offload
                    stats = self.dp.stats
                self._credit_conn(t, bridge, conn, off, stats, pk, by, used, meta, src, in_port, out_port)
                if s + 1 >= n:
                    return  # (that entry, dropped, was the last)
                i = s
        for v in self.conns.get(cid):
            t = self.by_no[v >> 32]
            e = v & 0xFFFFFFFF
            self._credit_one(t, e)
            self.conns.remove(cid, v)
            t.drop(e)
            self.live -= 1

    def clear(self) -> None:
        """Drops every decision (``Datapath.flush_cache``: sync first)."""
        for t in self.tables.values():
            t.clear()
        self.conns.clear()
        self.live = 0
        self.dirty.clear()

    def items(self):
        """(cache key, FastEntry snapshot) of every decision held here (current and stale)."""
        from .datapath import FastEntry

        tracker = self.dp.switch.tracker
        for name, t in list(self.tables.items()):
            eids = np.flatnonzero(t.cid1)
            if not len(eids):
                continue
            rows = t.ent[eids].tolist()
            cols = zip(rows, t.cid1[eids].tolist(), t.meta[eids].tolist(), t.fpk[eids].tolist(),
                       t.fby[eids].tolist(), t.fused1[eids].tolist(), t.fcreated[eids].tolist())
            for w, cid1, meta, pk, by, used1, created in cols:
                ck = t.cache_key(name, w)
                gen, rules, extra, learns = t.shapes[meta >> 1]
                fe = FastEntry.__new__(FastEntry)
                fe.generation, fe.cid, fe.tracker, fe.reply = gen, cid1 - 1, tracker, bool(meta & 1)
                fe.outputs = [self.outputs(w, ck)]
                fe.rules, fe.extra = list(rules), extra
                fe.learns = ((0, ck[2], ck[1]),) if learns else ()
                fe.packets, fe.bytes, fe.used, fe.created = pk, by, (used1 - 1 if used1 else None), created
                yield ck, fe

    @staticmethod
    def outputs(w: list[int], ck: tuple) -> tuple[int, list]:
        """(ofport, [(field, new value)]) of a row, as ``Datapath._maybe_cache`` builds them
        (field order of ``datapath._REWRITABLE``; ``ck``: the row's cache key)."""
        port, dl_src, dl_dst, nw_src, nw_dst, tp_src, tp_dst = row_new(w)
        deltas = [(i, v) for i, v, old in ((1, dl_src, ck[2]), (2, dl_dst, ck[3]), (5, nw_src, ck[6]),
                                           (6, nw_dst, ck[7]), (15, tp_src, ck[11]), (16, tp_dst, ck[12]))
                  if v != old]
        return port, deltas

    # ------------------------------------------------------------ crediting
    def _credit_one(self, t: MirrorTable, e: int) -> None:
        """``_credit_many`` of one entry (scalar: entries leaving the table, per-frame hits)."""
        if t.ent[e, W_PKTS] == 0:
            return
        _take(t.ent, e, t.cid1, t.meta, t.fpk, t.fby, t.fused1, self._fout, 0)
        self._credit_taken(t)

    def _credit_taken(self, t: MirrorTable) -> None:
        """Credits the counters ``_take`` put in row 0 of ``_fout`` (an entry of ``t``)."""
        pk, by, used, cid1, meta, src, in_port, out_port = self._fout[0].tolist()
        self._credit_entry(t, self.dp.switch.bridges.get(self.names[t.no]), pk, by, used, cid1, meta, src, in_port,
                           out_port)

    def _credit_many(self, t: MirrorTable, eids: np.ndarray, bridge) -> None:
        """Credits the row counters of the live entries among ``eids`` (hit entry ids, -1 for
        misses, in any order, repeated), once each and in ascending entry id order, to the
        decisions, connections, rules and ports, and resets them.  One kernel call takes them all
        (``_sync_take``) before the first is credited."""
        m = min(len(eids), t.capacity)
        if not m:
            return
        sel, out = self._sel, self._sout
        if len(sel) < m:
            sel = self._sel = np.empty(max(m, 2 * len(sel)), dtype=np.int64)
            out = self._sout = np.empty((len(sel), 8), dtype=np.uint64)
        if eids.dtype != np.int64 or not eids.flags.c_contiguous:
            eids = np.ascontiguousarray(eids, dtype=np.int64)
        n = _sync_take(eids, t.mark, t.ent, t.cid1, t.meta, t.fpk, t.fby, t.fused1, sel, out)
        if not n:
            return
        credit = self._credit_entry
        for pk, by, used, cid1, meta, src, in_port, out_port in out[:n].tolist():
            credit(t, bridge, pk, by, used, cid1, meta, src, in_port, out_port)

    def _credit_entry(self, t, bridge, pk, by, used, cid1, meta, src, in_port, out_port) -> None:
        """Credits ``pk`` kernel hits (``by`` bytes, last at ``used``) of one entry (connection id + 1
        ``cid1``, ``meta``, its key's source MAC ``src`` and ``in_port``, its output port ``out_port``)
        of ``bridge`` (None: deleted meanwhile)."""
        dp = self.dp
        sw = dp.switch
        self._credit_conn(t, bridge, sw.tracker.get(cid1 - 1), sw.offload, dp.stats, pk, by, used, meta, src,
                          in_port, out_port)

    def _credit_conn(self, t, bridge, conn, off, stats, pk, by, used, meta, src, in_port, out_port) -> None:
        """``_credit_entry`` of an entry of connection ``conn`` (None: deleted meanwhile; the
        datapath, rule and port counters still count), with the switch's offload manager ``off``
        and the datapath's ``stats``."""
        reply = bool(meta & 1)
        hw = conn is not None and bool(conn.status & 0x8000)  # IPS_HW_OFFLOAD
        stats["rx_packets"] += pk
        stats["fast_hw" if hw else "fast_sw"] += pk
        stats["tx_packets"] += pk
        if conn is not None:
            # pk packets of by bytes: the connection's and its offload record's counters, the last
            # packet as the manager's own hit (it sets last_used and retries the hardware insert
            # exactly as per-packet hits would).
            off.hits(conn, used, pk, by, reply, hw)
        shape = t.shapes[meta >> 1]
        # Its rules, the MAC NORMAL learned (refreshed as of the last hit), its ports.
        credit_hits(bridge, shape[1], pk, by, used, bool(shape[3]), src, in_port, out_port)

    def credit(self, bridge, eids: np.ndarray) -> None:
        """Credits the counters of the entries hit in ``eids`` to the reference objects."""
        t = self.tables.get(bridge.name)
        if t is None or len(eids) == 0:
            return
        self._credit_many(t, eids, bridge)

    def receive_batch(self, bridge, buf: np.ndarray, offsets: np.ndarray, lengths: np.ndarray,
                      in_ports: np.ndarray, now: int, sent: list | None = None) -> tuple[np.ndarray, dict[int, list]]:
        """Handles a batch as ``dp.receive`` would one frame at a time, in order.

        Fast hits are rewritten in place in ``buf``; ``out_ports[i]`` is their
        port (-1 for slow-path frames).  Returns (out_ports, {i: dp.receive output}
        for the frames that took the slow path).  Call ``dp.tick(now)`` first;
        a batch must not span a timer tick.

        ``sent``, a list, is for a caller that only counts outputs (the replay without output
        files or trace): the slow-path frames' outputs are then not kept (the dict stays
        empty), their output port numbers are appended to ``sent`` in order.  Each output
        list dies as soon as its frame is done, so the slow path's next frame reuses its
        memory, instead of a batch's worth of them piling up (tracked by the cyclic GC too).
        """
        name = bridge.name
        t = self._table(name, bridge.generation)
        n = len(offsets)
        out_ports = np.empty(n, dtype=np.int32)
        eids = np.empty(n, dtype=np.int64)
        slow_out: dict[int, list] = {}
        per_frame = isinstance(now, np.ndarray)
        nows = now if per_frame else np.full(1, now, dtype=np.int64)
        stride = 1 if per_frame else 0
        receive = self.dp.receive
        dirty = self.dirty
        mv = None
        i = 0
        while i < n:
            # The kernel directly (process_range's checks are per call, and there is a call per miss run).
            if HAVE_NUMBA:
                done, _h, sure = _classify(buf, buf, offsets, lengths, in_ports, nows, stride, i, n, t.ent, t.index,
                                           t.mask, out_ports, eids, False, True)
            else:
                with np.errstate(over="ignore"):
                    done, _h, sure = _classify(buf, buf, offsets, lengths, in_ports, nows, stride, i, n, t.ent,
                                               t.index, t.mask, out_ports, eids, False, True)
            j = i + done
            if j > i:
                # A view: the kernel writes each position of eids once per batch.  Appended now, not
                # at the end: a generation change in the slow path below syncs (credits) the bridge.
                dirty.setdefault(name, []).append(eids[i:j])
            if j >= n:
                break
            # The miss at j and the misses right behind it, in order, through the per-frame path.  A
            # frame the kernel parsed and did not find (eids -1) is still no entry's while nothing was
            # inserted since (the slow path of an earlier one may insert it): receive skips its lookup.
            # The run's columns as Python ints, one conversion each per run (not NumPy scalars per
            # frame); the frames' bytes through one memoryview of the buffer.
            nins = t.nins
            stop = j + 1 + sure
            if mv is None:
                mv = memoryview(buf)
            offs_l = offsets[j:stop].tolist()
            lens_l = lengths[j:stop].tolist()
            ports_l = in_ports[j:stop].tolist()
            eids_l = eids[j:stop].tolist()
            nows_l = now[j:stop].tolist() if per_frame else None
            for x in range(stop - j):
                o = offs_l[x]
                outs = receive(bridge, ports_l[x], mv[o:o + lens_l[x]].tobytes(), nows_l[x] if per_frame else now,
                               eids_l[x] == -1 and t.nins == nins)
                if sent is None:
                    slow_out[j + x] = outs
                else:
                    for out in outs:
                        sent.append(out[0])
            t = self._table(name, bridge.generation)  # the slow path may have changed the bridge's generation
            i = stop
        return out_ports, slow_out
