"""Writes header changes back into a frame, with incremental checksum updates.

Theory of operation
-------------------
Translation (xlate) works on flow keys; what leaves the switch is bytes.
``apply(frame, pkt, old_key, new_key)`` compares the two keys field by field
and, for each field in ``_FIELDS`` that differs, stores the new value at its
offset in a copy of the frame (offsets come from the parsed ``pkt``) and
patches the checksums that cover it with RFC 1624 (``checksum.update``):

| field            | bytes written            | checksums patched                         |
| ---------------- | ------------------------ | ----------------------------------------- |
| DL_SRC / DL_DST  | Ethernet header          | none                                      |
| NW_SRC / NW_DST  | IPv4 addresses           | IPv4 header; TCP/UDP (pseudo-header)      |
| IPV6_SRC / _DST  | IPv6 addresses           | TCP/UDP/ICMPv6 (pseudo-header)            |
| NW_TOS / NW_ECN  | TOS / traffic class      | IPv4 header                               |
| NW_TTL           | TTL / hop limit          | IPv4 header                               |
| IPV6_LABEL       | flow label               | none                                      |
| TP_SRC / TP_DST  | TCP/UDP/SCTP ports; ICMP type/code | TCP/UDP; ICMP/ICMPv6             |

A UDP checksum of 0 (none, IPv4) stays 0, and a computed 0 is sent as 0xFFFF.
L4 fields of a later fragment are never touched (it has no L4 header).

``set_icmp_id`` changes an ICMP/ICMPv6 echo identifier (NAT of ICMP);
``nat_icmp_error`` rewrites an ICMP error and the packet it quotes the way
netfilter's ``nf_nat_icmp_reply_translation`` does: outer addresses, quoted
addresses/ports (quoted IP header checksum and, when present in the quote,
the quoted UDP/TCP/ICMP checksum updated incrementally), then the ICMP
checksum recomputed over the whole message.
"""

from __future__ import annotations

import struct

from ..flow.key import (
    DL_DST,
    DL_SRC,
    IPV6_DST,
    IPV6_LABEL,
    IPV6_SRC,
    NW_DST,
    NW_ECN,
    NW_SRC,
    NW_TOS,
    NW_TTL,
    TP_DST,
    TP_SRC,
)
from .checksum import csum16, pseudo6, update
from .headers import FRAG_LATER, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP, Packet

_FIELDS = (DL_SRC, DL_DST, NW_SRC, NW_DST, IPV6_SRC, IPV6_DST, NW_TOS, NW_ECN, NW_TTL, IPV6_LABEL, TP_SRC, TP_DST)


def _get16(b: bytearray, off: int) -> int:
    return (b[off] << 8) | b[off + 1]


def _put16(b: bytearray, off: int, v: int) -> None:
    b[off] = v >> 8
    b[off + 1] = v & 0xFF


def _patch(b: bytearray, coff: int, old: int, new: int) -> None:
    """RFC 1624 update of the checksum stored at ``coff``."""
    _put16(b, coff, update(_get16(b, coff), old, new))


def _l4_csum_off(pkt: Packet, b: bytearray) -> tuple[int, bool]:
    """Offset of the L4 checksum covering the pseudo-header (-1 if none) and whether it is UDP."""
    if pkt.l4 < 0 or pkt.nw_frag & FRAG_LATER:
        return -1, False
    p = pkt.nw_proto
    if p == IPPROTO_TCP:
        return pkt.l4 + 16, False
    if p == IPPROTO_UDP:
        return pkt.l4 + 6, True
    if p == IPPROTO_ICMPV6 and pkt.ip_ver == 6:
        return pkt.l4 + 2, False
    return -1, False


def _l4_patch(b: bytearray, coff: int, is_udp: bool, old: int, new: int) -> None:
    if coff < 0:
        return
    c = _get16(b, coff)
    if is_udp:
        if c == 0:
            return
        c = update(c, old, new) or 0xFFFF
        _put16(b, coff, c)
    else:
        _put16(b, coff, update(c, old, new))


