"""The batched fast path's Numba kernels and their row layout (``datapath/fastpath.py`` has the
tables that call them and explains both).

A module of its own so that the Python side of the batch table (``fastpath.py``: the tables,
the connection map, the batch receive loop) can be compiled by Cython with the rest of the
per-packet code (``ctswitch._native``): Numba compiles from Python bytecode, which a
Cython-compiled function does not have.  Without numba, or with ``NUMBA_DISABLE_JIT=1``, the
kernels run as plain Python (slow, identical results).
"""

from __future__ import annotations

import numpy as np

try:  # numba is the optional "fast" extra
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - the fallback test runs with NUMBA_DISABLE_JIT=1
    numba = None
    HAVE_NUMBA = False

# Entry row layout (see module docstring).
W_K0, W_K1, W_K2, W_K3, W_MAC0, W_MAC1, W_NET0, W_NET1, W_PKTS, W_BYTES, W_USED = range(11)
ROW_WORDS = 11
F_MAC = 1  # rewrite bytes 0..11 (Ethernet dst, src)
F_NET = 2  # rewrite bytes 26..37 (IPv4 src, dst, ports) and both checksums
# Rows of a MirrorTable's side array (``MirrorTable.side``): the per-entry cid1, fpk, fby, fused1,
# fcreated and the free stack, one argument for the per-connection kernels.
S_CID1, S_FPK, S_FBY, S_FUSED1, S_FCREATED, S_FREE = range(6)
S_ROWS = 6
EMPTY = -1
ETH_TYPE_IP = 0x0800
PROTO_TCP = 6
PROTO_UDP = 17

_M64 = (1 << 64) - 1
_L32 = 0xFFFFFFFF
_C1 = np.uint64(0x9E3779B97F4A7C15)
_C2 = np.uint64(0xC2B2AE3D27D4EB4F)
_C3 = np.uint64(0x165667B19E3779F9)
_C4 = np.uint64(0xFF51AFD7ED558CCD)
_U8 = np.uint64(8)
_U16 = np.uint64(16)
_U24 = np.uint64(24)
_U29 = np.uint64(29)
_U31 = np.uint64(31)
_U32 = np.uint64(32)
_U33 = np.uint64(33)
_U40 = np.uint64(40)
_U48 = np.uint64(48)
_U56 = np.uint64(56)
_FF = np.uint64(0xFF)
_FFFF = np.uint64(0xFFFF)
_LO32 = np.uint64(0xFFFFFFFF)


# ---------------------------------------------------------------- kernels
_I1 = np.uint64(1)
_I2 = np.uint64(2)
_I3 = np.uint64(3)


# The byte loads and stores index with an unsigned offset: no negative-index wraparound per byte
# (an offset is never negative), so the four byte accesses compile to plain ones.
def _ld32(b, o):
    u = np.uint64(o)
    return (np.uint64(b[u]) | (np.uint64(b[u + _I1]) << _U8) | (np.uint64(b[u + _I2]) << _U16)
            | (np.uint64(b[u + _I3]) << _U24))


def _ld64(b, o):
    return _ld32(b, o) | (_ld32(b, o + 4) << _U32)


def _st32(b, o, v):
    u = np.uint64(o)
    b[u] = np.uint8(v & _FF)
    b[u + _I1] = np.uint8((v >> _U8) & _FF)
    b[u + _I2] = np.uint8((v >> _U16) & _FF)
    b[u + _I3] = np.uint8((v >> _U24) & _FF)


def _st64(b, o, v):
    _st32(b, o, v & _LO32)
    _st32(b, o + 4, v >> _U32)


def _hash(k0, k1, k2, k3):
    h = k0 * _C1
    h = (h ^ (h >> _U29) ^ k1) * _C2
    h = (h ^ (h >> _U31) ^ k2) * _C3
    h = (h ^ (h >> _U29) ^ k3) * _C4
    return h ^ (h >> _U32)


