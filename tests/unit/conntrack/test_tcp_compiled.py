"""The TCP tracker as imported (compiled: C-integer window arithmetic, tcp.pxd) against the same
source run as Python, on random segment sequences: the same results, timeouts, events and
connection state after every segment.

The sequences mix in-window traffic with the cases the window checks and the state machine
single out: sequence numbers near 2**32 (wrap-around), segments before and beyond the window,
acks of data never sent, RSTs exact and inexact, SYNs and SYN-ACKs in every state, invalid
flag combinations, zero windows, window scales up to the option's 255, payloads up to 64 KiB,
be_liberal/loose/ignore_invalid_rst, and connections packed by an offload between segments.
Values no parser produces (wider than 32 bits, negative, floats, None, bools) go through too:
compiled, ``tcp`` hands them to its Python source, so the answer (or the exception) is Python's.
With CTSWITCH_PURE=1 (or no compiled build) both sides would be Python: the tests skip.
"""

from __future__ import annotations

import random

import pytest

from ctswitch import _native
from ctswitch.conntrack import tcp
from ctswitch.conntrack.conn import IPS_SEEN_REPLY, TcpConn
from ctswitch.conntrack.timeouts import Timeouts
from ctswitch.packet.headers import TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG, Packet
from ctswitch.params import Params

M32 = 0xFFFFFFFF


PY = _native.source_module("conntrack.tcp", "ctswitch.conntrack._tcp_test_source")  # tcp.py, as Python
pytestmark = pytest.mark.skipif(not tcp._COMPILED, reason="conntrack.tcp runs as Python here (CTSWITCH_PURE=1 or "
                                "no fresh compiled build): nothing to compare with its source")

COMMON = (TCP_ACK, TCP_ACK, TCP_ACK | TCP_PSH, TCP_FIN | TCP_ACK)
RARE = (TCP_SYN, TCP_SYN | TCP_ACK, TCP_RST, TCP_RST | TCP_ACK, TCP_FIN, TCP_SYN | TCP_FIN, 0,
        TCP_SYN | TCP_RST, TCP_ACK | TCP_URG, TCP_SYN | TCP_URG, TCP_FIN | TCP_ACK | TCP_URG, 0x1FF,
        0x40 | TCP_ACK)


def _timeouts(rng: random.Random) -> Timeouts:
    t = Timeouts(Params())
    t.be_liberal = rng.random() < 0.15
    t.loose = rng.random() < 0.7
    t.ignore_invalid_rst = rng.random() < 0.2
    return t


def _segment(rng: random.Random, d: int, nxt: list[int], flags: int | None = None) -> Packet:
    p = Packet(b"")
    if flags is None:
        flags = rng.choice(RARE) if rng.random() < 0.15 else rng.choice(COMMON)
    p.tcp_flags = f = flags
    r = rng.random()
    seq = nxt[d]
    if r < 0.15:
        seq = rng.randrange(1 << 32)
    elif r < 0.35:
        seq = (seq + rng.choice((-1, 1, -1460, 1460, -65536, 65536, 1 << 20, -(1 << 20), 1 << 31))) & M32
    if f & TCP_RST and rng.random() < 0.2:
        seq = 0
    p.tcp_seq = seq
    ack = nxt[1 - d]
    r = rng.random()
    if r < 0.1:
        ack = rng.randrange(1 << 32)
    elif r < 0.25:
        ack = (ack + rng.choice((-1, 1, -66000, 66000, 100000, -(1 << 20)))) & M32
    elif r < 0.3:
        ack = 0
    p.tcp_ack = ack
    p.tcp_win = rng.choice((0, 1, 512, 29200, 65535, rng.randrange(65536)))
    p.payload_len = rng.choice((0, 0, 0, 1, 100, 1448, 1460, rng.randrange(65536)))
    p.tcp_wscale = rng.choice((-1, -1, 0, 2, 7, 14, 15, 200, 255))
    p.tcp_sack_perm = rng.random() < 0.5
    p.ip_len = 40 + p.payload_len
    if seq == nxt[d] or rng.random() < 0.5:
        nxt[d] = (seq + p.payload_len + (1 if f & TCP_SYN else 0) + (1 if f & TCP_FIN else 0)) & M32
    return p


def _state(c: TcpConn) -> dict:
    return c.to_state()


def _step(mod, c: TcpConn, d: int, p: Packet, t: Timeouts, now: int):
    """One segment as the tracker runs it (tracker._track): the result, or the exception's type."""
    try:
        res, timeout, ev = mod.packet(c, d, p, t, now)
    except Exception as e:  # noqa: BLE001 - the comparison is of the exception's type
        return ("raised", type(e).__name__)
    if res == tcp.ACCEPT and timeout >= 0:
        c.expires = now + timeout
        c.timeout = timeout
    if res != tcp.R_INVALID and d:
        c.status |= IPS_SEEN_REPLY
    return res, timeout, ev


def _twins(rng: random.Random, t: Timeouts, now: int, first: Packet):
    """Two equal connections created by ``first`` (tracker: TcpConn, init, packet), or None."""
    out = []
    for mod in (tcp, PY):
        c = TcpConn(0, 4, 6, (1, 2, 1000, 80), (2, 1, 80, 1000), now)
        if not mod.init(c, first, t.loose):
            return None
        out.append(c)
    return out


