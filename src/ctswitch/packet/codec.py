"""Frame bytes -> ``Packet``: a straight-line parser at fixed offsets.

Theory of operation
-------------------
``parse(frame)`` walks the headers once, left to right, reading each field
at its fixed offset (byte by byte on the common path: Ethernet, IPv4, TCP, UDP;
``int.from_bytes`` / ``struct.unpack_from`` elsewhere) and storing it in the
flat ``Packet`` record (``packet/headers.py``).  There are no per-header
objects and no exceptions on the normal path: every length is checked before it
is read, and a frame that is too short or inconsistent gets ``pkt.drop`` set to
a short reason (the table ``REASONS`` lists them) while the fields parsed so
far stay valid.

Layers:
* Ethernet, then any stack of 802.1Q (0x8100) / 802.1ad (0x88a8) tags; an
  Ethernet "type" below 0x600 is an 802.3 length and reads as 0x05ff as in OVS.
* ARP (Ethernet/IPv4 only): opcode, sha/tha, spa/tpa (in nw_src/nw_dst).
* IPv4: options set ``ip_options``; fragments set ``nw_frag`` (a later fragment
  has no L4: ``l4 == -1``).  The L3 length is the header's total length and
  the L4 parse is bounded by it (Ethernet padding is ignored).
* IPv6: hop-by-hop, routing, fragment and destination-options headers are
  skipped; ``nw_proto`` is the final next header; a fragment header sets
  ``nw_frag`` (a later fragment has no L4).
* TCP (flags, seq, ack, window, window-scale and SACK-permitted options), UDP,
  SCTP ports, ICMP (type/code in tp_src/tp_dst, echo id/seq) and ICMPv6.
  ICMP errors 3/4/5/11/12 and ICMPv6 errors 1..4 parse the quoted IP header and
  the first 8 bytes of its L4 header into ``pkt.inner`` (``inner_off`` is the
  quoted header's offset).  A quote too short to hold those is not an error
  of the frame: ``inner`` stays None and conntrack treats the error as invalid.
"""

from __future__ import annotations

from struct import Struct

from .headers import (
    ETH_TYPE_IP,
    ETH_TYPE_IPV6,
    FRAG_ANY,
    FRAG_LATER,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_SCTP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    Packet,
    blank,
)

# Every drop reason parse() can give, for documentation and tests.
REASONS = (
    "truncated ethernet header", "truncated vlan header", "truncated arp header",
    "truncated ipv4 header", "bad ip version", "bad ihl", "bad ipv4 total length",
    "ipv4 total length beyond frame",
    "truncated ipv6 header", "ipv6 payload length beyond frame", "truncated ipv6 extension header",
    "truncated tcp header", "bad tcp data offset", "truncated udp header", "truncated sctp header",
    "truncated icmp header", "truncated icmpv6 header",
)

_V4 = Struct("!BBHHHBBHII")  # ver/ihl tos len id frag ttl proto csum src dst
_HHH = Struct("!HHH")
_ICMP = Struct("!BBHHH")  # type code csum id seq
_ARP = Struct("!HHBBH6sI6sI")

# IPv6 extension headers skipped on the way to the upper-layer protocol.
_V6_EXT = frozenset((0, 43, 44, 60))
# ICMP types whose header carries an identifier and a sequence number
# (echo, timestamp, information, address mask: what conntrack keys on).
ICMP_ID_TYPES = frozenset((0, 8, 13, 14, 15, 16, 17, 18))
ICMP_ERROR_TYPES = frozenset((3, 4, 5, 11, 12))
ICMPV6_ID_TYPES = frozenset((128, 129))
ICMPV6_ERROR_TYPES = frozenset((1, 2, 3, 4))

_from = int.from_bytes