def _probe(ent, index, mask, k0, k1, k2, k3):
    """Linear probe for a key: (its slot, its entry id), or (the empty slot that ends the
    probe, -1)."""
    h = _hash(k0, k1, k2, k3)
    tag = np.int64(h >> _U33)
    s = np.int64(h & np.uint64(mask))
    while True:
        v = index[s]
        if v == EMPTY:
            return s, -1
        if (v >> 32) == tag:
            e = v & 0xFFFFFFFF
            if ent[e, 0] == k0 and ent[e, 1] == k1 and ent[e, 2] == k2 and ent[e, 3] == k3:
                return s, e
        s = (s + 1) & mask


def _find(ent, index, mask, k0, k1, k2, k3):
    """Entry id of the key, or -1."""
    return _probe(ent, index, mask, k0, k1, k2, k3)[1]


def _index_put(ent, index, mask, e):
    """Adds entry ``e`` (its key is in ``ent``) to the index; -2 when the key is already there."""
    k0, k1, k2, k3 = ent[e, 0], ent[e, 1], ent[e, 2], ent[e, 3]
    s, o = _probe(ent, index, mask, k0, k1, k2, k3)
    if o >= 0:
        return -2
    index[s] = (np.int64(_hash(k0, k1, k2, k3) >> _U33) << 32) | e
    return s


def _index_del(ent, index, mask, e):
    """Removes entry ``e`` from the index (backward-shift deletion); False when absent."""
    k0, k1, k2, k3 = ent[e, 0], ent[e, 1], ent[e, 2], ent[e, 3]
    h = _hash(k0, k1, k2, k3)
    s = np.int64(h & np.uint64(mask))
    while True:
        v = index[s]
        if v == EMPTY:
            return False
        if (v & 0xFFFFFFFF) == e:
            break
        s = (s + 1) & mask
    # Shift back every following slot whose home position lets it move into the hole.
    hole = s
    j = s
    while True:
        j = (j + 1) & mask
        v = index[j]
        if v == EMPTY:
            break
        o = v & 0xFFFFFFFF
        home = np.int64(_hash(ent[o, 0], ent[o, 1], ent[o, 2], ent[o, 3]) & np.uint64(mask))
        # Move when home is not cyclically inside (hole, j].
        if ((j - home) & mask) >= ((j - hole) & mask):
            index[hole] = v
            hole = j
    index[hole] = EMPTY
    return True


def _csum_update(hc, c):
    x = (~hc & _FFFF) + c
    x = (x & _FFFF) + (x >> _U16)
    x = (x & _FFFF) + (x >> _U16)
    return ~x & _FFFF


def _parse(buf, o, n):
    """The IP protocol of a frame the fast path may take (TCP 6 / UDP 17), else -1."""
    if n < 42:
        return -1
    if buf[o + 12] != 0x08 or buf[o + 13] != 0x00 or buf[o + 14] != 0x45:
        return -1
    if (buf[o + 20] & 0x3F) != 0 or buf[o + 21] != 0 or buf[o + 22] <= 1:
        return -1
    proto = np.int64(buf[o + 23])
    tl = (np.int64(buf[o + 16]) << 8) | np.int64(buf[o + 17])
    if tl + 14 > n:
        return -1
    if proto == PROTO_TCP:
        if n < 54 or (buf[o + 47] & 0x05) != 0:  # FIN or RST: the HW rule's tcp_flags mask
            return -1
        doff = np.int64(buf[o + 46] >> 4)
        if doff < 5 or 20 + doff * 4 > tl:
            return -1
        return proto
    if proto == PROTO_UDP and tl >= 28:
        return proto
    return -1


