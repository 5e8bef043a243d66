"""``translate`` through a megaflow cache replays the recorded passes with its state in locals
(``xlate._replay``: no context, no queue of tuples) and hands over to the general code at anything
else: held here to the general code it replaced (``_translate`` from a context built as
``translate`` built it), packet by packet, on twin bridges, caches and trackers.

A real bridge with a pipeline of one- to three-pass chains (ct() with and without recirculation,
two recirculations queued by one pass, NORMAL, header writes and dec_ttl after a ct(), drops), the
tracker's CtVerdicts with random states, NAT of either side, ICMP rewrites and drops, IPv4
fragments (reassembly keeps or drops them), flows added between packets (the cache's entries of
the bridge dropped: passes recorded again after replayed ones).  Compared: every field of the
translations, the verdicts, the keys and times the tracker saw, the MAC table, the megaflow
counters and the key passed in; compiled (when loaded) and as the modules' Python source.
"""

from __future__ import annotations

import random

import pytest

from ctswitch._native import source_module
from ctswitch.conntrack.tracker import CtVerdict
from ctswitch.flow.key import (
    CS_EST,
    CS_INV,
    CS_NEW,
    CS_REL,
    CS_RPL,
    CS_TRK,
    DL_DST,
    DL_SRC,
    DL_TYPE,
    IN_PORT,
    N_FIELDS,
    NW_DST,
    NW_PROTO,
    NW_SRC,
    NW_TTL,
    TP_DST,
    TP_SRC,
)
from ctswitch.flow.ofctl_syntax import parse_flow, wire_actions
from ctswitch.ofproto import megaflow, xlate
from ctswitch.ofproto.bridge import OFBridge
from ctswitch.ofproto.rule import Rule
from ctswitch.packet.headers import Packet

FLOWS = ["table=0,ip,ct_state=-trk,action=ct(table=1,nat)",
         "table=0,arp,action=normal",
         "table=1,in_port=pf0hpf,ip,ct_state=+trk+new,action=ct(commit,nat(src=1.1.1.16)),p0",
         "table=1,priority=40000,udp,ct_state=+trk+new,action=ct(table=2),ct(table=3,nat),output:p0",
         "table=1,tcp,tp_dst=22,ct_state=+trk+est,action=mod_tp_dst:2222,output:p0",
         "table=1,ip,ct_state=+trk+est,action=normal",
         "table=1,ip,ct_state=+trk+rel,action=ct(table=2)",
         "table=1,ip,ct_state=+trk+inv,action=drop",
         "table=2,ip,nw_src=10.0.0.1,action=output:p0",
         "table=2,ip,action=output:pf0hpf",
         "table=3,ip,action=dec_ttl,output:pf0hpf"]
LATER = ["table=2,priority=40000,tcp,tp_src=40002,action=ct(table=3),output:p0",
         "table=3,priority=40000,ip,nw_dst=1.1.1.3,action=drop",
         "table=1,priority=50000,tcp,tp_dst=80,ct_state=+trk+est+rpl,action=output:pf0hpf"]
MACS = (0x020000000201, 0x020000000102, 0x020000000303)
STATES = (CS_TRK | CS_NEW, CS_TRK | CS_EST, CS_TRK | CS_EST | CS_RPL, CS_TRK | CS_REL, CS_TRK | CS_INV)


def _bridge() -> OFBridge:
    br = OFBridge("br0", "secure")
    br.add_port("p0")
    br.add_port("pf0hpf")
    for text in FLOWS:
        _add(br, text)
    return br


def _add(br: OFBridge, text: str) -> None:
    s = parse_flow(text, br.names)
    br.add_rule(Rule(s.table, s.priority, s.match, wire_actions(s.actions)))


class _Defrag:
    """Reassembly that keeps (None) or drops (a reason) every fragment."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def add(self, zone, pkt, now):
        return self.rng.choice([None, "overlap"])


class _Tracker:
    """Answers each ct() with a CtVerdict drawn from its own seeded generator; logs what it saw."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.defrag = _Defrag(random.Random(seed + 1000))
        self.seen = []

    def process(self, pkt, key, zone, ct, now):
        rng = self.rng
        self.seen.append((list(key), zone, ct.table, ct.commit, now))
        v = CtVerdict(rng.choice(STATES), zone, rng.randint(0, 3), 0,
                      rng.choice([None, (4, key[NW_SRC], key[NW_DST], 6, 1, 2)]))
        if ct.commit or rng.random() < 0.2:
            v.nat_src = (0x01010110, rng.choice([None, 5000]))
        if rng.random() < 0.15:
            v.nat_dst = (0x0A000009, None)
        if rng.random() < 0.05:
            v.icmp_id = 77
        if rng.random() < 0.05:
            v.icmp_inner = (1, 2, 3, 4)
        if rng.random() < 0.03:
            v.drop = "ct drop"
        return v


