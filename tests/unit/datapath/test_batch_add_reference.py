"""The batch table's insert of a new decision against the implementation it replaced (session 7):
``BatchFastPath.add_output`` (``_mt_put`` through its compiled entry point, the dispatcher for
an int no int64 holds) and ``MirrorTable.shape`` (interned by the rules themselves, not their ids: a rule
compares and hashes by identity, and a shape keeps its rules alive, so no id is reused).  The
previous implementations are below, verbatim but for names (the table's shape called as
``ref_shape(t, ...)``); a Python subclass of the (compiled: extension type) BatchFastPath,
``_RefBatch``, runs them for a reference run, with ``_put_row`` (its shape) and ``_target`` (no
shortcut for a table of the same generation) as they were: the slow path's traffic of ``test_slowpath_cache_reference``,
and direct calls with keys, learned MACs, rewrites and extras the table must refuse, take or
raise on.  (forget's one kernel call fewer per connection is held to the general path by
``test_batch_fused``.)"""

from __future__ import annotations

import os
import random
import sys

import numpy as np
import pytest

pytest.importorskip("numpy")

from ctswitch.datapath import datapath as D  # noqa: E402
from ctswitch.datapath import fastpath  # noqa: E402
from ctswitch.flow.key import (  # noqa: E402
    DL_DST,
    DL_SRC,
    DL_TYPE,
    IN_PORT,
    IPV6_DST,
    IPV6_SRC,
    N_FIELDS,
    NW_DST,
    NW_ECN,
    NW_PROTO,
    NW_SRC,
    NW_TOS,
    NW_TTL,
    TP_DST,
    TP_SRC,
    VLAN_TCI,
)
from ctswitch.packet.headers import ETH_TYPE_IP, ETH_TYPE_IPV6  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_batch_fused import _loaded, _tables  # noqa: E402
from test_slowpath_cache_reference import _run  # noqa: E402


def ref_add_output(self, ck, generation, cid, reply, port, key, okey, rules, extra, now, learns=()):
    k = fastpath.key_from_cache_key(ck)
    learn = None if k is None else fastpath._row_learns(k, learns)
    if (learn is None or not 0 <= port <= 0xFFFF or (extra is not None and any(x is not None for x in extra))
            or fastpath._unmirrored_of(okey) != fastpath._unmirrored_of(key)):
        self.discard(ck)
        return -2
    t = self._target(ck, generation)
    if t is None:
        return -2
    nds, ndd, nns, nnd, nps, npd = okey[DL_SRC], okey[DL_DST], okey[NW_SRC], okey[NW_DST], okey[TP_SRC], okey[TP_DST]
    conns = self.conns
    nfree = t._nfree
    if fastpath._FUSED and nfree and 2 * (conns.n + 1) <= len(conns.keys):
        stale = t.nstale != 0
        e = int(fastpath._mt_put(t.ent, t.index, t.sindex if stale else t.index, stale, t.mask, nfree, t.side,
                                 conns.kv, conns.mask, t.no, k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], port,
                                 nds, ndd, nns, nnd, nps, npd, cid, now))
        if e >= 0:
            t.meta[e] = (ref_shape(t, generation, rules, extra, learn) << 1) | bool(reply)
            t._nfree = nfree - 1
            t.nins += 1
            conns.n += 1
            self.live += 1
            return e
    return self._put_row(t, fastpath.pack_row(k, port, nds, ndd, nns, nnd, nps, npd), generation, cid, reply, rules,
                         extra, 0, 0, None, now, learn)


def ref_shape(self, generation, rules, extra, learns=False):
    k = (generation, tuple(map(id, rules)), extra, learns)
    s = self.shape_ids.get(k)
    if s is None:
        s = self.shape_ids[k] = len(self.shapes)
        self.shapes.append((generation, list(rules), extra, learns))
    return s


def ref_put_row(self, t, row, generation, cid, reply, rules, extra, packets, nbytes, used, created, learns):
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
    t.meta[e] = (ref_shape(t, generation, rules, extra, learns) << 1) | bool(reply)
    t.fpk[e] = packets
    t.fby[e] = nbytes
    t.fused1[e] = 0 if used is None else used + 1
    t.fcreated[e] = created
    self.conns.add(cid, (t.no << 32) | e)
    self.live += 1
    return e


def ref_target(self, ck, generation):
    t = self.tables.get(ck[0])
    if t is not None and generation < t.generation:
        self.discard(ck)
        return None
    return self._table(ck[0], generation)


class _RefBatch(fastpath.BatchFastPath):
    """The batch table with the previous add_output and shape (``enable_batch`` makes it when
    installed as ``fastpath.BatchFastPath``)."""

    add_output = ref_add_output
    _put_row = ref_put_row
    _target = ref_target