def apply(frame: bytes | bytearray, pkt: Packet, old_key: list[int], new_key: list[int]) -> bytes:
    """The frame with every header field that differs between the keys rewritten."""
    if pkt.ip_ver == 4 and pkt.l4 >= 0 and (pkt.nw_proto == IPPROTO_TCP or pkt.nw_proto == IPPROTO_UDP) \
            and not pkt.nw_frag & FRAG_LATER and _same_outside_nat4(old_key, new_key):
        return _nat4(frame, pkt, old_key, new_key)
    diff = [i for i in _FIELDS if old_key[i] != new_key[i]]
    if not diff:
        return bytes(frame)
    b = bytearray(frame)
    while diff and (diff[0] == DL_SRC or diff[0] == DL_DST):  # the MACs lead _FIELDS; no checksum
        i = diff.pop(0)
        if i == DL_DST:
            b[0:6] = new_key[i].to_bytes(6, "big")
        else:
            b[6:12] = new_key[i].to_bytes(6, "big")
    if pkt.ip_ver == 4 and pkt.l4 >= 0 and (pkt.nw_proto == IPPROTO_TCP or pkt.nw_proto == IPPROTO_UDP) \
            and not pkt.nw_frag & FRAG_LATER and _NAT4.issuperset(diff):
        return _apply_nat4(b, pkt, diff, new_key)
    return _apply_fields(b, pkt, diff, new_key)


def _apply_fields(b: bytearray, pkt: Packet, diff: list[int], new_key: list[int]) -> bytes:
    """``apply``'s general case (MACs already written): each field of ``diff`` written and its
    checksums patched in turn."""
    l3 = pkt.l3
    ver = pkt.ip_ver
    tos_done = False
    for i in diff:
        new = new_key[i]
        if l3 < 0 or ver == 0:
            continue
        elif i == NW_SRC or i == NW_DST:
            if ver != 4:
                continue
            off = l3 + (12 if i == NW_SRC else 16)
            old = int.from_bytes(b[off:off + 4], "big")
            b[off:off + 4] = new.to_bytes(4, "big")
            _patch(b, l3 + 10, old, new)
            coff, is_udp = _l4_csum_off(pkt, b)
            _l4_patch(b, coff, is_udp, old, new)
        elif i == IPV6_SRC or i == IPV6_DST:
            if ver != 6:
                continue
            off = l3 + (8 if i == IPV6_SRC else 24)
            old = int.from_bytes(b[off:off + 16], "big")
            b[off:off + 16] = new.to_bytes(16, "big")
            coff, is_udp = _l4_csum_off(pkt, b)
            _l4_patch(b, coff, is_udp, old, new)
        elif i == NW_TOS or i == NW_ECN:
            if tos_done:
                continue
            tos_done = True
            tos = (new_key[NW_TOS] & 0xFC) | (new_key[NW_ECN] & 0x03)
            if ver == 4:
                old = _get16(b, l3)
                b[l3 + 1] = tos
                _patch(b, l3 + 10, old, _get16(b, l3))
            else:
                b[l3] = (b[l3] & 0xF0) | (tos >> 4)
                b[l3 + 1] = ((tos & 0x0F) << 4) | (b[l3 + 1] & 0x0F)
        elif i == NW_TTL:
            if ver == 4:
                old = _get16(b, l3 + 8)
                b[l3 + 8] = new & 0xFF
                _patch(b, l3 + 10, old, _get16(b, l3 + 8))
            else:
                b[l3 + 7] = new & 0xFF
        elif i == IPV6_LABEL:
            if ver == 6:
                b[l3 + 1] = (b[l3 + 1] & 0xF0) | ((new >> 16) & 0x0F)
                _put16(b, l3 + 2, new & 0xFFFF)
        else:  # TP_SRC / TP_DST
            l4 = pkt.l4
            if l4 < 0 or pkt.nw_frag & FRAG_LATER:
                continue
            p = pkt.nw_proto
            if p == IPPROTO_TCP or p == IPPROTO_UDP or p == IPPROTO_SCTP:
                off = l4 + (0 if i == TP_SRC else 2)
                old = _get16(b, off)
                _put16(b, off, new & 0xFFFF)
                if p != IPPROTO_SCTP:
                    coff, is_udp = _l4_csum_off(pkt, b)
                    _l4_patch(b, coff, is_udp, old, new & 0xFFFF)
            elif p == IPPROTO_ICMP or p == IPPROTO_ICMPV6:
                old = _get16(b, l4)
                b[l4 + (0 if i == TP_SRC else 1)] = new & 0xFF
                _patch(b, l4 + 2, old, _get16(b, l4))
    return bytes(b)


