"""xlate.translate's replay of recorded passes against the replay as it was before its last op kept
the pass's key (an output's snapshot, a ct() fork's recirculated copy) and before the tracker's
CtVerdict was read as an extension type: the old ``_exec``, ``_emit`` and ``_ct_apply`` (copy,
then clear the ct fields; verdicts read as any object), kept here.

Random recorded passes (tables 0-3, every op kind, ct() with and without recirculation, NAT of
either side, IPv4 and IPv6 tuples, verdicts without a tuple, dropping verdicts, ICMP rewrites,
recirculation loops past the limit); the translation's fields, the keys the tracker saw, the MAC
learning calls and the key passed in are compared, compiled (when loaded) and as the module's
Python source.  The output snapshots must be lists of their own (none is another's or the
caller's key).
"""

from __future__ import annotations

import random

import pytest

from ctswitch._native import source_module
from ctswitch.conntrack.tracker import CtVerdict
from ctswitch.flow import actions as A
from ctswitch.flow.key import (
    CT_LABEL,
    CT_STATE,
    CT_TP_DST,
    DL_TYPE,
    IN_PORT,
    IPV6_DST,
    IPV6_SRC,
    N_FIELDS,
    NW_DST,
    NW_SRC,
    TP_DST,
    TP_SRC,
)
from ctswitch.ofproto import xlate
from ctswitch.ofproto.megaflow import MegaflowCache
from ctswitch.packet.headers import ETH_TYPE_IP, ETH_TYPE_IPV6

FIELDS = ("outputs", "rules", "wc", "drop", "stateful", "trace", "controller", "recirc",
          "dp_actions", "stolen", "defrag", "learns")
V_FIELDS = ("state", "zone", "mark", "label", "orig", "nat_src", "nat_dst", "icmp_id", "icmp_inner",
            "conn", "reply", "drop")


class _NoPacket:
    nw_frag = 0


class _Bridge:
    name = "br0"
    generation = 1

    def __init__(self) -> None:
        self.learned = []

    def learn(self, vlan, mac, port, now) -> None:
        self.learned.append((vlan, mac, port, now))


class _Duck:
    """A verdict that is not a CtVerdict (the generic path)."""

    def __init__(self, **fields) -> None:
        self.__dict__.update(fields)


class _Tracker:
    """Answers each ct() with the next verdict of the case, as a CtVerdict or as a duck."""

    def __init__(self, specs: list, real: bool) -> None:
        self.specs = list(specs)
        self.real = real
        self.seen = []

    def process(self, pkt, key, zone, act, now):
        self.seen.append((list(key), zone, act.table))
        f = self.specs.pop(0) if self.specs else _spec(random.Random(len(self.seen)), False)
        if not self.real:
            return _Duck(**f)
        v = CtVerdict(f["state"], f["zone"], f["mark"], f["label"], f["orig"])
        for name in ("nat_src", "nat_dst", "icmp_id", "icmp_inner", "drop"):
            setattr(v, name, f[name])
        return v


def _spec(rng: random.Random, ipv6: bool) -> dict:
    big = (1 << 128) - 1 if ipv6 else (1 << 32) - 1
    ver = rng.choice([4, 6, None])

    def nat():
        return (rng.randint(0, big), rng.choice([None, rng.randint(1, 65535)])) if rng.random() < 0.4 else None

    return {"state": rng.randint(0, 0xFF), "zone": rng.randint(0, 3), "mark": rng.randint(0, 5),
            "label": rng.randint(0, 5),
            "orig": None if ver is None else (ver, rng.randint(0, big), rng.randint(0, big), 6,
                                              rng.randint(1, 65535), rng.randint(1, 65535)),
            "nat_src": nat(), "nat_dst": nat(), "icmp_id": rng.choice([None, None, 7]),
            "icmp_inner": rng.choice([None, None, (1, 2, 3, 4)]), "conn": None, "reply": False,
            "drop": "ct drop" if rng.random() < 0.05 else None}


