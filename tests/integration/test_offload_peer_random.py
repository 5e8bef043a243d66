"""Randomized differential test of the reply-direction prediction at offload (Datapath._cache_peer).

Two switches get the same random TCP traffic: one as shipped, one with the prediction turned
off.  The prediction may change where a packet is handled (a hardware hit instead of the slow
path) and nothing else: after every packet the output frames must be the same, and at random
points and at the end the conntrack table, the OpenFlow rules and their counters, every
connection's state and counters and the offload state must be the same too.  What legitimately
differs, and is not compared: the datapath's slow_path / fast_hw / fast_sw counts, the offload
records' hardware vs software hit counters, the megaflow hit counters, the cached decisions and
the MAC table's last-seen times.

Traffic: a few TCP connections (several hosts, remotes, ports; some opened by the remote side)
interleaved at random: handshakes (sometimes partial), data both ways with varying sizes,
retransmissions, out-of-window segments, FIN and RST closes, packets after the close, reopened
tuples, time jumps past the 30 s offload aging, batch mode turned on (on both) at a random point.
Pipelines: vendor examples 1 and 2 (the prediction applies), a variant with explicit ports
(applies), and variants where it must refuse (ct(commit) for established packets, a
reply rule on nw_ttl, two zones, a rule on tcp_flags).  Every example ends with a probe
connection that checks the prediction happened (or was refused) as the pipeline says.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pipeline import EXAMPLE1, EXAMPLE2, HOST_MAC, REMOTE_MAC, Lab

from ctswitch.conntrack.conn import IPS_HW_OFFLOAD, IPS_OFFLOAD
from ctswitch.control import conntrack_tool, ofctl
from ctswitch.packet import build, codec

PIPELINES = {
    # The prediction applies.
    "example1": EXAMPLE1,
    "example2": EXAMPLE2,
    "ports": [  # explicit ports, the reply's rule on +rpl
        "table=0,arp,action=normal",
        "table=0,ip,ct_state=-trk,action=ct(table=1,nat)",
        "table=1,in_port=pf0hpf,ip,ct_state=+trk+new,action=ct(commit,nat(src=1.1.1.16)),p0",
        "table=1,in_port=pf0hpf,ip,ct_state=+trk+est-rpl,action=p0",
        "table=1,in_port=p0,ip,ct_state=+trk+est+rpl,action=pf0hpf",
    ],
    # The prediction must refuse: a ct() that commits for established packets...
    "commit_est": [
        "table=0,arp,action=normal",
        "table=0,ip,ct_state=-trk,action=ct(table=1)",
        "table=1,priority=1,ip,ct_state=+trk+new,action=ct(commit),normal",
        "table=1,priority=1,ip,ct_state=+trk+est,action=ct(commit),normal",
    ],
    # ... a reply rule that reads the TTL ...
    "ttl_reply": [
        "table=0,priority=100,ip,ct_state=-trk,actions=ct(table=1,nat)",
        "table=1,priority=100,in_port=pf0hpf,ip,ct_state=+trk+new,actions=ct(commit,nat(src=1.1.1.16)),p0",
        "table=1,priority=100,in_port=pf0hpf,ip,ct_state=+trk+est,actions=p0",
        "table=1,priority=100,in_port=p0,ip,ct_state=+trk+est,nw_ttl=64,actions=pf0hpf",
        "table=0,priority=10,arp,actions=normal",
    ],
    # ... two zones (two connections per packet) ...
    "two_zones": [
        "table=0,arp,action=normal",
        "table=0,ip,ct_state=-trk,action=ct(zone=1,table=1)",
        "table=1,ip,ct_state=+trk+new,action=ct(commit,zone=1),ct(zone=2,table=2)",
        "table=1,ip,ct_state=+trk+est,action=ct(zone=2,table=2)",
        "table=2,ip,ct_state=+trk+new,action=ct(commit,zone=2),normal",
        "table=2,ip,ct_state=+trk+est,action=normal",
    ],
    # ... a header rewrite in the reply direction (a replay of it is not predicted) ...
    "rewrite_reply": [
        "table=0,arp,action=normal",
        "table=0,ip,ct_state=-trk,action=ct(table=1,nat)",
        "table=1,in_port=pf0hpf,ip,ct_state=+trk+new,action=ct(commit,nat(src=1.1.1.16)),p0",
        "table=1,in_port=pf0hpf,ip,ct_state=+trk+est,action=p0",
        "table=1,in_port=p0,ip,ct_state=+trk+est,action=mod_dl_src:02:00:00:00:00:aa,pf0hpf",
    ],
    # ... a rule on the TCP flags (read for every TCP packet of table 1).
    "tcp_flags": [
        "table=0,arp,action=normal",
        "table=0,ip,ct_state=-trk,action=ct(table=1,nat)",
        "table=1,priority=40000,tcp,in_port=p0,tcp_flags=+urg,action=drop",
        "table=1,in_port=pf0hpf,ip,ct_state=+trk+new,action=ct(commit,nat(src=1.1.1.16)),p0",
        "table=1,ip,ct_state=+trk+est,action=normal",
    ],
}
PREDICTS = {"example1": True, "example2": True, "ports": True, "commit_est": False,
            "ttl_reply": False, "two_zones": False, "rewrite_reply": False, "tcp_flags": False}

# (ip, mac) of the hosts behind pf0hpf and of the remotes behind p0.  The first of each is the
# one the Lab's ARP exchange taught NORMAL; a new MAC is flooded to until it is learned.
HOSTS = [("2.2.2.1", HOST_MAC), ("2.2.2.7", HOST_MAC), ("2.2.2.9", "02:00:00:00:02:09")]
REMOTES = [("1.1.1.2", REMOTE_MAC), ("1.1.1.5", REMOTE_MAC), ("1.1.1.9", "02:00:00:00:01:09")]
SPORTS = [34541, 34542, 40000]  # few, so that NAT has to pick other ports now and then
DPORTS = [5001, 80]
SIZES = [0, 1, 7, 100, 536, 1400]
JUMPS = [3, 700, 4_000, 29_000, 31_000, 45_000]  # ms; the offload ages out after 30 s idle
PROBE_SPORT = 50123  # the final probe's connection: a port the random traffic never uses

# Switch settings: every Lab lists the connection counters (acct) and ages learned MACs after
# 60 s, so the time jumps make MACs expire between hits (cached hits refresh them, see
# test_mac_aging_follows_the_slow_path); some offload only one connection to hardware at a time
# (the others stay in the software flow table) or none (tc-policy skip_hw).
BASE = {"sysctl:net.netfilter.nf_conntrack_acct": 1, "other_config:mac-aging-time": 60}
CONFIGS = [{}, {"devlink:ct_max_offloaded_conns": 1}, {"other_config:tc-policy": "skip_hw"}]

_DURATION = re.compile(r"duration=[0-9.]+s, ")


# ---------------------------------------------------------------------------- two switches
class Pair:
    """The switch as shipped (``a``) and the same without the prediction (``b``), fed alike."""

    def __init__(self, flows, config: dict) -> None:
        self.a = Lab(flows=flows, **BASE, **config)
        self.b = Lab(flows=flows, **BASE, **config)
        self.b.sw.datapath._cache_peer = lambda *args: None
        # Calls of the real prediction, and how many of them cached a decision.
        self.calls = self.cached = 0
        dp = self.a.sw.datapath
        real = dp._cache_peer

        def counting(*args):
            n = dp.n_cached()
            real(*args)
            self.calls += 1
            self.cached += dp.n_cached() > n

        dp._cache_peer = counting
        self.batch = False

    def send(self, port: str, frame: bytes) -> list[tuple[str, bytes]]:
        out = self.a.send(port, frame)
        assert out == self.b.send(port, frame), f"outputs differ for a frame on {port}"
        return out

    def jump(self, ms: int) -> None:
        assert self.a.t == self.b.t
        self.a.at(self.a.t + ms)
        self.b.at(self.b.t + ms)

    def enable_batch(self) -> None:
        if not self.batch:
            assert self.a.sw.datapath.enable_batch() and self.b.sw.datapath.enable_batch()
            self.batch = True

    def both(self, tool, argv: list[str]) -> str:
        """Runs a control command on both switches; returns its output (the same on both)."""
        ra, rb = tool.run(self.a.sw, argv), tool.run(self.b.sw, argv)
        assert (ra.code, ra.out, ra.err) == (rb.code, rb.out, rb.err), argv
        return ra.out

    def compare(self) -> None:
        """Everything a user can see, except where packets were handled."""
        a, b = self.a, self.b
        for lab in (a, b):
            lab.sw.datapath.sync_counters()
        assert a.conntrack() == b.conntrack()
        assert a.conntrack("-o", "extended") == b.conntrack("-o", "extended")
        assert _flows(a) == _flows(b)
        self.both(ofctl, ["dump-tables", "ctBr"])
        self.both(ofctl, ["dump-ports", "ctBr"])
        assert _conns(a) == _conns(b)
        assert a.sw.offload.counters() == b.sw.offload.counters()
        assert a.sw.offload.torn == b.sw.offload.torn
        assert a.sw.tracker.stats == b.sw.tracker.stats
        assert a.sw.datapath.drops == b.sw.datapath.drops
        for name in ("tx_packets", "rx_packets", "offload_aged", "ct_expired", "flows_expired"):
            assert a.sw.datapath.stats[name] == b.sw.datapath.stats[name], name
        # The same MACs learned, on the same ports (when they were last seen may differ).
        assert [(k, v[0]) for k, v in sorted(a.br.mac.items())] == [(k, v[0]) for k, v in sorted(b.br.mac.items())]


def _flows(lab) -> list[str]:
    """``ovs-ofctl dump-flows ctBr`` without the durations (counters, idle ages, matches, actions)."""
    r = ofctl.run(lab.sw, ["dump-flows", "ctBr"])
    assert r.code == 0, r.err
    return [_DURATION.sub("", line) for line in r.out.splitlines()]


def _conns(lab) -> list[dict]:
    """Every connection's full state (tuples, status incl. IPS_OFFLOAD / IPS_HW_OFFLOAD, TCP
    state and window tracking, timers, counters, why it is not offloaded)."""
    out = []
    for c in lab.sw.tracker.iter_conns():
        s = c.to_state()
        s["offload_bits"] = c.status & (IPS_OFFLOAD | IPS_HW_OFFLOAD)
        out.append(s)
    return out


# ---------------------------------------------------------------------------- the traffic model
class Flow:
    """One TCP connection as its two ends see it; side 0 opens it.  ``view[i]``: the (ip, port)
    under which side ``1 - i`` knows side ``i`` (what came out of the switch last)."""

    def __init__(self, host: int, remote: int, sport: int, dport: int, by_remote: bool) -> None:
        h = ("pf0hpf", *HOSTS[host], sport)
        r = ("p0", *REMOTES[remote], dport)
        self.ends = (r, h) if by_remote else (h, r)
        self.view = [(e[1], e[3]) for e in self.ends]
        self.isn = [1000 + 7919 * sport % 100_000, 500_000 + 104_729 * dport % 100_000]
        self.nxt = [self.isn[0], self.isn[1]]
        self.last: list = [None, None]  # the last segment of each side: (flags, seq, ack, payload)
        self.closed = False

    def frame(self, side: int, flags: str, seq: int, ack: int, payload: bytes = b"", ttl: int = 64) -> bytes:
        port, ip, mac, tp = self.ends[side]
        _, pip, pmac, _ = self.ends[1 - side]
        dip, dtp = self.view[1 - side]
        return build.ipv4_tcp(ip, dip, tp, dtp, flags, seq, ack, payload, src_mac=mac, dst_mac=pmac, ttl=ttl)

    def send(self, pair: Pair, side: int, flags: str, seq: int, ack: int, payload: bytes = b"",
             ttl: int = 64) -> list:
        self.last[side] = (flags, seq, ack, payload)
        out = pair.send(self.ends[side][0], self.frame(side, flags, seq, ack, payload, ttl))
        for port, data in out:
            if port == self.ends[1 - side][0]:
                p = codec.parse(data)
                self.view[side] = (_ip(p.nw_src), p.tp_src)
        return out

    # ---- segments
    def syn(self, pair: Pair) -> None:
        if self.closed:  # the tuple is opened again: a new connection, new sequence numbers
            self.closed = False
            self.isn = [(x + 1_000_003) & 0xFFFFFFFF for x in self.isn]
            self.nxt = list(self.isn)
        self.send(pair, 0, "S", self.isn[0], 0)
        self.nxt[0] = self.isn[0] + 1

    def synack(self, pair: Pair) -> None:
        self.send(pair, 1, "SA", self.isn[1], self.nxt[0])
        self.nxt[1] = self.isn[1] + 1

    def ack(self, pair: Pair, side: int = 0) -> None:
        self.send(pair, side, "A", self.nxt[side], self.nxt[1 - side])

    def data(self, pair: Pair, side: int, size: int, ttl: int = 64) -> None:
        payload = bytes((side * 31 + i) & 0xFF for i in range(size))
        self.send(pair, side, "PA" if size else "A", self.nxt[side], self.nxt[1 - side], payload, ttl)
        self.nxt[side] += size

    def retransmit(self, pair: Pair, side: int) -> None:
        if self.last[side] is None:
            self.ack(pair, side)
        else:
            self.send(pair, side, *self.last[side])

    def fin(self, pair: Pair, side: int) -> None:
        self.send(pair, side, "FA", self.nxt[side], self.nxt[1 - side])
        self.nxt[side] += 1
        self.closed = True

    def rst(self, pair: Pair, side: int, with_ack: bool) -> None:
        if with_ack:
            self.send(pair, side, "RA", self.nxt[side], self.nxt[1 - side])
        else:
            self.send(pair, side, "R", self.nxt[side], 0)
        self.closed = True

    def out_of_window(self, pair: Pair, side: int, x: int) -> None:
        self.send(pair, side, "A", (self.nxt[side] + 0x4000_0000 + x) & 0xFFFFFFFF, self.nxt[1 - side])


def _ip(n: int) -> str:
    return ".".join(str((n >> s) & 0xFF) for s in (24, 16, 8, 0))


KINDS = (["hs"] * 5 + ["syn", "synack", "ack"] * 2 + ["data0", "data1"] * 6 + ["retx0", "retx1"]
         + ["fin0", "fin1"] * 2 + ["rst0", "rst1", "oow", "ttl", "jump", "jump", "check", "batch", "syn1",
                                   "odd", "flowmod", "ctflush"])
ODD_FLAGS = ["S", "SA", "A", "R", "RA", "FA", "SF", "PA", "U", "FPU", ""]

flows_st = st.lists(st.tuples(st.integers(0, len(HOSTS) - 1), st.integers(0, len(REMOTES) - 1),
                              st.sampled_from(SPORTS), st.sampled_from(DPORTS),
                              st.sampled_from([False, False, False, True])),
                    min_size=1, max_size=5)
steps_st = st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 4), st.integers(0, 5),
                              st.integers(0, 1000)), min_size=15, max_size=80)


def run_step(pair: Pair, flows: list[Flow], kind: str, i: int, k: int, x: int) -> None:
    f = flows[i % len(flows)]
    side = kind[-1] == "1"
    if kind == "hs":
        f.syn(pair)
        if k:  # a handshake left half done now and then
            f.synack(pair)
            if k > 1:
                f.ack(pair)
    elif kind == "syn":
        f.syn(pair)
    elif kind == "synack":
        f.synack(pair)
    elif kind == "ack":
        f.ack(pair)
    elif kind.startswith("data"):
        f.data(pair, side, SIZES[k])
    elif kind.startswith("retx"):
        f.retransmit(pair, side)
    elif kind.startswith("fin"):
        f.fin(pair, side)
    elif kind.startswith("rst"):
        f.rst(pair, side, bool(x & 1))
    elif kind == "oow":
        f.out_of_window(pair, x & 1, x)
    elif kind == "ttl":  # a segment with another TTL (1: not looked up in the flow table)
        f.data(pair, x & 1, SIZES[k], ttl=(1, 2, 63, 255)[x & 3])
    elif kind == "jump":
        pair.jump(JUMPS[k])
    elif kind == "syn1":  # the other side opens too (simultaneous open)
        f.send(pair, 1, "S", f.isn[1], 0)
        f.nxt[1] = f.isn[1] + 1
    elif kind == "odd":  # any flags, even invalid combinations, from either side
        side = x & 1
        f.send(pair, side, ODD_FLAGS[x % len(ODD_FLAGS)], f.nxt[side], f.nxt[1 - side], b"o" * k)
    elif kind == "flowmod":  # a flow table change: every cached decision and recorded pass is stale
        pair.both(ofctl, ["add-flow", "ctBr", f"table=7,priority={x},tcp,tp_dst={x},actions=drop"])
    elif kind == "ctflush":  # rare: conntrack -D of one connection, or -F
        if x % 3:
            pair.both(conntrack_tool, ["-F"])
        else:
            pair.both(conntrack_tool, ["-D", "-p", "tcp", "--orig-port-src", str(f.ends[0][3])])
    elif kind == "check":
        pair.compare()
    elif kind == "batch":
        pair.enable_batch()


def probe(pair: Pair, predicts: bool) -> None:
    """A fresh connection of the first host and remote after fresh ARPs: its first reply after
    the handshake is a hardware hit on the shipped switch exactly when the pipeline lets the
    prediction happen (and is handled in the slow path on the other switch)."""
    pair.send("pf0hpf", build.arp(1, HOST_MAC, "2.2.2.1", "00:00:00:00:00:00", "1.1.1.2"))
    pair.send("p0", build.arp(2, REMOTE_MAC, "1.1.1.2", HOST_MAC, "2.2.2.1"))
    f = Flow(0, 0, PROBE_SPORT, 5001, False)
    calls = pair.calls
    f.syn(pair)
    f.synack(pair)
    slow_a, slow_b = pair.a.sw.datapath.stats["slow_path"], pair.b.sw.datapath.stats["slow_path"]
    f.ack(pair)
    assert pair.calls == calls + 1, "the handshake's ACK did not offload the probe connection"
    assert pair.a.sw.datapath.stats["slow_path"] - slow_a == pair.b.sw.datapath.stats["slow_path"] - slow_b == 1
    f.data(pair, 1, 100)
    da = pair.a.sw.datapath.stats["slow_path"] - slow_a
    db = pair.b.sw.datapath.stats["slow_path"] - slow_b
    if predicts:
        assert (da, db) == (1, 2), "the first reply after the handshake was not predicted"
    else:
        assert (da, db) == (2, 2), "a prediction the pipeline should have refused"
    f.data(pair, 0, 10)
    f.data(pair, 1, 10)
    f.fin(pair, 0)


def check(name: str, config: int, batch_at: int | None, flow_specs, steps) -> Pair:
    pair = Pair(PIPELINES[name], CONFIGS[config])
    flows = [Flow(*s) for s in flow_specs]
    for n, step in enumerate(steps):
        if n == batch_at:
            pair.enable_batch()
        run_step(pair, flows, *step)
    pair.compare()
    # What the random part exercised (pytest --hypothesis-show-statistics).
    dpa, dpb = pair.a.sw.datapath, pair.b.sw.datapath
    event(f"predictions cached by the random traffic: {min(pair.cached, 3)}{'+' if pair.cached >= 3 else ''}")
    event(f"refused predictions: {'yes' if pair.calls > pair.cached else 'no'}")
    event(f"predicted packets (slow path difference): {min(dpb.stats['slow_path'] - dpa.stats['slow_path'], 2)}")
    event(f"offloads aged out: {'yes' if dpa.stats['offload_aged'] else 'no'}")
    event(f"batch: {pair.batch}")
    probe(pair, PREDICTS[name])
    pair.compare()
    pair.jump(31_000)  # everything ages out of the offload
    for f in flows:
        f.data(pair, 0, 1)
        f.data(pair, 1, 1)
    pair.compare()
    # Whatever the prediction did, it never made the shipped switch take the slow path more.
    assert pair.a.sw.datapath.stats["slow_path"] <= pair.b.sw.datapath.stats["slow_path"]
    if not PREDICTS[name]:
        assert pair.cached == 0 and pair.a.sw.datapath.stats["slow_path"] == pair.b.sw.datapath.stats["slow_path"]
    return pair


@pytest.mark.parametrize("name", list(PIPELINES))
@settings(deadline=None, max_examples=50, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(config=st.integers(0, len(CONFIGS) - 1), batch_at=st.one_of(st.none(), st.integers(0, 40)),
       flow_specs=flows_st, steps=steps_st)
def test_prediction_changes_nothing_visible(name, config, batch_at, flow_specs, steps):
    check(name, config, batch_at, flow_specs, steps)


# ------------------------------------------------------------------- MAC learning at cached hits
def test_mac_aging_follows_the_slow_path():
    """Vendor example 2, default MAC aging (300 s): the first reply after the handshake (t = 1.5 s)
    refreshes the remote's MAC both when it is a cached hit (the prediction; cached hits refresh
    the MACs their NORMAL learned, as OVS's revalidators do from the flow statistics) and when it
    takes the slow path; so the MAC ages at the same tick and a host packet at t = 300.5 s goes to
    p0 on both switches (before the refresh at hits, the shipped switch flooded it to p0 and
    LOCAL)."""
    a, b = Lab(), Lab()
    b.sw.datapath._cache_peer = lambda *args: None
    outs = []
    for lab in (a, b):
        lab.handshake()
        lab.at(1500).send("p0", lab.remote_tcp("PA", seq=5001, ack=1001, payload=b"r"))
        # Long after the offload aged out (30 s idle): the host's next segment goes to NORMAL.
        outs.append(lab.at(300_500).send("pf0hpf", lab.host_tcp("PA", seq=1001, ack=5002, payload=b"h")))
    assert a.sw.datapath.stats["slow_path"] < b.sw.datapath.stats["slow_path"]  # the prediction was used
    assert [p for p, _ in outs[1]] == ["p0"]
    assert outs[0] == outs[1]
