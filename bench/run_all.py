"""Runs every benchmark (``make bench``); ``--quick`` for a short pass. Results go to docs/benchmarks.md."""

from __future__ import annotations

import importlib
import sys
import time

MODULES = ("bench_classifier", "bench_fastpath", "bench_slowpath", "bench_memory")


def main(argv: list[str]) -> int:
    only = [a for a in argv if not a.startswith("--")]
    flags = [a for a in argv if a.startswith("--")]
    for name in MODULES:
        if only and name not in only:
            continue
        t0 = time.perf_counter()
        mod = importlib.import_module(f"bench.{name}")
        mod.main(list(flags))
        print(f"-- {name} took {time.perf_counter() - t0:.0f} s\n")
    if "bench_replay" not in MODULES:
        try:
            mod = importlib.import_module("bench.bench_replay")
        except ImportError:
            return 0
        if not only or "bench_replay" in only:
            mod.main(list(flags))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
