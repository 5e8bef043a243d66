"""Full tables and floods, small enough for the default suite (bench/bench_flood.py runs them big).

Each flood runs through ``Datapath.receive`` with the vendor SNAT flows and
hw-offload on; afterwards the counters are checked exactly, established
ASSURED connections still pass, and once the clock passes the timeouts no
flood entry is left.
"""

from __future__ import annotations

import gc
import tracemalloc

from flood import Flood, syn
from hostile import Guard
from pipeline import EXAMPLE2

from ctswitch.conntrack.nat import EXHAUSTED_MSG
from ctswitch.conntrack.tracker import TABLE_FULL_MSG
from ctswitch.control import ofctl

MAX = "sysctl:net.netfilter.nf_conntrack_max"
SYN_SENT_S = 120


def _protect(g: Guard, n: int) -> list[tuple[int, int, int]]:
    """n more established, ASSURED, offloaded connections; returns (sport, seq, ack) of each."""
    out = []
    for k in range(n):
        sport = 41000 + k
        seq, ack = g.lab.handshake(sport=sport)
        out.append((sport, seq, ack))
    return out


def _passes(g: Guard, conns) -> None:
    lab = g.lab
    for sport, seq, ack in conns:
        o = g.send("pf0hpf", lab.host_tcp("A", sport, payload=b"x", seq=seq, ack=ack))
        assert len(o) == 1 and o[0][0] == "p0", sport
        o = g.send("p0", lab.remote_tcp("A", sport, seq=ack, ack=seq + 1))
        assert len(o) == 1 and o[0][0] == "pf0hpf", sport


def test_syn_flood_early_drops_unassured_only() -> None:
    g = Guard(**{MAX: 300})
    prot = _protect(g, 4)  # 5 ASSURED connections with the Guard's own
    tr = g.tracker
    f = Flood(g.lab)
    f.syn_flood(3000)
    # Every SYN is forwarded: the oldest unassured entry makes room for it.
    assert f.forwarded == 3000
    assert len(tr) == 300
    assert tr.stats["early_drop"] == 3000 - (300 - 5)
    assert tr.stats["drop"] == 0
    assert TABLE_FULL_MSG not in tr.log
    # Early drop evicts the oldest unassured entry: exactly the newest 295 SYNs remain.
    left = sorted((c.orig[0] - 0x0A000000) * 50000 + c.orig[2] - 1024 for c in tr.iter_conns()
                  if c.orig[0] >> 24 == 10)
    assert left == list(range(3000 - 295, 3000))
    _passes(g, prot)
    g.alive()
    # The flood's entries time out (SYN_SENT 120 s); the ASSURED ones stay.
    f.advance((SYN_SENT_S + 2) * 1000)
    assert len(tr) == 5
    _passes(g, prot)
    g.alive(fast=False)


def test_table_full_of_assured_drops_and_logs_rate_limited() -> None:
    g = Guard(**{MAX: 5})
    prot = _protect(g, 4)
    tr = g.tracker
    f = Flood(g.lab, dt_us=1000)  # 1 ms per packet: 50 SYNs within one 5 s rate-limit window
    f.syn_flood(50)
    assert f.forwarded == 0
    assert tr.stats["drop"] == 50 and tr.stats["early_drop"] == 0
    assert g.dp.drops[TABLE_FULL_MSG] == 50
    assert tr.log.count(TABLE_FULL_MSG) == 10  # kernel net_ratelimit: burst 10 per 5 s
    f.advance(5000)
    f.syn_flood(1, start=50)
    assert tr.log[-2:] == ["net_ratelimit: 40 callbacks suppressed", TABLE_FULL_MSG]
    _passes(g, prot)
    g.alive()
    assert len(tr) == 5


