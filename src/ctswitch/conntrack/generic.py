"""Generic tracking for protocols without a tracker (kernel nf_conntrack_proto_generic).

Theory of operation
-------------------
Addresses only (ports 0); every packet refreshes ``generic_timeout`` (600 s).
"""

from __future__ import annotations

from .conn import Conn

ACCEPT = 0


def new(pkt, t) -> bool:
    return True


def packet(conn: Conn, d: int, pkt, t, now: int) -> tuple[int, int, int]:
    return ACCEPT, t.generic, 0