def _apply(buf, out, o, n, proto, now, ent, e, copy):
    """Rewrites one hit frame into ``out`` and counts it on entry ``e``."""
    if copy:
        for j in range(n):
            out[o + j] = buf[o + j]
    w5 = ent[e, W_MAC1]
    flags = w5 >> _U48
    if flags & np.uint64(F_MAC):
        _st64(out, o, ent[e, W_MAC0])
        _st32(out, o + 8, w5 & _LO32)
    if flags & np.uint64(F_NET):
        w7 = ent[e, W_NET1]
        _st64(out, o + 26, ent[e, W_NET0])
        _st32(out, o + 34, w7 & _LO32)
        hc = (np.uint64(out[o + 24]) << _U8) | np.uint64(out[o + 25])
        hc = _csum_update(hc, (w7 >> _U32) & _FFFF)
        out[o + 24] = np.uint8(hc >> _U8)
        out[o + 25] = np.uint8(hc & _FF)
        p = o + (50 if proto == PROTO_TCP else 40)
        lc = (np.uint64(out[p]) << _U8) | np.uint64(out[p + 1])
        if proto == PROTO_TCP or lc != np.uint64(0):
            lc = _csum_update(lc, w7 >> _U48)
            if proto == PROTO_UDP and lc == np.uint64(0):
                lc = _FFFF
            out[p] = np.uint8(lc >> _U8)
            out[p + 1] = np.uint8(lc & _FF)
    ent[e, W_PKTS] += np.uint64(1)
    ent[e, W_BYTES] += np.uint64(n)
    ent[e, W_USED] = np.uint64(now)


CHUNK = 24


def _prefetch(a, i, j):
    """Hint: ``a[i, j]`` (2-D) or ``a[i]`` (1-D, ``j`` unused) will be read soon (a no-op without numba)."""


def _classify(buf, out, offsets, lengths, in_ports, nows, now_stride, start, stop, ent, index, mask,
              out_ports, eids, copy, stop_on_miss):
    """Runs frames ``start..stop-1``; returns (frames done, hits, misses right after the stop).

    The third value, after a stop at miss ``i``, counts the frames ``i+1..``
    right behind it that miss the table as it is now, up to the next hit: the
    caller hands them to the slow path one by one without calling the kernel
    again (the slow path of one may insert the entry of a later one, so a
    frame's ``eids`` of -1 means "not in the table at the scan", -2 "never in
    any table": FIN/RST, not IPv4..., what ``_parse`` rejects).  The miss at
    ``i`` is marked the same way; ``out_ports`` of all of them is -1.

    Frames go in chunks of CHUNK, in passes (VPP style): parse + hash + prefetch
    of the first index slot; load of the slot + prefetch of the candidate row;
    then, in order, probe resolution, rewrite and count.  Prefetches do not wait
    for their data, so the cache misses of a whole chunk are in flight at once.
    Only the last pass changes anything, so stopping there at the first miss
    leaves later frames untouched.
    """
    keys = np.empty((CHUNK, 4), dtype=np.uint64)
    hs = np.empty(CHUNK, dtype=np.uint64)
    cand = np.empty(CHUNK, dtype=np.int64)
    slots = np.empty(CHUNK, dtype=np.int64)
    protos = np.empty(CHUNK, dtype=np.int64)
    hits = 0
    base = start
    while base < stop:
        m = min(CHUNK, stop - base)
        for j in range(m):
            i = base + j
            o = offsets[i]
            p = _parse(buf, o, lengths[i])
            protos[j] = p
            if p < 0:
                continue
            k0 = _ld64(buf, o)
            k1 = _ld32(buf, o + 8) | (np.uint64(in_ports[i]) << _U32)
            k2 = _ld64(buf, o + 26)
            k3 = _ld32(buf, o + 34) | (np.uint64(p) << _U32)
            keys[j, 0] = k0
            keys[j, 1] = k1
            keys[j, 2] = k2
            keys[j, 3] = k3
            h = _hash(k0, k1, k2, k3)
            hs[j] = h
            _prefetch(index, np.int64(h & np.uint64(mask)), 0)
        for j in range(m):
            if protos[j] < 0:
                cand[j] = EMPTY
                continue
            # Walk the probe sequence on the tags alone (the index line is there now) and
            # prefetch the row of the first tag match: usually the entry itself.
            h = hs[j]
            tag = np.int64(h >> _U33)
            s = np.int64(h & np.uint64(mask))
            v = index[s]
            while v != EMPTY and (v >> 32) != tag:
                s = (s + 1) & mask
                v = index[s]
            cand[j] = v
            slots[j] = s
            if v != EMPTY:
                # An 88-byte row starts at a multiple of 8 within its line and covers 2 lines,
                # or 3 when it starts at byte 48 or 56: words 0, 5 and 10 are in each of them.
                e = v & 0xFFFFFFFF
                _prefetch(ent, e, 0)
                _prefetch(ent, e, 5)
                _prefetch(ent, e, ROW_WORDS - 1)
        for j in range(m):
            i = base + j
            v = cand[j]
            e = EMPTY
            if v != EMPTY:
                tag = np.int64(hs[j] >> _U33)
                s = slots[j]
                k0 = keys[j, 0]
                k1 = keys[j, 1]
                k2 = keys[j, 2]
                k3 = keys[j, 3]
                while v != EMPTY:
                    if (v >> 32) == tag:
                        c = v & 0xFFFFFFFF
                        if ent[c, 0] == k0 and ent[c, 1] == k1 and ent[c, 2] == k2 and ent[c, 3] == k3:
                            e = c
                            break
                    s = (s + 1) & mask
                    v = index[s]
            eids[i] = e
            if e < 0:
                out_ports[i] = -1
                if stop_on_miss:
                    if protos[j] < 0:
                        eids[i] = -2
                    k = i + 1
                    while k < stop:
                        o = offsets[k]
                        p = _parse(buf, o, lengths[k])
                        if p < 0:
                            eids[k] = -2
                        elif _find(ent, index, mask, _ld64(buf, o), _ld32(buf, o + 8) | (np.uint64(in_ports[k]) << _U32),
                                   _ld64(buf, o + 26), _ld32(buf, o + 34) | (np.uint64(p) << _U32)) >= 0:
                            break
                        else:
                            eids[k] = -1
                        out_ports[k] = -1
                        k += 1
                    return i - start, hits, k - i - 1
                continue
            _apply(buf, out, offsets[i], lengths[i], protos[j], nows[i * now_stride], ent, e, copy)
            out_ports[i] = np.int32((ent[e, W_MAC1] >> _U32) & _FFFF)
            hits += 1
        base += m
    return stop - start, hits, 0