def test_offload_limit_tiny_connections_still_pass() -> None:
    g = Guard(**{"devlink:ct_max_offloaded_conns": 2})
    prot = _protect(g, 9)  # 10 established connections, room for 2 in hardware
    off = g.sw.offload
    hw = [c for c in g.tracker.iter_conns() if c.status & (1 << 15)]
    sw_only = [c for c in g.tracker.iter_conns() if c.offload is not None and not c.status & (1 << 15)]
    assert len(hw) == 2 and len(sw_only) == 8
    assert off.refused["ct_max_offloaded_conns"] >= 8
    _passes(g, prot)
    g.alive()
    f = Flood(g.lab)
    f.syn_flood(500)
    assert f.forwarded == 500
    _passes(g, prot)


def test_fdb_full_connections_still_pass() -> None:
    g = Guard(**{"modparam:ctswitch.fdb_capacity": 4})
    prot = _protect(g, 5)
    off = g.sw.offload
    hw = [c for c in g.tracker.iter_conns() if c.status & (1 << 15)]
    assert len(hw) == 2  # two FDB rules per connection
    assert off.refused["table_full"] + off.refused["group_full"] >= 4
    _passes(g, prot)
    g.alive()


# 10 source ports; the protected connection (port 40000) keeps its own, 9 are left for the flood.
NAT_RANGE_FLOWS = [f.replace("nat(src=1.1.1.16)", "nat(src=1.1.1.16:40000-40009)") for f in EXAMPLE2]


def test_nat_range_exhaustion_under_load() -> None:
    g = Guard(flows=NAT_RANGE_FLOWS)
    tr = g.tracker
    base = len(tr)
    f = Flood(g.lab, dt_us=1000)
    f.syn_flood(50, dport=5001)  # the protected connection's destination: one reply-tuple space
    assert f.forwarded == 9
    assert g.dp.drops[EXHAUSTED_MSG] == 41
    assert tr.stats["insert_failed"] == 41
    assert len(tr) == base + 9
    assert tr.log.count(EXHAUSTED_MSG) == 10  # rate limited
    g.alive()
    # The flood stops; after the SYN_SENT timeout nothing of it is left and NAT works again.
    f.advance((SYN_SENT_S + 2) * 1000)
    assert len(tr) == base
    assert all(c.orig[2] == 40000 for c in tr.iter_conns())
    f.syn_flood(10, start=1000, dport=5001)
    assert f.forwarded == 18
    assert g.dp.drops[EXHAUSTED_MSG] == 42
    assert len(tr) == base + 9
    g.alive(fast=False)


N_FLOWS = 1000


def test_flows_installed_and_deleted_repeatedly_do_not_leak(tmp_path) -> None:
    g = Guard()
    sw, br = g.sw, g.lab.br
    n_base = br.n_rules
    path = tmp_path / "flows.txt"
    path.write_text("".join(f"table=5,priority={i % 100},tcp,nw_src=10.{i >> 8 & 255}.{i & 255}.0/24,"
                            f"tp_dst={i % 1000},actions=output:p0\n" for i in range(N_FLOWS)))
    sizes = []
    tracemalloc.start()
    try:
        for _ in range(3):
            r = ofctl.run(sw, ["add-flows", "ctBr", str(path)])
            assert r.code == 0, r.err
            assert br.n_rules == n_base + N_FLOWS
            r = ofctl.run(sw, ["del-flows", "ctBr", "table=5"])
            assert r.code == 0, r.err
            assert br.n_rules == n_base
            gc.collect()
            sizes.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    # Rounds 2 and 3 end where round 1 ended (allocator noise only: < 64 KiB for 1000 flows).
    assert max(sizes[1:]) - sizes[0] < 64 * 1024, sizes
    g.alive(fast=False)


def test_syn_template_is_distinct_and_valid() -> None:
    from ctswitch.packet import codec

    seen = set()
    for i in (0, 1, 49999, 50000, 123456, 1999999):
        p = codec.parse(syn(i))
        assert p.drop is None and p.tcp_flags == 2
        seen.add((p.nw_src, p.nw_dst, p.tp_src))
    assert len(seen) == 6
