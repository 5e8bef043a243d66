"""xlate.predict against its previous implementation (a replay through ``_emit`` and ``_ct_apply``
with a context and a stand-in tracker, kept here as the reference) on random recorded passes.

The pipelines of the integration tests (tests/integration/test_offload_peer*.py) end every
prediction's pass with its ct(); these programs also put ct() before outputs and learning in a
pass, ct() without recirculation, several ct() per pass, NAT of either side (IPv4 and IPv6,
with and without a port), verdicts without a connection tuple, verdicts that drop or cannot be
told, unsupported ops, missing passes and recirculation loops past the limit.  Each result is
compared field by field, the key passed in must stay as it was, and each run is made compiled
(when loaded) and as the module's Python source.  ``predict_reply`` (the datapath's: the
tracker's ``offloaded_verdict`` asked directly) is held to the same reference, with stand-in
verdicts and with the tracker's own ``CtVerdict`` (read as its extension type when compiled).
"""

from __future__ import annotations

import random

import pytest

from ctswitch._native import source_module
from ctswitch.conntrack.tracker import CtVerdict
from ctswitch.flow import actions as A
from ctswitch.flow.key import DL_TYPE, N_FIELDS
from ctswitch.ofproto import xlate
from ctswitch.ofproto.megaflow import MegaflowCache
from ctswitch.packet.headers import ETH_TYPE_IP, ETH_TYPE_IPV6

FIELDS = ("outputs", "rules", "verdicts", "wc", "drop", "stateful", "trace", "controller", "recirc",
          "dp_actions", "stolen", "defrag", "learns")


class _NoPacket:
    nw_frag = 0


class _Unpredictable:
    drop = "not predictable"


class _FixedTracker:
    def __init__(self, verdict) -> None:
        self.verdict = verdict

    def process(self, pkt, key, zone, act, now):
        v = self.verdict(act, zone)
        return _Unpredictable if v is None else v


def reference_predict(bridge, key, now, cache, verdict):
    """xlate.predict as it was before it was specialised (commit 95a7045)."""
    x = xlate
    ctx = x.XlateContext(bridge, _NoPacket, now, _FixedTracker(verdict), 0, False, None, x._default_field_index)
    tr = ctx.tr
    k = list(key)
    table = 0
    while True:
        prog = cache.peek(bridge, table, k)
        if prog is None:
            return None
        wc = tr.wc
        for i, m in prog.wc:
            wc[i] |= m
        tr.rules.extend(prog.rules)
        for op in prog.ops:
            kind = op[0]
            if kind == x.OP_OUT:
                x._emit(ctx, k, op[1])
            elif kind == x.OP_CT:
                x._ct_apply(ctx, k, op[1], op[2])
                if ctx.halted:
                    return None
            elif kind == x.OP_LEARN:
                tr.learns.append((k[x.VLAN_TCI] & 0x0FFF, k[x.DL_SRC], k[x.IN_PORT]))
            else:
                return None
        if not ctx.queue:
            return tr
        tr.recirc += 1
        if tr.recirc > x.MAX_RECIRCULATIONS:
            return None
        k, table, _default, _nat = ctx.queue.pop(0)


class _Bridge:
    name = "br0"
    generation = 1


class _Verdict:
    """The fields of a CtVerdict that a replayed ct() reads."""

    def __init__(self, rng: random.Random, ipv6: bool) -> None:
        big = (1 << 128) - 1 if ipv6 else (1 << 32) - 1
        self.drop = "ct drop" if rng.random() < 0.05 else None
        self.nat_src = (rng.randint(0, big), rng.choice([None, rng.randint(1, 65535)])) if rng.random() < 0.4 else None
        self.nat_dst = (rng.randint(0, big), rng.choice([None, rng.randint(1, 65535)])) if rng.random() < 0.4 else None
        self.icmp_id = rng.choice([None, 7])
        self.icmp_inner = rng.choice([None, (1, 2, 3, 4)])
        self.state = rng.randint(0, 0xFF)
        self.mark = rng.randint(0, 5)
        self.label = rng.randint(0, 5)
        ver = rng.choice([4, 6, None])
        self.orig = None if ver is None else (ver, rng.randint(0, big), rng.randint(0, big), 6,
                                              rng.randint(1, 65535), rng.randint(1, 65535))


