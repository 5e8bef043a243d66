"""The new-connection path of the tracker held to the code it replaced (session 7):

* ``_setup_nat`` asks ``natmod.allocate`` through the tracker's one ``_NatProbe`` instead of
  closures built per connection: the same reply tuples, status bits, drops, log lines and
  random draws as the closure version (kept below as the reference), on random tables, specs,
  protocols and frozen tuples;
* ``TcpConn.pack``/``unpack`` read and write the fields one by one instead of through an
  ``attrgetter`` and a tuple: the same ``wide`` and fields as the struct reference, and the same
  refusal of values that are no 32-bit int;
* SNAT at every port class edge of the original port, its reply tuple free, in the table or
  frozen, against the same reference (session 10).

They run compiled and as Python (CTSWITCH_PURE=1)."""

from __future__ import annotations

import random
import struct
from operator import attrgetter

import pytest

from ctswitch.conntrack import nat as natmod
from ctswitch.conntrack.conn import (
    IPS_DST_NAT,
    IPS_DST_NAT_DONE,
    IPS_SRC_NAT,
    IPS_SRC_NAT_DONE,
    WIDE_FIELDS,
    Conn,
    TcpConn,
)
from ctswitch.conntrack.protocols import PORTED
from ctswitch.conntrack.tracker import _PORTS, Tracker
from ctswitch.conntrack.tuples import invert
from ctswitch.flow.actions import Nat
from ctswitch.params import Params


def _reference_setup_nat(self: Tracker, conn: Conn, spec, now: int, table: dict) -> str | None:
    """``Tracker._setup_nat`` before session 7 (closures for ``taken``), on ``table``."""
    proto = conn.proto
    o = conn.orig
    icmp = proto in (1, 58)
    rtype = conn.reply[3]
    if self._ncold:
        find, zp = self._cold.find, (conn.zone << 12) | (conn.ip_ver << 8) | proto

        def has(t):
            return t in table or find(zp, t) >= 0
    else:
        has = table.__contains__
    if spec.kind == "src":
        cur_port = o[2] if (icmp or proto in PORTED) else -1
        if icmp:
            def taken(a, p):
                return has((o[1], a, p, rtype))
        else:
            def taken(a, p):
                return has((o[1], a, o[3], p if cur_port >= 0 else 0))
        res = natmod.allocate(spec, proto, o[0], o[1], cur_port, taken, self._rng)
        if res is None:
            return self._nat_fail(now)
        a, p = self._intern(res[0]), _PORTS[res[1]]
        conn.reply = (o[1], a, p, rtype) if icmp else (o[1], a, o[3], p if cur_port >= 0 else 0)
        conn.status |= IPS_SRC_NAT_DONE
        if conn.reply != invert(proto, o):
            conn.status |= IPS_SRC_NAT
    else:
        cur_port = o[2] if icmp else (o[3] if proto in PORTED else -1)
        if icmp:
            def taken(a, p):
                return has((a, o[0], p, rtype))
        else:
            def taken(a, p):
                return has((a, o[0], p if cur_port >= 0 else 0, o[2]))
        res = natmod.allocate(spec, proto, o[1], o[0], cur_port, taken, self._rng)
        if res is None:
            return self._nat_fail(now)
        a, p = self._intern(res[0]), _PORTS[res[1]]
        conn.reply = (a, o[0], p, rtype) if icmp else (a, o[0], p if cur_port >= 0 else 0, o[2])
        conn.status |= IPS_DST_NAT_DONE
        if conn.reply != invert(proto, o):
            conn.status |= IPS_DST_NAT
    return None


class _Cold:
    """The part of the compact tier ``taken`` asks: ``find(zp, tuple)`` >= 0 when frozen."""

    def __init__(self, taken: set) -> None:
        self.taken = taken
        self.calls = []

    def find(self, zp: int, t: tuple) -> int:
        self.calls.append((zp, t))
        return 7 if (zp, t) in self.taken else -1


ADDRS = (0x0A000001, 0x0A000002, 0x0A000003, 0x01010110, 0x01010111)
PROTOS = (6, 17, 1, 58, 47, 132)


