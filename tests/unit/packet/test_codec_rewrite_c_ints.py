"""codec.parse and rewrite's NAT shortcut with their C integers (codec.pxd, rewrite.pxd).

The compiled modules read header bytes into C integers and do the checksum arithmetic in them.
Three oracles, on random frames whose fields have their top bits set (the values a sign or width
slip would change) and on mutated and truncated ones:
* the same source run as Python, loaded here under another name (when the suite runs compiled,
  this compares the C integers with Python's; under CTSWITCH_PURE=1 it compares Python with itself);
* an independent struct decoding of the Ethernet/IPv4/TCP/UDP headers;
* ``rewrite._nat4_struct``, the struct-based NAT rewrite that ``_nat4`` falls back to (also for
  keys out of range, which must fail the same way).
"""

from __future__ import annotations

import random
import struct

import pytest

from ctswitch._native import source_module
from ctswitch.flow import key as K
from ctswitch.packet import build, codec, rewrite
from ctswitch.packet.headers import FRAG_LATER, Packet

FIELDS = tuple(f for f in Packet.__slots__ if f != "inner")


PY_CODEC = source_module("packet.codec", "ctswitch.packet._py_codec")  # the .py source, as Python
PY_REWRITE = source_module("packet.rewrite", "ctswitch.packet._py_rewrite")


def _fields(p: Packet | None) -> tuple | None:
    if p is None:
        return None
    return tuple((k, getattr(p, k), type(getattr(p, k))) for k in FIELDS) + (_fields(p.inner),)


def _frames(rng: random.Random, n: int) -> list[bytes | bytearray]:
    def r(bits: int) -> int:  # mostly values with the top bit set
        return rng.getrandbits(bits) | (1 << (bits - 1) if rng.random() < 0.7 else 0)

    def tail() -> bytes:
        return rng.randbytes(rng.randrange(24))

    out: list[bytes | bytearray] = []
    for _ in range(n):
        macs = {"src_mac": r(48), "dst_mac": r(48)}
        k = rng.randrange(9)
        if k == 0:
            f = build.ipv4_tcp(r(32), r(32), r(16), r(16), rng.randrange(512), r(32), r(32), tail(), win=r(16),
                               tos=r(8), ttl=r(8), ident=r(16), **macs)
        elif k == 1:
            f = build.ipv4_udp(r(32), r(32), r(16), r(16), tail(), **macs)
        elif k == 2:
            f = build.ipv4_tcp(r(32), r(32), r(16), r(16), "S", r(32), 0,
                               options=build.tcp_opts(1460, rng.randrange(15), rng.random() < 0.5), vlans=(r(12),))
        elif k == 3:
            f = build.ipv6_tcp(r(128), r(128), r(16), r(16), rng.randrange(512), r(32), r(32), tail())
        elif k == 4:
            f = build.ipv6_udp(r(128), r(128), r(16), r(16), tail())
        elif k == 5:
            f = build.ipv4_icmp_error(r(32), r(32), 3, 3, build.ipv4_tcp(r(32), r(32), r(16), r(16), "A", r(32)))
        elif k == 6:
            f = build.ipv4_icmp_echo(r(32), r(32), r(16), r(16))
        elif k == 7:
            f = build.ipv6_icmp_error(r(128), r(128), 1, 4, build.ipv6_udp(r(128), r(128), r(16), r(16)))
        else:
            f = rng.randbytes(rng.randrange(80))
        b = bytearray(f)
        for _ in range(rng.choice((0, 0, 0, 1, 3))):
            if b:
                b[rng.randrange(len(b))] = rng.getrandbits(8)
        if rng.random() < 0.15:
            b = b[:rng.randrange(len(b) + 1)]
        out.append(b if rng.random() < 0.3 else bytes(b))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_parse_equals_the_python_run_of_its_source(seed):
    for f in _frames(random.Random(seed), 1500):
        assert _fields(codec.parse(f)) == _fields(PY_CODEC.parse(f)), bytes(f).hex()


_ETH = struct.Struct("!6s6sH")
_V4 = struct.Struct("!BBHHHBBHII")
_TCP = struct.Struct("!HHIIBBH")


@pytest.mark.parametrize("seed", range(4))
def test_parse_of_ipv4_tcp_udp_equals_a_struct_decoding(seed):
    rng = random.Random(100 + seed)
    checked = 0
    for f in _frames(rng, 1500):
        p = codec.parse(f)
        if p.drop is not None or p.l3 < 0 or p.ip_ver != 4:
            continue
        dst, src, _ = _ETH.unpack_from(f, 0)
        assert (p.dl_dst, p.dl_src) == (int.from_bytes(dst, "big"), int.from_bytes(src, "big"))
        vihl, tos, tot, _i, ff, ttl, proto, _c, s, d = _V4.unpack_from(f, p.l3)
        assert (p.nw_tos, p.ip_len, p.nw_ttl, p.nw_proto, p.nw_src, p.nw_dst) == (tos, tot, ttl, proto, s, d)
        assert p.l4 == (-1 if ff & 0x1FFF else p.l3 + (vihl & 15) * 4)
        if p.l4 >= 0 and proto == 6:
            sp, dp, seq, ack, doff, flags, win = _TCP.unpack_from(f, p.l4)
            assert (p.tp_src, p.tp_dst, p.tcp_seq, p.tcp_ack, p.tcp_win) == (sp, dp, seq, ack, win)
            assert p.tcp_flags == ((doff & 1) << 8) | flags
            checked += 1
        elif p.l4 >= 0 and proto == 17:
            assert (p.tp_src, p.tp_dst) == struct.unpack_from("!HH", f, p.l4)
            checked += 1
    assert checked > 200


