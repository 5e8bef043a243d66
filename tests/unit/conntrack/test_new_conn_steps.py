"""The tracker's new-connection path in fewer steps (session 10) held to the code it replaced:

* the table of a (zone, ip_ver, proto) remembered by the identity of those three objects
  (``_track``, ``_confirm``) and the verdict's original tuple remembered for the last connection
  (``_verdict``): twin trackers, one with these memos cleared before every ct() (which takes the
  previous code's steps), on random traffic in several zones (equal zones as distinct int objects
  too), both IP versions, TCP, UDP and ICMP, with and without SNAT commits: the same verdicts,
  events, listings, counters and statistics;
* the SNAT allocation on every port class edge (the session's review took out an inlined first
  choice that measured 1 %; the test stays): the closure reference of test_new_conn_path (which
  also runs its 2400 random cases), with the original port's reply tuple free, in the table or
  frozen.

They run compiled and as Python (CTSWITCH_PURE=1)."""

from __future__ import annotations

import random

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Ether

from ctswitch.conntrack.conn import Conn, TcpConn
from ctswitch.conntrack.tracker import Tracker
from ctswitch.conntrack.tuples import invert
from ctswitch.flow import key as K
from ctswitch.flow.actions import Ct, Nat
from ctswitch.params import Params

from .pkt import ip4, pk
from .test_new_conn_path import ADDRS, _Cold, _reference_setup_nat

HOSTS4 = ("10.0.0.1", "10.0.0.2", "192.168.1.9")
HOSTS6 = ("fd00::1", "fd00::2")
SNAT = Nat(kind="src", addr_min=ip4("1.1.1.16"), addr_max=ip4("1.1.1.16"))
LOOK = Ct(table=1, nat=Nat())
ETHER = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")  # (no address resolution per packet)


def _flows(rng: random.Random) -> list[tuple]:
    out = []
    for _ in range(12):
        v6 = rng.random() < 0.3
        hosts = HOSTS6 if v6 else HOSTS4
        proto = rng.choice(("tcp", "tcp", "udp", "icmp"))
        out.append((v6, proto, rng.choice(hosts), rng.choice(hosts), rng.choice((1000, 40000, 65535)),
                    rng.choice((53, 80)), rng.choice((0, 1, 300)), rng.random() < 0.5))
    return out


def _frame(rng: random.Random, flow: tuple, reply: bool, nat_addr: str | None) -> bytes:
    v6, proto, a, b, sp, dp, _zone, _snat = flow
    if reply:
        a, b, sp, dp = (b, nat_addr or a, dp, sp) if not v6 else (b, a, dp, sp)
    ip = IPv6(src=a, dst=b) if v6 else IP(src=a, dst=b)
    if proto == "tcp":
        flags = rng.choice(("S", "SA", "A", "PA", "FA", "R") if rng.random() < 0.3 else
                           (("SA", "A") if reply else ("S", "A", "PA")))
        l4 = TCP(sport=sp, dport=dp, flags=flags, seq=rng.choice((100, 101, 501)),
                 ack=rng.choice((0, 101, 501)), window=1000)
    elif proto == "udp":
        l4 = UDP(sport=sp, dport=dp)
    elif v6:
        l4 = ICMPv6EchoRequest(id=sp & 0xFF)
    else:
        l4 = ICMP(type=0 if reply else 8, id=sp & 0xFF)
    return bytes(ip / l4)


def _zone(z: int, fresh: bool) -> int:
    return int(str(z)) if fresh else z  # an equal zone as another int object (300: not cached)


def _seen(v) -> tuple:
    return (v.state, v.zone, v.mark, v.label, v.orig, v.nat_src, v.nat_dst, v.icmp_id, v.icmp_inner,
            v.drop, v.reply, None if v.conn is None else v.conn.id)


def _ct(tr: Tracker, frame: bytes, zone: int, ct: Ct, now: int, cold: bool, key=None, p=None):
    if cold:  # the previous code's steps: nothing remembered
        tr._m_zone = tr._m_ipv = tr._m_proto = tr._m_sub = None
        tr._m_o = tr._m_oproto = tr._m_oipv = tr._m_orig = None
    if p is None:
        p, key = pk(ETHER / (IPv6(frame) if frame[0] >> 4 == 6 else IP(frame)))
    v = tr.process(p, key, zone, ct, now)
    if v.nat_src:
        key[K.IPV6_SRC if p.ip_ver == 6 else K.NW_SRC], key[K.TP_SRC] = v.nat_src
    if v.nat_dst:
        key[K.IPV6_DST if p.ip_ver == 6 else K.NW_DST], key[K.TP_DST] = v.nat_dst
    return v, p, key


def _listing(tr: Tracker) -> list:
    return [(c.id, c.zone, c.ip_ver, c.proto, c.orig, c.reply, c.status, c.state, c.expires, c.timeout,
             c.pk0, c.by0, c.pk1, c.by1) for c in tr.iter_conns()]


@pytest.mark.parametrize("seed", range(4))
def test_remembered_tables_and_tuples_change_nothing(seed: int) -> None:
    rng = random.Random(seed)
    flows = _flows(rng)
    twins = [Tracker(Params(), seed=1), Tracker(Params(), seed=1)]
    for tr in twins:
        tr.events_enabled = True
    states = set()
    now = 1000
    for _ in range(250):
        now += rng.choice((1, 5, 1000))
        flow = rng.choice(flows)
        reply = rng.random() < 0.4
        frame = _frame(rng, flow, reply, "1.1.1.16" if flow[7] and not flow[0] else None)
        fresh = rng.random() < 0.3
        commit = rng.random() < 0.8
        seen = []
        for tr, cold in zip(twins, (False, True), strict=True):
            zone = _zone(flow[6], fresh)
            v, p, key = _ct(tr, frame, zone, LOOK, now, cold)
            out = [_seen(v)]
            if commit and v.state & K.CS_NEW:
                ct = Ct(commit=True, nat=SNAT if flow[7] and not flow[0] else None)
                v2, _, _ = _ct(tr, frame, zone, ct, now, cold, key, p)
                out.append(_seen(v2))
            seen.append(out)
        assert seen[0] == seen[1]
        states.update(s[0] for s in seen[0])
        assert _listing(twins[0]) == _listing(twins[1])
    a, b = twins
    assert a.stats == b.stats and list(a.events) == list(b.events) and a.log == b.log
    assert len(a) > 5 and {K.CS_TRK | K.CS_NEW, K.CS_TRK | K.CS_EST | K.CS_RPL} <= states


PORTS = (0, 1, 2, 511, 512, 599, 600, 601, 1023, 1024, 1025, 40000, 65535)


@pytest.mark.parametrize("proto", [6, 17])
@pytest.mark.parametrize("where", ["free", "table", "frozen", "both"])
def test_first_snat_choice_as_allocate_made_it(proto: int, where: str) -> None:
    """Every port class edge, the original port's reply tuple free, taken in the table, by a
    frozen connection, or the next ones taken too: the reference's reply, status, probes and
    statistics."""
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
