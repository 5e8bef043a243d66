"""codec.parse against frames built by scapy: every field, every drop reason."""

from __future__ import annotations

import struct

import pytest
from scapy.all import (  # type: ignore
    ARP,
    ICMP,
    IP,
    TCP,
    UDP,
    Dot1AD,
    Dot1Q,
    Ether,
    ICMPv6DestUnreach,
    ICMPv6EchoReply,
    ICMPv6EchoRequest,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    Raw,
)

from ctswitch.packet import codec
from ctswitch.packet.headers import FRAG_ANY, FRAG_LATER

H = "02:00:00:00:02:01"
R = "02:00:00:00:01:02"
E = Ether(src=H, dst=R)


def ip4(s: str) -> int:
    return int.from_bytes(bytes(int(x) for x in s.split(".")), "big")


def test_tcp_all_fields():
    f = bytes(E / IP(src="2.2.2.1", dst="1.1.1.2", tos=0xB9, ttl=17) /
              TCP(sport=40001, dport=80, flags="SEC", seq=123456789, ack=987654321, window=29200,
                  options=[("MSS", 1460), ("SAckOK", b""), ("NOP", None), ("WScale", 7)]) / Raw(b"x" * 10))
    p = codec.parse(f)
    assert p.drop is None
    assert (p.dl_dst, p.dl_src, p.dl_type, p.vlans) == (0x020000000102, 0x020000000201, 0x0800, ())
    assert (p.ip_ver, p.nw_src, p.nw_dst, p.nw_proto, p.nw_tos, p.nw_ttl) == (4, ip4("2.2.2.1"), ip4("1.1.1.2"), 6, 0xB9, 17)
    assert (p.l3, p.l4, p.tp_src, p.tp_dst) == (14, 34, 40001, 80)
    assert p.tcp_flags == 0x02 | 0x40 | 0x80
    assert (p.tcp_seq, p.tcp_ack, p.tcp_win, p.tcp_wscale, p.tcp_sack_perm) == (123456789, 987654321, 29200, 7, True)
    assert p.payload == 34 + 32 and p.payload_len == 10
    assert p.ip_len == 20 + 32 + 10 and p.nw_frag == 0 and not p.ip_options


def test_tcp_ns_flag_and_no_options():
    f = bytearray(bytes(E / IP(src="2.2.2.1", dst="1.1.1.2") / TCP(flags="A")))
    f[14 + 20 + 12] |= 1  # NS bit
    p = codec.parse(bytes(f))
    assert p.tcp_flags == 0x110 and p.tcp_wscale == -1 and p.tcp_sack_perm is False


def test_payload_len_from_ip_length_not_frame():
    # 54-byte TCP ACK padded to 60 by Ethernet: the 6 padding bytes are not payload.
    f = bytes(E / IP(src="2.2.2.1", dst="1.1.1.2") / TCP(flags="A")) + bytes(6)
    p = codec.parse(f)
    assert p.payload_len == 0 and p.ip_len == 40


def test_udp():
    p = codec.parse(bytes(E / IP(src="2.2.2.1", dst="1.1.1.2") / UDP(sport=49152, dport=4791) / Raw(b"r" * 30)))
    assert (p.nw_proto, p.tp_src, p.tp_dst, p.payload_len, p.payload) == (17, 49152, 4791, 30, 42)


def test_vlan_and_qinq():
    p = codec.parse(bytes(Ether(src=H, dst=R) / Dot1Q(vlan=100, prio=5) / IP(src="1.2.3.4", dst="5.6.7.8") / UDP()))
    assert p.vlans == ((5 << 13) | 100,) and p.dl_type == 0x0800 and p.l3 == 18 and p.l4 == 38
    p = codec.parse(bytes(Ether(src=H, dst=R) / Dot1AD(vlan=10) / Dot1Q(vlan=20) / IP(src="1.2.3.4", dst="5.6.7.8") / TCP()))
    assert p.vlans == (10, 20) and p.dl_type == 0x0800 and p.l3 == 22 and p.tp_dst == 80


def test_arp():
    p = codec.parse(bytes(Ether(src=H, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=H, psrc="2.2.2.1", pdst="1.1.1.2")))
    assert (p.dl_type, p.arp_op, p.arp_sha, p.arp_tha, p.nw_src, p.nw_dst, p.ip_ver) == (
        0x0806, 1, 0x020000000201, 0, ip4("2.2.2.1"), ip4("1.1.1.2"), 0)