def _insert_one(ent, index, mask, row, e):
    """Stores ``row`` (``pack_row``) as entry ``e``; returns ``e``, -1 when ``e < 0`` (full), or the id
    of the entry already holding the key (its key/action words are replaced, its counters kept)."""
    f = _find(ent, index, mask, row[0], row[1], row[2], row[3])
    if f >= 0:
        for w in range(W_PKTS):
            ent[f, w] = row[w]
        return f
    if e < 0:
        return -1
    for w in range(ROW_WORDS):
        ent[e, w] = row[w]
    _index_put(ent, index, mask, e)
    return e


def _find_row(ent, index, mask, row):
    return _find(ent, index, mask, row[0], row[1], row[2], row[3])


def _insert_rows(ent, index, mask, rows, eids, res):
    """Bulk insert: copies ``rows[j]`` into ``ent[eids[j]]`` and indexes it; res[j] = slot or -2."""
    for j in range(rows.shape[0]):
        e = eids[j]
        for w in range(ROW_WORDS):
            ent[e, w] = rows[j, w]
        res[j] = _index_put(ent, index, mask, e)


def _move_index(ent, src, dst, mask):
    """Moves every entry of index ``src`` into index ``dst`` (``src`` ends empty)."""
    for s in range(src.shape[0]):
        v = src[s]
        if v != EMPTY:
            _index_put(ent, dst, mask, v & 0xFFFFFFFF)
            src[s] = EMPTY


# Connection map (``ConnMap``): a multimap connection id -> encoded entry (table number << 32 | entry
# id), open addressing with linear probing over two int64 arrays, backward-shift deletion.
def _cm_home(k, mask):
    h = (k ^ (k >> 29)) & 0x7FFFFFFF
    h = h * 0x45D9F3B
    return (h ^ (h >> 23)) & mask


def _cm_put(keys, vals, mask, k, v):
    s = _cm_home(k, mask)
    while keys[s] != EMPTY:
        s = (s + 1) & mask
    keys[s] = k
    vals[s] = v


def _cm_put_many(keys, vals, mask, ks, vs):
    for i in range(ks.shape[0]):
        _cm_put(keys, vals, mask, ks[i], vs[i])


