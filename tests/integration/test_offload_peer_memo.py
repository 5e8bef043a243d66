"""The reply direction's prediction at offload (``Datapath._cache_peer``) against the code it
replaced: ``xlate.predict`` with a callback per prediction and the wildcard check made for every
connection, where the shipped code asks the tracker directly (``xlate.predict_reply``) and checks
a mask once per shape (``_peer_wc``: a prediction's mask is its passes' shared list, so each new
connection of a shape brings the same list).

Two switches get the same traffic, one as shipped and one with the previous ``_cache_peer``;
both predict, so everything must be the same: the output frames of every packet, the cached
decisions (keys, outputs, rules, learned MACs, counters), the datapath's counters (slow path and
hardware hits included), connections, rules and their counters.  Between connections the shape
changes the ways a per-shape memo could go stale: a rule that makes the reply's pass read the TOS
(refused) added and removed (a new mask list each time, the same contents as an earlier one),
the reply's NAT dropped from the pipeline, unrelated flow changes, MAC moves (NORMAL's learned
port), connections opened by either side (another in_port), the offload's aging, batch mode.
"""

from __future__ import annotations

import random

import pytest
from pipeline import EXAMPLE2, HOST_MAC, REMOTE_MAC, Lab
from test_offload_peer_random import BASE, HOSTS, REMOTES, Flow, _conns, _flows

from ctswitch.control import ofctl
from ctswitch.datapath import datapath as D
from ctswitch.flow.key import (
    CS_EST,
    DL_DST,
    DL_SRC,
    DL_TYPE,
    IN_PORT,
    IPV6_DST,
    IPV6_SRC,
    N_FIELDS,
    NW_DST,
    NW_PROTO,
    NW_SRC,
    TP_DST,
    TP_SRC,
    VLAN_TCI,
)
from ctswitch.ofproto import xlate
from ctswitch.packet import build
from ctswitch.packet.headers import ETH_TYPE_IP, ETH_TYPE_IPV6

# Every table-1 pass reads nw_tos: the reply's recorded pass (TOS 0) is found for the predicted key
# (TOS 0), and its mask consults a field beyond the cache key's: refused.
TOS_RULE = "table=1,priority=40000,ip,nw_tos=4,actions=drop"
NAT_T0 = "table=0,ip,ct_state=-trk,action=ct(table=1,nat)"
PLAIN_T0 = "table=0,ip,ct_state=-trk,action=ct(table=1)"


def previous_cache_peer(self, bridge, conn, l2, now):
    """``Datapath._cache_peer`` before the per-shape mask check (verbatim but for names)."""
    tup = conn.reply
    k = [0] * N_FIELDS
    k[IN_PORT], k[DL_SRC], k[DL_DST], k[VLAN_TCI] = l2
    if conn.ip_ver == 4:
        k[DL_TYPE] = ETH_TYPE_IP
        k[NW_SRC], k[NW_DST] = tup[0], tup[1]
    else:
        k[DL_TYPE] = ETH_TYPE_IPV6
        k[IPV6_SRC], k[IPV6_DST] = tup[0], tup[1]
    k[NW_PROTO] = conn.proto
    k[TP_SRC], k[TP_DST] = tup[2], tup[3]
    tracker = self.switch.tracker
    tr = xlate.predict(bridge, k, now, self.megaflows,
                       lambda act, zone: tracker.offloaded_verdict(conn, True, zone, act))
    if tr is None or tr.stateful or tr.controller or len(tr.outputs) != 1 or D._consults_uncacheable(tr.wc):
        return
    for v in tr.verdicts:
        if v.conn is not conn or not (v.state & CS_EST) or v.state & 0x15 & ~CS_EST:
            return
    self._cache(bridge, k, self._cache_key(bridge, k), conn, True, tr, now)


class Pair:
    """The shipped switch (``a``) and the one with the previous ``_cache_peer`` (``b``)."""

    def __init__(self, config: dict) -> None:
        self.a = Lab(flows=EXAMPLE2, **BASE, **config)
        self.b = Lab(flows=EXAMPLE2, **BASE, **config)
        dpb = self.b.sw.datapath
        dpb._cache_peer = lambda *args: previous_cache_peer(dpb, *args)
        self.calls = 0
        real = self.a.sw.datapath._cache_peer

        def counting(*args):
            self.calls += 1
            real(*args)

        self.a.sw.datapath._cache_peer = counting

    def send(self, port: str, frame: bytes) -> list:
        out = self.a.send(port, frame)
        assert out == self.b.send(port, frame)
        return out

    def both(self, argv: list[str]) -> None:
        ra, rb = ofctl.run(self.a.sw, argv), ofctl.run(self.b.sw, argv)
        assert (ra.code, ra.out, ra.err) == (rb.code, rb.out, rb.err) and ra.code == 0, (argv, ra.err)

    def compare(self) -> None:
        a, b = self.a, self.b
        assert _cached(a) == _cached(b)
        assert a.sw.datapath.stats == b.sw.datapath.stats
        assert a.sw.datapath.drops == b.sw.datapath.drops
        assert a.conntrack("-o", "extended") == b.conntrack("-o", "extended")
        assert _flows(a) == _flows(b)
        assert _conns(a) == _conns(b)
        assert a.sw.offload.counters() == b.sw.offload.counters()
        assert sorted(a.br.mac.items()) == sorted(b.br.mac.items())


