"""Lookup keys of connection tuples.

Theory of operation
-------------------
The tracker keeps one dict from key to Conn holding both directions of every
confirmed connection.  A key is a plain tuple
``(zone, ip_ver, proto, src, dst, sport, dport)`` of ints: hashable, built
once per packet, compared by value.  ICMP keys use ``sport = id`` and
``dport = type << 8 | code``; the reply of an echo request has the reply type
(``ICMP_REPLY_TYPE``).
"""

from __future__ import annotations

# request type -> reply type (ICMPv4 echo/timestamp/info/mask, ICMPv6 echo).
ICMP_REPLY_TYPE = {8: 0, 13: 14, 15: 16, 17: 18}
ICMPV6_REPLY_TYPE = {128: 129}
# Both ways, for inverting either tuple of a connection.
_ICMP_INV = {**ICMP_REPLY_TYPE, **{v: k for k, v in ICMP_REPLY_TYPE.items()}}
_ICMPV6_INV = {**ICMPV6_REPLY_TYPE, **{v: k for k, v in ICMPV6_REPLY_TYPE.items()}}
# ICMP types that are errors quoting another packet.
ICMP_ERROR_TYPES = frozenset((3, 4, 5, 11, 12))
ICMPV6_ERROR_TYPES = frozenset((1, 2, 3, 4))


def make_key(zone: int, ip_ver: int, proto: int, t: tuple) -> tuple:
    """The lookup key of tuple ``t`` = (src, dst, sport, dport) in ``zone``."""
    return (zone, ip_ver, proto, t[0], t[1], t[2], t[3])


def invert(proto: int, t: tuple) -> tuple | None:
    """The reply tuple of original tuple ``t``, or None (ICMP type without a reply)."""
    src, dst, sport, dport = t
    if proto == 1 or proto == 58:
        typ = dport >> 8
        table = _ICMP_INV if proto == 1 else _ICMPV6_INV
        rtyp = table.get(typ)
        if rtyp is None:
            return None
        return (dst, src, sport, (rtyp << 8) | (dport & 0xFF))
    return (dst, src, dport, sport)