_NAT4 = frozenset((NW_SRC, NW_DST, TP_SRC, TP_DST))
# The fields of _FIELDS outside _NAT4: when they are equal in both keys, ``apply`` takes _nat4.
_OUTSIDE_NAT4 = tuple(i for i in _FIELDS if i not in _NAT4)
_ADDRS = struct.Struct("!II")
_PORTS = struct.Struct("!HH")


def _same_outside_nat4(old_key: list[int], new_key: list[int]) -> bool:
    """True when the keys agree on every field of ``_OUTSIDE_NAT4``: what comparing the two
    tuples of those fields says (a tuple compares its items by identity, then ==), without
    building them; a NATed key is a copy of the packet's, so its other fields are the same objects."""
    for i in _OUTSIDE_NAT4:
        a = old_key[i]
        c = new_key[i]
        if a is not c and not a == c:
            return False
    return True


def _update(c: int, old: int, new: int) -> int:
    """``checksum.update`` for ``0 <= c <= 0xFFFF`` and ``0 <= old, new < 2**40`` (the same
    formula; the compiled module computes it in C integers, see rewrite.pxd)."""
    s = ((~c & 0xFFFF) - old % 0xFFFF + new % 0xFFFF) % 0xFFFF
    return ~(s or 0xFFFF) & 0xFFFF


# Empty, never changed: ``_BA0 + frame`` is a new bytearray holding a copy of ``frame``, and
# ``_B0 + b`` the bytes of bytearray ``b`` (what ``bytearray(frame)`` and ``bytes(b)`` give, for a
# fraction of a type call's cost: ``_nat4`` runs once per NATed slow-path packet).
_BA0 = bytearray()
_B0 = b""


def _nat4(frame: bytes | bytearray, pkt: Packet, old_key: list[int], new_key: list[int]) -> bytes:
    """``apply`` when only IPv4 addresses and TCP/UDP ports may differ (the NAT of almost every
    slow-path packet): the same result as ``_apply_nat4``, without building the list of changed
    fields first, and summing the changes for one RFC 1624 update per checksum (it runs once per
    NATed slow-path packet).  The bytes are read and written one by one with explicit masks
    (C integers in the compiled module, rewrite.pxd); values or offsets outside what that
    handles (an address that is not an int in 0..2**32-1, an offset outside the frame, an L4
    header inside the 20 bytes of the IPv4 header) take ``_nat4_struct``, the struct-based
    original, so they give what they always gave."""
    l3 = pkt.l3
    l4 = pkt.l4
    ns, nd, ps, pd = new_key[NW_SRC], new_key[NW_DST], new_key[TP_SRC] & 0xFFFF, new_key[TP_DST] & 0xFFFF
    if ns == old_key[NW_SRC] and nd == old_key[NW_DST] and ps == old_key[TP_SRC] and pd == old_key[TP_DST]:
        return bytes(frame)
    b = _BA0 + frame  # a mutable copy (see _BA0)
    n = len(b)
    tcp = pkt.nw_proto == IPPROTO_TCP
    coff = l4 + 16 if tcp else l4 + 6
    if (type(ns) is not int or type(nd) is not int or type(ps) is not int or type(pd) is not int
            or ns < 0 or ns > 0xFFFFFFFF or nd < 0 or nd > 0xFFFFFFFF
            or l3 < 0 or l4 < l3 + 20 or l4 + 4 > n or coff + 2 > n):
        return _nat4_struct(b, pkt, ns, nd, ps, pd)
    s32 = ns
    d32 = nd
    s16 = ps
    d16 = pd
    # An address's top byte is read alone first, so that the compiled module shifts it as a
    # 64-bit integer.  The addresses (at l3 + 12), the ports (at l4 >= l3 + 20) and the
    # checksums do not overlap: only the words that change are written.
    os_ = b[l3 + 12]
    os_ = (os_ << 24) | (b[l3 + 13] << 16) | (b[l3 + 14] << 8) | b[l3 + 15]
    od = b[l3 + 16]
    od = (od << 24) | (b[l3 + 17] << 16) | (b[l3 + 18] << 8) | b[l3 + 19]
    ops = (b[l4] << 8) | b[l4 + 1]
    opd = (b[l4 + 2] << 8) | b[l4 + 3]
    if s32 != os_:
        b[l3 + 12] = (s32 >> 24) & 0xFF
        b[l3 + 13] = (s32 >> 16) & 0xFF
        b[l3 + 14] = (s32 >> 8) & 0xFF
        b[l3 + 15] = s32 & 0xFF
    if d32 != od:
        b[l3 + 16] = (d32 >> 24) & 0xFF
        b[l3 + 17] = (d32 >> 16) & 0xFF
        b[l3 + 18] = (d32 >> 8) & 0xFF
        b[l3 + 19] = d32 & 0xFF
    if s16 != ops:
        b[l4] = (s16 >> 8) & 0xFF
        b[l4 + 1] = s16 & 0xFF
    if d16 != opd:
        b[l4 + 2] = (d16 >> 8) & 0xFF
        b[l4 + 3] = d16 & 0xFF
    if s32 != os_ or d32 != od:
        c = _update((b[l3 + 10] << 8) | b[l3 + 11], os_ + od, s32 + d32)
        b[l3 + 10] = (c >> 8) & 0xFF
        b[l3 + 11] = c & 0xFF
    c = (b[coff] << 8) | b[coff + 1]
    if not tcp and pkt.nw_proto == IPPROTO_UDP:
        if c == 0:  # no UDP checksum: stays none
            return _B0 + b
        c = _update(c, os_ + od + ops + opd, s32 + d32 + s16 + d16) or 0xFFFF
    else:
        c = _update(c, os_ + od + ops + opd, s32 + d32 + s16 + d16)
    b[coff] = (c >> 8) & 0xFF
    b[coff + 1] = c & 0xFF
    return _B0 + b


