"""ICMP / ICMPv6 tracking (kernel nf_conntrack_proto_icmp{,v6}).

Theory of operation
-------------------
Only query messages (echo, timestamp, info, address mask; ICMPv6 echo) create
an entry; the reply (type from ``tuples.ICMP_REPLY_TYPE``) matches the reply
tuple by id.  Every packet refreshes the 30 s timeout.  Error messages
(destination unreachable, time exceeded...) are not handled here: the tracker
looks up the connection quoted inside them and marks them related
(``+rel``), or invalid when nothing matches.
"""

from __future__ import annotations

from .conn import Conn
from .tuples import ICMP_REPLY_TYPE, ICMPV6_REPLY_TYPE

ACCEPT = 0


def new(pkt, t) -> bool:
    table = ICMP_REPLY_TYPE if pkt.nw_proto == 1 else ICMPV6_REPLY_TYPE
    return pkt.tp_src in table


def packet(conn: Conn, d: int, pkt, t, now: int) -> tuple[int, int, int]:
    return ACCEPT, (t.icmp if conn.proto == 1 else t.icmpv6), 0