def _cm_del(keys, vals, mask, k, v):
    s = _cm_home(k, mask)
    while True:
        kk = keys[s]
        if kk == EMPTY:
            return False
        if kk == k and vals[s] == v:
            break
        s = (s + 1) & mask
    hole = s
    j = s
    while True:
        j = (j + 1) & mask
        kk = keys[j]
        if kk == EMPTY:
            break
        home = _cm_home(kk, mask)
        if ((j - home) & mask) >= ((j - hole) & mask):
            keys[hole] = kk
            vals[hole] = vals[j]
            hole = j
    keys[hole] = EMPTY
    return True


def _cm_get(keys, vals, mask, k, out):
    """Writes the values of key ``k`` into ``out`` (as many as fit); returns how many there are."""
    s = _cm_home(k, mask)
    n = 0
    while True:
        kk = keys[s]
        if kk == EMPTY:
            return n
        if kk == k:
            if n < out.shape[0]:
                out[n] = vals[s]
            n += 1
        s = (s + 1) & mask



# The batch table's per-connection operations (``BatchFastPath``): one call per direction
# cached and one per connection forgotten, instead of several kernel calls and NumPy scalar
# reads and writes from Python.
def _rev(x, n):
    """The ``n``-byte big-endian integer ``x`` read back little-endian (a byte swap), as uint64."""
    r = np.uint64(0)
    for _ in range(n):
        r = (r << _U8) | np.uint64(x & 0xFF)
        x >>= 8
    return r


def _mt_put(ent, index, sindex, stale, mask, nfree, side, cm, cmmask, no, in_port, dl_src, dl_dst, nw_src, nw_dst, proto, sport, dport, port,
            nds, ndd, nns, nnd, nps, npd, cid, created):
    """``BatchFastPath._put`` of a new decision (``add_output``) in one call, when the table has
    a free entry and the connection map room for one more: packs the row (``pack_row``), takes
    the top of the free stack, indexes the row and fills the side arrays but ``meta`` (the
    caller's: counters 0, never used, created ``created``) and the connection map.  ``side``: the
    table's side arrays (``MirrorTable.side``: cid1, fpk, fby, fused1, fcreated, the free stack),
    ``cm`` the connection map's keys and values (``ConnMap.kv``), as rows: one argument each.
    Returns the entry id; -3 (nothing
    done) when an entry of the key exists, current (``index``) or stale (``sindex``, looked
    at when ``stale``), or -4 when a value is out of the row's range (``pack_row`` raises)."""
    if not (0 <= dl_src < 1 << 48 and 0 <= dl_dst < 1 << 48 and 0 <= nds < 1 << 48 and 0 <= ndd < 1 << 48
            and 0 <= nw_src <= _L32 and 0 <= nw_dst <= _L32 and 0 <= nns <= _L32 and 0 <= nnd <= _L32
            and 0 <= sport <= 0xFFFF and 0 <= dport <= 0xFFFF and 0 <= nps <= 0xFFFF and 0 <= npd <= 0xFFFF):
        return -4
    s = _rev(dl_src, 6)
    k0 = _rev(dl_dst, 6) | ((s & _FFFF) << _U48)
    k1 = (s >> _U16) | (np.uint64(in_port) << _U32)
    k2 = _rev(nw_src, 4) | (_rev(nw_dst, 4) << _U32)
    k3 = _rev(sport, 2) | (_rev(dport, 2) << _U16) | (np.uint64(proto) << _U32)
    if _find(ent, index, mask, k0, k1, k2, k3) >= 0:
        return -3
    if stale and _find(ent, sindex, mask, k0, k1, k2, k3) >= 0:
        return -3
    flags = 0
    if nds != dl_src or ndd != dl_dst:
        flags |= F_MAC
    if nns != nw_src or nnd != nw_dst or nps != sport or npd != dport:
        flags |= F_NET
    # RFC 1624: sum(~m) + sum(m') over the 4 address words, then + the 2 port words (pack_row).
    ipsum = (0x3FFFC - (nw_src >> 16) - (nw_src & 0xFFFF) - (nw_dst >> 16) - (nw_dst & 0xFFFF)
             + (nns >> 16) + (nns & 0xFFFF) + (nnd >> 16) + (nnd & 0xFFFF))
    ipc = ipsum
    while ipc >> 16:
        ipc = (ipc & 0xFFFF) + (ipc >> 16)
    l4c = ipsum + 0x1FFFE - sport - dport + nps + npd
    while l4c >> 16:
        l4c = (l4c & 0xFFFF) + (l4c >> 16)
    s = _rev(nds, 6)
    e = side[S_FREE, nfree - 1]
    ent[e, 0] = k0
    ent[e, 1] = k1
    ent[e, 2] = k2
    ent[e, 3] = k3
    ent[e, 4] = _rev(ndd, 6) | ((s & _FFFF) << _U48)
    ent[e, 5] = (s >> _U16) | (np.uint64(port) << _U32) | (np.uint64(flags) << _U48)
    ent[e, 6] = _rev(nns, 4) | (_rev(nnd, 4) << _U32)
    ent[e, 7] = _rev(nps, 2) | (_rev(npd, 2) << _U16) | (np.uint64(ipc) << _U32) | (np.uint64(l4c) << _U48)
    ent[e, W_PKTS] = 0
    ent[e, W_BYTES] = 0
    ent[e, W_USED] = 0
    _index_put(ent, index, mask, e)
    side[S_CID1, e] = cid + 1
    side[S_FPK, e] = 0
    side[S_FBY, e] = 0
    side[S_FUSED1, e] = 0
    side[S_FCREATED, e] = created
    _cm_put(cm[0], cm[1], cmmask, cid, (no << 32) | e)
    return e