def test_ipv4_options_and_fragments():
    p = codec.parse(bytes(E / IP(src="1.1.1.1", dst="2.2.2.2", options=[b"\x94\x04\x00\x00"]) / TCP()))
    assert p.ip_options is True and p.l4 == 14 + 24 and p.tp_dst == 80
    first = bytes(E / IP(src="1.1.1.1", dst="2.2.2.2", flags="MF", frag=0) / UDP(sport=1, dport=2) / Raw(b"a" * 16))
    p = codec.parse(first)
    assert p.nw_frag == FRAG_ANY and p.tp_src == 1 and p.l4 == 34
    later = bytes(E / IP(src="1.1.1.1", dst="2.2.2.2", proto=17, frag=3) / Raw(b"a" * 16))
    p = codec.parse(later)
    assert p.nw_frag == FRAG_ANY | FRAG_LATER and p.l4 == -1 and p.tp_src == 0 and p.payload_len == 16
    assert p.drop is None and p.nw_proto == 17


def test_icmp_echo_and_error():
    p = codec.parse(bytes(E / IP(src="2.2.2.1", dst="1.1.1.2") / ICMP(type=8, id=7, seq=3) / Raw(b"p" * 8)))
    assert (p.tp_src, p.tp_dst, p.icmp_id, p.icmp_seq, p.inner) == (8, 0, 7, 3, None)
    quoted = IP(src="2.2.2.1", dst="1.1.1.2") / UDP(sport=50002, dport=9998)
    f = bytes(E / IP(src="1.1.1.2", dst="2.2.2.1") / ICMP(type=3, code=3) / quoted)
    p = codec.parse(f)
    assert (p.tp_src, p.tp_dst, p.icmp_id) == (3, 3, 0)
    assert p.inner_off == 42
    i = p.inner
    assert (i.ip_ver, i.nw_src, i.nw_dst, i.nw_proto, i.tp_src, i.tp_dst) == (4, ip4("2.2.2.1"), ip4("1.1.1.2"), 17, 50002, 9998)
    # A quoted echo: its id is the inner icmp_id.
    f = bytes(E / IP(src="1.1.1.2", dst="2.2.2.1") / ICMP(type=11, code=0) / IP(src="2.2.2.1", dst="9.9.9.9") / ICMP(id=99, seq=1))
    i = codec.parse(f).inner
    assert (i.nw_proto, i.tp_src, i.icmp_id) == (1, 8, 99)
    # Quote too short for ports: no inner, no drop.
    f = bytes(E / IP(src="1.1.1.2", dst="2.2.2.1") / ICMP(type=3, code=1) / Raw(bytes(IP(src="2.2.2.1", dst="1.1.1.2", proto=6))[:20]))
    p = codec.parse(f)
    assert p.inner is None and p.drop is None


def test_ipv6_extension_headers():
    base = Ether(src=H, dst=R) / IPv6(src="2001:db8::1", dst="2001:db8::2", tc=0x28, fl=0xABCDE, hlim=9)
    chain = IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting() / IPv6ExtHdrDestOpt() / TCP(sport=1000, dport=22, flags="S")
    p = codec.parse(bytes(base / chain))
    assert p.drop is None and p.ip_ver == 6 and p.nw_proto == 6 and p.tp_dst == 22
    assert (p.nw_tos, p.ipv6_label, p.nw_ttl) == (0x28, 0xABCDE, 9)
    assert p.nw_src == int.from_bytes(bytes.fromhex("20010db8" + "0" * 23 + "1"), "big")
    assert p.l4 == 14 + 40 + 8 + 8 + 8
    p = codec.parse(bytes(base / IPv6ExtHdrFragment(offset=0, m=1) / UDP(sport=5, dport=6) / Raw(b"z" * 8)))
    assert p.nw_frag == FRAG_ANY and p.nw_proto == 17 and p.tp_dst == 6 and p.payload_len == 8
    p = codec.parse(bytes(base / IPv6ExtHdrFragment(offset=10, m=0, nh=17) / Raw(b"z" * 8)))
    assert p.nw_frag == FRAG_ANY | FRAG_LATER and p.nw_proto == 17 and p.l4 == -1


