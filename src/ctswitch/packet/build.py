"""Frame builders for tests and the traffic generator: bytes out, checksums right.

Theory of operation
-------------------
Each layer is a function that returns that layer's bytes with its payload
appended: ``tcp``/``udp``/``icmp_echo``/``icmp_error`` give the L4 message
(TCP/UDP/ICMPv6 checksums need the IP addresses, so those take them), ``ipv4``
and ``ipv6`` wrap an L4 message, ``eth`` wraps an L3 packet (adding VLAN tags
and padding to the 60-byte Ethernet minimum).  The convenience functions
(``ipv4_tcp``, ``ipv4_udp``, ``ipv4_icmp_echo``, ``ipv6_*``...) compose them
into a whole frame.

Addresses are accepted as strings ("1.1.1.2", "2001:db8::1",
"02:00:00:00:01:02"), ints or raw bytes.  TCP flags are an int or a string of
scapy's letters (F S R P A U E C N), e.g. "S", "SA", "PA", "FA".

This is the readable path (a few µs per frame).  The generator builds one
frame per template here, then stamps fields and patches checksums itself.
"""

from __future__ import annotations

import ipaddress
import struct

from .checksum import csum16, pseudo4, pseudo6

BROADCAST = "ff:ff:ff:ff:ff:ff"
DEFAULT_SRC_MAC = "02:00:00:00:00:01"
DEFAULT_DST_MAC = "02:00:00:00:00:02"

# TCP flag letters in scapy's order, with their bits.
FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20, "E": 0x40, "C": 0x80, "N": 0x100}


def mac(x: str | int | bytes) -> bytes:
    """A MAC address as 6 bytes ("02:00:00:00:01:02", "02-00-...", 48-bit int or bytes)."""
    if isinstance(x, (bytes, bytearray)):
        if len(x) != 6:
            raise ValueError(f"bad MAC address {x!r}")
        return bytes(x)
    if isinstance(x, int):
        return x.to_bytes(6, "big")
    parts = x.replace("-", ":").split(":")
    if len(parts) != 6:
        raise ValueError(f"bad MAC address {x!r}")
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError(f"bad MAC address {x!r}") from None


def ip4(x: str | int | bytes) -> bytes:
    """An IPv4 address as 4 bytes."""
    if isinstance(x, (bytes, bytearray)):
        return bytes(x)
    if isinstance(x, int):
        return x.to_bytes(4, "big")
    return ipaddress.IPv4Address(x).packed


def ip6(x: str | int | bytes) -> bytes:
    """An IPv6 address as 16 bytes."""
    if isinstance(x, (bytes, bytearray)):
        return bytes(x)
    if isinstance(x, int):
        return x.to_bytes(16, "big")
    return ipaddress.IPv6Address(x).packed


def _is_v6(x: str | int | bytes) -> bool:
    if isinstance(x, str):
        return ":" in x
    if isinstance(x, (bytes, bytearray)):
        return len(x) == 16
    return x >= 1 << 32


def _addr(x: str | int | bytes, v6: bool) -> bytes:
    return ip6(x) if v6 else ip4(x)


def tcp_flags(flags: str | int) -> int:
    """TCP flag bits from an int or scapy letters ("SA")."""
    if isinstance(flags, int):
        return flags
    bits = 0
    for c in flags:
        b = FLAG_BITS.get(c.upper())
        if b is None:
            raise ValueError(f"unknown TCP flag {c!r} in {flags!r}")
        bits |= b
    return bits


def _pseudo(src: bytes, dst: bytes, proto: int, length: int) -> int:
    if len(src) == 16:
        return pseudo6(int.from_bytes(src, "big"), int.from_bytes(dst, "big"), proto, length)
    return pseudo4(int.from_bytes(src, "big"), int.from_bytes(dst, "big"), proto, length)


# --- L2 / ARP -------------------------------------------------------------------------------