def parse(frame: bytes | bytearray) -> Packet:
    """Parses one Ethernet frame.  Never raises; see ``Packet.drop``."""
    pkt = blank(frame)
    n = len(frame)
    if n < 14:
        pkt.drop = "truncated ethernet header"
        if n >= 6:
            pkt.dl_dst = _from(frame[0:6], "big")
        if n >= 12:
            pkt.dl_src = _from(frame[6:12], "big")
        return pkt
    # The fields are read from a bytes object (the frame itself when it is one): in the compiled
    # module (codec.pxd) a read is a C array access and the arithmetic is in C integers.  A 32-bit
    # or wider field's top byte is read alone into a 64-bit variable first, so that its shift is
    # 64-bit there.
    data = frame if type(frame) is bytes else bytes(memoryview(frame))
    w = (data[0] << 8) | data[1]
    x = data[2]
    pkt.dl_dst = (w << 32) | (x << 24) | (data[3] << 16) | (data[4] << 8) | data[5]
    w = (data[6] << 8) | data[7]
    x = data[8]
    pkt.dl_src = (w << 32) | (x << 24) | (data[9] << 16) | (data[10] << 8) | data[11]
    t = (data[12] << 8) | data[13]
    off = 14
    if t == 0x8100 or t == 0x88A8:
        vlans = []
        while t == 0x8100 or t == 0x88A8:
            if off + 4 > n:
                pkt.vlans = tuple(vlans)
                pkt.drop = "truncated vlan header"
                return pkt
            vlans.append((data[off] << 8) | data[off + 1])
            t = (data[off + 2] << 8) | data[off + 3]
            off += 4
        pkt.vlans = tuple(vlans)
    if t < 0x600:
        t = 0x05FF
    pkt.dl_type = t
    if t == 0x0800:  # ETH_TYPE_IP
        pkt.l3 = off
        if off + 20 > n:
            pkt.drop = "truncated ipv4 header"
            return pkt
        vihl = data[off]
        ihl = (vihl & 15) << 2
        if vihl >> 4 != 4:
            pkt.drop = "bad ip version"
            return pkt
        pkt.ip_ver = 4
        x = data[off + 12]
        pkt.nw_src = (x << 24) | (data[off + 13] << 16) | (data[off + 14] << 8) | data[off + 15]
        x = data[off + 16]
        pkt.nw_dst = (x << 24) | (data[off + 17] << 16) | (data[off + 18] << 8) | data[off + 19]
        proto = data[off + 9]
        pkt.nw_proto = proto
        pkt.nw_tos = data[off + 1]
        pkt.nw_ttl = data[off + 8]
        tot = (data[off + 2] << 8) | data[off + 3]
        pkt.ip_len = tot
        if ihl < 20:
            pkt.drop = "bad ihl"
            return pkt
        if off + ihl > n:
            pkt.drop = "truncated ipv4 header"
            return pkt
        if tot < ihl:
            pkt.drop = "bad ipv4 total length"
            return pkt
        end = off + tot
        if end > n:
            pkt.drop = "ipv4 total length beyond frame"
            return pkt
        if ihl > 20:
            pkt.ip_options = True
        l4 = off + ihl
        ff = (data[off + 6] << 8) | data[off + 7]
        if ff & 0x3FFF:
            if ff & 0x1FFF:
                pkt.nw_frag = FRAG_ANY | FRAG_LATER
                pkt.payload = l4
                pkt.payload_len = end - l4
                return pkt
            pkt.nw_frag = FRAG_ANY
        _l4(pkt, data, l4, end, proto)
        return pkt
    if t == 0x86DD:  # ETH_TYPE_IPV6
        _ipv6(pkt, data, off, n)
        return pkt
    if t == 0x0806:  # ETH_TYPE_ARP
        pkt.l3 = off
        if off + 28 > n:
            pkt.drop = "truncated arp header"
            return pkt
        htype, ptype, hlen, plen, op, sha, spa, tha, tpa = _ARP.unpack_from(data, off)
        if htype == 1 and ptype == ETH_TYPE_IP and hlen == 6 and plen == 4:
            pkt.arp_op = op
            pkt.arp_sha = _from(sha, "big")
            pkt.arp_tha = _from(tha, "big")
            pkt.nw_src = spa
            pkt.nw_dst = tpa
        return pkt
    if t != 0x05FF:
        pkt.l3 = off
    return pkt


