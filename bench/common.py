"""Shared helpers of the benchmarks: machine facts, timing, result log.

Theory of operation
-------------------
* ``timeit(fn, runs, warmup)`` calls ``fn`` ``warmup`` times untimed, then
  ``runs`` times; the figure is the median, the spread (max - min) / median is
  printed next to it (it is 2-20 % on a shared 2-vCPU VM: treat differences
  under 15 % as ties).  ``fn`` may return a number of items; rates use it.
* ``machine()`` gathers CPU model, cores, Python and numpy/numba versions.
* ``append_result(title, command, lines)`` APPENDS one section to
  ``docs/benchmarks.md`` (never rewrites earlier ones) and prints it.
* Every benchmark module has ``main(argv) -> list[str]`` and can be run
  alone: ``python -m bench.bench_fastpath [--quick]``.
"""

from __future__ import annotations

import datetime
import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "benchmarks.md"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(mod: str) -> str:
    try:
        m = __import__(mod)
        return getattr(m, "__version__", "?")
    except ImportError:
        return "not installed"


def machine() -> str:
    """One line describing the machine and the interpreter."""
    from ctswitch import _native
    return (f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()} "
            f"({platform.python_implementation()}), numpy {_version('numpy')}, numba {_version('numba')}, "
            f"{platform.system()} {platform.release()}; {_native.status()}")


@dataclass
class Timing:
    median: float  # seconds per run
    spread: float  # (max - min) / median
    items: int  # items processed per run (1 when fn returned nothing)
    runs: list[float]

    @property
    def rate(self) -> float:
        return self.items / self.median if self.median > 0 else float("inf")

    def mpps(self) -> str:
        return f"{self.rate / 1e6:.2f} Mpps (±{self.spread * 50:.0f}%)"

    def per_s(self, unit: str = "/s") -> str:
        return f"{self.rate:,.0f}{unit} (±{self.spread * 50:.0f}%)"


def timeit(fn: Callable[[], int | None], runs: int = 5, warmup: int = 1,
           setup: Callable[[], None] | None = None) -> Timing:
    """Median of ``runs`` timed calls after ``warmup`` calls; ``setup`` runs untimed before each."""
    for _ in range(warmup):
        if setup is not None:
            setup()
        fn()
    times = []
    items = 1
    for _ in range(runs):
        if setup is not None:
            setup()
        gc.collect()
        t0 = time.perf_counter()
        r = fn()
        times.append(time.perf_counter() - t0)
        if isinstance(r, int) and r > 0:
            items = r
    med = statistics.median(times)
    return Timing(med, (max(times) - min(times)) / med if med else 0.0, items, times)


def rss_bytes() -> int:
    """Resident set size of this process, from /proc (0 when unavailable)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def append_result(title: str, command: str, lines: list[str], path: Path = RESULTS) -> str:
    """Appends a section (date, machine, command, figures) to docs/benchmarks.md; returns it."""
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    text = [f"## {title} ({now})", "", f"* Machine: {machine()}", f"* Command: `{command}`", ""]
    text += lines
    text.append("")
    section = "\n".join(text) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        path.write_text("# Benchmark results\n\nEach section is appended by a benchmark run "
                        "(`make bench` or `python -m bench.<name>`); earlier sections are never "
                        "rewritten.\n\n")
    with path.open("a") as f:
        f.write(section)
    return section


def command_line() -> str:
    return "python -m " + Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else "python"


def check_flags(argv: list[str], flags: dict[str, str], module: str, positional: tuple[str, ...] = ()) -> None:
    """Checks a benchmark's command line before it runs: ``-h``/``--help`` prints the usage and
    exits 0; an unknown option (or a positional argument not in ``positional``) exits 2 with a
    one-line error.  ``flags``: option -> what it does."""
    usage = f"usage: python -m bench.{module} " + " ".join(f"[{f}]" for f in flags) + (
        f" [{'|'.join(positional)}...]" if positional else "")
    if "-h" in argv or "--help" in argv:
        print(usage)
        for f, what in flags.items():
            print(f"  {f:<12} {what}")
        raise SystemExit(0)
    for a in argv:
        if a not in flags and (a.startswith("-") or a not in positional):
            print(f"bench.{module}: unknown {'option' if a.startswith('-') else 'argument'} {a!r} ({usage})",
                  file=sys.stderr)
            raise SystemExit(2)


def report(title: str, module: str, argv: list[str], lines: list[str], save: bool = True) -> list[str]:
    """Prints the figures and (unless ``--no-save``) appends them to docs/benchmarks.md."""
    print(f"== {title}")
    for ln in lines:
        print(ln)
    if save and "--no-save" not in argv:
        append_result(title, f"python -m {module} {' '.join(argv)}".strip(), lines)
    return lines