def _scenario(seed: int, weird: bool = False) -> int:
    rng = random.Random(seed)
    t = _timeouts(rng)
    near_wrap = rng.random() < 0.3
    isn = [(M32 - rng.randrange(4000)) if near_wrap else rng.randrange(1 << 32) for _ in range(2)]
    nxt = list(isn)
    now = 1000
    first = _segment(rng, 0, nxt)
    if rng.random() < 0.8:
        first.tcp_flags = TCP_SYN
        first.tcp_seq = isn[0]
        first.payload_len = 0
        nxt[0] = (isn[0] + 1) & M32
    twins = _twins(rng, t, now, first)
    if twins is None:
        return 0
    a, b = twins
    assert _step(tcp, a, 0, first, t, now) == _step(PY, b, 0, first, t, now)
    assert _state(a) == _state(b)
    steps = 1
    handshake = [(1, TCP_SYN | TCP_ACK), (0, TCP_ACK)] if rng.random() < 0.8 else []
    for _ in range(rng.randrange(3, 40)):
        now += rng.choice((1, 10, 1000, 200_000))
        if handshake:
            d, f = handshake.pop(0)
        else:
            d, f = (1 if rng.random() < 0.5 else 0), None
        p = _segment(rng, d, nxt, f)
        if weird and rng.random() < 0.3:
            _disturb(rng, p, (a, b))
        if rng.random() < 0.1:
            a.pack()
            b.pack()
        ra = _step(tcp, a, d, p, t, now)
        rb = _step(PY, b, d, p, t, now)
        assert ra == rb, (seed, steps, d, p.tcp_flags, p.tcp_seq, p.tcp_ack)
        assert _state(a) == _state(b), (seed, steps)
        assert type(a.state) is type(b.state) and type(a.flags0) is type(b.flags0)
        steps += 1
        if ra[0] in (tcp.KILL, tcp.REPEAT, "raised"):
            break
    return steps


WEIRD = (1 << 32, 1 << 40, 1 << 70, -1, -(1 << 40), 3.0, None, True, False, 0)
PKT_FIELDS = ("tcp_flags", "tcp_seq", "tcp_ack", "tcp_win", "payload_len", "tcp_wscale")
CONN_FIELDS = ("state", "end0", "maxend0", "maxwin0", "maxack0", "scale0", "flags0", "end1",
               "maxend1", "maxwin1", "maxack1", "scale1", "flags1", "last_end", "last_win",
               "last_wscale", "last_flags")


def _disturb(rng: random.Random, p: Packet, conns) -> None:
    """A value no parser produces in a packet field or in a window field of both twins."""
    v = rng.choice(WEIRD + (33, 64, 256, 15))
    if rng.random() < 0.5:
        setattr(p, rng.choice(PKT_FIELDS), v)
    else:
        name = rng.choice(CONN_FIELDS)
        for c in conns:
            c.unpack()
            setattr(c, name, v)


@pytest.mark.parametrize("block", range(20))
def test_compiled_tcp_equals_its_source(block: int) -> None:
    steps = sum(_scenario(block * 100 + i) for i in range(100))
    assert steps > 1000  # most scenarios got past the first segment


@pytest.mark.parametrize("block", range(5))
def test_values_no_parser_produces_answer_as_python(block: int) -> None:
    steps = sum(_scenario(10_000 + block * 100 + i, weird=True) for i in range(100))
    assert steps > 300


@pytest.mark.parametrize("field", ["last_end", "last_win", "last_wscale"])
@pytest.mark.parametrize("value", [1 << 40, 40, -1, 7.0, None])
def test_syn_ack_resync_from_any_annotation_answers_as_python(field: str, value) -> None:
    """A SYN/ACK answering an ignored SYN restarts both windows from the SYN's annotations
    (last_end, last_win, last_wscale), which the compiled window check then reads as C integers."""
    t = Timeouts(Params())
    conns = _twins(random.Random(0), t, 0, _segment(random.Random(0), 0, [100, 0], TCP_SYN))
    out = []
    for mod, c in zip((tcp, PY), conns, strict=True):
        c.state = tcp.ESTABLISHED
        c.last_index, c.last_dir, c.last_end = tcp.SYN_SET, 0, 5000
        setattr(c, field, value)
        p = _segment(random.Random(1), 1, [7000, c.last_end], TCP_SYN | TCP_ACK)
        p.tcp_ack = c.last_end
        out.append(_step(mod, c, 1, p, t, 10))
    assert out[0] == out[1]
    assert _state(conns[0]) == _state(conns[1])


def test_in_window_alone_takes_any_value_as_python() -> None:
    rng = random.Random(5)
    for _ in range(500):
        twins = _twins(rng, _timeouts(rng), 0, _segment(rng, 0, [1, 2]))
        if twins is None:
            continue
        p = _segment(rng, 1, [rng.randrange(1 << 32), rng.randrange(1 << 32)])
        _disturb(rng, p, twins)
        out = []
        for mod, c in zip((tcp, PY), twins, strict=True):
            try:
                out.append(mod.in_window(c, 1, tcp.CLASS_OF[p.tcp_flags & 0x3F]
                                         if type(p.tcp_flags) is int else 3, p, False))
            except Exception as e:  # noqa: BLE001
                out.append(type(e).__name__)
        assert out[0] == out[1]
        assert _state(twins[0]) == _state(twins[1])
