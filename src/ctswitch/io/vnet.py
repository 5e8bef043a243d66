"""``virtio_net_hdr`` handling for AF_PACKET ports opened with ``PACKET_VNET_HDR``.

Theory of operation
-------------------
With ``PACKET_VNET_HDR`` every frame read from a packet socket is preceded by
a 10-byte ``struct virtio_net_hdr`` (little-endian on the hosts we run on):

==========  ====  ===========================================================
field       size  meaning
==========  ====  ===========================================================
flags       1     ``NEEDS_CSUM`` (1): the L4 checksum is *partial*
                  (``CHECKSUM_PARTIAL``: the field holds the folded
                  pseudo-header sum, not complemented; whoever transmits must
                  sum ``frame[csum_start:]`` and store the complement at
                  ``csum_start + csum_offset``); ``DATA_VALID`` (2)
gso_type    1     ``NONE`` (0) or ``TCPV4`` (1), ``UDP`` (3), ``TCPV6`` (4),
                  ``UDP_L4`` (5), ``| ECN`` (0x80): a GSO/GRO super-frame of
                  up to 64 KiB that the kernel (or the next device) cuts into
                  ``gso_size``-byte segments
hdr_len     2     length of the headers (a hint)
gso_size    2     payload bytes per segment
csum_start  2     offset of the L4 header in the frame
csum_offset 2     offset of the checksum field from ``csum_start``
==========  ====  ===========================================================

Sending with the same header gives the kernel back exactly that metadata, so
a super-frame crosses the switch whole (one receive, one kernel-datapath pass,
one send per 64 KiB instead of per 1.5 KiB) and nobody computes a checksum:
the receiving stack of a veth trusts ``CHECKSUM_PARTIAL``, a real device's
checksum offload completes it.

NAT and partial checksums: the L4 field of a partial frame covers only the
pseudo-header (addresses, protocol, L4 length); ports and payload are summed
when the checksum is completed.  A rewrite must therefore *not* apply the
RFC 1624 update of a full checksum (the fast-path kernel and the slow path's
``rewrite.apply`` both do, since they do not know): after them, the field of
every partial frame is recomputed from the frame's own (rewritten) header,
``fold(src + dst + proto + L4 length)`` -- the value the Linux stack puts there
(``~tcp_v4_check(len, saddr, daddr, 0)``; GSO super-frames carry their whole
length, which the segmentation code adjusts per segment).

* ``fix_hits(buf, offsets, sel)``: fast-path hits (untagged IPv4 with IHL 5 by
  construction: L4 at 34), one call for a batch, Numba when available.
* ``fix_out(frame, hdr)``: one slow-path output frame (any VLAN depth, IPv4 or
  IPv6): returns the header to send it with (``csum_start`` follows the frame's
  own layout, GSO kept only when the frame is still the same super-frame) and
  the fixed frame.
"""

from __future__ import annotations

import struct

VNET_LEN = 10
NEEDS_CSUM = 1
DATA_VALID = 2
GSO_NONE = 0
GSO_TCPV4 = 1
GSO_UDP = 3
GSO_TCPV6 = 4
GSO_UDP_L4 = 5
GSO_ECN = 0x80
ZERO_HDR = bytes(VNET_LEN)
HDR = struct.Struct("<BBHHHH")  # flags, gso_type, hdr_len, gso_size, csum_start, csum_offset


def _fold(s: int) -> int:
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return s


def _fix_hits(buf, offsets, sel):
    """Partial L4 checksum of fast-path hits ``offsets[sel[k]]`` recomputed from the rewritten header."""
    for k in range(len(sel)):
        o = offsets[sel[k]]
        s = 0
        for p in range(26, 34, 2):
            s += (int(buf[o + p]) << 8) | int(buf[o + p + 1])
        proto = int(buf[o + 23])
        s += proto + ((int(buf[o + 16]) << 8) | int(buf[o + 17])) - 20
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        pos = o + 34 + (16 if proto == 6 else 6)
        buf[pos] = s >> 8
        buf[pos + 1] = s & 0xFF


_FIX_HITS = None


def fix_hits(buf, offsets, sel) -> None:
    """``_fix_hits`` compiled with Numba (at first use: an idle daemon never loads numba)."""
    global _FIX_HITS
    if _FIX_HITS is None:
        try:
            import numba

            _FIX_HITS = numba.njit(cache=True)(_fix_hits)
        except ImportError:  # pragma: no cover - numba is the optional "fast" extra
            _FIX_HITS = _fix_hits
    _FIX_HITS(buf, offsets, sel)


def _l3(frame) -> tuple[int, int]:
    """(ethertype, L3 offset) after any 802.1Q/802.1ad tags."""
    off = 12
    n = len(frame)
    et = (frame[off] << 8) | frame[off + 1] if n >= 14 else 0
    while et in (0x8100, 0x88A8) and n >= off + 6:
        off += 4
        et = (frame[off] << 8) | frame[off + 1]
    return et, off + 2


def fix_out(frame, hdr: bytes) -> tuple[bytes, bytes | bytearray]:
    """(vnet header, frame) to send a slow-path output of a frame received with header ``hdr``.

    Only frames whose input had ``NEEDS_CSUM`` or a GSO type need this; the
    partial checksum is recomputed from the output's pseudo-header (see module
    docstring).  A frame that is not TCP/UDP over IPv4/IPv6 goes without offload
    metadata.
    """
    flags, gso_type, hdr_len, gso_size, _cs, _co = HDR.unpack_from(hdr)
    et, l3 = _l3(frame)
    n = len(frame)
    if et == 0x0800 and n >= l3 + 20:
        ihl = (frame[l3] & 0xF) * 4
        tl = (frame[l3 + 2] << 8) | frame[l3 + 3]
        proto = frame[l3 + 9]
        l4 = l3 + ihl
        l4len = tl - ihl
        s = int.from_bytes(frame[l3 + 12:l3 + 20], "big") % 0xFFFF  # both addresses, mod 0xFFFF = folded sum
        gso_ok = gso_type & 0x7F in (GSO_TCPV4, GSO_UDP, GSO_UDP_L4)
    elif et == 0x86DD and n >= l3 + 40:
        proto = frame[l3 + 6]
        l4 = l3 + 40
        l4len = (frame[l3 + 4] << 8) | frame[l3 + 5]
        s = int.from_bytes(frame[l3 + 8:l3 + 40], "big") % 0xFFFF
        gso_ok = gso_type & 0x7F in (GSO_TCPV6, GSO_UDP_L4)
    else:
        return ZERO_HDR, frame
    co = {6: 16, 17: 6}.get(proto)
    if co is None or n < l4 + co + 2 or l4len < co + 2:
        return ZERO_HDR, frame
    if gso_type == GSO_NONE or not gso_ok or (proto == 6) != (gso_type & 0x7F in (GSO_TCPV4, GSO_TCPV6)):
        gso_type, gso_size = GSO_NONE, 0
    if flags & NEEDS_CSUM or gso_type:  # a super-frame made by GRO has DATA_VALID: it must go out partial
        p = _fold(s + proto + l4len)
        b = bytearray(frame)
        b[l4 + co] = p >> 8
        b[l4 + co + 1] = p & 0xFF
        frame = b
        hdr_len = max(hdr_len, l4 + co + 2) if gso_type else 0
        return HDR.pack(NEEDS_CSUM, gso_type, hdr_len, gso_size, l4, co), frame
    return HDR.pack(0, gso_type, hdr_len if gso_type else 0, gso_size, 0, 0), frame
