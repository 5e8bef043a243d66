"""Floods and full tables at full size (the small versions are tests/robustness/test_floods.py).

Theory of operation
-------------------
Each scenario builds the vendor lab (ctBr, p0/pf0hpf, example-2 SNAT flows,
hw-offload on) with a few protected established ASSURED connections, floods
it through ``Datapath.receive`` (``tests/robustness/flood.py``), and reports
counters, RSS before/after and the rate.  Every scenario also asserts the
outcome (protected connections still pass, counters exact, no stuck entries
after the timeouts), so a run that prints figures also passed.

* ``syn``: N distinct SYNs (default 2,000,000) with ``nf_conntrack_max`` =
  N/2: early drops = N - (max - protected), drops 0, RSS bounded by the table;
* ``offload``: the same flood with ``ct_max_offloaded_conns`` = 2 and a
  4-entry FDB (offload table full);
* ``nat``: NAT range exhaustion: 10 ports, 100,000 SYNs to one destination;
* ``flows``: 10,000 flows installed and deleted 3 times through ovs-ofctl
  (RSS and tracemalloc after each round).

Usage: ``python -m bench.bench_flood [--quick] [--no-save] [scenario...]``.
"""

from __future__ import annotations

import gc
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from .common import check_flags, report, rss_bytes

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "robustness"), str(ROOT / "tests" / "integration")]

MIB = 1 << 20


FLAGS = {  # the command line (common.check_flags; run_all passes each module only its own)
    "--quick": "a short pass (smaller sizes, fewer runs)",
    "--no-save": "print only, do not append to docs/benchmarks.md",
}
SCENARIOS = ("syn", "offload", "nat", "flows")


def _lab(n_protect: int = 4, **params):
    from flood import Flood
    from hostile import Guard

    g = Guard(**params)
    prot = []
    for k in range(n_protect):
        seq, ack = g.lab.handshake(sport=41000 + k)
        prot.append((41000 + k, seq, ack))
    return g, prot, Flood(g.lab)


def _passes(g, prot) -> None:
    from test_floods import _passes as p
    p(g, prot)