def _nat_cases(rng: random.Random, n: int):
    """(frame, packet, old key, new key): IPv4 TCP/UDP frames with crafted checksums, keys with
    some of the NAT fields changed, now and then to a value out of range."""
    for _ in range(n):
        udp = rng.random() < 0.4
        src, dst, sp, dp = (rng.getrandbits(32), rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(16))
        if udp:
            b = bytearray(build.ipv4_udp(src, dst, sp, dp, rng.randbytes(rng.randrange(7))))
            coff = 40
        else:
            b = bytearray(build.ipv4_tcp(src, dst, sp, dp, "A", rng.getrandbits(32), 0, rng.randbytes(rng.randrange(7))))
            coff = 50
        c = rng.choice((None, 0, 0xFFFF, 0xFFFE, 1, rng.getrandbits(16)))
        if c is not None:
            b[coff:coff + 2] = c.to_bytes(2, "big")
        if rng.random() < 0.3:
            b[24:26] = rng.choice((0, 0xFFFF, 1)).to_bytes(2, "big")
        frame = bytes(b) if rng.random() < 0.7 else b
        pkt = codec.parse(frame)
        old = K.extract(pkt, 1)
        new = list(old)
        for i, bits in ((K.NW_SRC, 32), (K.NW_DST, 32), (K.TP_SRC, 16), (K.TP_DST, 16)):
            x = rng.random()
            if x < 0.4:
                new[i] = rng.getrandbits(bits)
            elif x < 0.5:
                new[i] = old[{K.NW_SRC: K.NW_DST, K.NW_DST: K.NW_SRC, K.TP_SRC: K.TP_DST, K.TP_DST: K.TP_SRC}[i]]
            elif x < 0.53:  # out of range: struct.error from the fallback, as before
                new[i] = rng.choice((-1, 1 << bits + rng.randrange(40), -(1 << 70)))
        yield frame, pkt, old, new


def _outcome(f, *args):
    try:
        out = f(*args)
    except Exception as e:  # noqa: BLE001 - the exception is the outcome compared
        return ("raises", type(e), str(e))
    return ("returns", type(out), out)


def _nat4_struct(frame, pkt, old, new):
    return rewrite._nat4_struct(bytearray(frame), pkt, new[K.NW_SRC], new[K.NW_DST],
                                new[K.TP_SRC] & 0xFFFF, new[K.TP_DST] & 0xFFFF)


@pytest.mark.parametrize("seed", range(4))
def test_nat_shortcut_equals_its_struct_original_and_its_python_run(seed):
    rng = random.Random(200 + seed)
    raised = 0
    for frame, pkt, old, new in _nat_cases(rng, 1500):
        got = _outcome(rewrite._nat4, frame, pkt, old, new)
        assert got == _outcome(PY_REWRITE._nat4, frame, pkt, old, new)
        if [new[i] for i in (K.NW_SRC, K.NW_DST)] != [old[i] for i in (K.NW_SRC, K.NW_DST)] or \
                [new[i] & 0xFFFF for i in (K.TP_SRC, K.TP_DST)] != [old[i] for i in (K.TP_SRC, K.TP_DST)]:
            assert got == _outcome(_nat4_struct, frame, pkt, old, new)
        assert _outcome(rewrite.apply, frame, pkt, old, new) == _outcome(PY_REWRITE.apply, frame, pkt, old, new)
        raised += got[0] == "raises"
    assert raised > 0


def test_nat_shortcut_falls_back_on_offsets_it_does_not_handle():
    """A packet whose L4 offset lies inside the IPv4 header, or beyond the frame: the struct
    original's result or exception."""
    frame = build.ipv4_tcp("10.0.0.1", "10.0.0.2", 1000, 80, "A", 7, 8)
    for l4 in (14 + 12, 14 + 16, len(frame) - 10, len(frame) - 2, len(frame) + 4):
        pkt = codec.parse(frame)
        pkt.l4 = l4
        old = [0] * K.N_FIELDS
        new = list(old)
        new[K.NW_SRC], new[K.TP_SRC] = 0xC0A80001, 4242
        assert pkt.nw_frag & FRAG_LATER == 0
        got = _outcome(rewrite._nat4, frame, pkt, old, new)
        assert got == _outcome(_nat4_struct, frame, pkt, old, new)
        assert got == _outcome(PY_REWRITE._nat4, frame, pkt, old, new)
