"""The batch table's one-call kernels of ``sync`` (``_sync_take``) and ``Datapath._fast_table``'s
lookup (``_find_flow`` through ``MirrorTable.find_flow``) against the NumPy / Python code they
replace, compiled and as plain Python (``py_func``: the no-numba fallback), and ``direct``."""

from __future__ import annotations

import random

import numpy as np
import pytest

from ctswitch.datapath import kernels
from ctswitch.datapath.fastpath import MirrorTable, pack_key, row_key
from ctswitch.datapath.kernels import W_BYTES, W_PKTS, W_USED, _find_flow, _sync_take, direct


def _impls(fn):
    return [fn, fn.py_func] if hasattr(fn, "py_func") else [fn]


def _table(rng: random.Random, cap: int) -> MirrorTable:
    t = MirrorTable(cap, 0)
    for _ in range(rng.randrange(cap + 1)):
        key = (rng.randrange(1, 5), rng.getrandbits(48), rng.getrandbits(48), rng.getrandbits(32),
               rng.getrandbits(32), rng.choice((6, 17)), rng.getrandbits(16), rng.getrandbits(16))
        e = t.insert(key, rng.randrange(1, 5), new_nw_src=rng.getrandbits(32))
        if e < 0:
            break
        if rng.random() < 0.8:
            t.cid1[e] = rng.randrange(1, 1 << 40)
        t.meta[e] = rng.randrange(1 << 20)
        if rng.random() < 0.7:
            t.ent[e, W_PKTS] = rng.randrange(1, 1000)
            t.ent[e, W_BYTES] = rng.randrange(1 << 40)
            t.ent[e, W_USED] = rng.randrange(1 << 40)
        t.fpk[e] = rng.randrange(1 << 30)
        t.fby[e] = rng.randrange(1 << 40)
        t.fused1[e] = rng.randrange(1 << 40)
    return t


def _reference(t: MirrorTable, eids: np.ndarray):
    """What sync did before _sync_take: np.unique, live entries, entries with hits; counters taken."""
    u = np.unique(eids)
    u = u[u >= 0]
    u = u[t.cid1[u] != 0]
    u = u[t.ent[u, W_PKTS] != 0]
    rows = []
    for e in u.tolist():
        r = t.ent[e].tolist()
        pk, by, used = r[W_PKTS:W_USED + 1]
        key = row_key(r)
        rows.append([pk, by, used, int(t.cid1[e]), int(t.meta[e]), key[1], key[0], (r[5] >> 32) & 0xFFFF])
        t.ent[e, W_PKTS] = 0
        t.ent[e, W_BYTES] = 0
        t.fpk[e] += pk
        t.fby[e] += by
        t.fused1[e] = used + 1
    return u.tolist(), rows


def _arrays(t: MirrorTable):
    return [a.copy() for a in (t.ent, t.cid1, t.meta, t.fpk, t.fby, t.fused1, t.mark)]


@pytest.mark.parametrize("seed", range(40))
def test_sync_take_equals_unique_and_filters(seed):
    rng = random.Random(seed)
    cap = rng.choice((1, 2, 7, 64, 300))
    for impl in _impls(_sync_take):
        t = _table(random.Random(seed), cap)
        n = rng.randrange(0, 3 * cap + 2)
        eids = np.array([rng.choice((-1, -2, rng.randrange(cap))) for _ in range(n)], dtype=np.int64)
        ref_t = _table(random.Random(seed), cap)
        want_sel, want_rows = _reference(ref_t, eids)
        m = max(1, min(n, cap))
        sel = np.full(m, -7, dtype=np.int64)
        out = np.zeros((m, 8), dtype=np.uint64)
        k = impl(eids, t.mark, t.ent, t.cid1, t.meta, t.fpk, t.fby, t.fused1, sel, out)
        assert sel[:k].tolist() == want_sel
        assert out[:k].tolist() == want_rows
        for a, b in zip(_arrays(t), _arrays(ref_t)):
            assert np.array_equal(a, b)
        assert not t.mark.any()


@pytest.mark.parametrize("seed", range(30))
def test_find_flow_equals_pack_key_and_find_row(seed):
    rng = random.Random(seed)
    t = _table(rng, 64)
    keys = [row_key(t.ent[e].tolist()) for e in np.flatnonzero(t.ent[:, 0]).tolist()]
    if rng.random() < 0.6:
        t.roll(t.generation + 1)  # all stale, then some current
        for _ in range(rng.randrange(10)):
            k = (1, rng.getrandbits(48), rng.getrandbits(48), rng.getrandbits(32), rng.getrandbits(32), 6, 1, 2)
            e = t.insert(k, 1)
            if e >= 0:
                t.cid1[e] = rng.randrange(1, 99)
                keys.append(k)
    probes = keys + [(1, rng.getrandbits(48), 2, 3, 4, 6, 5, 6) for _ in range(5)]
    for impl in _impls(_find_flow):
        for key in probes:
            for current in (True, False):
                r = t._row
                r[:4] = pack_key(key)
                e = t.find_row(r) if current else -1
                if e >= 0:
                    want = (1, e, int(t.cid1[e]), int(t.meta[e]))
                else:
                    e = t.find_row(r, True) if t.nstale else -1
                    want = (2, e, int(t.cid1[e]), int(t.meta[e])) if e >= 0 else (0, -1, 0, 0)
                stale = t.nstale != 0
                got = impl(t.ent, t.index, t.sindex if stale else t.index, stale, current, t.mask, t.cid1,
                           t.meta, *key)
                assert tuple(int(x) for x in got) == want
                res = t.find_flow(current, *key)
                assert res == want and all(type(x) is int for x in res)


@pytest.mark.parametrize("bad", [(1 << 32, 1, 2, 3, 4, 6, 5, 6), (-1, 1, 2, 3, 4, 6, 5, 6),
                                 (1, 1 << 48, 2, 3, 4, 6, 5, 6), (1, 1, 2, 1 << 32, 4, 6, 5, 6),
                                 (1, 1, 2, 3, 4, 6, 1 << 16, 6), (1, 1, 2, 3, 4, 6, 5, 1 << 70)])
def test_find_flow_out_of_range_as_pack_key(bad):
    """A value the key words cannot hold: the Python path, which raises as pack_key / the row do."""
    t = _table(random.Random(1), 8)
    for impl in _impls(_find_flow):
        if max(bad) < 1 << 63:
            assert tuple(impl(t.ent, t.index, t.index, False, True, t.mask, t.cid1, t.meta, *bad)) == (3, -1, 0, 0)
    with pytest.raises(Exception) as want:
        t._row[:4] = pack_key(bad)
    with pytest.raises(type(want.value)):
        t.find_flow(True, *bad)


def test_direct_same_results_and_wrappers_pass_through():
    t = _table(random.Random(3), 16)
    key = row_key(t.ent[np.flatnonzero(t.ent[:, 0])[0]].tolist())
    args = (t.ent, t.index, t.index, False, True, t.mask, t.cid1, t.meta, *key)
    fn = direct(_find_flow, *args)
    assert tuple(fn(*args)) == tuple(_find_flow(*args))

    def wrapper(*a):
        return _find_flow(*a)

    assert direct(wrapper, *args) is wrapper
    if not (kernels.HAVE_NUMBA and not kernels.numba.config.DISABLE_JIT):
        assert direct(_find_flow, *args) is _find_flow
