"""``tcp.in_window``'s annotation of an ACK_SET segment (``last_seq``/``last_ack``/``last_win``)
keeps the packet's own int objects when they are the values it checks (ACK set, no RST), instead
of the sequence locals, which compiled are C integers boxed again: held here to the previous code,
the module's source with that block as it was, on random connections and segments with every flag
combination, every flag class passed as ``index`` (also ones that are not the segment's own) and
both directions.  The results and every field of the connection must be equal; runs compiled (the
imported module against the old source as Python) and as pure Python alike."""

from __future__ import annotations

import random
import types

from ctswitch import _native
from ctswitch.conntrack import tcp
from ctswitch.conntrack.conn import LAST_FIELDS, TcpConn
from ctswitch.packet.headers import Packet

M32 = 0xFFFFFFFF

# The block as it is: the connection's 32-bit fields are C integers (conn.pxd), compared and
# stored from the C-integer locals.
_NEW = '''        if (c.last_dir == d and c._last_seq == seq and c._last_ack == ack
                and c._last_end == end and c._last_win == win):
            c.retrans += 1
        else:
            c.last_dir = d
            c._last_seq = seq
            c._last_ack = ack
            c._last_end = end
            c._last_win = win
            c.retrans = 0
'''
# The block it replaced: the fields were int objects, and it kept the packet's own.
_OLD = '''        if flags & _ACKF and not flags & _RSTF:
            lseq = pkt.tcp_seq
            lack = pkt.tcp_ack
        else:
            lseq = seq
            lack = ack
        if (c.last_dir == d and c._last_seq == lseq and c._last_ack == lack
                and c._last_end == end and c._last_win == pkt.tcp_win):
            c.retrans += 1
        else:
            c.last_dir = d
            c._last_seq = lseq
            c._last_ack = lack
            c._last_end = end
            c._last_win = pkt.tcp_win
            c.retrans = 0
'''
WINDOW = ("end0", "maxend0", "maxwin0", "maxack0", "scale0", "flags0",
          "end1", "maxend1", "maxwin1", "maxack1", "scale1", "flags1")


def _old_module() -> types.ModuleType:
    with open(_native.source_path("conntrack.tcp")) as f:
        src = f.read()
    assert src.count(_NEW) == 1, "the new annotation block is no longer in tcp.py: update this test"
    mod = types.ModuleType("ctswitch.conntrack._tcp_old_annotation")
    mod.__package__ = "ctswitch.conntrack"
    mod.__file__ = _native.source_path("conntrack.tcp")
    exec(compile(src.replace(_NEW, _OLD), mod.__file__, "exec"), mod.__dict__)  # noqa: S102
    return mod


OLD = _old_module()


def _conn(rng: random.Random) -> TcpConn:
    c = TcpConn(0, 4, 6, (1, 2, 1000, 80), (2, 1, 80, 1000), 0)
    c.state = rng.randrange(10)
    base = [rng.randrange(1 << 32) for _ in range(2)]
    for i in (0, 1):
        s = str(i)
        setattr(c, "end" + s, base[i])
        setattr(c, "maxend" + s, (base[i] + rng.choice((0, 1, 1460, 65535, 1 << 20))) & M32)
        setattr(c, "maxwin" + s, rng.choice((0, 1, 512, 65535, 1 << 20)))
        setattr(c, "maxack" + s, (base[1 - i] + rng.choice((0, -1, 100))) & M32)
        setattr(c, "scale" + s, rng.choice((0, 0, 2, 7, 14)))
        setattr(c, "flags" + s, rng.randrange(256))
    c.last_dir = rng.randrange(2)
    c.last_index = rng.randrange(6)
    return c, base


def _segment(rng: random.Random, base: list[int], d: int, c: TcpConn) -> Packet:
    p = Packet(b"")
    p.tcp_flags = rng.randrange(64) if rng.random() < 0.7 else rng.choice((0x10, 0x18, 0x11, 0x14, 0x04, 0x1FF))
    p.tcp_seq = rng.choice((base[d], (base[d] + rng.choice((-1, 1, 1460, -65536))) & M32, 0,
                            rng.randrange(1 << 32)))
    p.tcp_ack = rng.choice((base[1 - d], (base[1 - d] + rng.choice((-1, 1, 66000))) & M32, 0,
                            rng.randrange(1 << 32)))
    p.tcp_win = rng.choice((0, 1, 512, 29200, 65535))
    p.payload_len = rng.choice((0, 0, 1, 1448, 1460))
    p.tcp_wscale = rng.choice((-1, 0, 7, 14))
    p.tcp_sack_perm = rng.random() < 0.5
    if rng.random() < 0.3:  # a repeat of the connection's annotation (a retransmission)
        c.last_dir, c.last_seq, c.last_ack, c.last_win = d, p.tcp_seq, p.tcp_ack, p.tcp_win
        c.last_end = (p.tcp_seq + p.payload_len) & M32
    return p


def _fields(c: TcpConn) -> dict:
    return {k: getattr(c, k) for k in ("state",) + WINDOW + LAST_FIELDS}


def test_annotation_as_before() -> None:
    rng = random.Random(20261126)
    checked = annotated = 0
    for _ in range(4000):
        c0, base = _conn(rng)
        d = rng.randrange(2)
        p = _segment(rng, base, d, c0)
        index = rng.choice((tcp.ACK_SET, tcp.ACK_SET, rng.randrange(6)))
        liberal = rng.random() < 0.2
        a, b = _conn(random.Random(0))[0], _conn(random.Random(0))[0]
        for k, v in _fields(c0).items():
            setattr(a, k, v)
            setattr(b, k, v)
        ra = tcp.in_window(a, d, index, p, liberal)
        rb = OLD.in_window(b, d, index, p, liberal)
        assert ra == rb
        assert _fields(a) == _fields(b)
        checked += 1
        annotated += index == tcp.ACK_SET and ra == tcp.ACCEPT
    assert annotated > 300, (checked, annotated)
