"""TcpConn's twelve 32-bit fields (``WIDE_FIELDS``) as C integers (conn.pxd) held to the Python
connection, whose slots hold any value.

Compiled, the fields are C unsigned 32-bit integers under their names with a leading underscore,
read and written behind properties of their own names that keep any other value (a negative, a
wider int, a float, None, a bool, an int subclass) in ``odd``; ``tcp`` runs its Python source on
a Python copy of a connection holding such a value (``tcp._on_copy``).  Here the connection type
as imported (compiled, or Python with CTSWITCH_PURE=1) is compared with ``conn.py`` run as Python:

* every value of every field reads back as stored (equal, same type), through pack/unpack,
  ``field``/``set_field``, the views, ``to_state``/``from_state`` and the cold tier's row;
* the tracker's TCP functions as imported, on the imported connection type, against ``tcp.py``
  run as Python on Python connections, on random segment sequences with values no parser produces
  in the packets and the connections: the same results, exceptions and states.
"""

from __future__ import annotations

import random

import pytest

from ctswitch import _native
from ctswitch.conntrack import cold, tcp
from ctswitch.conntrack import conn as conn_module
from ctswitch.conntrack.conn import IPS_OFFLOAD, WIDE_FIELDS, TcpConn
from ctswitch.packet.headers import TCP_ACK, TCP_SYN

from .test_tcp_compiled import _disturb, _segment, _step, _timeouts

M32 = 0xFFFFFFFF
PYCONN = _native.source_module("conntrack.conn", "ctswitch.conntrack._conn_test_source")
PYTCP = _native.source_module("conntrack.tcp", "ctswitch.conntrack._tcp_c_fields_source")


class _Int(int):
    pass


VALUES = (0, 1, 255, 65535, 1 << 31, M32, 1 << 32, (1 << 32) + 1, 1 << 63, 1 << 70, -1, -(1 << 40),
          True, False, 1.0, 3.5, None, "7", _Int(5), _Int(1 << 40))
OTHER = ("scale0", "flags0", "scale1", "flags1", "last_dir", "last_index", "last_wscale", "last_flags",
         "retrans", "state", "status", "expires", "timeout")


def _pair():
    return (TcpConn(0, 4, 6, (1, 2, 3, 4), (2, 1, 4, 3), 0),
            PYCONN.TcpConn(0, 4, 6, (1, 2, 3, 4), (2, 1, 4, 3), 0))


def _seen(c) -> list:
    """Every field by the name it reads under, as (type, value), and the packed word."""
    return [(type(getattr(c, n)), getattr(c, n)) for n in WIDE_FIELDS + OTHER] + [c.wide]


def _same(a, b) -> None:
    assert _seen(a) == _seen(b)
    assert a.to_state() == b.to_state()
    for n in WIDE_FIELDS:
        assert type(a.field(n)) is type(b.field(n)) and a.field(n) == b.field(n), n
    ta, tb = a.tcp, b.tcp
    for d in (0, 1):
        assert ta.seen[d].to_state() == tb.seen[d].to_state()
    assert (ta.last_seq, ta.last_ack, ta.last_end, ta.last_win) == (tb.last_seq, tb.last_ack,
                                                                    tb.last_end, tb.last_win)


def _op(rng: random.Random, conns) -> None:
    r = rng.random()
    name = rng.choice(WIDE_FIELDS)
    v = rng.choice(VALUES + (rng.randrange(1 << 32),) * 6)
    for c in conns:
        if r < 0.45:
            setattr(c, name, v)
        elif r < 0.55:
            c.set_field(name, v)
        elif r < 0.65:  # through the kernel-named views
            if name.startswith("last"):
                setattr(c.tcp, name, v)
            else:
                setattr(c.tcp.seen[int(name[-1])], "td_" + name[:-1], v)
        elif r < 0.8:
            c.pack()
        elif r < 0.9:
            c.unpack()
        else:
            c.status ^= IPS_OFFLOAD