def syn_flood(n: int, **extra) -> list[str]:
    cmax = n // 2
    g, prot, f = _lab(**{"sysctl:net.netfilter.nf_conntrack_max": cmax}, **extra)
    tr = g.tracker
    gc.collect()
    rss0 = rss_bytes()
    peak = rss0
    t0 = time.perf_counter()
    step = max(n // 10, 1)
    for start in range(0, n, step):
        f.syn_flood(min(step, n - start), start=start)
        peak = max(peak, rss_bytes())
        _passes(g, prot)
    dt = time.perf_counter() - t0
    protected = len(prot) + 1
    assert f.forwarded == n
    assert len(tr) == cmax
    assert tr.stats["early_drop"] == n - (cmax - protected), tr.stats
    assert tr.stats["drop"] == 0
    g.alive(fast=False)
    at_end = len(tr)
    f.advance(122_000)
    gone = len(tr) == protected
    _passes(g, prot)
    off = g.sw.offload
    lines = [
        f"SYN flood {n:,} distinct connections, nf_conntrack_max={cmax:,}, {protected} ASSURED connections",
        f"* forwarded {f.forwarded:,}, early_drop {tr.stats['early_drop']:,}, drop {tr.stats['drop']}, "
        f"table {at_end:,} (= max) at the end of the flood",
        f"* RSS {rss0 / MIB:.0f} MiB before, peak {peak / MIB:.0f} MiB "
        f"({(peak - rss0) / cmax:.0f} B per tracked entry), {n / dt:,.0f} SYN/s ({dt:.0f} s)",
        f"* ASSURED connections passed after every 10 % of the flood; after 122 s of switch time "
        f"only they remain: {gone} ({len(tr)} entries)",
    ]
    if extra:
        lines.append(f"* offload: {sum(1 for c in tr.iter_conns() if c.status & (1 << 15))} in HW, refused "
                     f"{ {k: v for k, v in off.refused.items() if v} }, knobs {extra}")
    assert gone
    return lines


def nat_exhaustion(n: int) -> list[str]:
    from pipeline import EXAMPLE2
    from test_floods import NAT_RANGE_FLOWS

    from ctswitch.conntrack.nat import EXHAUSTED_MSG
    assert NAT_RANGE_FLOWS != EXAMPLE2
    g, prot, f = _lab(n_protect=0, flows=NAT_RANGE_FLOWS)
    tr = g.tracker
    t0 = time.perf_counter()
    f.syn_flood(n, dport=5001)
    dt = time.perf_counter() - t0
    assert f.forwarded == 9 and g.dp.drops[EXHAUSTED_MSG] == n - 9
    logged = tr.log.count(EXHAUSTED_MSG)
    suppressed = sum(int(x.split()[1]) for x in tr.log if x.startswith("net_ratelimit:"))
    g.alive()
    f.advance(122_000)
    assert len(tr) == 1
    return [f"NAT exhaustion: 10 source ports, {n:,} SYNs to one destination in {n * f.dt_us / 1e6:.1f} s "
            f"of switch time ({n / dt:,.0f} SYN/s)",
            f"* forwarded 9 (+1 protected connection holds the 10th port), dropped {n - 9:,} "
            f"(insert_failed {tr.stats['insert_failed']:,}); log lines {logged} + "
            f"'callbacks suppressed' totals {suppressed:,} (tracker log keeps the newest lines only)",
            f"* after 122 s of switch time: {len(tr)} entry left (the protected one); no stuck entries"]


def flow_churn(n: int, rounds: int) -> list[str]:
    from ctswitch.control import ofctl

    g, prot, f = _lab(n_protect=0)
    sw, br = g.sw, g.lab.br
    base = br.n_rules
    with tempfile.NamedTemporaryFile("w", suffix=".flows", delete=False) as fh:
        for i in range(n):
            fh.write(f"table=5,priority={i % 100},tcp,nw_src=10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255},"
                     f"tp_dst={i % 1000},actions=output:p0\n")
        path = fh.name
    rss, traced = [], []
    tracemalloc.start()
    t0 = time.perf_counter()
    for _ in range(rounds):
        assert ofctl.run(sw, ["add-flows", "ctBr", path]).code == 0
        assert br.n_rules == base + n
        assert ofctl.run(sw, ["del-flows", "ctBr", "table=5"]).code == 0
        assert br.n_rules == base
        gc.collect()
        rss.append(rss_bytes() / MIB)
        traced.append(tracemalloc.get_traced_memory()[0] / MIB)
    dt = time.perf_counter() - t0
    tracemalloc.stop()
    g.alive(fast=False)
    return [f"{n:,} flows installed and deleted {rounds} times through ovs-ofctl add-flows/del-flows ({dt:.0f} s)",
            "* RSS after each round (MiB): " + ", ".join(f"{x:.0f}" for x in rss),
            "* tracemalloc live Python memory after each round (MiB): " + ", ".join(f"{x:.2f}" for x in traced)]


def main(argv: list[str]) -> list[str]:
    check_flags(argv, FLAGS, "bench_flood", SCENARIOS)
    quick = "--quick" in argv
    which = [a for a in argv if not a.startswith("-")] or list(SCENARIOS)
    n = 200_000 if quick else 2_000_000
    lines = []
    if "syn" in which:
        lines += syn_flood(n)
    if "offload" in which:
        lines += syn_flood(n // 4, **{"devlink:ct_max_offloaded_conns": 2, "modparam:ctswitch.fdb_capacity": 4})
    if "nat" in which:
        lines += nat_exhaustion(10_000 if quick else 100_000)
    if "flows" in which:
        lines += flow_churn(10_000 if quick else 100_000, 3)
    return report("Floods and full tables (bench_flood)", "bench.bench_flood", argv, lines,
                  save="--no-save" not in argv)


if __name__ == "__main__":
    main(sys.argv[1:])