def eth(dst: str | int | bytes, src: str | int | bytes, type: int, payload: bytes,
        vlans: tuple | list = (), pad: bool = True) -> bytes:
    """An Ethernet frame.  ``vlans``: TCIs outermost first; an item may be (tpid, tci) for QinQ."""
    hdr = bytearray(mac(dst) + mac(src))
    for v in vlans:
        tpid, tci = v if isinstance(v, tuple) else (0x8100, v)
        hdr += struct.pack("!HH", tpid, tci)
    hdr += struct.pack("!H", type)
    fr = bytes(hdr) + payload
    if pad and len(fr) < 60:
        fr += bytes(60 - len(fr))
    return fr


def arp(op: int = 1, sha: str | int | bytes = DEFAULT_SRC_MAC, spa: str | int | bytes = "0.0.0.0",
        tha: str | int | bytes = "00:00:00:00:00:00", tpa: str | int | bytes = "0.0.0.0",
        src_mac: str | int | bytes | None = None, dst_mac: str | int | bytes | None = None,
        vlans: tuple | list = ()) -> bytes:
    """An Ethernet ARP frame (request: op=1, broadcast by default; reply: op=2, to ``tha``)."""
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, mac(sha), ip4(spa), mac(tha), ip4(tpa))
    if dst_mac is None:
        dst_mac = BROADCAST if op == 1 else tha
    return eth(dst_mac, sha if src_mac is None else src_mac, 0x0806, body, vlans)


# --- L3 -------------------------------------------------------------------------------------

def ipv4(src: str | int | bytes, dst: str | int | bytes, proto: int, payload: bytes, *, ttl: int = 64,
         tos: int = 0, ident: int = 1, df: bool = False, mf: bool = False, frag_off: int = 0,
         options: bytes = b"", total_length: int | None = None) -> bytes:
    """An IPv4 packet.  ``frag_off`` is in bytes (a multiple of 8); ``options`` is padded to 4 bytes."""
    if len(options) % 4:
        options += bytes(4 - len(options) % 4)
    ihl = 5 + len(options) // 4
    tot = ihl * 4 + len(payload) if total_length is None else total_length
    ff = (0x4000 if df else 0) | (0x2000 if mf else 0) | (frag_off >> 3)
    hdr = bytearray(struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, tos, tot, ident, ff, ttl, proto, 0,
                                ip4(src), ip4(dst)) + options)
    struct.pack_into("!H", hdr, 10, csum16(hdr))
    return bytes(hdr) + payload


def ipv6(src: str | int | bytes, dst: str | int | bytes, nh: int, payload: bytes, *, hlim: int = 64,
         tc: int = 0, label: int = 0) -> bytes:
    """An IPv6 packet (``payload`` may start with extension headers; ``nh`` is the first one)."""
    w0 = (6 << 28) | (tc << 20) | label
    return struct.pack("!IHBB", w0, len(payload), nh, hlim) + ip6(src) + ip6(dst) + payload


# --- L4 -------------------------------------------------------------------------------------

def tcp(src: str | int | bytes, dst: str | int | bytes, sport: int, dport: int, flags: str | int = "S",
        seq: int = 0, ack: int = 0, win: int = 65535, options: bytes = b"", payload: bytes = b"",
        urg: int = 0, v6: bool | None = None) -> bytes:
    """A TCP segment with its checksum over the IPv4/IPv6 pseudo-header of src/dst."""
    v6 = _is_v6(src) if v6 is None else v6
    s, d = _addr(src, v6), _addr(dst, v6)
    if len(options) % 4:
        options += b"\x01" * (4 - len(options) % 4)  # NOP padding
    f = tcp_flags(flags)
    doff = 5 + len(options) // 4
    hdr = bytearray(struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                                (doff << 4) | (f >> 8), f & 0xFF, win, 0, urg) + options)
    seg = hdr + payload
    struct.pack_into("!H", seg, 16, csum16(seg, _pseudo(s, d, 6, len(seg))))
    return bytes(seg)


def tcp_opts(mss: int | None = None, wscale: int | None = None, sack_perm: bool = False) -> bytes:
    """TCP option bytes (MSS, window scale, SACK-permitted), NOP-padded to 4 bytes."""
    out = b""
    if mss is not None:
        out += struct.pack("!BBH", 2, 4, mss)
    if sack_perm:
        out += b"\x04\x02"
    if wscale is not None:
        out += b"\x01" + struct.pack("!BBB", 3, 3, wscale)
    if len(out) % 4:
        out += b"\x01" * (4 - len(out) % 4)
    return out


