"""Tracker.on_unoffload (the offload teardown's fix-up) with a TcpConn typed in its own branch
against the code it replaced (below, verbatim but for names): TCP connections in every stage of
their handshake and teardown, UDP ones with and without a reply, ICMP, each offloaded then
un-offloaded at several times, expired or not, closing or not.  The connections (their rendered
lines, window fields, expiry and timeout) and the tracker (next expiry, unassured set, its
saved state) must be equal."""

from __future__ import annotations

import random

from scapy.layers.inet import ICMP, IP, TCP, UDP

from ctswitch.conntrack import render
from ctswitch.conntrack.conn import IPS_ASSURED, IPS_HW_OFFLOAD, IPS_OFFLOAD, IPS_SEEN_REPLY, TcpConn
from ctswitch.conntrack.tcp import CLOSE as TCP_CLOSE
from ctswitch.conntrack.tcp import ESTABLISHED as TCP_ESTABLISHED
from ctswitch.conntrack.tracker import Tracker
from ctswitch.params import Params

from .test_tracker import A, B, run


def ref_on_unoffload(self, conn, now, expired=True, closing=False):
    conn.status &= ~(IPS_OFFLOAD | IPS_HW_OFFLOAD)
    t = self._timeouts()
    if conn.proto == 6:
        if closing:
            conn.state = TCP_CLOSE
            timeout = t.tcp[TCP_CLOSE]
            expired = False
        else:
            timeout = t.tcp[conn.state] if conn.state else t.tcp[TCP_ESTABLISHED]
        if type(conn) is TcpConn:
            tc = conn
            tc.unpack()
            tc.maxwin0 = tc.maxwin1 = 0
        off = t.flow_tcp
    elif conn.proto == 17:
        timeout = t.udp_stream if conn.status & IPS_SEEN_REPLY else t.udp
        off = t.flow_udp
    else:
        return
    if expired and timeout > off:
        timeout -= off
    if closing or conn.expires - now > timeout:
        conn.expires = now + timeout
        conn.timeout = timeout
    if conn.expires < self._next_expiry:
        self._next_expiry = conn.expires
    if not conn.status & IPS_ASSURED and conn.confirmed:
        self._unassured[conn.id] = conn


def _traffic(tr, rng):
    now = 0
    for i in range(60):
        sport = 20000 + i
        stage = rng.randrange(6)
        flags = ["S", "SA", "A", "FA", "FA", "A"]
        seqs = [(100, 0), (500, 101), (101, 501), (101, 501), (501, 102), (102, 502)]
        kind = rng.randrange(5)
        if kind == 3:
            run(tr, IP(src=A, dst=B) / UDP(sport=sport, dport=53), now, True)
            if rng.random() < 0.5:
                run(tr, IP(src=B, dst=A) / UDP(sport=53, dport=sport), now + 1)
        elif kind == 4:
            run(tr, IP(src=A, dst=B) / ICMP(id=sport), now, True)
        else:
            for j in range(stage + 1):
                src, dst, sp, dp = (A, B, sport, 80) if j in (0, 2, 3, 5) else (B, A, 80, sport)
                seq, ack = seqs[j]
                run(tr, IP(src=src, dst=dst) / TCP(sport=sp, dport=dp, flags=flags[j], seq=seq, ack=ack,
                                                   window=1000), now + j, j == 0)
        now += rng.randrange(1, 50)
    return now


def _state(tr):
    conns = sorted(tr.iter_conns(), key=lambda c: c.id)
    return ([(render.conntrack_line(c, 0), c.expires, c.timeout, c.status, c.state,
              getattr(c, "maxwin0", None), getattr(c, "maxwin1", None)) for c in conns],
            tr._next_expiry, sorted(tr._unassured), tr.to_state())


def test_on_unoffload_equals_previous_code():
    for seed in range(6):
        out = []
        for ref in (True, False):
            rng = random.Random(seed)
            tr = Tracker(Params())
            now = _traffic(tr, rng)
            conns = sorted(tr.iter_conns(), key=lambda c: c.id)
            assert len(conns) > 20
            for c in conns:
                if c.confirmed:
                    tr.on_offload(c, now)
            for c in conns:
                if not c.confirmed:
                    continue
                at = now + rng.choice((0, 5, 40_000, 10**9))
                expired, closing = rng.random() < 0.5, rng.random() < 0.3
                if ref:
                    ref_on_unoffload(tr, c, at, expired, closing)
                else:
                    tr.on_unoffload(c, at, expired, closing)
            out.append(_state(tr))
        assert out[0] == out[1], seed
        assert {s[4] for s in out[0][0]} and len(set(s[3] for s in out[0][0])) > 2
