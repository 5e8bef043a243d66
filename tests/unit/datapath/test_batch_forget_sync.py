"""forget's one kernel call (``_mt_forget_all``) takes and drops every entry of a connection before
the first is credited: a ``mac_sync`` while one is credited must still credit the connection's later
entries at their place in its order, as the general path (``fastpath._FUSED = False``, which drops
each entry only at its turn) does."""

from __future__ import annotations

import os
import random
import sys

import pytest

pytest.importorskip("numpy")

from ctswitch.datapath import fastpath  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_batch_cache import _state  # noqa: E402
from test_batch_fused import _switch, _tables, _traffic  # noqa: E402
from test_fastpath import batch_arrays  # noqa: E402


def _hit_by_kernel(seed: int):
    """Two bridges after seeded traffic through ``receive_batch`` (kernel hits left uncredited)."""
    rng = random.Random(seed)
    sw, brs = _switch()
    dp = sw.datapath
    assert dp.enable_batch(capacity=4096)
    pkts = _traffic(rng, 1200)
    now = 5000
    for pos in range(0, len(pkts), 40):
        chunk = pkts[pos:pos + 40]
        now += 50
        sw.now = now
        dp.tick(now)
        for b in range(2):
            part = [(p, f) for bb, p, f in chunk if bb == b]
            if part:
                buf, offs, lens, inp = batch_arrays([f for _p, f in part], [p for p, _f in part])
                dp.batch.receive_batch(brs[b], buf, offs, lens, inp, now)
    return sw, brs


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_forget_with_a_mac_sync_between_its_credits(seed, monkeypatch):
    """forget's one kernel call takes and drops every entry of a connection before the first is
    credited; a ``mac_sync`` while it is credited (its MAC no longer learned) credits the bridge's
    pending hits, the connection's later entries among them at their place in entry id order, as
    the general path (which drops each entry only at its turn) does: same credits in the same
    order, same tables and counters."""
    from ctswitch.datapath.kernels import W_PKTS

    out = []
    merged = []
    for fused in (False, True):
        monkeypatch.setattr(fastpath, "_FUSED", fused)
        sw, brs = _hit_by_kernel(seed)
        b = sw.datapath.batch
        log = []
        credit, many = fastpath.BatchFastPath._credit_entry, fastpath.BatchFastPath._credit_many

        def logged(self, t, bridge, pk, by, used, cid1, *rest, credit=credit, log=log):
            log.append((t.no, pk, by, used, cid1, *rest))
            return credit(self, t, bridge, pk, by, used, cid1, *rest)

        def counted(self, t, eids, bridge, many=many):
            merged.append(any(p[0] is t and bool((eids == p[1]).any()) for p in getattr(self, "_pend", ())))
            return many(self, t, eids, bridge)

        monkeypatch.setattr(fastpath.BatchFastPath, "_credit_entry", logged)
        monkeypatch.setattr(fastpath.BatchFastPath, "_credit_many", counted)
        keys, vals = b.conns.items()
        by_cid: dict = {}
        for k, v in zip(keys.tolist(), vals.tolist(), strict=True):
            by_cid.setdefault(k, []).append(v)
        both = sorted(c for c, vs in by_cid.items()
                      if len(vs) == 2 and all(b.by_no[v >> 32].ent[v & 0xFFFFFFFF, W_PKTS] for v in vs))
        assert len(both) >= 4
        for br in brs:
            br.mac.clear()  # every credit's learning is a new MAC: a mac_sync first
        for c in both:
            b.forget(c)
        out.append((log, _tables(sw), [_state(sw, br) for br in brs]))
        monkeypatch.undo()
    assert any(merged)  # the fused path met the case (a sync credited a pending entry)
    assert out[0] == out[1]