def _mt_forget(ent, index, sindex, mask, side, nfree, meta, cm, cmmask, cid, no, vals, n, i):
    """``BatchFastPath.forget`` of connection ``cid`` when all its entries are in table ``no``, up
    to the next entry with hits to credit.  ``i < 0``: the first call, which reads the entries
    (``n`` of them) into ``vals``, in the connection map's order; else the call after the credit
    of entry ``vals[i]``, which goes on with the next one.  Each entry leaves the connection map
    and the table (index or ``sindex``, row and cid1 zeroed, id pushed on the free stack) as
    ``remove`` would, in order; from an entry with hits (row packets != 0), whose credit comes
    before the later entries leave (its Python side may credit the bridge's pending hits,
    ``mac_sync``: they must still be there), the call first takes its counters as
    ``_credit_one`` does (``_take``'s eight values, returned), drops it and stops (the entry
    itself is no longer counted by that sync either way: its row packets are 0 once taken; so a
    connection whose last entry has hits needs no call after that entry's credit).  A dropped
    entry's ``fpk``/``fby``/``fused1`` are not written: nothing reads them before the entry id
    is used again, and an insert writes them.  ``side`` and ``cm``: as ``_mt_put``'s.

    Returns (the position it stopped at or -1 when done, ``n``, entries dropped, of them stale,
    then the taken entry's packets, bytes, last use, cid1, meta, source MAC, in_port and output
    port as ``_take`` writes them, all 0 when it took none); a first call returns (-2, ...) with
    nothing done when ``vals`` is too short or the entries span tables, (-3 - table, ...) when
    they are all in another table."""
    z = np.uint64(0)
    cmkeys = cm[0]
    cmvals = cm[1]
    if i < 0:
        n = _cm_get(cmkeys, cmvals, cmmask, cid, vals)
        if n > vals.shape[0]:
            return -2, n, 0, 0, z, z, z, z, z, z, z, z
        for j in range(n):
            if (vals[j] >> 32) != (vals[0] >> 32):
                return -2, n, 0, 0, z, z, z, z, z, z, z, z
        if n and (vals[0] >> 32) != no:
            return -3 - (vals[0] >> 32), n, 0, 0, z, z, z, z, z, z, z, z
    d = 0
    ns = 0
    j = i + 1
    while j < n:
        v = vals[j]
        e = v & 0xFFFFFFFF
        pk = ent[e, W_PKTS]
        by = ent[e, W_BYTES]
        used = ent[e, W_USED]
        k0 = ent[e, 0]
        k1 = ent[e, 1]
        m1 = ent[e, W_MAC1]
        c1 = np.uint64(side[S_CID1, e])
        m = np.uint64(meta[e])
        _cm_del(cmkeys, cmvals, cmmask, cid, v)
        if not _index_del(ent, index, mask, e):
            _index_del(ent, sindex, mask, e)
            ns += 1
        for w in range(ROW_WORDS):
            ent[e, w] = 0
        side[S_CID1, e] = 0
        side[S_FREE, nfree] = e
        nfree += 1
        d += 1
        if pk != z:
            return (j, n, d, ns, pk, by, used, c1, m, _rev((k0 >> _U48) | ((k1 & _LO32) << _U16), 6), k1 >> _U32,
                    (m1 >> _U32) & _FFFF)
        j += 1
    return -1, n, d, ns, z, z, z, z, z, z, z, z