def _op(rng: random.Random):
    r = rng.random()
    if r < 0.3:
        return (xlate.OP_OUT, rng.randint(1, 4))
    if r < 0.6:
        return (xlate.OP_CT, A.Ct(table=rng.choice([None, 0, 1, 2, 3]), nat=rng.choice([None, A.Nat()])),
                rng.randint(0, 3))
    return rng.choice([(xlate.OP_LEARN,), (xlate.OP_SET, 5, 0xFF, rng.randint(0, 0xFF)),
                       (xlate.OP_MOVE, 6, 0, 8, 7, 4), (xlate.OP_DEC_TTL,), (xlate.OP_CT_CLEAR,),
                       (xlate.OP_DROP, "explicit drop"), (xlate.OP_IN_PORT, rng.randint(1, 4))])


def _case(seed: int, real: bool):
    """A cache with a recorded pass for each of tables 0-3 (hit by any key), a key, a tracker."""
    rng = random.Random(seed)
    cache = MegaflowCache()
    bridge = _Bridge()
    ipv6 = rng.random() < 0.3
    key = [rng.randint(0, 1 << 16) for _ in range(N_FIELDS)]
    key[DL_TYPE] = ETH_TYPE_IPV6 if ipv6 else ETH_TYPE_IP
    for table in range(4):
        ops = [_op(rng) for _ in range(rng.randint(0, 4))]
        cache.insert(bridge, table, [0] * N_FIELDS, [0] * N_FIELDS, ops, [f"rule{table}"])
        prog = cache.peek(bridge, table, key)
        wc = [0] * N_FIELDS
        for i in rng.sample(range(N_FIELDS), rng.randint(0, 3)):
            wc[i] = rng.randint(1, 0xFF)
        prog.wc = tuple((i, m) for i, m in enumerate(wc) if m)  # consulted bits to un-wildcard
    specs = [_spec(rng, ipv6) for _ in range(40)]
    return bridge, key, cache, _Tracker(specs, real)


def _ref_nat_key(key, v) -> None:
    ipv6 = key[DL_TYPE] == ETH_TYPE_IPV6
    if v.nat_src is not None:
        addr, port = v.nat_src
        key[IPV6_SRC if ipv6 else NW_SRC] = addr
        if port is not None:
            key[TP_SRC] = port
    if v.nat_dst is not None:
        addr, port = v.nat_dst
        key[IPV6_DST if ipv6 else NW_DST] = addr
        if port is not None:
            key[TP_DST] = port


def _ref_ct_apply(ctx, key, act, zone) -> None:
    tr = ctx.tr
    verdict = ctx.tracker.process(ctx.pkt, key, zone, act, ctx.now)
    tr.verdicts.append(verdict)
    if verdict.drop:
        tr.drop = verdict.drop
        ctx.queue.clear()
        tr.outputs.clear()
        ctx.halted = True
        return
    _ref_nat_key(key, verdict)
    if verdict.icmp_id is not None:
        ctx.icmp_id = verdict.icmp_id
    if verdict.icmp_inner is not None:
        ctx.icmp_inner = verdict.icmp_inner
    if act.table is not None:
        rkey = list(key)
        v = verdict
        if v.orig is not None:
            ver, src, dst, proto, sport, dport = v.orig
            if ver == 6:
                rkey[CT_STATE:CT_TP_DST + 1] = (v.state, zone, v.mark, v.label, 0, 0, src, dst, proto, sport, dport)
            else:
                rkey[CT_STATE:CT_TP_DST + 1] = (v.state, zone, v.mark, v.label, src, dst, 0, 0, proto, sport, dport)
        else:
            rkey[CT_STATE:CT_LABEL + 1] = (v.state, zone, v.mark, v.label)
        ctx.queue.append((rkey, act.table, False, act.nat is not None))
    key[CT_STATE:CT_TP_DST + 1] = [0] * (CT_TP_DST + 1 - CT_STATE)


