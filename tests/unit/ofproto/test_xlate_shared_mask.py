"""The mask of a translation replayed from the megaflow cache is a list shared by the translations
that replay the same passes (``Program.wc_after``), built before by copying nothing: held here to
the mask the translation computes without a cache (every pass translated, the mask ORed in place,
as the replay did before), packet by packet, and afterwards, for every translation made (no shared
list changed by a later one).

Random traffic through a pipeline with one-, two- and three-pass chains, passes recorded and
replayed, a replayed pass followed by a recorded one (the shared mask copied), and a prediction
(its own mask) between the packets; compiled (when loaded) and as the modules' Python source.
"""

from __future__ import annotations

import random

import pytest

from ctswitch._native import source_module
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
         "table=1,tcp,tp_dst=22,ct_state=+trk+est,action=mod_tp_dst:2222,output:p0",
         "table=1,ip,ct_state=+trk+est,action=normal",
         "table=1,ip,ct_state=+trk+rel,action=ct(table=2)",
         "table=1,ip,ct_state=+trk+inv,action=drop",
         "table=2,ip,nw_src=10.0.0.1,action=output:p0",
         "table=2,ip,action=output:pf0hpf"]
MACS = (0x020000000201, 0x020000000102, 0x020000000303)
STATES = (CS_TRK | CS_NEW, CS_TRK | CS_EST, CS_TRK | CS_EST | CS_RPL, CS_TRK | CS_REL, CS_TRK | CS_INV)


def _bridge() -> OFBridge:
    br = OFBridge("br0", "secure")
    br.add_port("p0")
    br.add_port("pf0hpf")
    for text in FLOWS:
        s = parse_flow(text, br.names)
        br.add_rule(Rule(s.table, s.priority, s.match, wire_actions(s.actions)))
    return br


class _Verdict:
    def __init__(self, state, zone, nat_src) -> None:
        self.state, self.zone, self.mark, self.label = state, zone, 0, 0
        self.orig, self.nat_src, self.nat_dst, self.icmp_id, self.icmp_inner = None, nat_src, None, None, None
        self.conn, self.reply, self.drop = None, False, None


class _Tracker:
    """Answers each ct() with a state drawn from its own seeded generator."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def process(self, pkt, key, zone, ct, now):
        nat = (0x01010110, None) if ct.commit else None
        return _Verdict(self.rng.choice(STATES), zone, nat)


def _key(rng: random.Random) -> list[int]:
    k = [0] * N_FIELDS
    k[IN_PORT] = rng.choice([1, 2])
    k[DL_SRC], k[DL_DST] = rng.choice(MACS), rng.choice(MACS)
    k[DL_TYPE] = 0x0800 if rng.random() < 0.93 else 0x0806
    k[NW_SRC], k[NW_DST] = rng.choice([0x0A000001, 0x0A000002]), rng.choice([0x01010102, 0x01010103])
    k[NW_PROTO] = 6
    k[TP_SRC], k[TP_DST] = rng.choice([40001, 40002]), rng.choice([22, 80])
    return k


def _view(tr) -> tuple:
    return ([(p, list(k), e) for p, k, e in tr.outputs], [(r.table_id, r.priority) for r in tr.rules],
            list(tr.wc), tr.drop, tr.stateful, tr.recirc, list(tr.learns), len(tr.verdicts))


@pytest.mark.parametrize("pure", [False, True])
def test_shared_mask_matches_uncached_translation(pure) -> None:
    x, mf = xlate, megaflow
    if pure:  # the modules' Python source, whatever is loaded
        x = source_module("ofproto.xlate", "ctswitch.ofproto._xlate_mask_pure_ref")
        mf = source_module("ofproto.megaflow", "ctswitch.ofproto._megaflow_mask_pure_ref")
    replayed = copied = 0
    for seed in range(12):
        rng = random.Random(seed)
        cached_br, plain_br = _bridge(), _bridge()
        cache = mf.MegaflowCache()
        t1, t2 = _Tracker(seed), _Tracker(seed)
        made = []
        for step in range(300):
            key = _key(rng)
            now = step * 10
            hits, misses = cache.hits, cache.misses
            got = x.translate(cached_br, Packet(), key, now, tracker=t1, cache=cache)
            want = x.translate(plain_br, Packet(), key, now, tracker=t2)
            assert _view(got) == _view(want), (seed, step)
            replayed += cache.hits > hits
            copied += cache.hits > hits and cache.misses > misses
            made.append((got, list(want.wc)))
            if rng.random() < 0.1:  # a prediction: it shares the passes' masks (wc_after) and changes none
                x.predict(cached_br, key, now, cache, lambda act, zone: _Verdict(CS_TRK | CS_EST, zone, None))
        for got, wc in made:  # no later translation changed an earlier one's (shared) mask
            assert list(got.wc) == wc
    assert replayed > 1000 and copied > 20