def _take(ent, e, cid1, meta, fpk, fby, fused1, out, j):
    """Takes the row counters of entry ``e`` (``BatchFastPath._credit_one``): into ``out[j]``
    packets, bytes, last use, cid1, meta, the key's source MAC, in_port and the output port;
    row packets and bytes reset, ``fpk``/``fby``/``fused1`` updated."""
    pk = ent[e, W_PKTS]
    by = ent[e, W_BYTES]
    used = ent[e, W_USED]
    k1 = ent[e, 1]
    out[j, 0] = pk
    out[j, 1] = by
    out[j, 2] = used
    out[j, 3] = cid1[e]
    out[j, 4] = meta[e]
    out[j, 5] = _rev((ent[e, 0] >> _U48) | ((k1 & _LO32) << _U16), 6)
    out[j, 6] = k1 >> _U32
    out[j, 7] = (ent[e, W_MAC1] >> _U32) & _FFFF
    ent[e, W_PKTS] = 0
    ent[e, W_BYTES] = 0
    fpk[e] += np.int64(pk)
    fby[e] += np.int64(by)
    fused1[e] = np.int64(used) + 1


def _sync_take(eids, mark, ent, cid1, meta, fpk, fby, fused1, sel, out):
    """``BatchFastPath.sync`` of one table in one call: the entries of ``eids`` (hit ids, -1 for
    misses, repeats) that are live (``cid1 != 0``) and have hits to credit, once each, in
    ascending order (``np.unique`` and ``_credit_many``'s filters), their counters taken
    (``_take``, row ``j`` of ``out`` for ``sel[j]``).  ``mark`` (zero per entry id) is zero again
    on return.  Returns how many; ``sel`` and ``out`` must hold ``len(eids)`` (or the table's
    capacity) rows."""
    n = 0
    for i in range(eids.shape[0]):
        e = eids[i]
        if e >= 0 and mark[e] == 0:
            mark[e] = 1
            if cid1[e] != 0 and ent[e, W_PKTS] != np.uint64(0):
                sel[n] = e
                n += 1
    for i in range(eids.shape[0]):
        e = eids[i]
        if e >= 0:
            mark[e] = 0
    if n > 1:
        sel[:n] = np.sort(sel[:n])
    for j in range(n):
        _take(ent, sel[j], cid1, meta, fpk, fby, fused1, out, j)
    return n


def _find_flow(ent, index, sindex, stale, current, mask, cid1, meta, in_port, dl_src, dl_dst, nw_src, nw_dst,
               proto, sport, dport):
    """``Datapath._fast_table``'s lookup of a flow key in one call: packs the key words (as
    ``pack_key``), probes the current entries (``index``, when ``current``), then the stale ones
    (``sindex``, when ``stale``).  Returns (1, entry id, its cid1, its meta) for a current entry,
    (2, ...) for a stale one, (0, -1, 0, 0) for none, (3, -1, 0, 0) for a value out of the key
    words' range (the caller's Python path: ``pack_key`` raises as it did)."""
    if not (0 <= in_port <= _L32 and 0 <= dl_src < 1 << 48 and 0 <= dl_dst < 1 << 48 and 0 <= nw_src <= _L32
            and 0 <= nw_dst <= _L32 and 0 <= proto <= 0xFF and 0 <= sport <= 0xFFFF and 0 <= dport <= 0xFFFF):
        return 3, -1, 0, 0
    s = _rev(dl_src, 6)
    k0 = _rev(dl_dst, 6) | ((s & _FFFF) << _U48)
    k1 = (s >> _U16) | (np.uint64(in_port) << _U32)
    k2 = _rev(nw_src, 4) | (_rev(nw_dst, 4) << _U32)
    k3 = _rev(sport, 2) | (_rev(dport, 2) << _U16) | (np.uint64(proto) << _U32)
    if current:
        e = _find(ent, index, mask, k0, k1, k2, k3)
        if e >= 0:
            return 1, e, cid1[e], np.int64(meta[e])
    if stale:
        e = _find(ent, sindex, mask, k0, k1, k2, k3)
        if e >= 0:
            return 2, e, cid1[e], np.int64(meta[e])
    return 0, -1, 0, 0


