"""The cyclic garbage collector while packets flow (replay, live daemon).

A slow-path packet builds a few dozen short-lived objects (parsed packet, flow keys, the
translation) that die by reference count within the packet, yet count towards the 700
allocations that trigger a young-generation collection; each collection also walks the
survivors.  ``packet_gc()`` raises the young-generation threshold to ``PACKET_GC_GEN0`` and the
two older ones to ``PACKET_GC_OLDER`` (never lowering any) while it is entered, and restores the
previous thresholds on exit, also on error (the vendor replays gained
3-5 %, measured A/B; ``bench/bench_slowpath.py`` times its loops under it as well).

What is left (session 6, compiled core, CPython 3.11; ``gc.callbacks`` timing in CPU seconds,
after a warm-up): the 10k-connection vendor replay spends 0.018 s of its 0.96 s in 6 young
collections; the 100k one 0.23-0.26 s of 8.6 s (2.6-3 %) in 48 young and 4 middle collections
and no full one.  CPython collects the oldest generation only when the objects promoted since
its last collection exceed a quarter of it, so the long-lived connection objects are not walked
over and over: ``gc.freeze()`` of what exists before a replay gains nothing (0.28 s), nor do
raised older thresholds (20000/100/100: 0.19 s).  A young threshold of 100 000 halves the GC time
(0.12 s, about 1 % of the 100k replay), as does disabling the collector (0.12 s then goes to the
collection after the replay): under the 3 % a change must gain.  Connections that pile up
(a burst of new connections, ``bench_slowpath``'s 20k handshakes) are another matter: each young
collection promotes them, and with CPython's older thresholds (10, 10) the middle and oldest
generations are collected every 10 young collections, walking them all; ``PACKET_GC_OLDER`` (100)
makes those ten times rarer: ``bench_slowpath``'s new connections spent 6-9 % of their CPU time in
the collector with 20000/10/10 and 2-3 % with 20000/100/100 (``gc.callbacks``, two runs each), a
4-7 % faster loop; the young threshold is no lever there (50 000 or 100 000: 24-33 % in GC).

A replay makes no reference cycles per packet or per connection (any loop, compiled or pure;
``gc.DEBUG_SAVEALL``; compiled, the closure in ``Timeouts.__init__`` is a 2-object cycle per
``Timeouts``, once per tracker and parameter change): memory is bounded by reference counting
alone whatever the thresholds (the 100k replay's peak RSS is 416-420 MB with each of the
policies above), and the collector's work is walking the young tracked objects (connections,
offload records, fast-path entries, their keys).  ``tests/integration/test_replay_gc.py``.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

PACKET_GC_GEN0 = 20_000  # the young-generation threshold while packets flow (CPython's default: 700)
PACKET_GC_OLDER = 100  # the two older generations' thresholds (CPython's default: 10, 10)


@contextmanager
def packet_gc() -> Iterator[None]:
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], PACKET_GC_GEN0), *(max(t, PACKET_GC_OLDER) for t in old[1:]))
    try:
        yield
    finally:
        gc.set_threshold(*old)
