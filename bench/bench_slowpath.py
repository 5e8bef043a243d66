"""Slow path: new connections/s and established packets/s through the full pipeline.

A real ``Switch`` with the vendor example 2 flows (``ct(table=1,nat)``,
``ct(commit,nat(src=1.1.1.16)),p0``, NORMAL for established):

* new connections: SYN (classifier, ct lookup miss, commit, SNAT allocation),
  SYN-ACK, ACK (established + assured: offload insert of both directions),
  each through ``Datapath.receive``; also the SYN alone;
* established packets with offload disabled (``hw-offload=false``), so every
  packet walks both tables and conntrack;
* a cProfile of both, top functions by own time (``--profile``).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import random
import sys

from bench.common import report, timeit
from bench.switchbench import data, establish, handshake, make_switch


def _new_conns(n: int, syn_only: bool):
    state = {}
    pkts = [p for c in range(n) for p in (handshake(c)[:1] if syn_only else handshake(c))]

    def setup():
        state["sw"], state["br"] = make_switch(True, max_offloaded=n)

    def run():
        sw, br = state["sw"], state["br"]
        recv = sw.datapath.receive
        for port, fr in pkts:
            recv(br, port, fr, 1000)
        return n

    return setup, run, state


def _established(n_conns: int, n_pkts: int):
    sw, br = make_switch(False)
    establish(sw, br, n_conns)
    rng = random.Random(3)
    pkts = [data(rng.randrange(n_conns), rng.random() < 0.5) for _ in range(n_pkts)]
    recv = sw.datapath.receive

    def run():
        for port, fr in pkts:
            recv(br, port, fr, 2000)
        return n_pkts

    return sw, run


def profile(fn, top: int = 14) -> list[str]:
    pr = cProfile.Profile()
    pr.enable()
    fn()
    pr.disable()
    s = io.StringIO()
    st = pstats.Stats(pr, stream=s)
    st.sort_stats("tottime").print_stats(top)
    out = []
    for line in s.getvalue().splitlines():
        line = line.rstrip()
        if line.strip() and (line.lstrip()[:1].isdigit() or "ncalls" in line or "function calls" in line):
            out.append("    " + line.replace("/work/main/src/ctswitch/", "").replace(str(sys.prefix), "<venv>"))
    return out


def main(argv: list[str]) -> list[str]:
    quick = "--quick" in argv
    n = 3000 if quick else 20_000
    lines = []
    setup, run, state = _new_conns(n, syn_only=False)
    t = timeit(run, runs=3, warmup=1, setup=setup)
    sw = state["sw"]
    lines.append(f"* new connections (SYN, SYN-ACK, ACK; commit, SNAT, offload of both directions), {n:,} conns: "
                 f"**{t.per_s(' conn/s')}**, {t.median / n / 3 * 1e6:.1f} µs per packet; "
                 f"offloaded {sw.offload.counters()['offloaded']:,}, tracked {len(sw.tracker):,}")
    setup2, run2, _ = _new_conns(n, syn_only=True)
    t2 = timeit(run2, runs=3, warmup=1, setup=setup2)
    lines.append(f"* first packet only (SYN: classifier, ct miss, commit, SNAT), {n:,} conns: "
                 f"**{t2.per_s(' conn/s')}**")
    nc, npk = (2000, 10_000) if quick else (100_000, 100_000)
    sw, run3 = _established(nc, npk)
    before = sw.datapath.stats["slow_path"]
    t3 = timeit(run3, runs=3, warmup=1)
    slow = sw.datapath.stats["slow_path"] - before
    lines.append(f"* established packets through the slow path (offload off), {nc:,} conns, 64 B: "
                 f"**{t3.per_s(' pkt/s')}**, {1e6 / t3.rate:.1f} µs per packet "
                 f"(slow-path packets counted: {slow:,} of {4 * npk:,})")
    if "--profile" in argv or not quick:
        lines.append("")
        lines.append("cProfile, established packets through the slow path (top by own time):")
        lines.append("")
        lines += profile(run3)
        lines.append("")
        lines.append("cProfile, new connections (top by own time):")
        lines.append("")
        setup(); lines += profile(run)  # noqa: E702
    return report("Slow path: new connections and established packets", "bench.bench_slowpath", argv, lines)


if __name__ == "__main__":
    main(sys.argv[1:])
