"""UDP tracking (kernel nf_conntrack_proto_udp).

Theory of operation
-------------------
Until a reply is seen every packet refreshes the entry to ``udp_timeout``
(30 s) and listings show ``[UNREPLIED]``.  Once SEEN_REPLY is set (the tracker
sets it after the first reply packet has been handled) packets refresh to
30 s, and once the entry is older than 2 s (``stream_ts``) to
``udp_timeout_stream`` (120 s) and the entry becomes ASSURED.
"""

from __future__ import annotations

from .conn import EV_ASSURED, IPS_ASSURED, IPS_SEEN_REPLY, UDP_STREAM_AFTER_MS, Conn

ACCEPT = 0


def new(pkt, t) -> bool:
    return True


def packet(conn: Conn, d: int, pkt, t, now: int) -> tuple[int, int, int]:
    if conn.status & IPS_SEEN_REPLY:
        if now > conn.created + UDP_STREAM_AFTER_MS:  # conn.stream_ts
            if not conn.status & IPS_ASSURED:
                conn.status |= IPS_ASSURED
                return ACCEPT, t.udp_stream, EV_ASSURED
            return ACCEPT, t.udp_stream, 0
        return ACCEPT, t.udp, 0
    return ACCEPT, t.udp, 0