def _key(rng: random.Random) -> list[int]:
    k = [0] * N_FIELDS
    k[IN_PORT] = rng.choice([1, 2])
    k[DL_SRC], k[DL_DST] = rng.choice(MACS), rng.choice(MACS)
    k[DL_TYPE] = 0x0800 if rng.random() < 0.95 else 0x0806
    k[NW_SRC], k[NW_DST] = rng.choice([0x0A000001, 0x0A000002]), rng.choice([0x01010102, 0x01010103])
    k[NW_PROTO] = rng.choice([6, 6, 17])
    k[NW_TTL] = rng.choice([1, 64])
    k[TP_SRC], k[TP_DST] = rng.choice([40001, 40002]), rng.choice([22, 80])
    return k


def _general(x, bridge, pkt, key, now, tracker, cache):
    """``translate`` with a cache as it was: a context as ``_context`` built it (the mask unset and
    shared), then ``_translate``."""
    ctx = x.XlateContext(bridge, pkt, now, tracker, 300_000, False, None, x._default_field_index)
    ctx.tr.wc = None
    ctx.pwc = None
    ctx.wcs = True
    ctx.orig_in_port = key[IN_PORT]
    ctx.formatter = None
    return x._translate(ctx, list(key), False, None, cache)


def _view(tr) -> tuple:
    return ([(p, list(k), e) for p, k, e in tr.outputs], [(r.table_id, r.priority) for r in tr.rules],
            None if tr.wc is None else list(tr.wc), tr.drop, tr.stateful, tr.trace, tr.controller, tr.recirc,
            tr.dp_actions, tr.stolen, tr.defrag, list(tr.learns),
            [(v.state, v.zone, v.mark, v.orig, v.nat_src, v.nat_dst, v.icmp_id, v.icmp_inner, v.drop)
             for v in tr.verdicts])


def _counters(cache) -> tuple:
    return cache.hits, cache.misses, cache.inserted, cache.flushed, len(cache)


@pytest.mark.parametrize("pure", [False, True])
def test_replay_in_locals_matches_general_code(pure) -> None:
    x, mf = xlate, megaflow
    if pure:  # the modules' Python source, whatever is loaded
        x = source_module("ofproto.xlate", "ctswitch.ofproto._xlate_locals_pure_ref")
        mf = source_module("ofproto.megaflow", "ctswitch.ofproto._megaflow_locals_pure_ref")
    seen = {"replayed": 0, "recorded after replay": 0, "two queued": 0, "fragment": 0, "icmp": 0,
            "drop": 0, "set after ct": 0}
    for seed in range(10):
        rng = random.Random(seed)
        br1, br2 = _bridge(), _bridge()
        c1, c2 = mf.MegaflowCache(), mf.MegaflowCache()
        t1, t2 = _Tracker(seed), _Tracker(seed)
        later = list(LATER)
        for step in range(400):
            if later and rng.random() < 0.01:
                text = later.pop(0)
                _add(br1, text)
                _add(br2, text)
            key = _key(rng)
            now = step * 10
            frag = 1 if rng.random() < 0.04 else 0
            p1, p2 = Packet(), Packet()
            p1.nw_frag = p2.nw_frag = frag
            hits, misses = c1.hits, c1.misses
            before = list(key)
            got = x.translate(br1, p1, key, now, tracker=t1, cache=c1)
            assert key == before
            want = _general(x, br2, p2, key, now, t2, c2)
            assert _view(got) == _view(want), (seed, step)
            assert t1.seen == t2.seen, (seed, step)
            assert _counters(c1) == _counters(c2), (seed, step)
            assert br1.mac == br2.mac and br1.generation == br2.generation, (seed, step)
            snaps = [kk for _p, kk, _e in got.outputs]
            assert len({id(kk) for kk in snaps} | {id(key)}) == len(snaps) + 1
            seen["replayed"] += c1.hits > hits
            seen["recorded after replay"] += c1.hits > hits and c1.misses > misses
            seen["two queued"] += len(got.verdicts) >= 3
            seen["fragment"] += got.stolen or got.drop == "ip fragment dropped by reassembly"
            seen["icmp"] += bool(got.outputs) and got.outputs[0][2] is not None
            seen["drop"] += any(v.drop for v in got.verdicts)
            seen["set after ct"] += any(k[TP_DST] == 2222 for _p, k, _e in got.outputs)
    assert min(seen.values()) > 20, seen
