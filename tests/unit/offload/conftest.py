"""A tiny stand-in for conntrack (Conn, Tracker) so the offload model is tested alone.

``FakeTracker.tcp`` / ``.udp`` move a connection through the states the real
tracker would give it for a packet, enough for offload eligibility.
"""

from __future__ import annotations

import pytest

from ctswitch.offload.policy import IPS_ASSURED, IPS_CONFIRMED, IPS_SEEN_REPLY, IPS_SRC_NAT
from ctswitch.params import Params


class FakeConn:
    def __init__(self, cid, proto=6, ip_ver=4, zone=0, nat=False,
                 orig=(0x02020201, 0x01010102, 34541, 5001), reply=None):
        self.id = cid
        self.zone = zone
        self.ip_ver = ip_ver
        self.proto = proto
        self.orig = orig
        self.reply = reply or (orig[1], orig[0], orig[3], orig[2])
        self.status = IPS_SRC_NAT if nat else 0
        self.tcp_state = "NONE"
        self.related = False
        self.helper = None
        self.mark = 0
        self.packets = [0, 0]
        self.bytes = [0, 0]
        self.offload = None
        self.why = None


class FakeTracker:
    def __init__(self):
        self.conns: dict[int, FakeConn] = {}
        self.calls: list[tuple[str, int, int]] = []

    def offloaded_tcp(self, m, cid, now=0, **kw) -> FakeConn:
        """A new TCP connection, established and offloaded by manager ``m``."""
        c = self.new(cid, **kw)
        self.establish(c)
        assert m.consider(c, now) is None
        return c

    def new(self, cid, **kw) -> FakeConn:
        c = FakeConn(cid, **kw)
        self.conns[cid] = c
        return c

    def iter_conns(self):
        return iter(self.conns.values())

    def on_offload(self, conn, now):
        self.calls.append(("on_offload", conn.id, now))

    def on_unoffload(self, conn, now):
        self.calls.append(("on_unoffload", conn.id, now))

    # Packet effects, as nf_conntrack has them, for a committed connection.
    def tcp(self, conn, flags: str, reply: bool = False):
        conn.status |= IPS_CONFIRMED
        if reply:
            conn.status |= IPS_SEEN_REPLY
        st = conn.tcp_state
        if flags == "S" and not reply:
            conn.tcp_state = "SYN_SENT"
        elif flags == "SA" and reply and st == "SYN_SENT":
            conn.tcp_state = "SYN_RECV"
        elif flags == "A" and not reply and st == "SYN_RECV":
            conn.tcp_state = "ESTABLISHED"
            conn.status |= IPS_ASSURED
        elif "F" in flags and st == "ESTABLISHED":
            conn.tcp_state = "FIN_WAIT"

    def udp(self, conn, reply: bool = False):
        conn.status |= IPS_CONFIRMED
        if reply:
            conn.status |= IPS_SEEN_REPLY

    def establish(self, conn):
        self.tcp(conn, "S")
        self.tcp(conn, "SA", reply=True)
        self.tcp(conn, "A")


def make_params(**kw) -> Params:
    p = Params()
    p.set("other_config:hw-offload", True)
    for k, v in kw.items():
        p.set(k, v)
    return p


@pytest.fixture
def tracker() -> FakeTracker:
    return FakeTracker()


@pytest.fixture
def params() -> Params:
    return make_params()


@pytest.fixture
def mk_params():
    return make_params
