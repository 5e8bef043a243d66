"""The L4 tracker registry: protocol number -> handler module.

Theory of operation
-------------------
Each handler module has ``new(pkt, timeouts) -> bool`` (may this packet create
an entry?) and ``packet(conn, direction, pkt, timeouts, now) -> (result,
timeout_ms, events)``.  TCP differs: its connections are ``TcpConn`` records
and ``tcp.init(conn, pkt, loose)`` fills their TCP fields (False: invalid);
the tracker calls it directly.  Unknown protocols use ``generic`` (ports are ignored, as the
kernel's generic tracker does).
"""

from __future__ import annotations

from types import ModuleType

from . import generic, icmp, tcp, udp

REGISTRY: dict[int, ModuleType] = {6: tcp, 17: udp, 1: icmp, 58: icmp}
DEFAULT = generic

# Protocols whose tuples carry ports.
PORTED = frozenset((6, 17, 132, 136, 33))


def handler(proto: int) -> ModuleType:
    return REGISTRY.get(proto, DEFAULT)
