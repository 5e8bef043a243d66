"""The offload model against the conntrack developer's real ``Conn`` class."""

import pytest

conn_mod = pytest.importorskip("ctswitch.conntrack.conn")
tcp_mod = pytest.importorskip("ctswitch.conntrack.tcp")

from ctswitch.offload import policy  # noqa: E402
from ctswitch.offload.manager import OffloadManager, OffloadState  # noqa: E402


def test_status_bits_agree():
    for name in ("SEEN_REPLY", "ASSURED", "CONFIRMED", "SRC_NAT", "DST_NAT", "SEQ_ADJUST",
                 "EXPECTED", "OFFLOAD", "HW_OFFLOAD"):
        assert getattr(policy, "IPS_" + name) == getattr(conn_mod, "IPS_" + name)
    assert policy.TCP_STATE_NAMES == tcp_mod.STATE_NAMES


def _conn(cid, proto=6, status=0, state=0):
    c = conn_mod.Conn(1, 4, proto, (0x02020201, 0x01010102, 34541, 5001),
                      (0x01010102, 0x01010110, 5001, 34541), 0)
    c.id = cid
    c.status = status
    c.state = state
    return c


def test_real_conn_lifecycle(params, tracker):
    m = OffloadManager(params, tracker)
    base = conn_mod.IPS_CONFIRMED | conn_mod.IPS_SRC_NAT
    c = _conn(1, status=base | conn_mod.IPS_SEEN_REPLY, state=tcp_mod.SYN_RECV)
    tracker.conns[1] = c
    assert m.consider(c, 0) == "TCP handshake not complete"
    c.state = tcp_mod.ESTABLISHED
    c.status |= conn_mod.IPS_ASSURED
    assert m.consider(c, 10) is None
    assert c.offloaded and m.state_of(c) is OffloadState.HW_OFFLOAD
    assert m.fdb.group_view() == [("tcp4-nat", 1, 800_000, 2, 799_998)]
    m.hw_hit(c, 20, 1500, True)
    assert c.packets == [0, 1] and c.bytes == [0, 1500]
    assert m.gc(30_999) == []
    assert m.gc(31_000) == [(c, "aged out after 30 s idle at t=31")]
    assert not c.offloaded and c.why == "aged out after 30 s idle at t=31"


def test_real_conn_helper_port(params, tracker):
    m = OffloadManager(params, tracker)
    c = _conn(2, status=conn_mod.IPS_CONFIRMED | conn_mod.IPS_SEEN_REPLY | conn_mod.IPS_ASSURED,
              state=tcp_mod.ESTABLISHED)
    c.helper = 21
    assert m.consider(c, 0) == "ALG helper ftp attached: connections with a helper are never offloaded"
