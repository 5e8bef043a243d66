"""build: frames equal to scapy's for the same fields; summary: the one-line formats."""

from __future__ import annotations

import pytest
from scapy.all import ARP, ICMP, IP, TCP, UDP, Dot1Q, Ether, ICMPv6EchoRequest, IPv6, Raw  # type: ignore

from ctswitch.packet import build, codec, summary

H, R = "02:00:00:00:02:01", "02:00:00:00:01:02"


def _pad(b: bytes) -> bytes:
    return b + bytes(max(0, 60 - len(b)))


def test_frames_equal_scapy():
    assert build.ipv4_tcp("2.2.2.1", "1.1.1.2", 40001, 80, "PA", 5, 6, b"hello", src_mac=H, dst_mac=R) == _pad(bytes(
        Ether(src=H, dst=R) / IP(src="2.2.2.1", dst="1.1.1.2", id=1) / TCP(sport=40001, dport=80, flags="PA", seq=5, ack=6, window=65535) / Raw(b"hello")))
    assert build.ipv4_udp("2.2.2.1", "1.1.1.2", 5, 53, b"q" * 30, src_mac=H, dst_mac=R, vlans=(7,)) == bytes(
        Ether(src=H, dst=R) / Dot1Q(vlan=7) / IP(src="2.2.2.1", dst="1.1.1.2", id=1) / UDP(sport=5, dport=53) / Raw(b"q" * 30))
    assert build.ipv4_icmp_echo("2.2.2.1", "1.1.1.2", 7, 3, b"p" * 56, src_mac=H, dst_mac=R) == bytes(
        Ether(src=H, dst=R) / IP(src="2.2.2.1", dst="1.1.1.2", id=1) / ICMP(id=7, seq=3) / Raw(b"p" * 56))
    assert build.arp(1, H, "2.2.2.1", "00:00:00:00:00:00", "1.1.1.2") == _pad(bytes(
        Ether(src=H, dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, hwsrc=H, psrc="2.2.2.1", pdst="1.1.1.2")))
    assert build.ipv6_icmp_echo("2001:db8::1", "2001:db8::2", 7, 1, src_mac=H, dst_mac=R) == _pad(bytes(
        Ether(src=H, dst=R) / IPv6(src="2001:db8::1", dst="2001:db8::2") / ICMPv6EchoRequest(id=7, seq=1)))
    # Ints and strings are the same address.
    assert build.ipv4_tcp(0x02020201, 0x01010102, 1, 2) == build.ipv4_tcp("2.2.2.1", "1.1.1.2", 1, 2)
    assert build.mac(0x020000000102) == build.mac(R) == bytes.fromhex("020000000102")


def test_bad_inputs():
    with pytest.raises(ValueError):
        build.mac("02:00")
    with pytest.raises(ValueError):
        build.tcp_flags("SX")
    with pytest.raises(ValueError):
        build.ip4("1.2.3")


@pytest.mark.parametrize("frame,text", [
    (build.ipv4_tcp("2.2.2.1", "1.1.1.2", 40001, 80, "S"), "tcp 2.2.2.1:40001>1.1.1.2:80 S"),
    (build.ipv4_tcp("1.1.1.2", "1.1.1.16", 80, 40001, "SA"), "tcp 1.1.1.2:80>1.1.1.16:40001 SA"),
    (build.ipv4_tcp("2.2.2.1", "1.1.1.2", 40001, 80, "FPU"), "tcp 2.2.2.1:40001>1.1.1.2:80 FPU"),
    (build.ipv4_tcp("2.2.2.1", "1.1.1.2", 40001, 80, "PA", payload=b"x" * 100), "tcp 2.2.2.1:40001>1.1.1.2:80 PA len=100"),
    (build.ipv4_tcp("2.2.2.1", "1.1.1.2", 40001, 80, ""), "tcp 2.2.2.1:40001>1.1.1.2:80"),
    (build.ipv4_udp("2.2.2.1", "1.1.1.2", 50000, 53, b"q" * 30), "udp 2.2.2.1:50000>1.1.1.2:53 len=30"),
    (build.ipv4_icmp_echo("2.2.2.1", "1.1.1.2", 7, 1), "icmp 2.2.2.1>1.1.1.2 echo-request id=7 seq=1"),
    (build.ipv4_icmp_echo("1.1.1.2", "2.2.2.1", 7, 2, reply=True), "icmp 1.1.1.2>2.2.2.1 echo-reply id=7 seq=2"),
    (build.ipv4_icmp_error("1.1.1.2", "2.2.2.1", 3, 3, build.ipv4_udp("2.2.2.1", "1.1.1.2", 50002, 9998)),
     "icmp 1.1.1.2>2.2.2.1 dest-unreachable code=3 [udp 2.2.2.1:50002>1.1.1.2:9998]"),
    (build.arp(1, H, "2.2.2.1", "00:00:00:00:00:00", "1.1.1.2"), "arp who-has 1.1.1.2 tell 2.2.2.1"),
    (build.arp(2, R, "1.1.1.2", H, "2.2.2.1"), "arp reply 1.1.1.2 is-at 02:00:00:00:01:02"),
    (build.ipv6_udp("2001:db8::1", "2001:db8::2", 1, 2, vlans=(9,)), "vlan=9 udp6 [2001:db8::1]:1>[2001:db8::2]:2 len=0"),
    (b"\x01\x02", "drop: truncated ethernet header"),
    (bytes(Ether() / IP(src="1.1.1.1", dst="2.2.2.2", proto=6, frag=2) / Raw(b"x" * 8)),
     "ip 1.1.1.1>2.2.2.2 tcp fragment len=8"),
])
def test_summary(frame, text):
    assert summary.summarize(codec.parse(frame)) == text
