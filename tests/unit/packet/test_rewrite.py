"""rewrite: every field write, checked field by field and against scapy's recomputed checksums."""

from __future__ import annotations

import importlib.util
import os

import pytest
from scapy.all import IP, UDP, Ether, Raw  # type: ignore

from ctswitch.flow import key as K
from ctswitch.packet import build, codec, rewrite

_spec = importlib.util.spec_from_file_location("scapy_check", os.path.join(os.path.dirname(__file__), "scapy_check.py"))
_sc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_sc)
bad_checksums, ipv4_header_ok = _sc.bad_checksums, _sc.ipv4_header_ok

HOST, REMOTE, SNAT = 0x02020201, 0x01010102, 0x01010110


def _rw(frame: bytes, **changes) -> tuple[bytes, object]:
    pkt = codec.parse(frame)
    old = K.extract(pkt, 1)
    new = list(old)
    for name, v in changes.items():
        new[getattr(K, name)] = v
    out = rewrite.apply(frame, pkt, old, new)
    return out, codec.parse(out)


@pytest.mark.parametrize("frame", [
    build.ipv4_tcp("2.2.2.1", "1.1.1.2", 40001, 80, "PA", 5, 6, b"hello world"),
    build.ipv4_tcp("2.2.2.1", "1.1.1.2", 40001, 80, "S", options=build.tcp_opts(1460, 7, True)),
    build.ipv4_udp("2.2.2.1", "1.1.1.2", 49152, 4791, b"roce" * 10),
    build.ipv4_tcp("2.2.2.1", "1.1.1.2", 1, 2, "A", vlans=(100, (0x88A8, 5))),
    build.ipv4_tcp("2.2.2.1", "1.1.1.2", 65535, 65535, "A", ip_options=b"\x94\x04\x00\x00"),
])
def test_snat_v4(frame):
    out, p = _rw(frame, NW_SRC=SNAT, TP_SRC=40004)
    assert (p.nw_src, p.tp_src, p.nw_dst) == (SNAT, 40004, REMOTE)
    assert bad_checksums(out) == []
    back, p2 = _rw(out, NW_SRC=HOST, TP_SRC=codec.parse(frame).tp_src)
    assert back == frame


def test_dnat_and_all_ip_fields():
    frame = build.ipv4_tcp("1.1.1.2", "1.1.1.16", 80, 40001, "SA", 9, 1, tos=0x10)
    out, p = _rw(frame, NW_DST=HOST, TP_DST=40001, NW_TTL=63, NW_TOS=0xB8, NW_ECN=3,
                 DL_SRC=0x0A0B0C0D0E0F, DL_DST=0x020000000201)
    assert (p.nw_dst, p.nw_ttl, p.nw_tos, p.dl_src, p.dl_dst) == (HOST, 63, 0xBB, 0x0A0B0C0D0E0F, 0x020000000201)
    assert bad_checksums(out) == []


def test_udp_zero_checksum_stays_zero():
    frame = build.ipv4_udp("2.2.2.1", "1.1.1.2", 5000, 53, b"q" * 12, csum=False)
    out, p = _rw(frame, NW_SRC=SNAT, TP_SRC=1234)
    assert out[40:42] == b"\0\0" and p.nw_src == SNAT and p.tp_src == 1234
    assert bad_checksums(out) == []


def test_udp_checksum_that_becomes_zero_is_sent_as_ffff():
    # Find a source port where the rewritten UDP checksum computes to 0.
    frame = build.ipv4_udp("2.2.2.1", "1.1.1.2", 5000, 53, b"abcd")
    pkt = codec.parse(frame)
    c = int.from_bytes(frame[40:42], "big")
    for port in range(65536):
        from ctswitch.packet.checksum import update
        if update(c, 5000, port) == 0:
            break
    out, p = _rw(frame, TP_SRC=port)
    assert out[40:42] == b"\xff\xff" and p.tp_src == port and pkt.tp_src == 5000
    assert bad_checksums(out) == []


def test_icmp_echo_nat_and_id():
    frame = build.ipv4_icmp_echo("2.2.2.1", "1.1.1.2", ident=7, seq=1, payload=b"x" * 56)
    out, p = _rw(frame, NW_SRC=SNAT)
    out = rewrite.set_icmp_id(out, p, 4242)
    p = codec.parse(out)
    assert (p.nw_src, p.icmp_id, p.icmp_seq) == (SNAT, 4242, 1)
    assert bad_checksums(out) == []