def _op(rng: random.Random):
    r = rng.random()
    if r < 0.35:
        return (xlate.OP_OUT, rng.randint(1, 4))
    if r < 0.7:
        return (xlate.OP_CT, A.Ct(table=rng.choice([None, 0, 1, 2, 3])), rng.randint(0, 3))
    if r < 0.95:
        return (xlate.OP_LEARN,)
    return (xlate.OP_SET, 5, 0xFF, 1)  # not replayable by a prediction


def _real(v):
    """The tracker's own CtVerdict with the fields of stand-in ``v`` (None stays None)."""
    if v is None:
        return None
    r = CtVerdict(v.state, 0, v.mark, v.label, v.orig)
    r.drop, r.nat_src, r.nat_dst, r.icmp_id, r.icmp_inner = v.drop, v.nat_src, v.nat_dst, v.icmp_id, v.icmp_inner
    return r


class _Tracker:
    """``offloaded_verdict`` of the reply direction of ``conn`` answered by ``verdict``."""

    def __init__(self, conn, verdict) -> None:
        self.conn = conn
        self.verdict = verdict

    def offloaded_verdict(self, conn, reply, zone, act):
        assert conn is self.conn and reply is True
        return self.verdict(act, zone)


def _case(rng: random.Random):
    cache = MegaflowCache()
    bridge = _Bridge()
    ipv6 = rng.random() < 0.3
    key = [rng.randint(0, 1 << 16) for _ in range(N_FIELDS)]
    key[DL_TYPE] = ETH_TYPE_IPV6 if ipv6 else ETH_TYPE_IP
    for table in range(4):
        if table and rng.random() < 0.1:
            continue  # no pass recorded: no prediction
        wc = [0] * N_FIELDS
        for i in rng.sample(range(N_FIELDS), rng.randint(0, 3)):
            wc[i] = rng.randint(1, 0xFF)
        ops = [_op(rng) for _ in range(rng.randint(0, 4))]
        cache.insert(bridge, table, [0] * N_FIELDS, [0] * N_FIELDS, ops, [f"rule{table}"])
        prog = cache.peek(bridge, table, key)
        prog.wc = tuple((i, m) for i, m in enumerate(wc) if m)  # consulted bits to un-wildcard
    verdicts = {}

    def verdict(act, zone):
        k = (act, zone)
        if k not in verdicts:
            verdicts[k] = None if rng.random() < 0.05 else _Verdict(rng, ipv6)
        return verdicts[k]

    return bridge, key, cache, verdict


def _same(a, b) -> None:
    assert (a is None) == (b is None)
    if a is not None:
        for f in FIELDS:
            assert getattr(a, f) == getattr(b, f), f


@pytest.mark.parametrize("pure", [False, True])
def test_predict_matches_reference(pure, monkeypatch):
    predict = xlate.predict
    if pure:  # the module's Python source, whatever is loaded
        predict = source_module("ofproto.xlate", "ctswitch.ofproto._xlate_pure_ref").predict
    rng = random.Random(20261126)
    seen = {"none": 0, "tr": 0, "recirc": 0}
    for _ in range(3000):
        bridge, key, cache, verdict = _case(rng)
        before = list(key)
        got = predict(bridge, key, 5, cache, verdict)
        assert key == before
        want = reference_predict(bridge, key, 5, cache, verdict)
        _same(got, want)
        seen["none" if got is None else "tr"] += 1
        seen["recirc"] += got is not None and got.recirc > 0
    assert min(seen.values()) > 100, seen


@pytest.mark.parametrize("real", [False, True])
@pytest.mark.parametrize("pure", [False, True])
def test_predict_reply_matches_reference(pure, real):
    predict_reply = xlate.predict_reply
    if pure:
        predict_reply = source_module("ofproto.xlate", "ctswitch.ofproto._xlate_pure_ref2").predict_reply
    rng = random.Random(20261127)
    conn = object()
    seen = {"none": 0, "tr": 0, "recirc": 0}
    for _ in range(3000):
        bridge, key, cache, verdict = _case(rng)
        if real:
            memo = {}

            def verdict(act, zone, stand_in=verdict, memo=memo):
                k = (act, zone)
                if k not in memo:
                    memo[k] = _real(stand_in(act, zone))
                return memo[k]
        before = list(key)
        got = predict_reply(bridge, key, 5, cache, _Tracker(conn, verdict), conn)
        assert key == before
        want = reference_predict(bridge, key, 5, cache, verdict)
        _same(got, want)
        if got is not None and real:
            assert all(type(v) is CtVerdict for v in got.verdicts)
        seen["none" if got is None else "tr"] += 1
        seen["recirc"] += got is not None and got.recirc > 0
    assert min(seen.values()) > 100, seen