def _ipv6(pkt: Packet, frame, off: int, n: int) -> None:
    pkt.l3 = off
    if off + 40 > n:
        pkt.drop = "truncated ipv6 header"
        return
    w0 = _from(frame[off:off + 4], "big")
    if w0 >> 28 != 6:
        pkt.drop = "bad ip version"
        return
    pkt.ip_ver = 6
    plen = (frame[off + 4] << 8) | frame[off + 5]
    nh = frame[off + 6]
    pkt.nw_ttl = frame[off + 7]
    pkt.nw_tos = (w0 >> 20) & 0xFF
    pkt.ipv6_label = w0 & 0xFFFFF
    pkt.nw_src = _from(frame[off + 8:off + 24], "big")
    pkt.nw_dst = _from(frame[off + 24:off + 40], "big")
    pkt.ip_len = 40 + plen
    end = off + 40 + plen
    pkt.nw_proto = nh
    if end > n:
        pkt.drop = "ipv6 payload length beyond frame"
        return
    p = off + 40
    while nh in _V6_EXT:
        if p + 8 > end:
            pkt.drop = "truncated ipv6 extension header"
            return
        nxt = frame[p]
        if nh == 44:  # fragment header: fixed 8 bytes
            fo = ((frame[p + 2] << 8) | frame[p + 3]) & 0xFFF8
            pkt.nw_proto = nxt
            if fo:
                pkt.nw_frag = FRAG_ANY | FRAG_LATER
                pkt.payload = p + 8
                pkt.payload_len = end - p - 8
                return
            pkt.nw_frag = FRAG_ANY
            p += 8
        else:
            hl = (frame[p + 1] + 1) << 3
            if p + hl > end:
                pkt.drop = "truncated ipv6 extension header"
                return
            p += hl
        nh = nxt
        pkt.nw_proto = nh
    _l4(pkt, frame, p, end, nh)


def _l4(pkt: Packet, frame, l4: int, end: int, proto: int) -> None:
    """Parses the L4 header at ``l4`` of a segment ending at ``end``."""
    pkt.l4 = l4
    if proto == 6:  # IPPROTO_TCP
        if l4 + 20 > end:
            pkt.drop = "truncated tcp header"
            return
        pkt.tp_src = (frame[l4] << 8) | frame[l4 + 1]
        pkt.tp_dst = (frame[l4 + 2] << 8) | frame[l4 + 3]
        x = frame[l4 + 4]  # (alone first: see parse)
        pkt.tcp_seq = (x << 24) | (frame[l4 + 5] << 16) | (frame[l4 + 6] << 8) | frame[l4 + 7]
        x = frame[l4 + 8]
        pkt.tcp_ack = (x << 24) | (frame[l4 + 9] << 16) | (frame[l4 + 10] << 8) | frame[l4 + 11]
        doff = frame[l4 + 12]
        pkt.tcp_win = (frame[l4 + 14] << 8) | frame[l4 + 15]
        pkt.tcp_flags = ((doff & 1) << 8) | frame[l4 + 13]
        hl = (doff >> 4) << 2
        if hl < 20 or l4 + hl > end:
            pkt.drop = "bad tcp data offset"
            return
        if hl > 20:
            _tcp_options(pkt, frame, l4 + 20, l4 + hl)
        pkt.payload = l4 + hl
        pkt.payload_len = end - l4 - hl
        return
    if proto == 17:  # IPPROTO_UDP
        if l4 + 8 > end:
            pkt.drop = "truncated udp header"
            return
        pkt.tp_src = (frame[l4] << 8) | frame[l4 + 1]
        pkt.tp_dst = (frame[l4 + 2] << 8) | frame[l4 + 3]
        pkt.payload = l4 + 8
        pkt.payload_len = end - l4 - 8
        return
    if proto == IPPROTO_ICMP or proto == IPPROTO_ICMPV6:
        if l4 + 8 > end:
            pkt.drop = "truncated icmp header" if proto == IPPROTO_ICMP else "truncated icmpv6 header"
            return
        typ, code, _ck, ident, seq = _ICMP.unpack_from(frame, l4)
        pkt.tp_src = typ
        pkt.tp_dst = code
        pkt.payload = l4 + 8
        pkt.payload_len = end - l4 - 8
        if proto == IPPROTO_ICMP:
            if typ in ICMP_ID_TYPES:
                pkt.icmp_id = ident
                pkt.icmp_seq = seq
            elif typ in ICMP_ERROR_TYPES:
                _quoted(pkt, frame, l4 + 8, end, 4)
        else:
            if typ in ICMPV6_ID_TYPES:
                pkt.icmp_id = ident
                pkt.icmp_seq = seq
            elif typ in ICMPV6_ERROR_TYPES:
                _quoted(pkt, frame, l4 + 8, end, 6)
        return
    if proto == IPPROTO_SCTP:
        if l4 + 12 > end:
            pkt.drop = "truncated sctp header"
            return
        pkt.tp_src = (frame[l4] << 8) | frame[l4 + 1]
        pkt.tp_dst = (frame[l4 + 2] << 8) | frame[l4 + 3]
        pkt.payload = l4 + 12
        pkt.payload_len = end - l4 - 12
        return
    pkt.payload = l4
    pkt.payload_len = end - l4


