"""Fast path: Mpps of the batched Numba kernel, and of the reference ``Datapath._fast``.

Kernel: 1k / 100k / 1M connections (both directions in the table), 64 B and
1514 B frames, batches of 256 and 4096, rewrite in place (the buffer is
restored, untimed, before each run).  Every run must hit every frame, and a
sample of the output is checked with full checksum recomputation.

Reference: ``Datapath.receive`` one frame at a time on a real ``Switch`` with
the vendor SNAT flows, after the connections were established and offloaded
through the slow path (so every timed frame takes ``_fast``).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from bench.common import check_flags, report, timeit
from bench.traffic import bad_checksums, fill_table, make_frames

FLAGS = {  # the command line (common.check_flags; run_all passes each module only its own)
    "--quick": "a short pass (smaller sizes, fewer runs)",
    "--no-save": "print only, do not append to docs/benchmarks.md",
}

def kernel_rate(table, frames2d, pristine, in_ports, batch: int, runs: int):
    n, size = frames2d.shape
    buf = frames2d.reshape(-1)
    orig = pristine.reshape(-1)
    offs = np.arange(n, dtype=np.int64) * size
    lens = np.full(n, size, dtype=np.int64)
    outp = np.empty(n, dtype=np.int32)
    eids = np.empty(n, dtype=np.int64)
    hits = [0]

    def restore():
        buf[:] = orig

    def run():
        h = 0
        proc = table.process_range
        for i in range(0, n, batch):
            h += proc(buf, offs, lens, in_ports, 1000, outp, eids, start=i, stop=min(n, i + batch),
                      stop_on_miss=False)[1]
        hits[0] = h
        return n

    t = timeit(run, runs=runs, warmup=1, setup=restore)
    sample = [bytes(frames2d[i]) for i in range(0, n, max(1, n // 300))]
    return t, hits[0], bad_checksums(sample)


def main(argv: list[str]) -> list[str]:
    check_flags(argv, FLAGS, "bench_fastpath")
    quick = "--quick" in argv
    lines = ["| conns | frame | batch | Mpps (median, ±half-spread) | hits/frames | bad csum |",
             "|---|---|---|---|---|---|"]
    rates = {}
    sizes = (64, 1514)
    conn_counts = (1000, 100_000) if quick else (1000, 100_000, 1_000_000)
    for nc in conn_counts:
        t0 = time.perf_counter()
        table = fill_table(nc)
        fill_s = time.perf_counter() - t0
        print(f"table with {nc} conns ({2 * nc} entries) filled in {fill_s:.1f} s, "
              f"{table.nbytes / nc:.0f} B/conn of arrays")
        for size in sizes:
            n = (200_000 if quick else 1_000_000) if size == 64 else (50_000 if quick else 200_000)
            frames, in_ports, _c, _d = make_frames(n, nc, size)
            pristine = frames.copy()
            for batch in (256, 4096):
                t, hits, bad = kernel_rate(table, frames, pristine, in_ports, batch, 3 if quick else 5)
                rates[(nc, size, batch)] = t.rate
                lines.append(f"| {nc:,} | {size} B | {batch} | {t.mpps()} | {hits:,}/{n:,} | {bad} |")
                print(lines[-1])
        del table
    if (1_000_000, 64, 256) in rates:
        lines.append("")
        lines.append(f"1M vs 1k conns (64 B, batch 256): {rates[(1_000_000, 64, 256)] / rates[(1000, 64, 256)]:.0%} "
                     "(target >= 50%)")
    lines.append("")
    lines += reference_rates(quick)
    return report("Fast path: batched kernel vs reference Datapath._fast", "bench.bench_fastpath", argv, lines)


def reference_rates(quick: bool) -> list[str]:
    """The one-at-a-time reference path (pure Python), on the same kind of traffic."""
    try:
        from bench.switchbench import established_switch
    except ImportError as e:  # the datapath or its dependencies are not there yet
        return [f"Reference Datapath._fast: unavailable ({e})"]
    out = ["| reference `Datapath.receive` (fast path hits) | conns | frame | pkts/s |", "|---|---|---|---|"]
    for nc in ((1000,) if quick else (1000, 100_000)):
        sw, br, frames = established_switch(nc, 64, 20_000 if quick else 100_000)
        dp = sw.datapath
        recv = dp.receive
        def run(frames=frames, recv=recv, br=br, t=sw.now + 2000):
            for port, fr in frames:
                recv(br, port, fr, t)
            return len(frames)

        before = dp.stats["slow_path"]
        t = timeit(run, runs=3, warmup=1)
        slow = dp.stats["slow_path"] - before
        out.append(f"| fast path | {nc:,} | 64 B | {t.per_s(' pkt/s')}; slow-path packets during the runs: {slow} |")
        print(out[-1])
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
