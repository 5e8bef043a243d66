"""Runs every benchmark (``make bench``); ``--quick`` for a short pass. Results go to docs/benchmarks.md.

Runs the modules below first, then any other ``bench/bench_*.py`` (alphabetically).
A module's ``main`` takes the argv flags when it accepts an argument, else nothing.
Positional arguments select modules by name (``python -m bench.run_all bench_fastpath``).
"""

from __future__ import annotations

import importlib
import inspect
import sys
import time
from pathlib import Path

FIRST = ("bench_classifier", "bench_fastpath", "bench_slowpath", "bench_memory", "bench_replay")


def modules() -> list[str]:
    found = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    return [m for m in FIRST if m in found] + [m for m in found if m not in FIRST]


def main(argv: list[str]) -> int:
    only = [a for a in argv if not a.startswith("--")]
    flags = [a for a in argv if a.startswith("--")]
    for name in modules():
        if only and name not in only:
            continue
        t0 = time.perf_counter()
        mod = importlib.import_module(f"bench.{name}")
        if inspect.signature(mod.main).parameters:
            mod.main(list(flags))
        else:
            mod.main()
        print(f"-- {name} took {time.perf_counter() - t0:.0f} s\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