def _cached(lab) -> list:
    """Every cached decision: its key and all it holds (rules by table, priority and match)."""
    dp = lab.sw.datapath
    dp.sync_counters()
    out = []
    for ck, e in dp.cached_items():
        rules = [(r.table_id, r.priority, str(r.match)) for r in e.rules]
        out.append((ck, e.generation, e.cid, e.reply, e.outputs, rules, e.extra, e.packets, e.bytes, e.used,
                    e.created, tuple(e.learns)))
    return sorted(out, key=repr)


def _run(seed: int) -> tuple[int, set]:
    rng = random.Random(seed)
    pair = Pair(rng.choice([{}, {"devlink:ct_max_offloaded_conns": 2}]))
    flows: list[Flow] = []
    sport = 20000
    seen = set()
    tos = nat_off = False
    for _step in range(rng.randint(10, 25)):
        r = rng.random()
        if r < 0.45:  # a new connection: handshake, data both ways (the reply's first may be a hit)
            sport += 1
            f = Flow(rng.randrange(len(HOSTS)), rng.randrange(len(REMOTES)), sport, rng.choice([80, 5001]),
                     rng.random() < 0.25)
            flows.append(f)
            f.syn(pair)
            f.synack(pair)
            f.ack(pair)
            f.data(pair, 0, rng.choice([0, 10, 100]))
            f.data(pair, 1, rng.choice([1, 10, 100]))
            f.data(pair, 0, 5)
            if rng.random() < 0.3:
                f.fin(pair, rng.randrange(2))
            seen.add(("tos" if tos else "") + ("plain" if nat_off else "nat"))
        elif r < 0.6:  # the reply's pass reads the TOS (not cacheable), or no more
            pair.both(["del-flows" if tos else "add-flow", "ctBr", "table=1,ip,nw_tos=4" if tos else TOS_RULE])
            tos = not tos
        elif r < 0.7:  # the reply's NAT dropped from the pipeline, or back
            pair.both(["mod-flows", "ctBr", NAT_T0 if nat_off else PLAIN_T0])
            nat_off = not nat_off
        elif r < 0.8:  # a MAC moves: a remote's MAC seen on the host port (NORMAL learns it there)
            ip, mac = rng.choice(REMOTES)
            port = rng.choice(["pf0hpf", "p0"])
            pair.send(port, build.arp(1, mac, ip, "00:00:00:00:00:00", "2.2.2.1"))
            seen.add("move")
        elif r < 0.85:  # an unrelated flow change (a new generation: every recorded pass is stale)
            pair.both(["add-flow", "ctBr", f"table=7,priority={rng.randint(1, 99)},tcp,tp_dst=9,actions=drop"])
        elif r < 0.9:
            pair.a.at(pair.a.t + 31_000)
            pair.b.at(pair.b.t + 31_000)
        elif r < 0.95:
            if pair.a.sw.datapath.batch is None:
                assert pair.a.sw.datapath.enable_batch() and pair.b.sw.datapath.enable_batch()
                seen.add("batch")
        elif flows:  # more data on an older connection
            f = rng.choice(flows)
            f.data(pair, rng.randrange(2), 7)
        pair.compare()
    # The learned MAC of the host and remote as the Lab's ARP had them, for any last predictions.
    pair.send("pf0hpf", build.arp(1, HOST_MAC, "2.2.2.1", "00:00:00:00:00:00", "1.1.1.2"))
    pair.send("p0", build.arp(2, REMOTE_MAC, "1.1.1.2", HOST_MAC, "2.2.2.1"))
    pair.compare()
    return pair.calls, seen


@pytest.mark.parametrize("block", range(4))
def test_prediction_memo_matches_previous(block):
    calls = 0
    seen: set = set()
    for seed in range(block * 25, block * 25 + 25):
        n, s = _run(seed)
        calls += n
        seen |= s
    assert calls > 50
    assert {"nat", "plain", "tosnat", "move"} <= seen, seen