def test_ipv6_rewrites():
    s6, d6 = 0x20010DB8 << 96 | 1, 0x20010DB8 << 96 | 2
    for frame in (build.ipv6_tcp("2001:db8::1", "2001:db8::2", 1000, 22, "S", payload=b"abc"),
                  build.ipv6_udp("2001:db8::1", "2001:db8::2", 1000, 53, b"abc"),
                  build.ipv6_icmp_echo("2001:db8::1", "2001:db8::2", 7, 1)):
        out, p = _rw(frame, IPV6_SRC=s6 + 0x100, IPV6_DST=d6 + 5, NW_TTL=3, NW_TOS=0x28, NW_ECN=1, IPV6_LABEL=0x12345)
        assert (p.nw_src, p.nw_dst, p.nw_ttl, p.nw_tos, p.ipv6_label) == (s6 + 0x100, d6 + 5, 3, 0x29, 0x12345)
        assert bad_checksums(out) == []


def test_fragments():
    first = bytes(Ether() / IP(src="2.2.2.1", dst="1.1.1.2", flags="MF") / UDP(sport=1, dport=2, len=40, chksum=0x1234) / Raw(b"a" * 16))
    out, p = _rw(first, NW_SRC=SNAT, TP_SRC=7)
    assert p.tp_src == 7 and ipv4_header_ok(out[14:])
    # The UDP checksum covers the whole datagram: the update is the same as for a whole one.
    from ctswitch.packet.checksum import update
    c = update(update(0x1234, HOST, SNAT), 1, 7)
    assert out[40:42] == c.to_bytes(2, "big")
    later = bytes(Ether() / IP(src="2.2.2.1", dst="1.1.1.2", proto=17, frag=3) / Raw(b"b" * 16))
    out, p = _rw(later, NW_SRC=SNAT, TP_SRC=7)
    assert p.nw_src == SNAT and out[34:] == later[34:] and ipv4_header_ok(out[14:])


def test_no_change_returns_same_bytes():
    frame = build.ipv4_tcp("2.2.2.1", "1.1.1.2", 1, 2)
    assert _rw(frame)[0] == frame


def _icmp_err(outer_src, outer_dst, quoted_frame, **kw):
    return build.ipv4_icmp_error(outer_src, outer_dst, 3, 3, quoted_frame, quote=None, **kw)


@pytest.mark.parametrize("host_pkt,natted_pkt,inner", [
    (build.ipv4_udp("2.2.2.1", "1.1.1.2", 50002, 9998, b"data" * 3),
     build.ipv4_udp("1.1.1.16", "1.1.1.2", 40000, 9998, b"data" * 3), (HOST, REMOTE, 50002, 9998)),
    (build.ipv4_tcp("2.2.2.1", "1.1.1.2", 40001, 81, "S", 77),
     build.ipv4_tcp("1.1.1.16", "1.1.1.2", 40001, 81, "S", 77), (HOST, REMOTE, 40001, 81)),
    (build.ipv4_icmp_echo("2.2.2.1", "1.1.1.2", 7, 1, b"p" * 8),
     build.ipv4_icmp_echo("1.1.1.16", "1.1.1.2", 9, 1, b"p" * 8), (HOST, REMOTE, 7, 0x0800)),
])
def test_nat_icmp_error_full_quote(host_pkt, natted_pkt, inner):
    # The remote answers the SNATed packet; un-NAT gives exactly the error the host would expect.
    got_err = _icmp_err("1.1.1.2", "1.1.1.16", natted_pkt)
    want = _icmp_err("1.1.1.2", "2.2.2.1", host_pkt)
    pkt = codec.parse(got_err)
    out = rewrite.nat_icmp_error(got_err, pkt, None, HOST, *inner)
    assert out == want
    assert bad_checksums(out) == []
    assert ipv4_header_ok(out[42:])


def test_nat_icmp_error_short_quote_udp():
    # Only the IP header + 8 bytes quoted (the usual case): the quoted UDP checksum is still patched.
    host_pkt = build.ipv4_udp("2.2.2.1", "1.1.1.2", 50002, 9998, b"zz")
    natted = build.ipv4_udp("1.1.1.16", "1.1.1.2", 40000, 9998, b"zz")
    err = build.ipv4_icmp_error("1.1.1.2", "1.1.1.16", 3, 3, natted)
    out = rewrite.nat_icmp_error(err, codec.parse(err), None, HOST, HOST, REMOTE, 50002, 9998)
    assert out == build.ipv4_icmp_error("1.1.1.2", "2.2.2.1", 3, 3, host_pkt)
    p = codec.parse(out)
    assert (p.inner.nw_src, p.inner.tp_src, p.nw_dst) == (HOST, 50002, HOST)
    assert bad_checksums(out) == [] and ipv4_header_ok(out[42:])