def _case(rng: random.Random):
    proto = rng.choice(PROTOS)
    ip_ver = 6 if proto == 58 else 4
    src, dst = rng.choice(ADDRS), rng.choice(ADDRS)
    if proto in (1, 58):
        orig = (src, dst, rng.randrange(0, 6), ((8 if proto == 1 else 128) << 8) | rng.choice((0, 3)))
    elif proto in PORTED:
        orig = (src, dst, rng.choice((1, 80, 600, 1024, 1025, 40000, 65535)), rng.choice((53, 80, 443)))
    else:
        orig = (src, dst, 0, 0)
    lo = rng.choice((0, 0, ADDRS[3]))
    spec = Nat(kind=rng.choice(("src", "dst")), ip_ver=ip_ver, addr_min=lo,
               addr_max=rng.choice((0, ADDRS[4])) if lo else 0,
               port_min=rng.choice((0, 0, 1024, 40000)), port_max=rng.choice((0, 40002, 65535)),
               persistent=rng.random() < 0.3, hash=rng.random() < 0.3, random=rng.random() < 0.2)
    zone = rng.choice((0, 1))
    # Taken reply tuples: the clashes allocate must step over (in the table and frozen ones).
    taken = set()
    for _ in range(rng.randrange(0, 40)):
        a, b = rng.choice(ADDRS), rng.choice(ADDRS)
        p = rng.choice((0, 1, 80, 443, 1024, 1025, 40000, 40001, 40002, 65535))
        q = rng.choice((0, 53, 80, 443, 40000))
        taken.add((a, b, p, q) if rng.random() < 0.5 else (a, b, q, p))
        if proto in (1, 58):
            taken.add((a, b, rng.randrange(0, 6), orig[3] ^ (8 << 8 if proto == 1 else 1 << 8)))
    frozen = {t for t in taken if rng.random() < 0.3} if rng.random() < 0.5 else None
    return proto, ip_ver, orig, spec, zone, taken, frozen


def _run(setup, proto, ip_ver, orig, spec, zone, taken, frozen, seed):
    tr = Tracker(Params(), seed=seed)
    table = tr._sub(zone, ip_ver, proto)
    zp = (zone << 12) | (ip_ver << 8) | proto
    cold = None
    for t in taken:
        if frozen is not None and t in frozen:
            continue
        table[t] = None
    if frozen is not None:
        cold = tr._cold = _Cold({(zp, t) for t in frozen})
        tr._ncold = len(frozen)
    k = TcpConn if proto == 6 else Conn
    conn = k(zone, ip_ver, proto, orig, invert(proto, orig), 5)
    err = setup(tr, conn, spec, 5, table)
    return (err, conn.reply, conn.status, dict(tr.stats), list(tr.log), tr._rng.getstate(),
            cold.calls if cold is not None else None)


@pytest.mark.parametrize("seed", range(4))
def test_setup_nat_gives_what_the_closures_gave(seed: int) -> None:
    rng = random.Random(seed)
    outcomes = set()
    for i in range(600):
        case = _case(rng)
        got = _run(Tracker._setup_nat, *case, seed=i)
        want = _run(_reference_setup_nat, *case, seed=i)
        assert got == want, case
        outcomes.add((got[0] is None, got[2]))
    # The cases reach exhaustion and both NAT kinds, translated or not.
    assert (False, 0) in outcomes
    assert {s for ok, s in outcomes if ok} >= {IPS_SRC_NAT_DONE, IPS_SRC_NAT_DONE | IPS_SRC_NAT,
                                               IPS_DST_NAT_DONE, IPS_DST_NAT_DONE | IPS_DST_NAT}


def test_setup_nat_leaves_no_closure_per_connection() -> None:
    tr = Tracker(Params())
    probe = tr._probe
    conn = TcpConn(0, 4, 6, (ADDRS[0], ADDRS[1], 40000, 80), (ADDRS[1], ADDRS[0], 80, 40000), 0)
    spec = Nat(kind="src", addr_min=ADDRS[3], addr_max=ADDRS[3])
    assert tr._setup_nat(conn, spec, 0, tr._sub(0, 4, 6)) is None
    assert tr._probe is probe and conn.reply == (ADDRS[1], ADDRS[3], 80, 40000)