def _nat4_struct(b: bytearray, pkt: Packet, ns: int, nd: int, ps: int, pd: int) -> bytes:
    """``_nat4`` with struct calls: what it does with values and offsets outside its C integers."""
    l3 = pkt.l3
    l4 = pkt.l4
    os_, od = _ADDRS.unpack_from(b, l3 + 12)
    ops, opd = _PORTS.unpack_from(b, l4)
    _ADDRS.pack_into(b, l3 + 12, ns, nd)
    _PORTS.pack_into(b, l4, ps, pd)
    if ns != os_ or nd != od:
        c = (b[l3 + 10] << 8) | b[l3 + 11]
        c = update(c, os_ + od, ns + nd)
        b[l3 + 10] = c >> 8
        b[l3 + 11] = c & 0xFF
    coff = l4 + 16 if pkt.nw_proto == IPPROTO_TCP else l4 + 6
    c = (b[coff] << 8) | b[coff + 1]
    if pkt.nw_proto == IPPROTO_UDP:
        if c == 0:  # no UDP checksum: stays none
            return bytes(b)
        c = update(c, os_ + od + ops + opd, ns + nd + ps + pd) or 0xFFFF
    else:
        c = update(c, os_ + od + ops + opd, ns + nd + ps + pd)
    b[coff] = c >> 8
    b[coff + 1] = c & 0xFF
    return bytes(b)


def _apply_nat4(b: bytearray, pkt: Packet, diff: list[int], new_key: list[int]) -> bytes:
    """``apply`` for the NAT case (IPv4 TCP/UDP, only addresses and ports change): every
    changed word is summed first and each checksum is updated once (RFC 1624 updates compose:
    the result equals one update per field)."""
    l3 = pkt.l3
    l4 = pkt.l4
    ip_old = ip_new = l4_old = l4_new = 0
    ip_changed = l4_changed = False
    for i in diff:
        new = new_key[i]
        if i == NW_SRC or i == NW_DST:
            off = l3 + (12 if i == NW_SRC else 16)
            ip_old += int.from_bytes(b[off:off + 4], "big")
            ip_new += new
            ip_changed = True
            b[off:off + 4] = new.to_bytes(4, "big")
        else:
            off = l4 if i == TP_SRC else l4 + 2
            l4_old += (b[off] << 8) | b[off + 1]
            new &= 0xFFFF
            l4_new += new
            l4_changed = True
            b[off] = new >> 8
            b[off + 1] = new & 0xFF
    if ip_changed:
        _patch(b, l3 + 10, ip_old, ip_new)
    if ip_changed or l4_changed:
        _l4_patch(b, l4 + (16 if pkt.nw_proto == IPPROTO_TCP else 6), pkt.nw_proto == IPPROTO_UDP,
                  ip_old + l4_old, ip_new + l4_new)
    return bytes(b)


