"""IP fragments: where a fragment sits, the reassembled datagram, and its refragmentation.

Theory of operation
-------------------
OVS's ct() reassembles IPv4 fragments before conntrack sees them and refragments the
datagram on output (kernel datapath: ``handle_fragments`` -> ``ip_defrag``, output via
``ovs_fragment`` -> ``ip_do_fragment``).  This module does the byte work of both ends:

* ``frag_fields`` reads a fragment's identification, byte offset and MF/DF flags;
* ``reassembled`` builds the datagram: the L2 header and IP header of the fragment at
  offset 0 (total length, TOS/ECN and flags recomputed, checksum redone) followed by the
  whole payload;
* ``refragment`` cuts a (possibly rewritten) datagram along the boundaries the fragments
  arrived with, as ``ip_do_fragment``'s fast path does with the reassembled skb's
  frag_list: every piece gets the datagram's L2 and IP header (later pieces with the
  options that are not "copied" replaced by NOPs, ``ip_options_fragment``), its offset,
  MF on all but the last, no DF, and a fresh header checksum.

IPv6 (``frag6_fields``, ``reassembled6``, ``refragment6``): the unfragmentable part (the
IPv6 header and the extension headers before the Fragment header) of the offset-0 fragment
leads the datagram, the Fragment header's next header moves into the header before it, and
each output piece gets that part back with a Fragment header (same identification).

Pure functions over bytes; the queueing, limits and timeouts are ``conntrack.defrag``'s.
"""

from __future__ import annotations

from .checksum import csum16

IP_MF = 0x2000
IP_DF = 0x4000
_OFFSET = 0x1FFF


def frag_fields(frame: bytes | bytearray, l3: int) -> tuple[int, int, bool, bool]:
    """(identification, payload byte offset, MF, DF) of the IPv4 header at ``l3``."""
    ident = (frame[l3 + 4] << 8) | frame[l3 + 5]
    ff = (frame[l3 + 6] << 8) | frame[l3 + 7]
    return ident, (ff & _OFFSET) << 3, bool(ff & IP_MF), bool(ff & IP_DF)


def _finish(hdr: bytearray, total: int, frag_off: int) -> bytes:
    hdr[2] = total >> 8
    hdr[3] = total & 0xFF
    hdr[6] = frag_off >> 8
    hdr[7] = frag_off & 0xFF
    hdr[10] = hdr[11] = 0
    c = csum16(hdr)
    hdr[10] = c >> 8
    hdr[11] = c & 0xFF
    return bytes(hdr)


def reassembled(head: bytes | bytearray, l3: int, payload: bytes, tos: int, df: bool) -> bytes:
    """The datagram of fragments whose offset-0 fragment is the frame ``head`` (IPv4 header at
    ``l3``) and whose payloads, in order, are ``payload``; ``tos`` is the combined TOS byte."""
    ihl = (head[l3] & 0x0F) << 2
    hdr = bytearray(head[l3:l3 + ihl])
    hdr[1] = tos
    return bytes(head[:l3]) + _finish(hdr, ihl + len(payload), IP_DF if df else 0) + payload


def _options_fragment(hdr: bytes) -> bytes:
    """The header of a later fragment: options without the "copied" flag become NOPs."""
    out = bytearray(hdr)
    i, end = 20, len(hdr)
    while i < end:
        t = out[i]
        if t == 0:  # end of options list
            break
        if t == 1:  # NOP
            i += 1
            continue
        if i + 1 >= end or out[i + 1] < 2 or i + out[i + 1] > end:
            break  # malformed: leave the rest as it is
        n = out[i + 1]
        if not t & 0x80:
            out[i:i + n] = b"\x01" * n
        i += n
    return bytes(out)


