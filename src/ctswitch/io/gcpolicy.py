"""The cyclic garbage collector while packets flow (replay, live daemon).

A slow-path packet builds a few dozen short-lived objects (parsed packet, flow keys, the
translation) that die by reference count within the packet, yet count towards the 700
allocations that trigger a young-generation collection; each collection also walks the
survivors, and the older generations' collections walk every long-lived connection object.
``packet_gc()`` raises the young-generation threshold to ``PACKET_GC_GEN0`` while it is
entered and restores the previous thresholds on exit, also on error (the vendor replays gained
3-5 %, measured A/B; ``bench/bench_slowpath.py`` times its loops under it as well).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

PACKET_GC_GEN0 = 20_000  # the young-generation threshold while packets flow (CPython's default: 700)


@contextmanager
def packet_gc() -> Iterator[None]:
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], PACKET_GC_GEN0), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)
