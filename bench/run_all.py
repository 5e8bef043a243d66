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
    names = modules()
    only = [a for a in argv if not a.startswith("-")]
    flags = [a for a in argv if a.startswith("-")]
    if "-h" in flags or "--help" in flags:
        print(f"usage: python -m bench.run_all [options] [{'|'.join(names)}...]; "
              "each option goes to the modules that take it (python -m bench.<name> --help)")
        return 0
    bad = [a for a in only if a not in names]
    if bad:
        print(f"bench.run_all: no benchmark named {bad[0]!r} (have: {', '.join(names)})", file=sys.stderr)
        return 2
    mods = {name: importlib.import_module(f"bench.{name}") for name in names if not only or name in only}
    known = {f for mod in mods.values() for f in getattr(mod, "FLAGS", ())}
    bad = [f for f in flags if f not in known]
    if bad:
        print(f"bench.run_all: unknown option {bad[0]!r} (the selected benchmarks take: "
              f"{', '.join(sorted(known))})", file=sys.stderr)
        return 2
    for name, mod in mods.items():
        t0 = time.perf_counter()
        if inspect.signature(mod.main).parameters:
            mod.main([f for f in flags if f in getattr(mod, "FLAGS", ())])
        else:
            mod.main()
        print(f"-- {name} took {time.perf_counter() - t0:.0f} s\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