_WORDS = struct.Struct("<12I")
_values = attrgetter(*WIDE_FIELDS)


def _reference_pack(c) -> None:
    """``TcpConn.pack`` before session 7, on a plain object with the same attributes."""
    if c.wide is not None:
        return
    vals = _values(c)
    for x in vals:
        if x.__class__ is not int or not 0 <= x <= 0xFFFFFFFF:
            return
    c.wide = int.from_bytes(_WORDS.pack(*vals), "little")
    for n in WIDE_FIELDS:
        setattr(c, n, 0)


class _Plain:
    pass


def _fields(c) -> tuple:
    return tuple(getattr(c, n) for n in WIDE_FIELDS) + (c.wide,)


def test_pack_and_unpack_match_the_struct_reference() -> None:
    rng = random.Random(5)
    odd = (-1, 1 << 32, 1 << 70, 2.0, None, True, "1")
    packed = refused = 0
    for _ in range(3000):
        c = TcpConn(0, 4, 6, (1, 2, 3, 4), (2, 1, 4, 3), 0)
        ref = _Plain()
        ref.wide = None
        for n in WIDE_FIELDS:
            v = rng.choice((0, 1, 0xFFFFFFFF, rng.getrandbits(32), rng.getrandbits(32)))
            if rng.random() < 0.01:
                v = rng.choice(odd)
            setattr(c, n, v)
            setattr(ref, n, v)
        if rng.random() < 0.05:
            c.wide = ref.wide = rng.getrandbits(384)
        before = _fields(c)
        c.pack()
        _reference_pack(ref)
        assert _fields(c) == _fields(ref)
        assert [type(x) for x in _fields(c)] == [type(x) for x in _fields(ref)]
        if c.wide is None or before[-1] is not None:
            refused += 1
            continue
        packed += 1
        assert all(c.field(n) == v for n, v in zip(WIDE_FIELDS, before[:-1], strict=True))
        c.unpack()
        assert _fields(c) == before
    assert packed > 1000 and refused > 100


PORTS = (0, 1, 2, 511, 512, 599, 600, 601, 1023, 1024, 1025, 40000, 65535)


@pytest.mark.parametrize("proto", [6, 17])
@pytest.mark.parametrize("where", ["free", "table", "frozen", "both"])
def test_snat_at_port_class_edges_as_the_reference(proto: int, where: str) -> None:
    """SNAT of an original port at every port class edge, its reply tuple free, taken in the table,
    by a frozen connection, or the next ones taken too: the reference's reply, status, probes,
    statistics, log and random draws."""
    for port in PORTS:
        for lo, hi in ((ADDRS[3], ADDRS[3]), (0, 0), (ADDRS[3], ADDRS[4]), (ADDRS[0], ADDRS[4])):
            spec = Nat(kind="src", addr_min=lo, addr_max=hi)
            orig = (ADDRS[0], ADDRS[1], port, 80)
            got = []
            for setup in (Tracker._setup_nat, _reference_setup_nat):
                tr = Tracker(Params(), seed=3)
                table = tr._sub(0, 4, proto)
                zp = (4 << 8) | proto
                cold = None
                conn = (TcpConn if proto == 6 else Conn)(0, 4, proto, orig, invert(proto, orig), 5)
                a = lo if lo and not lo <= ADDRS[0] <= hi else ADDRS[0]
                first = [(ADDRS[1], a, 80, p) for p in (port, port + 1, port + 2)]
                taken = {"free": [], "table": first[:1], "frozen": [], "both": first}[where]
                frozen = {"frozen": first[:1], "both": first[1:2]}.get(where, [])
                for t in taken:
                    if t not in frozen:
                        table[t] = None
                if frozen:
                    cold = tr._cold = _Cold({(zp, t) for t in frozen})
                    tr._ncold = len(frozen)
                err = setup(tr, conn, spec, 5, table)
                got.append((err, conn.reply, conn.status, dict(tr.stats), list(tr.log), tr._rng.getstate(),
                            cold.calls if cold is not None else None))
            assert got[0] == got[1], (port, lo, hi)
