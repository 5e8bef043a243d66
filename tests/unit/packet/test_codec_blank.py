"""``headers.blank`` (how ``parse`` builds its packet: ``Packet.__new__`` and ``_fill``, the fields
``Packet.__init__`` stores, not ``Packet(frame)``) against the constructor: every slot the same value
of the same type, and a frame ``parse`` gives up on early is the constructor's packet but for
what ``parse`` read."""

from __future__ import annotations

import pytest

from ctswitch.packet import codec, headers
from ctswitch.packet.headers import Packet


def _fields(p: Packet) -> list:
    return [(name, type(getattr(p, name)), getattr(p, name)) for name in Packet.__slots__]


@pytest.mark.parametrize("frame", [b"", b"\x01" * 13, bytes(range(60)), bytearray(b"\xff" * 20)])
def test_blank_is_the_constructors_packet(frame):
    blank = headers.blank(frame)
    assert type(blank) is Packet
    assert blank.frame is frame
    assert _fields(blank) == _fields(Packet(frame))


@pytest.mark.parametrize("frame", [b"", b"\x02" * 5, b"\x02" * 9, b"\x02" * 13])
def test_a_truncated_frame_is_the_constructors_packet_with_what_parse_read(frame):
    ref = Packet(frame)
    ref.drop = "truncated ethernet header"
    if len(frame) >= 6:
        ref.dl_dst = int.from_bytes(frame[0:6], "big")
    if len(frame) >= 12:
        ref.dl_src = int.from_bytes(frame[6:12], "big")
    assert _fields(codec.parse(frame)) == _fields(ref)


def test_an_unknown_ethertype_is_the_constructors_packet_with_its_l2_fields():
    frame = bytes.fromhex("0200000000010200000000020842") + b"\x00" * 46
    ref = Packet(frame)
    ref.dl_dst, ref.dl_src, ref.dl_type, ref.l3 = 0x020000000001, 0x020000000002, 0x0842, 14
    assert _fields(codec.parse(frame)) == _fields(ref)


def test_the_quoted_packet_of_an_icmp_error_is_built_the_same_way():
    # Ethernet, IPv4 (ICMP), ICMP port unreachable quoting an IPv4/UDP header
    quoted = bytes.fromhex("4500001c0001000040110000c0a80001c0a80002") + bytes.fromhex("30393039000800")
    quoted += b"\x00"
    icmp = bytes.fromhex("0303000000000000") + quoted
    ip = bytes.fromhex("45000000000100004001000001010101c0a80001")
    ip = ip[:2] + (20 + len(icmp)).to_bytes(2, "big") + ip[4:]
    frame = bytes.fromhex("020000000001020000000002") + b"\x08\x00" + ip + icmp
    inner = codec.parse(frame).inner
    assert type(inner) is Packet
    ref = Packet(inner.frame)
    for name in Packet.__slots__:
        if getattr(inner, name) != getattr(ref, name):
            setattr(ref, name, getattr(inner, name))
    assert _fields(inner) == _fields(ref)
    assert (inner.ip_ver, inner.nw_proto, inner.tp_src, inner.tp_dst) == (4, 17, 12345, 12345)