def refragment(frame: bytes | bytearray, l3: int, bounds: list[tuple[int, int]], v6: tuple | None = None) -> list[bytes]:
    """The datagram ``frame`` (IP header at ``l3``) cut into fragments whose payloads are
    (offset, length) ``bounds`` (sorted, contiguous, covering the whole payload); ``v6`` is
    ``reassembled6``'s layout for an IPv6 datagram."""
    if v6 is not None:
        return refragment6(frame, l3, bounds, *v6)
    ihl = (frame[l3] & 0x0F) << 2
    total = (frame[l3 + 2] << 8) | frame[l3 + 3]
    l2 = bytes(frame[:l3])
    head = bytes(frame[l3:l3 + ihl])
    later = _options_fragment(head) if ihl > 20 else head
    data = bytes(frame[l3 + ihl:l3 + total])
    out = []
    last = len(bounds) - 1
    for k, (off, n) in enumerate(bounds):
        hdr = bytearray(head if k == 0 else later)
        ff = (off >> 3) | (IP_MF if k < last else 0)
        out.append(l2 + _finish(hdr, ihl + n, ff) + data[off:off + n])
    return out


_V6_EXT = (0, 43, 60)  # hop-by-hop, routing, destination options: before a Fragment header


def frag6_fields(frame: bytes | bytearray, l3: int) -> tuple[int, int, int, int, bool, int] | None:
    """(Fragment header offset, offset of the next-header byte naming it, its next header,
    payload byte offset, M flag, identification) of the IPv6 packet at ``l3``, or None."""
    nh_at = l3 + 6
    p = l3 + 40
    nh = frame[nh_at]
    while nh in _V6_EXT:
        nh_at = p
        nh = frame[p]
        p += (frame[p + 1] + 1) << 3
    if nh != 44 or p + 8 > len(frame):
        return None
    fo = (frame[p + 2] << 8) | frame[p + 3]
    ident = int.from_bytes(frame[p + 4:p + 8], "big")
    return p, nh_at, frame[p], fo & 0xFFF8, bool(fo & 1), ident


def reassembled6(head: bytes | bytearray, l3: int, fh: int, nh_at: int, nexthdr: int, payload: bytes,
                 ce: bool) -> tuple[bytes, tuple[int, int, int]]:
    """The IPv6 datagram of fragments whose offset-0 fragment is ``head`` (Fragment header at
    ``fh``, named by the byte at ``nh_at``), and its layout for ``refragment6``."""
    unfrag = bytearray(head[l3:fh])
    unfrag[nh_at - l3] = nexthdr
    plen = len(unfrag) - 40 + len(payload)
    unfrag[4] = plen >> 8
    unfrag[5] = plen & 0xFF
    if ce:
        unfrag[1] |= 0x30  # ECN CE in the traffic class
    ident = int.from_bytes(head[fh + 4:fh + 8], "big")
    return bytes(head[:l3]) + bytes(unfrag) + payload, (fh - l3, nh_at - l3, ident)


def refragment6(frame: bytes | bytearray, l3: int, bounds: list[tuple[int, int]], unfrag: int, nh_rel: int,
                ident: int) -> list[bytes]:
    """``refragment`` for IPv6: each piece is the unfragmentable part + a Fragment header."""
    l2 = bytes(frame[:l3])
    head = bytearray(frame[l3:l3 + unfrag])
    nexthdr = head[nh_rel]
    head[nh_rel] = 44
    total = 40 + ((frame[l3 + 4] << 8) | frame[l3 + 5])
    data = bytes(frame[l3 + unfrag:l3 + total])
    out = []
    last = len(bounds) - 1
    for k, (off, n) in enumerate(bounds):
        plen = unfrag - 40 + 8 + n
        head[4] = plen >> 8
        head[5] = plen & 0xFF
        fo = off | (1 if k < last else 0)
        fhdr = bytes((nexthdr, 0, fo >> 8, fo & 0xFF)) + ident.to_bytes(4, "big")
        out.append(l2 + bytes(head) + fhdr + data[off:off + n])
    return out