if HAVE_NUMBA and not numba.config.DISABLE_JIT:
    from llvmlite import ir as _ir
    from numba.core import cgutils as _cgutils
    from numba.extending import intrinsic as _intrinsic

    @_intrinsic
    def _prefetch(typingctx, arr, i, j):  # noqa: F811 - the compiled form of the no-op above
        """``prefetcht0`` of ``arr[i, j]`` (``arr[i]`` for a 1-D array): a load that does not wait."""

        def codegen(context, builder, sig, args):
            aty = sig.args[0]
            ary = context.make_array(aty)(context, builder, args[0])
            ix = [args[1], context.cast(builder, args[2], sig.args[2], sig.args[1])][:aty.ndim]
            ptr = _cgutils.get_item_pointer(context, builder, aty, ary, ix, wraparound=False)
            i8p = _ir.IntType(8).as_pointer()
            i32 = _ir.IntType(32)
            fnty = _ir.FunctionType(_ir.VoidType(), [i8p, i32, i32, i32])
            fn = _cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0i8")
            builder.call(fn, [builder.bitcast(ptr, i8p), _ir.Constant(i32, 0), _ir.Constant(i32, 3),
                              _ir.Constant(i32, 1)])
            return context.get_dummy_value()

        return numba.types.void(arr, i, j), codegen


if HAVE_NUMBA:
    _jit = numba.njit(cache=True, nogil=True)
    _ld32 = _jit(_ld32)
    _ld64 = _jit(_ld64)
    _st32 = _jit(_st32)
    _st64 = _jit(_st64)
    _hash = _jit(_hash)
    _probe = _jit(_probe)
    _find = _jit(_find)
    _index_put = _jit(_index_put)
    _index_del = _jit(_index_del)
    _csum_update = _jit(_csum_update)
    _parse = _jit(_parse)
    _apply = _jit(_apply)
    _classify = _jit(_classify)
    _insert_rows = _jit(_insert_rows)
    _insert_one = _jit(_insert_one)
    _find_row = _jit(_find_row)
    _move_index = _jit(_move_index)
    _cm_home = _jit(_cm_home)
    _cm_put = _jit(_cm_put)
    _cm_put_many = _jit(_cm_put_many)
    _cm_del = _jit(_cm_del)
    _cm_get = _jit(_cm_get)
    _rev = _jit(_rev)
    _mt_put = _jit(_mt_put)
    _take = _jit(_take)
    _mt_forget = _jit(_mt_forget)
    _sync_take = _jit(_sync_take)
    _find_flow = _jit(_find_flow)


def direct(kernel, *args):
    """``kernel`` compiled for the types of ``args`` as its entry point: a call skips the
    dispatcher's typing of each argument and overload resolution (~1.2 us for ``_mt_forget``'s
    20 arguments), the same machine code and results.  For a caller whose arguments keep those
    types (the arrays of one table, ints); ``kernel`` itself without numba (or when it is no
    dispatcher: a test's wrapper)."""
    if not HAVE_NUMBA or numba.config.DISABLE_JIT or not isinstance(kernel, numba.core.dispatcher.Dispatcher):
        return kernel
    return kernel.compile(tuple(kernel.typeof_pyval(a) for a in args))
