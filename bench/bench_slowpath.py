"""Slow path: new connections/s and established packets/s through the full pipeline.

A real ``Switch`` with the vendor example 2 flows (``ct(table=1,nat)``,
``ct(commit,nat(src=1.1.1.16)),p0``, NORMAL for established):

* new connections: SYN (classifier, ct lookup miss, commit, SNAT allocation),
  SYN-ACK, ACK (established + assured: offload insert of both directions, and the datapath
  decisions of both: the ACK's own and the reply's, predicted), each through
  ``Datapath.receive``; the same followed by a first data packet each way (both hardware
  hits); also the SYN alone;
* established packets with offload disabled (``hw-offload=false``), so every
  packet walks both tables and conntrack;
* a cProfile of both, top functions by own time (``--profile``; as pure Python only: cProfile
  sees no frames inside the compiled core, so a compiled run says so instead);
* every timed loop runs under ``io.gcpolicy.packet_gc`` (the GC thresholds the
  replay and the live daemon use while packets flow);
* with ``--split``, the microseconds per packet of each stage (parse, key, translate and the
  tracker inside it, emit, offload), each stage's function timed by a wrapper.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import random
import sys

from bench.common import check_flags, report, timeit
from bench.switchbench import data, establish, handshake, make_switch
from ctswitch import _native
from ctswitch.io.gcpolicy import PACKET_GC_GEN0, PACKET_GC_OLDER, packet_gc

FLAGS = {  # the command line (common.check_flags; run_all passes each module only its own)
    "--quick": "a short pass (smaller sizes, fewer runs)",
    "--no-save": "print only, do not append to docs/benchmarks.md",
    "--profile": "cProfile of the loops (as pure Python: CTSWITCH_PURE=1)",
    "--split": "microseconds per packet in each stage",
}

def _new_conns(n: int, syn_only: bool, with_data: bool = False):
    state = {}
    pkts = [p for c in range(n)
            for p in (handshake(c)[:1] if syn_only else handshake(c) + ([data(c, False), data(c, True)]
                                                                         if with_data else []))]

    def setup():
        state["sw"], state["br"] = make_switch(True, max_offloaded=n)

    def run():
        sw, br = state["sw"], state["br"]
        recv = sw.datapath.receive
        with packet_gc():  # as the replay and the live daemon run packets
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
        with packet_gc():
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


def stage_split(run, sw) -> list[str]:
    """Microseconds per packet in each stage of ``Datapath.receive`` (``--split``): each stage's
    function wrapped by a perf_counter timer for one run (the wrappers add ~0.2 us per call, so
    the stages sum to more than the unwrapped total; nested stages are inside their parent).  In the
    compiled core the datapath calls the parse and the translation in C: their lines come only with
    CTSWITCH_PURE=1."""
    import time

    import ctswitch.datapath.datapath as D

    acc: dict[str, float] = {}
    pc = time.perf_counter
    undo = []

    def wrap(obj, name, label):
        f = getattr(obj, name)

        def w(*a, **k):
            t = pc()
            r = f(*a, **k)
            acc[label] = acc.get(label, 0.0) + pc() - t
            return r
        setattr(obj, name, w)
        undo.append((obj, name, f))

    dp = sw.datapath
    wrap(sw.tracker, "process", "  Tracker.process (inside translate)")
    if sw.offload is not None:
        wrap(sw.offload, "consider", "OffloadManager.consider")
    wrap(dp, "_emit", "Datapath._emit (NAT rewrite included)")
    wrap(dp, "_maybe_cache", "Datapath._maybe_cache (offload insert into the caches)")
    wrap(dp, "_cache_peer", "Datapath._cache_peer (the reply direction, predicted)")
    # (the datapath calls the translation, the parse and the rewrite by the names it imported;
    # compiled, those are C calls no wrapper sees: their stages are timed only as Python)
    wrap(D, "_replay", "xlate.translate (pipeline + conntrack)")
    wrap(D, "parse", "codec.parse")
    wrap(D, "extract", "flow key extract")
    t = pc()
    n = run()
    total = pc() - t
    for obj, name, f in reversed(undo):
        if obj is sw.tracker or obj is sw.offload or obj is dp:
            delattr(obj, name)  # the instance attribute goes; the class method shows again
        else:
            setattr(obj, name, f)
    out = [f"    {'total (wrapped)':56s} {1e6 * total / n:6.2f}"]
    out += [f"    {k:56s} {1e6 * v / n:6.2f}" for k, v in sorted(acc.items(), key=lambda x: -x[1])]
    return out


def main(argv: list[str]) -> list[str]:
    check_flags(argv, FLAGS, "bench_slowpath")
    quick = "--quick" in argv
    n = 3000 if quick else 20_000
    lines = []
    setup, run, state = _new_conns(n, syn_only=False)
    t = timeit(run, runs=3, warmup=1, setup=setup)
    sw = state["sw"]
    lines.append(f"* new connections (SYN, SYN-ACK, ACK; commit, SNAT, offload of both directions), {n:,} conns: "
                 f"**{t.per_s(' conn/s')}**, {t.median / n / 3 * 1e6:.1f} µs per packet; "
                 f"offloaded {sw.offload.counters()['offloaded']:,}, tracked {len(sw.tracker):,}")
    setup5, run5, state5 = _new_conns(n, syn_only=False, with_data=True)
    t5 = timeit(run5, runs=3, warmup=1, setup=setup5)
    st5 = state5["sw"].datapath.stats
    lines.append(f"* connections with a first data packet each way (the handshake, then host -> remote and "
                 f"remote -> host: {st5['slow_path'] - 2:,} of {5 * n + 2:,} frames on the slow path, "
                 f"{st5['fast_hw']:,} hardware hits), {n:,} conns: **{t5.per_s(' conn/s')}**")
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
    lines.append(f"* every timed loop runs under `io.gcpolicy.packet_gc` (GC thresholds {PACKET_GC_GEN0:,}/"
                 f"{PACKET_GC_OLDER}/{PACKET_GC_OLDER}, as the replay and the live daemon run packets)")
    if _native.active() and ("--profile" in argv or not quick):
        lines += ["", "No cProfile: it sees no frames inside the compiled core; "
                  "`CTSWITCH_PURE=1 python -m bench.bench_slowpath --profile` profiles the same code as Python."]
    elif "--profile" in argv or not quick:
        lines.append("")
        lines.append("cProfile, established packets through the slow path (top by own time):")
        lines.append("")
        lines += profile(run3)
        lines.append("")
        lines.append("cProfile, new connections (top by own time):")
        lines.append("")
        setup(); lines += profile(run)  # noqa: E702
    if "--split" in argv:
        lines += ["", "Where a packet's time goes (us per packet, stage timers; established, then new "
                  "connections per packet):", ""]
        sw4, run4 = _established(nc, npk)
        lines += stage_split(run4, sw4)
        lines.append("")
        setup()
        lines += stage_split(lambda: run() * 3, state["sw"])
    return report("Slow path: new connections and established packets", "bench.bench_slowpath", argv, lines)


if __name__ == "__main__":
    main(sys.argv[1:])
