"""Defrag's rules one by one (Linux ip_fragment.c / inet_fragment.c), and refragment's headers."""

from __future__ import annotations

from scapy.all import IP, Ether, Raw  # type: ignore

from ctswitch.conntrack.defrag import DROPPED, Defrag
from ctswitch.packet import codec, fragment
from ctswitch.params import Params


def frag(off: int, data: bytes, mf: bool, ident: int = 1, tos: int = 0, df: bool = False, options=b""):
    flags = (1 if mf else 0) | (2 if df else 0)
    ip = IP(src="10.0.0.1", dst="10.0.0.2", proto=17, id=ident, tos=tos, flags=flags, frag=off // 8)
    if options:
        ip.options = options
    return codec.parse(bytes(Ether() / ip / Raw(data)))


def d(**sysctl):
    p = Params()
    for k, v in sysctl.items():
        p.set("sysctl:net.ipv4." + k, v)
    return Defrag(p)


def test_out_of_order_and_a_non_last_length_cut_to_a_multiple_of_8():
    q = d()
    assert q.add(0, frag(8, b"B" * 8, False), 0) is None
    r = q.add(0, frag(0, b"A" * 12, True), 0)  # 12 -> 8 bytes: the last 4 are cut
    assert r.bounds == [(0, 8), (8, 8)] and r.mru == 20 + 12
    assert r.frame[14 + 20:] == b"A" * 8 + b"B" * 8
    ip = IP(r.frame[14:])
    assert (ip.len, ip.frag, ip.flags, ip.id) == (36, 0, 0, 1)
    c = ip.copy()
    del c.chksum
    assert IP(bytes(c)).chksum == ip.chksum
    assert q.stats["ReasmOKs"] == 1 and len(q) == 0 and q.mem == {4: 0, 6: 0}


def test_contradicting_last_fragment_and_empty_fragment_discard_the_queue():
    q = d()
    assert q.add(0, frag(0, b"A" * 16, True), 0) is None
    assert q.add(0, frag(0, b"A" * 8, False), 0) == DROPPED  # ends before data already seen
    assert len(q) == 0
    assert q.add(0, frag(8, b"", True, ident=2), 0) == DROPPED  # empty
    assert (q.stats["ReasmFails"], len(q)) == (2, 0)


def test_ecn_combination_and_df_of_the_largest_fragment():
    q = d()
    q.add(0, frag(0, b"A" * 16, True, tos=0x02), 0)  # ECT(0)
    r = q.add(0, frag(16, b"B" * 8, False, tos=0x03, df=True), 0)  # CE; DF on the smaller one
    ip = IP(r.frame[14:])
    assert (ip.tos & 3, ip.flags) == (3, 0)
    q.add(0, frag(0, b"A" * 16, True, ident=5, df=True), 0)
    ip = IP(q.add(0, frag(16, b"B" * 8, False, ident=5), 0).frame[14:])
    assert ip.flags == 2  # DF: the largest fragment had it
    q.add(0, frag(0, b"A" * 16, True, ident=6, tos=0x00), 0)  # not-ECT ...
    assert q.add(0, frag(16, b"B" * 8, False, ident=6, tos=0x01), 0) == DROPPED  # ... with ECT(1)


def test_memory_limit_and_oversized_datagram():
    q = d(ipfrag_high_thresh=90)
    assert q.add(0, frag(0, b"A" * 16, True), 0) is None  # a 50-byte frame held
    assert q.add(0, frag(0, b"A" * 16, True, ident=2), 0) == DROPPED  # 100 would pass 90
    assert q.add(0, frag(16, b"B" * 8, False), 0) is not None  # the held one still completes
    q = d()
    assert q.add(0, frag(0, b"A" * 8, True), 0) is None
    assert q.add(0, frag(8, b"B" * 32760, True), 0) is None
    assert q.add(0, frag(32768, b"C" * 32768, False), 0) == DROPPED  # 20 + 65536 > 65535
    assert (q.stats["ReasmFails"], len(q), q.mem) == (1, 0, {4: 0, 6: 0})


def test_queues_are_per_zone_and_expire():
    q = d(ipfrag_time=5)
    q.add(1, frag(0, b"A" * 8, True), 0)
    q.add(2, frag(0, b"A" * 8, True), 1000)
    assert len(q) == 2
    assert q.expire(4999) == 0
    assert q.expire(5000) == 1 and q.expire(6000) == 1
    assert (q.stats["ReasmTimeout"], q.stats["ReasmFails"], q.mem) == (2, 2, {4: 0, 6: 0})
    # A fragment for an expired queue starts a new one.
    q.add(3, frag(0, b"A" * 8, True), 0)
    assert q.add(3, frag(8, b"B" * 8, False), 5000) is None
    assert q.stats["ReasmTimeout"] == 3


def test_refragment_keeps_copied_options_only_in_later_fragments():
    # Record route (7, not copied) then a security-like option with the copy flag (0x82).
    opts = bytes([7, 7, 4, 0, 0, 0, 0, 0x82, 4, 0xAB, 0xCD, 0])
    pkt = frag(0, b"X" * 24, False, options=opts)
    frame = pkt.frame
    pieces = fragment.refragment(frame, 14, [(0, 16), (16, 8)])
    first, later = IP(pieces[0][14:]), IP(pieces[1][14:])
    assert bytes(pieces[0][14 + 20:14 + 32]) == opts
    assert bytes(pieces[1][14 + 20:14 + 32]) == b"\x01" * 7 + bytes([0x82, 4, 0xAB, 0xCD, 0])
    assert (first.frag, first.flags, first.len) == (0, 1, 32 + 16)
    assert (later.frag, later.flags, later.len) == (2, 0, 32 + 8)
    assert bytes(later.payload) == b"X" * 8


def test_ipv6_queues_use_the_frag6_knobs_and_their_own_counters():
    from scapy.all import IPv6, IPv6ExtHdrFragment  # type: ignore
    p = codec.parse(bytes(Ether() / IPv6(src="2001:db8::1", dst="2001:db8::2") /
                          IPv6ExtHdrFragment(nh=17, offset=0, m=1, id=5) / Raw(b"A" * 16)))
    q = d()
    assert q.add(0, p, 0) is None
    assert q.expire(59_999) == 0 and q.expire(60_000) == 1  # nf_conntrack_frag6_timeout: 60 s
    assert (q.stats6["ReasmTimeout"], q.stats["ReasmTimeout"], q.mem) == (1, 0, {4: 0, 6: 0})