def udp(src: str | int | bytes, dst: str | int | bytes, sport: int, dport: int, payload: bytes = b"",
        csum: bool = True, v6: bool | None = None) -> bytes:
    """A UDP datagram; ``csum=False`` leaves the checksum 0 (IPv4 only)."""
    v6 = _is_v6(src) if v6 is None else v6
    ln = 8 + len(payload)
    seg = bytearray(struct.pack("!HHHH", sport, dport, ln, 0) + payload)
    if csum or v6:
        c = csum16(seg, _pseudo(_addr(src, v6), _addr(dst, v6), 17, ln)) or 0xFFFF
        struct.pack_into("!H", seg, 6, c)
    return bytes(seg)


def icmp_echo(ident: int, seq: int, payload: bytes = b"", reply: bool = False) -> bytes:
    """An ICMP echo request (type 8) or reply (type 0) message."""
    msg = bytearray(struct.pack("!BBHHH", 0 if reply else 8, 0, 0, ident, seq) + payload)
    struct.pack_into("!H", msg, 2, csum16(msg))
    return bytes(msg)


def icmp_error(type: int, code: int, quoted: bytes, extra: int = 0) -> bytes:
    """An ICMP error message quoting ``quoted`` (an IP packet, usually its header + 8 bytes).

    ``extra`` is the 32-bit word after the checksum (next-hop MTU, pointer, gateway).
    """
    msg = bytearray(struct.pack("!BBHI", type, code, 0, extra) + quoted)
    struct.pack_into("!H", msg, 2, csum16(msg))
    return bytes(msg)


def icmp6_echo(src: str | int | bytes, dst: str | int | bytes, ident: int, seq: int, payload: bytes = b"",
               reply: bool = False) -> bytes:
    """An ICMPv6 echo request (128) or reply (129) with its pseudo-header checksum."""
    msg = bytearray(struct.pack("!BBHHH", 129 if reply else 128, 0, 0, ident, seq) + payload)
    struct.pack_into("!H", msg, 2, csum16(msg, _pseudo(ip6(src), ip6(dst), 58, len(msg))))
    return bytes(msg)


def icmp6_error(src: str | int | bytes, dst: str | int | bytes, type: int, code: int, quoted: bytes,
                extra: int = 0) -> bytes:
    """An ICMPv6 error (1 unreachable, 2 too big, 3 time exceeded, 4 parameter problem)."""
    msg = bytearray(struct.pack("!BBHI", type, code, 0, extra) + quoted)
    struct.pack_into("!H", msg, 2, csum16(msg, _pseudo(ip6(src), ip6(dst), 58, len(msg))))
    return bytes(msg)


# --- whole frames -----------------------------------------------------------------------------

def ipv4_tcp(src, dst, sport: int, dport: int, flags: str | int = "S", seq: int = 0, ack: int = 0,
             payload: bytes = b"", *, win: int = 65535, options: bytes = b"", src_mac=DEFAULT_SRC_MAC,
             dst_mac=DEFAULT_DST_MAC, vlans=(), ttl: int = 64, tos: int = 0, ident: int = 1,
             ip_options: bytes = b"") -> bytes:
    """An Ethernet/IPv4/TCP frame."""
    seg = tcp(src, dst, sport, dport, flags, seq, ack, win, options, payload, v6=False)
    return eth(dst_mac, src_mac, 0x0800, ipv4(src, dst, 6, seg, ttl=ttl, tos=tos, ident=ident,
                                               options=ip_options), vlans)


def ipv4_udp(src, dst, sport: int, dport: int, payload: bytes = b"", *, csum: bool = True,
             src_mac=DEFAULT_SRC_MAC, dst_mac=DEFAULT_DST_MAC, vlans=(), ttl: int = 64, tos: int = 0,
             ident: int = 1) -> bytes:
    """An Ethernet/IPv4/UDP frame."""
    seg = udp(src, dst, sport, dport, payload, csum, v6=False)
    return eth(dst_mac, src_mac, 0x0800, ipv4(src, dst, 17, seg, ttl=ttl, tos=tos, ident=ident), vlans)


