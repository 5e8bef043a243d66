"""Live clock: switch time in milliseconds from the monotonic clock.

Theory of operation
-------------------
In live mode the switch clock is the wall clock's *rate* with the switch's
own origin: ``LiveClock(start_ms)`` returns ``start_ms`` plus the monotonic
milliseconds elapsed since it was made.  The daemon starts it at the stored
``switch.now`` so that every deadline already in the state (conntrack
timeouts, offload idle times, flow timeouts) keeps its meaning; time while no
daemon ran does not count (as if the host had been suspended).  The monotonic
clock never jumps with NTP or ``date -s``.
"""

from __future__ import annotations

import time


class LiveClock:
    """``now()`` -> int ms, never decreasing."""

    __slots__ = ("start_ms", "mono0")

    def __init__(self, start_ms: int = 0) -> None:
        self.start_ms = int(start_ms)
        self.mono0 = time.monotonic_ns()

    def now(self) -> int:
        return self.start_ms + (time.monotonic_ns() - self.mono0) // 1_000_000
