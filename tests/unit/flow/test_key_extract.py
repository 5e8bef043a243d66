"""flow.key.extract builds the key as one list display (one branch for IPv4): it must give, for
every frame, exactly the key of the original field-by-field build kept here as the reference
(values and their types; the same exceptions for a hand-made packet holding odd values)."""

from __future__ import annotations

import random

import pytest

from ctswitch.flow import key as K
from ctswitch.packet import build, codec
from ctswitch.packet.headers import ETH_TYPE_ARP, ETH_TYPE_IP, ETH_TYPE_IPV6, Packet


def _reference(pkt: Packet, in_port: int) -> list[int]:
    """``extract`` as it was: a ``[0] * N_FIELDS`` list filled field by field."""
    key = [0] * K.N_FIELDS
    key[K.IN_PORT] = in_port
    key[K.DL_SRC] = pkt.dl_src
    key[K.DL_DST] = pkt.dl_dst
    key[K.DL_TYPE] = pkt.dl_type
    if pkt.vlans:
        key[K.VLAN_TCI] = pkt.vlans[0] | K.VLAN_CFI
    dl_type = pkt.dl_type
    if dl_type == ETH_TYPE_IP or dl_type == ETH_TYPE_IPV6:
        if pkt.ip_ver == 4:
            key[K.NW_SRC] = pkt.nw_src
            key[K.NW_DST] = pkt.nw_dst
        elif pkt.ip_ver == 6:
            key[K.IPV6_SRC] = pkt.nw_src
            key[K.IPV6_DST] = pkt.nw_dst
            key[K.IPV6_LABEL] = pkt.ipv6_label
        key[K.NW_PROTO] = pkt.nw_proto
        key[K.NW_TOS] = pkt.nw_tos & 0xFC
        key[K.NW_ECN] = pkt.nw_tos & 0x03
        key[K.NW_TTL] = pkt.nw_ttl
        key[K.NW_FRAG] = pkt.nw_frag
        key[K.TP_SRC] = pkt.tp_src
        key[K.TP_DST] = pkt.tp_dst
        key[K.TCP_FLAGS] = pkt.tcp_flags
    elif dl_type == ETH_TYPE_ARP:
        key[K.NW_SRC] = pkt.nw_src
        key[K.NW_DST] = pkt.nw_dst
        key[K.NW_PROTO] = pkt.arp_op & 0xFF
        key[K.ARP_SHA] = pkt.arp_sha
        key[K.ARP_THA] = pkt.arp_tha
    return key


def _typed(key: list) -> list:
    return [(type(v), v) for v in key]