def _quoted(pkt: Packet, frame, q: int, end: int, ver: int) -> None:
    """Parses the packet quoted by an ICMP/ICMPv6 error at ``q`` into ``pkt.inner``."""
    data = bytes(frame[q:end])
    inner = blank(data)
    m = len(data)
    if ver == 4:
        if m < 20 or data[0] >> 4 != 4:
            return
        ihl = (data[0] & 15) << 2
        if ihl < 20 or ihl + 8 > m:
            return
        _vihl, tos, tot, _i, ff, ttl, proto, _c, src, dst = _V4.unpack_from(data, 0)
        inner.ip_ver = 4
        inner.dl_type = ETH_TYPE_IP
        inner.l3 = 0
        inner.nw_src = src
        inner.nw_dst = dst
        inner.nw_proto = proto
        inner.nw_tos = tos
        inner.nw_ttl = ttl
        inner.ip_len = tot
        inner.ip_options = ihl > 20
        if ff & 0x3FFF:
            inner.nw_frag = FRAG_ANY | (FRAG_LATER if ff & 0x1FFF else 0)
        l4 = ihl
    else:
        if m < 48 or data[0] >> 4 != 6:
            return
        inner.ip_ver = 6
        inner.dl_type = ETH_TYPE_IPV6
        inner.l3 = 0
        inner.nw_src = _from(data[8:24], "big")
        inner.nw_dst = _from(data[24:40], "big")
        inner.nw_ttl = data[7]
        inner.ip_len = 40 + ((data[4] << 8) | data[5])
        proto = data[6]
        l4 = 40
        while proto in _V6_EXT:
            if l4 + 8 > m:
                return
            if proto == 44:
                inner.nw_frag = FRAG_ANY | (FRAG_LATER if (data[l4 + 2] << 8 | data[l4 + 3]) & 0xFFF8 else 0)
                hl = 8
            else:
                hl = (data[l4 + 1] + 1) << 3
            proto = data[l4]
            l4 += hl
        if l4 + 8 > m:
            return
        inner.nw_proto = proto
    if not inner.nw_frag & FRAG_LATER:
        inner.l4 = l4
        if proto == IPPROTO_TCP or proto == IPPROTO_UDP or proto == IPPROTO_SCTP:
            inner.tp_src, inner.tp_dst, _ = _HHH.unpack_from(data, l4)
        elif proto == IPPROTO_ICMP or proto == IPPROTO_ICMPV6:
            typ, code, _ck, ident, seq = _ICMP.unpack_from(data, l4)
            inner.tp_src = typ
            inner.tp_dst = code
            if typ in (ICMP_ID_TYPES if proto == IPPROTO_ICMP else ICMPV6_ID_TYPES):
                inner.icmp_id = ident
                inner.icmp_seq = seq
        if proto == IPPROTO_TCP:
            inner.tcp_seq = _from(data[l4 + 4:l4 + 8], "big")
    pkt.inner = inner
    pkt.inner_off = q


def _tcp_options(pkt: Packet, frame, p: int, end: int) -> None:
    """Window scale and SACK-permitted; a malformed option list just ends the scan."""
    while p < end:
        kind = frame[p]
        if kind == 0:
            return
        if kind == 1:
            p += 1
            continue
        if p + 1 >= end:
            return
        ln = frame[p + 1]
        if ln < 2 or p + ln > end:
            return
        if kind == 3 and ln == 3:
            pkt.tcp_wscale = frame[p + 2]
        elif kind == 4 and ln == 2:
            pkt.tcp_sack_perm = True
        p += ln
