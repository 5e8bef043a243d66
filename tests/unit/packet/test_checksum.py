"""checksum: full sums, pseudo-headers and RFC 1624 updates against scapy and full recomputation."""

from __future__ import annotations

import random

from scapy.all import IP, TCP, IPv6  # type: ignore
from scapy.layers.inet6 import in6_chksum  # type: ignore
from scapy.utils import checksum as scapy_checksum  # type: ignore

from ctswitch.packet import checksum as C


def test_csum16_matches_scapy_random_lengths():
    rnd = random.Random(1)
    for n in list(range(0, 70)) + [1499, 1500]:
        data = bytes(rnd.randrange(256) for _ in range(n))
        assert C.csum16(data) == scapy_checksum(data), n


def test_csum16_zero_and_ones():
    assert C.csum16(b"") == 0xFFFF
    assert C.csum16(b"\x00\x00") == 0xFFFF
    assert C.csum16(b"\xff\xff") == 0x0000
    assert C.csum16(b"\xff\xff\xff\xff") == scapy_checksum(b"\xff\xff\xff\xff")


def test_verifying_a_correct_header_gives_zero():
    hdr = bytes(IP(src="2.2.2.1", dst="1.1.1.2"))
    assert C.csum16(hdr) == 0 and C.ipv4_header_ok(hdr, 0, 20)


def test_pseudo_headers_against_scapy():
    seg = bytearray(bytes(TCP(sport=1, dport=2, flags="S")) + b"abc")
    seg[16:18] = b"\0\0"
    src, dst = 0x02020201, 0x01010102
    ref = bytes(IP(src="2.2.2.1", dst="1.1.1.2") / TCP(sport=1, dport=2, flags="S") / b"abc")[20:]
    assert C.l4_csum4(src, dst, 6, seg) == int.from_bytes(ref[16:18], "big")
    s6, d6 = "2001:db8::1", "2001:db8::2"
    want = in6_chksum(6, IPv6(src=s6, dst=d6), bytes(seg))
    assert C.l4_csum6(0x20010DB8 << 96 | 1, 0x20010DB8 << 96 | 2, 6, seg) == want


def test_update_equals_full_recompute():
    rnd = random.Random(2)
    for _ in range(500):
        n = rnd.choice([20, 40, 60])
        data = bytearray(rnd.randrange(256) for _ in range(n))
        data[10:12] = b"\0\0"
        data[10:12] = C.csum16(data).to_bytes(2, "big")
        width = rnd.choice([2, 4, 16])
        off = rnd.randrange(0, (n - width) // 2) * 2
        if off <= 11 and off + width > 10:
            continue  # not the checksum field itself
        old = int.from_bytes(data[off:off + width], "big")
        new = rnd.choice([0, (1 << (8 * width)) - 1, rnd.getrandbits(8 * width)])
        c = C.update(int.from_bytes(data[10:12], "big"), old, new)
        data[off:off + width] = new.to_bytes(width, "big")
        full = bytearray(data)
        full[10:12] = b"\0\0"
        assert c == C.csum16(full)


def test_incremental_bytes():
    hdr = bytearray(bytes(IP(src="2.2.2.1", dst="1.1.1.2")))
    old = bytes(hdr[12:16])
    new = bytes([1, 1, 1, 16])
    c = C.incremental(int.from_bytes(hdr[10:12], "big"), old, new)
    hdr[12:16] = new
    assert c == int.from_bytes(bytes(IP(src="1.1.1.16", dst="1.1.1.2"))[10:12], "big")
    assert C.fold(0) == 0 and C.fold(0x1FFFE) == 0xFFFF and C.fold(0x10000) == 1
