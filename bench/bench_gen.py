"""Benchmark: traffic generator speed (packets per second written).

    .venv/bin/python bench/bench_gen.py [--packets 10000000] [--conns 10000]

Times the --perf shape (NumPy bulk, 64 B and 1514 B data frames) and the
template-based functional scenario path, writing into a temp directory.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from ctswitch.gen import Scenario, generate_perf, write


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=10_000_000)
    ap.add_argument("--conns", type=int, default=10_000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        for size in (64, 1514):
            n = a.packets if size == 64 else a.packets // 5
            t0 = time.perf_counter()
            meta = generate_perf(d, n, a.conns, size, snat="1.1.1.16")
            dt = time.perf_counter() - t0
            print(f"perf {size:4d} B: {meta['packets']:>10,} packets in {dt:6.2f} s = {meta['packets'] / dt / 1e6:5.2f} Mpps")
        sc = Scenario(tcp=20_000, data=4, size=128, udp=2000, udp_requests=2, icmp=1000, snat="1.1.1.16")
        t0 = time.perf_counter()
        counts = write(sc, d)
        dt = time.perf_counter() - t0
        tot = sum(counts.values())
        print(f"scenario:   {tot:>10,} packets in {dt:6.2f} s = {tot / dt / 1e6:5.2f} Mpps")


if __name__ == "__main__":
    main()