def _frames(rng: random.Random, n: int) -> list[bytes | bytearray]:
    def r(bits: int) -> int:
        return rng.getrandbits(bits) | (1 << (bits - 1) if rng.random() < 0.7 else 0)

    out: list[bytes | bytearray] = []
    for _ in range(n):
        macs = {"src_mac": r(48), "dst_mac": r(48)}
        vl = {"vlans": tuple(rng.choice((r(12), (0x88A8, r(16)))) for _ in range(rng.randrange(1, 3)))} if rng.random() < 0.3 else {}
        k = rng.randrange(11)
        if k == 0:
            f = build.ipv4_tcp(r(32), r(32), r(16), r(16), rng.randrange(512), r(32), r(32),
                               rng.randbytes(rng.randrange(20)), tos=r(8), ttl=r(8), **macs, **vl)
        elif k == 1:
            f = build.ipv4_udp(r(32), r(32), r(16), r(16), rng.randbytes(rng.randrange(20)), **macs, **vl)
        elif k == 2:
            f = build.ipv6_tcp(r(128), r(128), r(16), r(16), rng.randrange(512), r(32), r(32), **vl)
        elif k == 3:
            f = build.ipv6_udp(r(128), r(128), r(16), r(16), **vl)
        elif k == 4:
            f = build.ipv4_icmp_echo(r(32), r(32), r(16), r(16), **vl)
        elif k == 5:
            f = build.ipv4_icmp_error(r(32), r(32), 3, 3, build.ipv4_tcp(r(32), r(32), r(16), r(16), "A", r(32)))
        elif k == 6:
            f = build.ipv6_icmp_error(r(128), r(128), 1, 4, build.ipv6_udp(r(128), r(128), r(16), r(16)))
        elif k == 7:
            f = build.arp(rng.randrange(1, 3), r(48), r(32), r(48), r(32), **vl)
        elif k == 8:
            f = build.eth(r(48), r(48), rng.choice((0x0100, 0x05FF, 0x0600, 0x88CC, r(16))),
                          rng.randbytes(rng.randrange(60)), **vl)
        else:
            f = rng.randbytes(rng.randrange(90))
        b = bytearray(f)
        if k in (2, 3) and not vl:  # a flow label and a traffic class
            b[15] = (b[15] & 0xF0) | rng.getrandbits(4)
            b[16:18] = rng.randbytes(2)
            b[14] = 0x60 | rng.getrandbits(4)
        for _ in range(rng.choice((0, 0, 0, 1, 3))):
            if b:
                b[rng.randrange(len(b))] = rng.getrandbits(8)
        if rng.random() < 0.15:
            b = b[:rng.randrange(len(b) + 1)]
        out.append(b if rng.random() < 0.3 else bytes(b))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_extract_equals_the_field_by_field_build(seed):
    rng = random.Random(seed)
    kinds = set()
    for f in _frames(rng, 2000):
        pkt = codec.parse(f)  # malformed frames too: their fields parsed so far are the key's
        in_port = rng.choice((1, 2, 0xFFFE, rng.getrandbits(32)))
        got = K.extract(pkt, in_port)
        assert type(got) is list and len(got) == K.N_FIELDS
        assert _typed(got) == _typed(_reference(pkt, in_port)), bytes(f).hex()
        kinds.add((pkt.dl_type, pkt.ip_ver, bool(pkt.vlans), pkt.drop is None))
    assert {(ETH_TYPE_IP, 4), (ETH_TYPE_IPV6, 6), (ETH_TYPE_ARP, 0), (ETH_TYPE_IP, 0)} <= {k[:2] for k in kinds}


def _odd_packets() -> list[Packet]:
    """Hand-made packets: IP types with any ip_ver, values that are not small ints, a bool."""
    out = []
    for dl_type in (ETH_TYPE_IP, ETH_TYPE_IPV6, ETH_TYPE_ARP, 0x05FF, 0):
        for ver in (0, 4, 5, 6):
            p = Packet(b"")
            p.dl_type = dl_type
            p.ip_ver = ver
            p.dl_src, p.dl_dst = 1 << 47, (1 << 48) - 1
            p.vlans = (0xFFF, 3)
            p.nw_src, p.nw_dst = (1 << 128) - 1, 1 << 100
            p.ipv6_label, p.nw_proto, p.nw_tos, p.nw_ttl, p.nw_frag = 0xFFFFF, 300, 0x1FF, True, 3
            p.tp_src, p.tp_dst, p.tcp_flags = 1 << 20, -1, 0x1FF
            p.arp_op, p.arp_sha, p.arp_tha = 0x1FF, 5, 1 << 60
            out.append(p)
    bad = Packet(b"")
    bad.dl_type = ETH_TYPE_IP
    bad.nw_tos = None  # the same TypeError both ways
    out.append(bad)
    arp = Packet(b"")
    arp.dl_type = ETH_TYPE_ARP
    arp.arp_op = "x"
    out.append(arp)
    vl = Packet(b"")
    vl.vlans = ("x",)
    out.append(vl)
    return out


@pytest.mark.parametrize("pkt", _odd_packets())
def test_extract_of_a_hand_made_packet_equals_the_field_by_field_build(pkt):
    try:
        want = _typed(_reference(pkt, 7))
    except Exception as e:  # noqa: BLE001 - the same exception type is the expectation
        with pytest.raises(type(e)):
            K.extract(pkt, 7)
        return
    assert _typed(K.extract(pkt, 7)) == want


def test_extract_keeps_the_packet_values_themselves():
    pkt = codec.parse(build.ipv4_tcp("10.0.0.1", "10.0.0.2", 40000, 80, "S", 1 << 31))
    key = K.extract(pkt, 3)
    assert key[K.DL_SRC] is pkt.dl_src and key[K.NW_SRC] is pkt.nw_src and key[K.TP_SRC] is pkt.tp_src
    assert key[K.IN_PORT] == 3 and key[K.CT_STATE:] == [0] * (K.N_FIELDS - K.CT_STATE)