def test_nat_icmp_error_outer_src_and_ipv6():
    natted = build.ipv4_udp("1.1.1.2", "2.2.2.1", 53, 50000, b"x")
    err = build.ipv4_icmp_error("2.2.2.1", "1.1.1.2", 3, 3, natted)
    out = rewrite.nat_icmp_error(err, codec.parse(err), SNAT, None, REMOTE, SNAT, 53, 50000)
    p = codec.parse(out)
    assert (p.nw_src, p.inner.nw_dst) == (SNAT, SNAT)
    assert bad_checksums(out) == [] and ipv4_header_ok(out[42:])
    a, b, c = "2001:db8::1", "2001:db8::2", "2001:db8::10"
    i = lambda s: int.from_bytes(build.ip6(s), "big")  # noqa: E731
    q = build.ipv6_udp(c, b, 40000, 53, b"abc")
    err6 = build.ipv6_icmp_error(b, c, 1, 4, q)
    out6 = rewrite.nat_icmp_error(err6, codec.parse(err6), None, i(a), i(a), i(b), 50000, 53)
    assert out6 == build.ipv6_icmp_error(b, a, 1, 4, build.ipv6_udp(a, b, 50000, 53, b"abc"))
    assert bad_checksums(out6) == []


def test_checker_catches_a_wrong_checksum():
    f = bytearray(build.ipv4_tcp("2.2.2.1", "1.1.1.2", 1, 2, "S"))
    f[50] ^= 1
    assert bad_checksums(bytes(f)) == ["TCP"]
    f[24] ^= 1
    assert bad_checksums(bytes(f)) == ["IP", "TCP"]


def _one(frame: bytes, i: int, v: int) -> bytes:
    """One field written by apply's general (field by field) branch (MACs by apply itself)."""
    pkt = codec.parse(frame)
    old = K.extract(pkt, 1)
    new = list(old)
    new[i] = v
    if i in (K.DL_SRC, K.DL_DST):
        return rewrite.apply(frame, pkt, old, new)
    return rewrite._apply_fields(bytearray(frame), pkt, [i], new)


@pytest.mark.parametrize("seed", range(300))
def test_nat_shortcut_equals_the_field_by_field_rewrite(seed):
    import random
    rng = random.Random(seed)
    udp = rng.random() < 0.4
    csum = rng.choice([None, 0, 0xFFFF, rng.randrange(0x10000)])
    src, dst = rng.getrandbits(32), rng.getrandbits(32)
    sp, dp = rng.randrange(0x10000), rng.randrange(0x10000)
    if udp:
        frame = bytearray(build.ipv4_udp(src, dst, sp, dp, b"p" * rng.randrange(6)))
        coff = 14 + 20 + 6
    else:
        frame = bytearray(build.ipv4_tcp(src, dst, sp, dp, "A", rng.getrandbits(32), 0, b"q" * rng.randrange(6)))
        coff = 14 + 20 + 16
    if csum is not None:
        frame[coff:coff + 2] = csum.to_bytes(2, "big")
    if rng.random() < 0.2:  # crafted IPv4 header checksums: the +0/-0 corner cases
        frame[24:26] = rng.choice([0, 0xFFFF]).to_bytes(2, "big")
    frame = bytes(frame)
    pkt = codec.parse(frame)
    old = K.extract(pkt, 1)
    new = list(old)
    for i, bits in ((K.DL_SRC, 48), (K.DL_DST, 48), (K.NW_SRC, 32), (K.NW_DST, 32), (K.TP_SRC, 16), (K.TP_DST, 16)):
        r = rng.random()
        if r < 0.4:
            new[i] = rng.getrandbits(bits)
        elif r < 0.5:  # swapped addresses/ports: a net-zero change of the sums
            new[i] = old[{K.NW_SRC: K.NW_DST, K.NW_DST: K.NW_SRC, K.TP_SRC: K.TP_DST,
                          K.TP_DST: K.TP_SRC}.get(i, i)]
    diff = [i for i in rewrite._FIELDS if old[i] != new[i]]
    want = frame
    for i in diff:
        want = _one(want, i, new[i])
    assert rewrite.apply(frame, pkt, old, new) == want