def _reference(monkeypatch):
    monkeypatch.setattr(fastpath, "BatchFastPath", _RefBatch)


def test_reference_runs_the_previous_code(monkeypatch):
    _reference(monkeypatch)
    sw, _brs, _now = _loaded(6)
    assert type(sw.datapath.batch) is _RefBatch and sw.datapath.batch.live


@pytest.mark.parametrize("seed", [3, 4, 5, 6])
def test_slow_path_inserts_equal_previous_implementation(seed, monkeypatch):
    _reference(monkeypatch)
    ref = _run(False, seed, True)
    monkeypatch.undo()
    got = _run(False, seed, True)
    assert sum(s[1]["live"] for s in ref[:-1]) > 50
    assert len(got) == len(ref)
    for i, (g, r) in enumerate(zip(got, ref, strict=True)):
        assert g == r, f"step {i}"


def test_add_output_refusals_equal_previous_implementation(monkeypatch):
    """Direct calls with keys, learned MACs, rewrites and extras the table must refuse or take."""
    rng = random.Random(11)
    cases = []
    for _ in range(600):
        key = [0] * N_FIELDS
        key[IN_PORT] = rng.choice((1, 2))
        key[DL_SRC], key[DL_DST] = rng.randrange(1 << 48), rng.randrange(1 << 48)
        key[DL_TYPE] = ETH_TYPE_IP
        key[NW_SRC], key[NW_DST] = rng.randrange(1 << 32), rng.randrange(1 << 32)
        key[NW_PROTO] = rng.choice((6, 17))
        key[TP_SRC], key[TP_DST] = rng.randrange(1 << 16), rng.randrange(1 << 16)
        okey = list(key)
        for i in rng.sample((DL_SRC, DL_DST, NW_SRC, NW_DST, TP_SRC, TP_DST), rng.randrange(0, 4)):
            okey[i] = rng.randrange(1 << 16)
        learns = rng.choice(((), ((0, key[DL_SRC], key[IN_PORT]),), ((0, key[DL_SRC], key[IN_PORT]),) * 2))
        extra = rng.choice((None, (None, None)))
        port = rng.choice((1, 2, 3))
        if rng.random() < 0.5:  # one reason to refuse it (or an out-of-range value)
            what = rng.randrange(13)
            if what == 0:
                key[IN_PORT] = rng.choice((1 << 32, -1))
            elif what == 1:
                key[DL_TYPE] = ETH_TYPE_IPV6
            elif what == 2:
                key[VLAN_TCI] = 0x1005
            elif what == 3:
                key[IPV6_SRC if rng.random() < 0.5 else IPV6_DST] = 5
            elif what == 4:
                key[NW_PROTO] = 1
            elif what == 5:
                okey[rng.choice((IPV6_SRC, IPV6_DST, NW_TOS, NW_ECN, NW_TTL))] = 9
            elif what == 6:
                learns = ((1, key[DL_SRC], key[IN_PORT]),)
            elif what == 7:
                learns = [(0, key[DL_SRC], key[IN_PORT]), (0, key[DL_SRC] ^ 1, key[IN_PORT])]
            elif what == 8:
                learns = ((0, key[DL_SRC], 7),)
            elif what == 9:
                extra = rng.choice(((7, None), (None, (1, 2))))
            elif what == 10:
                port = rng.choice((0x10000, -1))
            elif what == 11:
                okey[rng.choice((DL_SRC, NW_DST, TP_SRC))] = rng.choice((1 << 48, 1 << 32, 1 << 16, -1))
            else:
                key[TP_DST] = 1 << 64  # no int64 holds it
        cases.append((key, okey, learns, extra, port))
    out = []
    for reference in (True, False):
        if reference:
            _reference(monkeypatch)
        sw, brs, now = _loaded(6)
        b = sw.datapath.batch
        rules = list(brs[0].iter_rules())[:2]
        res = []
        for i, (key, okey, learns, extra, port) in enumerate(cases):
            ck = D.Datapath._cache_key(sw.datapath, brs[i % 2], key)
            try:
                res.append(b.add_output(ck, brs[i % 2].generation, 10_000 + i, bool(i & 1), port, key, okey, rules,
                                        extra, now, learns))
            except Exception as exc:  # noqa: BLE001 (the same exception, or none)
                res.append(type(exc).__name__)
        out.append((res, _tables(sw)))
        monkeypatch.undo()
    assert out[0] == out[1]
    assert sum(isinstance(r, int) and r >= 0 for r in out[0][0]) > 100
    assert sum(r == -2 for r in out[0][0]) > 100
    assert "error" in out[0][0]  # struct.error of pack_row (and, jitted, OverflowError for 1 << 64)
    assert np.count_nonzero(sw.datapath.batch.by_no[0].cid1) > 0