def test_any_value_reads_back_as_in_python() -> None:
    for name in WIDE_FIELDS:
        for v in VALUES:
            a, b = _pair()
            setattr(a, name, v)
            setattr(b, name, v)
            _same(a, b)
            a.pack()
            b.pack()
            _same(a, b)
            setattr(a, name, 7)
            setattr(b, name, 7)
            _same(a, b)


def test_random_sets_packs_and_round_trips_as_in_python() -> None:
    rng = random.Random(20261126)
    for _ in range(400):
        a, b = _pair()
        for _ in range(rng.randrange(1, 25)):
            _op(rng, (a, b))
            _same(a, b)
        sa, sb = a.to_state(), b.to_state()
        assert sa == sb
        ra, rb = type(a).from_state(sa), PYCONN.Conn.from_state(sb)
        _same(ra, rb)
        if a.wide is None and all(type(a.field(n)) is int and 0 <= a.field(n) <= M32 for n in WIDE_FIELDS):
            # (the row reads the fields by their names: any other value raises as before)
            back = cold.row_conn(cold.conn_row(a), None)
            assert _seen(back) == _seen(a) and back.to_state() == a.to_state()


def _scenario(seed: int) -> int:
    rng = random.Random(seed)
    t = _timeouts(rng)
    nxt = [rng.randrange(1 << 32) for _ in range(2)]
    first = _segment(rng, 0, nxt, TCP_SYN)
    a, b = _pair()
    if rng.random() < 0.2:
        _disturb(rng, first, ())
    ia = ib = None
    for mod, c in ((tcp, a), (PYTCP, b)):
        try:
            r = mod.init(c, first, t.loose)
        except Exception as e:  # noqa: BLE001
            r = type(e).__name__
        ia, ib = (r, ib) if mod is tcp else (ia, r)
    assert ia == ib
    _same(a, b)
    if ia is not True:
        return 0
    steps = 0
    handshake = [(1, TCP_SYN | TCP_ACK), (0, TCP_ACK)]
    now = 1000
    for _ in range(rng.randrange(3, 30)):
        now += rng.choice((1, 10, 1000, 200_000))
        d, f = handshake.pop(0) if handshake else (rng.randrange(2), None)
        p = _segment(rng, d, nxt, f)
        if rng.random() < 0.3:
            _disturb(rng, p, (a, b))
        if rng.random() < 0.1:
            a.pack()
            b.pack()
        if rng.random() < 0.2:  # the window check alone
            idx = tcp.CLASS_OF[p.tcp_flags & 0x3F] if type(p.tcp_flags) is int else tcp.ACK_SET
            out = []
            for mod, c in ((tcp, a), (PYTCP, b)):
                try:
                    out.append(mod.in_window(c, d, idx, p, False))
                except Exception as e:  # noqa: BLE001
                    out.append(type(e).__name__)
            assert out[0] == out[1]
        else:
            ra = _step(tcp, a, d, p, t, now)
            rb = _step(PYTCP, b, d, p, t, now)
            assert ra == rb, (seed, steps)
        _same(a, b)
        steps += 1
    return steps


@pytest.mark.parametrize("block", range(6))
def test_tcp_on_imported_connections_as_python_on_python_ones(block: int) -> None:
    steps = sum(_scenario(block * 1000 + i) for i in range(100))
    assert steps > 500


def test_the_window_fields_are_c_integers_when_compiled() -> None:
    """What the change is for: compiled, a 32-bit value is held in the connection itself, and
    only another one in ``odd``."""
    c = TcpConn(0, 4, 6, (1, 2, 3, 4), (2, 1, 4, 3), 0)
    if not conn_module.C_FIELDS:
        pytest.skip("conntrack.conn runs as Python here")
    c.end0 = 1 << 31
    assert c.odd is None and c._end0 == 1 << 31
    c.end0 = -1
    assert c.odd == {"end0": -1} and c.end0 == -1 and c.to_state()["tcp"]["seen"][0][0] == -1
    c.end0 = 5
    assert c.odd is None and c.end0 == 5