def ipv4_icmp_echo(src, dst, ident: int = 1, seq: int = 1, payload: bytes = b"", reply: bool = False, *,
                   src_mac=DEFAULT_SRC_MAC, dst_mac=DEFAULT_DST_MAC, vlans=(), ttl: int = 64,
                   ip_id: int = 1) -> bytes:
    """An Ethernet/IPv4/ICMP echo request or reply frame."""
    msg = icmp_echo(ident, seq, payload, reply)
    return eth(dst_mac, src_mac, 0x0800, ipv4(src, dst, 1, msg, ttl=ttl, ident=ip_id), vlans)


ipv4_icmp = ipv4_icmp_echo


def ipv4_icmp_error(src, dst, type: int, code: int, quoted_frame: bytes, *, quote: int | None = 8,
                    extra: int = 0, src_mac=DEFAULT_SRC_MAC, dst_mac=DEFAULT_DST_MAC, vlans=(),
                    ttl: int = 64) -> bytes:
    """An Ethernet/IPv4/ICMP error about ``quoted_frame`` (an Ethernet/IPv4 frame, untagged).

    The quote is the offending packet's IP header and ``quote`` bytes after it (None: all of it).
    """
    ip = quoted_frame[14:]
    ihl = (ip[0] & 15) * 4
    tot = int.from_bytes(ip[2:4], "big")
    q = ip[:tot] if quote is None else ip[:ihl + quote]
    msg = icmp_error(type, code, q, extra)
    return eth(dst_mac, src_mac, 0x0800, ipv4(src, dst, 1, msg, ttl=ttl), vlans)


def ipv6_tcp(src, dst, sport: int, dport: int, flags: str | int = "S", seq: int = 0, ack: int = 0,
             payload: bytes = b"", *, win: int = 65535, options: bytes = b"", src_mac=DEFAULT_SRC_MAC,
             dst_mac=DEFAULT_DST_MAC, vlans=(), hlim: int = 64) -> bytes:
    """An Ethernet/IPv6/TCP frame."""
    seg = tcp(src, dst, sport, dport, flags, seq, ack, win, options, payload, v6=True)
    return eth(dst_mac, src_mac, 0x86DD, ipv6(src, dst, 6, seg, hlim=hlim), vlans)


def ipv6_udp(src, dst, sport: int, dport: int, payload: bytes = b"", *, src_mac=DEFAULT_SRC_MAC,
             dst_mac=DEFAULT_DST_MAC, vlans=(), hlim: int = 64) -> bytes:
    """An Ethernet/IPv6/UDP frame."""
    seg = udp(src, dst, sport, dport, payload, v6=True)
    return eth(dst_mac, src_mac, 0x86DD, ipv6(src, dst, 17, seg, hlim=hlim), vlans)


def ipv6_icmp_echo(src, dst, ident: int = 1, seq: int = 1, payload: bytes = b"", reply: bool = False, *,
                   src_mac=DEFAULT_SRC_MAC, dst_mac=DEFAULT_DST_MAC, vlans=(), hlim: int = 64) -> bytes:
    """An Ethernet/IPv6/ICMPv6 echo request or reply frame."""
    msg = icmp6_echo(src, dst, ident, seq, payload, reply)
    return eth(dst_mac, src_mac, 0x86DD, ipv6(src, dst, 58, msg, hlim=hlim), vlans)


def ipv6_icmp_error(src, dst, type: int, code: int, quoted_frame: bytes, *, extra: int = 0,
                    src_mac=DEFAULT_SRC_MAC, dst_mac=DEFAULT_DST_MAC, vlans=(), hlim: int = 64) -> bytes:
    """An Ethernet/IPv6/ICMPv6 error quoting the IPv6 packet of ``quoted_frame`` (untagged)."""
    msg = icmp6_error(src, dst, type, code, quoted_frame[14:], extra)
    return eth(dst_mac, src_mac, 0x86DD, ipv6(src, dst, 58, msg, hlim=hlim), vlans)