def reference_translate(bridge, key, now, tracker, cache):
    """translate's replay of recorded passes as it was (every pass found in ``cache``)."""
    x = xlate
    ctx = x.XlateContext(bridge, _NoPacket, now, tracker, 0, False, None, x._default_field_index)
    ctx.orig_in_port = key[IN_PORT]
    tr = ctx.tr
    k = list(key)
    table = 0
    while True:
        prog = cache.lookup(bridge, table, k)
        for i, m in prog.wc:
            tr.wc[i] |= m
        tr.rules.extend(prog.rules)
        for op in prog.ops:
            if ctx.halted:
                break
            kind = op[0]
            if kind == x.OP_OUT:
                tr.outputs.append((op[1], list(k), None))
            elif kind == x.OP_CT:
                _ref_ct_apply(ctx, k, op[1], op[2])
            elif kind == x.OP_SET:
                _, idx, m, v = op
                k[idx] = (k[idx] & ~m) | v
            elif kind == x.OP_LEARN:
                vlan, mac, port = k[x.VLAN_TCI] & 0x0FFF, k[x.DL_SRC], k[x.IN_PORT]
                bridge.learn(vlan, mac, port, now)
                tr.learns.append((vlan, mac, port))
            elif kind == x.OP_MOVE:
                _, si, sofs, nbits, di, dofs = op
                v = (k[si] >> sofs) & ((1 << nbits) - 1)
                m = ((1 << nbits) - 1) << dofs
                k[di] = (k[di] & ~m) | ((v << dofs) & m)
            elif kind == x.OP_DEC_TTL:
                if k[x.NW_TTL] <= 1:
                    tr.drop = "ttl expired (dec_ttl)"
                    break
                k[x.NW_TTL] -= 1
            elif kind == x.OP_CT_CLEAR:
                for i in x.CT_FIELDS:
                    k[i] = 0
            elif kind == x.OP_DROP:
                tr.drop = op[1]
            elif kind == x.OP_IN_PORT:
                k[x.IN_PORT] = op[1]
        if not ctx.queue or ctx.halted:
            break
        tr.recirc += 1
        if tr.recirc > x.MAX_RECIRCULATIONS:
            tr.drop = "too many recirculations"
            break
        k, table, _default, _nat = ctx.queue.pop(0)
    if ctx.icmp_id is not None or ctx.icmp_inner is not None:
        extra = (ctx.icmp_id, ctx.icmp_inner)
        tr.outputs = [(p, kk, extra) for p, kk, _ in tr.outputs]
    if not tr.outputs and tr.drop is None:
        tr.drop = "no output action"
    return tr


def _fields(tr) -> tuple:
    return (tuple(getattr(tr, f) for f in FIELDS), [tuple(getattr(v, f) for f in V_FIELDS) for v in tr.verdicts])


@pytest.mark.parametrize("pure", [False, True])
def test_replay_matches_reference(pure) -> None:
    translate = xlate.translate
    if pure:  # the module's Python source, whatever is loaded
        translate = source_module("ofproto.xlate", "ctswitch.ofproto._xlate_pure_ref").translate
    seen = {"outputs": 0, "recirc": 0, "drop": 0, "halted": 0}
    for seed in range(3000):
        bridge, key, cache, tracker = _case(seed, False)
        want = reference_translate(bridge, key, 5, tracker, cache)
        for real in (True, False):  # the CtVerdict path and the stand-in's
            b2, k2, c2, t2 = _case(seed, real)
            before = list(k2)
            got = translate(b2, _NoPacket, k2, 5, tracker=t2, cache=c2)
            assert k2 == before
            assert _fields(got) == _fields(want), (seed, real)
            assert t2.seen == tracker.seen and b2.learned == bridge.learned
            snaps = [kk for _p, kk, _e in got.outputs]
            assert len({id(kk) for kk in snaps} | {id(k2)}) == len(snaps) + 1
        seen["outputs"] += bool(want.outputs)
        seen["recirc"] += want.recirc > 0
        seen["drop"] += want.drop is not None
        seen["halted"] += any(v.drop for v in want.verdicts)
    assert min(seen.values()) > 100, seen