def set_icmp_id(frame: bytes | bytearray, pkt: Packet, new_id: int) -> bytes:
    """The frame with its ICMP/ICMPv6 echo identifier set to ``new_id`` (checksum patched)."""
    l4 = pkt.l4
    if l4 < 0 or pkt.nw_proto not in (IPPROTO_ICMP, IPPROTO_ICMPV6) or l4 + 8 > len(frame):
        return bytes(frame)
    b = bytearray(frame)
    old = _get16(b, l4 + 4)
    _put16(b, l4 + 4, new_id & 0xFFFF)
    _patch(b, l4 + 2, old, new_id & 0xFFFF)
    return bytes(b)


# ICMP types whose quoted header carries an echo identifier in place of ports (queries and replies).
_ICMP_QUERIES = (0, 8, 13, 14, 15, 16, 17, 18)
_ICMP6_QUERIES = (128, 129)


def nat_icmp_error(frame: bytes | bytearray, pkt: Packet, new_outer_src: int | None, new_outer_dst: int | None,
                   inner_src: int, inner_dst: int, inner_sport: int, inner_dport: int) -> bytes:
    """Rewrites an ICMP/ICMPv6 error under NAT.

    The outer source/destination become ``new_outer_src``/``new_outer_dst`` (None: unchanged);
    the quoted packet's addresses become ``inner_src``/``inner_dst`` and its ports
    ``inner_sport``/``inner_dport`` (for a quoted ICMP echo, ``inner_sport`` is the identifier).
    """
    inner = pkt.inner
    q = pkt.inner_off
    if inner is None or q < 0 or pkt.l4 < 0:
        return bytes(frame)
    b = bytearray(frame)
    l3, l4 = pkt.l3, pkt.l4
    end = l3 + pkt.ip_len
    v6 = pkt.ip_ver == 6
    alen = 16 if v6 else 4
    # Outer addresses.
    for new, off in ((new_outer_src, l3 + (8 if v6 else 12)), (new_outer_dst, l3 + (24 if v6 else 16))):
        if new is None:
            continue
        old = int.from_bytes(b[off:off + alen], "big")
        b[off:off + alen] = new.to_bytes(alen, "big")
        if not v6:
            _patch(b, l3 + 10, old, new)
    # Quoted addresses (and the quoted IPv4 header checksum).
    iv6 = inner.ip_ver == 6
    ialen = 16 if iv6 else 4
    il4 = q + inner.l4 if inner.l4 >= 0 else -1
    ip_ = inner.nw_proto
    ck_off, ck_udp = -1, False
    if il4 >= 0:
        if ip_ == IPPROTO_UDP:
            ck_off, ck_udp = il4 + 6, True
        elif ip_ == IPPROTO_TCP and il4 + 18 <= end:
            ck_off = il4 + 16
        elif ip_ == IPPROTO_ICMPV6 and iv6:
            ck_off = il4 + 2  # ICMPv6 sums a pseudo-header
    for new, off in ((inner_src, q + (8 if iv6 else 12)), (inner_dst, q + (24 if iv6 else 16))):
        old = int.from_bytes(b[off:off + ialen], "big")
        if old == new:
            continue
        b[off:off + ialen] = new.to_bytes(ialen, "big")
        if not iv6:
            _patch(b, q + 10, old, new)
        if ck_off >= 0:
            _l4_patch(b, ck_off, ck_udp, old, new)
    # Quoted ports / echo identifier.
    if il4 >= 0:
        if ip_ in (IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP):
            for new, off in ((inner_sport, il4), (inner_dport, il4 + 2)):
                old = _get16(b, off)
                if old != new:
                    _put16(b, off, new)
                    if ck_off >= 0:
                        _l4_patch(b, ck_off, ck_udp, old, new)
        elif ip_ in (IPPROTO_ICMP, IPPROTO_ICMPV6) and inner.icmp_id != inner_sport and inner.tp_src in (
                _ICMP_QUERIES if ip_ == IPPROTO_ICMP else _ICMP6_QUERIES):
            old = _get16(b, il4 + 4)
            _put16(b, il4 + 4, inner_sport & 0xFFFF)
            _patch(b, il4 + 2, old, inner_sport & 0xFFFF)
    # The ICMP checksum over the whole (rewritten) message.
    b[l4 + 2] = 0
    b[l4 + 3] = 0
    msg = b[l4:end]
    if v6:
        src = int.from_bytes(b[l3 + 8:l3 + 24], "big")
        dst = int.from_bytes(b[l3 + 24:l3 + 40], "big")
        c = csum16(msg, pseudo6(src, dst, IPPROTO_ICMPV6, len(msg)))
    else:
        c = csum16(msg)
    _put16(b, l4 + 2, c)
    return bytes(b)