def test_icmpv6():
    base = Ether(src=H, dst=R) / IPv6(src="2001:db8::1", dst="2001:db8::2")
    p = codec.parse(bytes(base / ICMPv6EchoRequest(id=7, seq=1)))
    assert (p.nw_proto, p.tp_src, p.icmp_id, p.icmp_seq) == (58, 128, 7, 1)
    p = codec.parse(bytes(base / ICMPv6EchoReply(id=7, seq=2)))
    assert (p.tp_src, p.icmp_id, p.icmp_seq) == (129, 7, 2)
    q = IPv6(src="2001:db8::2", dst="2001:db8::1") / UDP(sport=7000, dport=53)
    p = codec.parse(bytes(base / ICMPv6DestUnreach(code=4) / q))
    assert (p.tp_src, p.tp_dst) == (1, 4)
    assert (p.inner.ip_ver, p.inner.nw_proto, p.inner.tp_src, p.inner.tp_dst) == (6, 17, 7000, 53)
    assert p.inner_off == 14 + 40 + 8


def _ip_tcp() -> bytes:
    return bytes(E / IP(src="2.2.2.1", dst="1.1.1.2") / TCP(flags="S"))


@pytest.mark.parametrize("mangle,reason", [
    (lambda f: f[:13], "truncated ethernet header"),
    (lambda f: f[:12] + b"\x81\x00\x00", "truncated vlan header"),
    (lambda f: f[:30], "truncated ipv4 header"),
    (lambda f: f[:14] + b"\x43" + f[15:], "bad ihl"),
    (lambda f: f[:14] + b"\x55" + f[15:], "bad ip version"),
    (lambda f: f[:14] + b"\x4f" + f[15:], "truncated ipv4 header"),
    (lambda f: f[:16] + struct.pack("!H", 2000) + f[18:], "ipv4 total length beyond frame"),
    (lambda f: f[:16] + struct.pack("!H", 10) + f[18:], "bad ipv4 total length"),
    (lambda f: f[:16] + struct.pack("!H", 30) + f[18:], "truncated tcp header"),
    (lambda f: f[:46] + b"\x30" + f[47:], "bad tcp data offset"),
    (lambda f: f[:46] + b"\xf0" + f[47:], "bad tcp data offset"),
])
def test_drop_reasons(mangle, reason):
    p = codec.parse(mangle(_ip_tcp()))
    assert p.drop == reason
    assert reason in codec.REASONS


def test_more_drop_reasons():
    udp = bytes(E / IP(src="2.2.2.1", dst="1.1.1.2") / UDP())
    assert codec.parse(udp[:14] + udp[14:16] + struct.pack("!H", 24) + udp[18:38]).drop == "truncated udp header"
    icmp = bytes(E / IP(src="2.2.2.1", dst="1.1.1.2") / ICMP())
    assert codec.parse(icmp[:16] + struct.pack("!H", 24) + icmp[18:38]).drop == "truncated icmp header"
    arp = bytes(Ether() / ARP())
    assert codec.parse(arp[:30]).drop == "truncated arp header"
    v6 = bytes(E / IPv6() / TCP())
    assert codec.parse(v6[:50]).drop == "truncated ipv6 header"
    assert codec.parse(v6[:70]).drop == "ipv6 payload length beyond frame"
    hbh = bytes(E / IPv6(plen=4, nh=0) / Raw(b"\x06\x00\x00\x00"))
    assert codec.parse(hbh).drop == "truncated ipv6 extension header"
    # The fields parsed before the problem stay valid.
    p = codec.parse(_ip_tcp()[:30])
    assert p.dl_src == 0x020000000201 and p.dl_type == 0x0800 and p.l3 == 14


def test_garbage_never_raises():
    import random
    rnd = random.Random(7)
    base = [_ip_tcp(), bytes(E / IPv6() / IPv6ExtHdrHopByHop() / ICMPv6DestUnreach() / IPv6() / UDP()),
            bytes(E / IP() / ICMP(type=3) / IP() / TCP()), bytes(E / Dot1Q() / ARP())]
    for _ in range(3000):
        f = bytearray(rnd.choice(base))
        for _ in range(rnd.randint(1, 4)):
            f[rnd.randrange(len(f))] = rnd.randrange(256)
        codec.parse(bytes(f[:rnd.randint(0, len(f))]))
