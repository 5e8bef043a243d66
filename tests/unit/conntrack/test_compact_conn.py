"""The compact connection record: counter views, TCP state packed while offloaded, tables keyed by tuples."""

from __future__ import annotations

import json

from scapy.layers.inet import IP, TCP

from ctswitch.conntrack import render
from ctswitch.conntrack.conn import C_FIELDS, IPS_OFFLOAD, TCP_NAMES, WIDE_FIELDS, Conn, TcpConn
from ctswitch.conntrack.tracker import Tracker
from ctswitch.flow.actions import Ct
from ctswitch.params import Params

from .pkt import pk

A, B = "2.2.2.1", "1.1.1.2"
LOOK = Ct(table=1)
COMMIT = Ct(commit=True)


def established(tr: Tracker) -> TcpConn:
    for sp, commit in ((IP(src=A, dst=B) / TCP(sport=40000, dport=80, flags="S", seq=100, window=29200), True),
                       (IP(src=B, dst=A) / TCP(sport=80, dport=40000, flags="SA", seq=7000, ack=101), False),
                       (IP(src=A, dst=B) / TCP(sport=40000, dport=80, flags="A", seq=101, ack=7001), False)):
        p, key = pk(sp)
        v = tr.process(p, key, 0, LOOK, 1000)
        if commit:
            v = tr.process(p, key, 0, COMMIT, 1000)
    return v.conn


def test_counters_are_list_like_views():
    c = Conn(0, 4, 17, (1, 2, 3, 4), (2, 1, 4, 3), 0)
    c.packets[1] += 5
    c.bytes[0] += 100
    assert c.packets == [0, 5] and c.bytes == [100, 0] and list(c.packets) == [0, 5]
    assert (c.pk1, c.by0) == (5, 100)
    c.packets = [0, 0]
    assert c.packets == [0, 0] and c.packets != [0, 1] and repr(c.bytes) == "[100, 0]"


def test_table_is_keyed_by_the_connection_tuples():
    tr = Tracker(Params())
    c = established(tr)
    assert c.okey == (0, 4, 6) + c.orig and c.rkey == (0, 4, 6) + c.reply
    assert tr._find(c, c.orig) is c and tr._find(c, c.reply) is c
    tr.delete(c)
    assert tr._find(c, c.orig) is None and len(tr) == 0


def test_offload_packs_tcp_state_and_every_view_reads_through():
    tr = Tracker(Params())
    c = established(tr)
    before = {n: getattr(c, n) for n in WIDE_FIELDS}
    assert before["end0"] == 101 and before["maxack1"] == 101 and before["maxwin0"] == 29200
    tr.on_offload(c, 2000)
    state_packed = c.to_state()
    if C_FIELDS:  # compiled: the fields are C integers in the connection, on_offload leaves them
        assert c.wide is None and {n: getattr(c, n) for n in WIDE_FIELDS} == before
    else:
        assert c.wide is not None and all(getattr(c, n) == 0 for n in WIDE_FIELDS)
    assert c.tcp.seen[0].td_end == 101 and c.tcp.seen[0].td_maxwin == 29200 and c.tcp.last_ack == before["last_ack"]
    tr.on_unoffload(c, 3000)
    assert c.wide is None
    assert {n: getattr(c, n) for n in WIDE_FIELDS} == before | {"maxwin0": 0, "maxwin1": 0}
    assert state_packed["tcp"]["seen"][0][:4] == [101, before["maxend0"], 29200, before["maxack0"]]


def test_slow_path_packet_of_an_offloaded_connection_keeps_it_as_on_offload_left_it():
    """Packed as Python; compiled, on_offload leaves the fields unpacked and so does conntrack."""
    tr = Tracker(Params())
    c = established(tr)
    tr.on_offload(c, 2000)
    p, key = pk(IP(src=B, dst=A) / TCP(sport=80, dport=40000, flags="A", seq=7001, ack=101) / (b"x" * 10))
    v = tr.process(p, key, 0, LOOK, 2500)
    assert v.conn is c and (c.wide is None) == C_FIELDS and c.tcp.seen[1].td_end == 7011


def test_state_round_trip_of_an_offloaded_connection():
    tr = Tracker(Params())
    c = established(tr)
    tr.on_offload(c, 2000)
    s = json.loads(json.dumps(tr.to_state()))
    tr2 = Tracker.from_state(Params(), s)
    (c2,) = list(tr2.iter_conns())
    assert c2.status & IPS_OFFLOAD and c2.wide is not None
    assert tr2.to_state()["conns"] == s["conns"]
    assert render.conntrack_line(c2, 2000) == render.conntrack_line(c, 2000)


def _fields(c: TcpConn) -> dict:
    """Every field of ``c`` by the name it reads under, TCP fields through ``field`` (packed or not)."""
    return {n: (c.field(n) if n in WIDE_FIELDS else getattr(c, n)) for n in TCP_NAMES if n != "wide"}


def test_offload_without_pack_is_the_packed_connection():
    """Compiled, on_offload leaves the TCP fields unpacked (``_PACK``): the connection reads,
    lists, saves and goes on exactly as one packed by ``TcpConn.pack`` (what on_offload did)."""
    trs, cs = [], []
    for packed in (False, True):
        tr = Tracker(Params())
        c = established(tr)
        tr.on_offload(c, 2000)
        if packed:
            c.pack()
            assert c.wide is not None
        trs.append(tr)
        cs.append(c)
    a, b = cs
    assert _fields(a) == _fields(b)
    assert a.to_state() == b.to_state() and trs[0].to_state() == trs[1].to_state()
    assert render.conntrack_line(a, 2000) == render.conntrack_line(b, 2000)
    for sp, now in ((IP(src=B, dst=A) / TCP(sport=80, dport=40000, flags="A", seq=7001, ack=101) / (b"x" * 10), 2500),
                    (IP(src=A, dst=B) / TCP(sport=40000, dport=80, flags="A", seq=101, ack=7011) / (b"y" * 20), 2600)):
        vs = []
        for tr in trs:
            p, key = pk(sp)
            v = tr.process(p, key, 0, LOOK, now)
            vs.append((v.state, v.drop, v.reply))
        assert vs[0] == vs[1] and _fields(a) == _fields(b)
        assert trs[0].to_state() == trs[1].to_state()
    for tr, c in zip(trs, cs, strict=True):
        tr.on_unoffload(c, 3000)
        assert c.wide is None
    assert _fields(a) == _fields(b) and trs[0].to_state() == trs[1].to_state()
