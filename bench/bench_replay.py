"""Replay of the vendor SNAT scenario (example 2), the performance issue's benchmark 1.

Traffic: ``ctswitch gen --perf`` (the OVS oracle's shape: handshake, data both ways, FIN close,
replies >= 1024 packets after their request, 64-byte frames), 1M packets over 10k and over
100k connections.  The switch: bridge ctBr, ports p0 and pf0hpf, vendor example 2 flows
(secure fail mode, so the 1024 filler frames are dropped, as in the oracle), hw-offload on.

Reference: real OVS 3.1 userspace, ``ovs-vswitchd-dpdk`` with DPDK pcap ports and one PMD core,
run in the same invocation on the same pcaps (``bench.ovs_dpdk``: private ovsdb/vswitchd in a
temp dir, the oracle's method of shared/oracle/README.md §2), three runs interleaved with
ctswitch's three, median of each; its rate is packets over the wall clock from the first to
the last rx counted, plus OVS' own PMD cycles per packet.  When ``ovs-vswitchd-dpdk`` is not
installed (``apt-get install openvswitch-switch-dpdk``; ``make bench`` does it), when
``--no-ovs`` is given or when a run fails, the ratio is against the figures recorded earlier
with that method on the oracle's machine, 1.31 Mpps (10k conns) and 1.17 Mpps (100k), and
the section says so.

With ``--by-kind``, one more run per size times each frame that leaves the batch kernel for the
per-frame path (``Datapath.receive``: the slow path, and a FIN's teardown of its cached decision) and
sorts those frames by kind: sender, TCP flags and what the frame did (offloaded its connection, tore
its offload down, or neither), so the table says which packets of a connection cost what.

    python -m bench.bench_replay [--quick] [--no-save] [--no-ovs] [--by-kind]
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time

from bench.common import check_flags, report
from ctswitch.control.vendor import EXAMPLE2 as FLOWS

# (rx-window pkt/s, PMD cycles/pkt) recorded with the same method, shared/oracle/README.md §2
OVS_RECORDED = {10_000: (1.31e6, 1982), 100_000: (1.17e6, 2260)}


FLAGS = {  # the command line (common.check_flags; run_all passes each module only its own)
    "--quick": "a short pass (smaller sizes, fewer runs)",
    "--no-save": "print only, do not append to docs/benchmarks.md",
    "--no-ovs": "no OVS DPDK run: the ratio is against the recorded figures",
    "--by-kind": "one more run per size timing each per-frame call by the kind of frame",
}

def _switch():
    from ctswitch.control import ofctl
    from ctswitch.datapath.switch import Switch
    sw = Switch()
    br = sw.add_bridge("ctBr", "secure")
    br.add_port("p0")
    br.add_port("pf0hpf")
    sw.params.set("other_config:hw-offload", True)
    for f in FLOWS:
        assert ofctl.run(sw, ["add-flow", "ctBr", f]).code == 0
    return sw


def run_one(d: str, conns: int, packets: int, mode: str = "auto") -> tuple[float, int, dict]:
    from ctswitch.io.replay import replay
    sw = _switch()
    t0 = time.perf_counter()
    s = replay(sw, "ctBr", [("pf0hpf", f"{d}/pf0hpf.pcap"), ("p0", f"{d}/p0.pcap")], mode=mode)
    dt = time.perf_counter() - t0
    st = sw.datapath.stats
    return dt, s.packets, {"fast": st["fast_hw"] + st["fast_sw"], "slow": st["slow_path"],
                           "conns": sw.tracker.created}


_FLAGS = {0x02: "SYN", 0x12: "SYN-ACK", 0x10: "ACK", 0x18: "PSH-ACK", 0x11: "FIN-ACK", 0x19: "FIN-PSH-ACK",
          0x04: "RST", 0x14: "RST-ACK", 0x01: "FIN"}


def by_kind(d: str) -> tuple[list[str], float, float]:
    """One replay of the pcaps in ``d`` with ``Datapath.receive`` timed per call (``--by-kind``).

    Returns the table's rows (kind, frames, microseconds per frame, share of the run), the run's
    seconds and the seconds inside the per-frame calls.  A frame's kind is its sender (the port),
    its TCP flags (or "not TCP") and its effect on the offload counters; the classification runs
    outside the timed call, and the timer itself adds about 0.1 us per frame.
    """
    from ctswitch.io.replay import replay
    from ctswitch.packet import codec
    sw = _switch()
    dp, stats = sw.datapath, sw.offload.stats
    names = {p.ofport: p.name for p in sw.bridges["ctBr"].ports.values()}
    inner = dp.receive
    pc = time.perf_counter
    acc: dict[tuple, list] = {}

    def timed(bridge, in_port, frame, now, _kernel_miss=False):
        off, torn = stats["offloaded"], stats["torn_down"]
        t = pc()
        out = inner(bridge, in_port, frame, now, _kernel_miss)
        dt = pc() - t
        p = codec.parse(frame)
        flags = _FLAGS.get(p.tcp_flags, f"flags {p.tcp_flags:#x}") if p.nw_proto == 6 else "not TCP"
        effect = ("offloads its connection" if stats["offloaded"] > off else
                  "tears its offload down" if stats["torn_down"] > torn else "")
        a = acc.setdefault((names.get(in_port, str(in_port)), flags, effect), [0, 0.0])
        a[0] += 1
        a[1] += dt
        return out

    dp.receive = timed  # an instance attribute: the batch path calls it for every per-frame packet
    t0 = pc()
    replay(sw, "ctBr", [("pf0hpf", f"{d}/pf0hpf.pcap"), ("p0", f"{d}/p0.pcap")])
    total = pc() - t0
    inside = sum(a[1] for a in acc.values())
    rows = [f"| {port} | {flags}{' (' + eff + ')' if eff else ''} | {n:,} | {1e6 * t / n:.2f} | "
            f"{100 * t / total:.1f}% |"
            for (port, flags, eff), (n, t) in sorted(acc.items(), key=lambda x: -x[1][1])]
    return rows, total, inside


def _ovs_run(d: str):
    """One OVS DPDK run on the pcaps in ``d``: (DpdkRun, None), or (None, why it failed)."""
    from bench import ovs_dpdk
    try:
        return ovs_dpdk.measure(d, FLOWS), None
    except (ovs_dpdk.DpdkError, RuntimeError, OSError, subprocess.SubprocessError) as e:
        return None, str(e).splitlines()[0][:300]


def main(argv: list[str] | None = None) -> int:
    argv = argv or []
    check_flags(argv, FLAGS, "bench_replay")
    from bench import ovs_dpdk
    from ctswitch.gen import cli_main
    quick = "--quick" in argv
    packets = 200_000 if quick else 1_000_000
    runs = 1 if quick else 3
    no_ovs = "--no-ovs given" if "--no-ovs" in argv else ovs_dpdk.dpdk_missing()
    load = os.getloadavg()
    lines = ["| connections | packets | ctswitch pkt/s | fast path share | slow-path packets | "
             f"OVS 3.1 DPDK pkt/s ({'recorded' if no_ovs else 'this run'}) | OVS cycles/pkt | ratio |",
             "|---|---|---|---|---|---|---|---|"]
    notes: list[str] = []
    kinds: list[tuple] = []
    for conns in (10_000, 100_000):
        d = tempfile.mkdtemp(prefix="ctsw-bench-replay-")
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                cli_main([d, "--perf", "--packets", str(packets), "--conns", str(conns), "--size", "64",
                          "--snat", "1.1.1.16"])
            results, ovs_runs, failed = [], [], None
            for _ in range(runs):  # interleaved, so both see the same machine
                if no_ovs is None and failed is None:
                    r, failed = _ovs_run(d)
                    if r is not None:
                        ovs_runs.append(r)
                results.append(run_one(d, conns, packets))
            results.sort(key=lambda r: r[0])
            dt, n, c = results[len(results) // 2]
            rate = n / dt
            runs_note = "/".join(f"{r[1] / r[0] / 1e6:.2f}" for r in results)
            if ovs_runs and failed is None:
                ovs_runs.sort(key=lambda r: r.pps)
                o = ovs_runs[len(ovs_runs) // 2]
                ovs, cpp = o.pps, f"{o.cycles_per_pkt:,.0f}"
                notes.append(f"{conns:,} connections: ctswitch runs {runs_note} Mpps; OVS runs "
                             + "/".join(f"{r.pps / 1e6:.2f}" for r in ovs_runs) + " Mpps "
                             + "(" + "/".join(f"{r.cycles_per_pkt:,.0f}" for r in ovs_runs) + " cycles/pkt, "
                             + f"{o.us_per_pkt:.2f} us/pkt at the median), {o.packets:,} packets, tx {o.tx:,}, "
                             f"{o.conns:,} connections tracked: checks passed.")
                src = ""
            else:
                ovs, cycles = OVS_RECORDED[conns]
                cpp, src = f"{cycles:,}", " (recorded)" if no_ovs is None else ""
                if failed is not None:
                    notes.append(f"{conns:,} connections: the OVS DPDK run failed ({failed}); "
                                 "ratio against the recorded figure.")
                notes.append(f"{conns:,} connections: ctswitch runs {runs_note} Mpps.")
            lines.append(f"| {conns:,} | {n:,} | {rate:,.0f} | {100 * c['fast'] / n:.1f}% | {c['slow']:,} | "
                         f"{ovs / 1e6:.2f} Mpps{src} | {cpp} | {rate / ovs:.2f}x |")
            if "--by-kind" in argv:
                rows, total, inside = by_kind(d)
                kinds.append((conns, rows, total, inside))
        finally:
            shutil.rmtree(d, ignore_errors=True)
    lines.append("")
    lines.append(f"Median of {runs} runs, the vectorized replay loop (frames in NumPy arrays, "
                 "Numba fast path, megaflow-cached slow path); ratio = ctswitch pkt/s / OVS pkt/s. "
                 f"Load average at the start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 vCPUs).")
    if no_ovs is None:
        lines.append(f"OVS: {ovs_dpdk.version()}, userspace datapath and conntrack, DPDK net_pcap ports "
                     "(rx_pcap = the same pcaps, tx_pcap=/dev/null), no hugepages, one PMD on core 1, "
                     "the rest and the poller on core 0; a fresh private instance per run, interleaved "
                     "with ctswitch's runs. Rate: packets over the wall clock from the first to the last rx "
                     "counted (`dpctl/show -s` every 1 ms); cycles/pkt: `dpif-netdev/pmd-stats-show` "
                     "processing cycles over packets received. Median run by rate.")
    else:
        lines.append(f"OVS 3.1 DPDK did not run ({no_ovs}), so the OVS figures are the ones recorded "
                     "earlier with the same method and traffic shape (shared/oracle/README.md §2; that "
                     "machine reported an Intel Xeon VM at 2.6 GHz).")
    lines += [""] + [f"* {n}" for n in notes]
    for conns, rows, total, inside in kinds:
        lines += ["", f"Frames that left the batch kernel, {conns:,} connections (`--by-kind`: one more run, "
                  f"{total:.3f} s, of which {inside:.3f} s ({100 * inside / total:.0f}%) in these per-frame calls; "
                  "the rest is the reader, the windows, the batch kernel and its sync):", "",
                  "| sender | kind | frames | us per frame | share of the run |", "|---|---|---|---|---|"] + rows
    report("Replay of the vendor SNAT scenario (example 2), 64 B frames", "bench.bench_replay", argv, lines)
    return 0

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
