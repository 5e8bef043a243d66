"""The offload model driven by the real conntrack Tracker (handshake, UDP reply, ICMP, aging, FIN)."""

import pytest

tracker_mod = pytest.importorskip("ctswitch.conntrack.tracker")

from ctswitch.flow.actions import Ct  # noqa: E402
from ctswitch.flow.key import extract  # noqa: E402
from ctswitch.offload.manager import WHY_FIN, OffloadManager, OffloadState  # noqa: E402
from ctswitch.packet.headers import ETH_TYPE_IP, TCP_ACK, TCP_FIN, TCP_SYN, Packet  # noqa: E402

A, B = 0x0A000001, 0x0A000002
COMMIT = Ct(commit=True, zone=0)


def pkt(src, dst, proto, sport, dport, flags=0, seq=0, ack=0, plen=0):
    p = Packet(b"")
    p.dl_type = ETH_TYPE_IP
    p.ip_ver = 4
    p.nw_src, p.nw_dst, p.nw_proto, p.nw_ttl = src, dst, proto, 64
    p.tp_src, p.tp_dst = sport, dport
    p.tcp_flags, p.tcp_seq, p.tcp_ack, p.tcp_win, p.payload_len = flags, seq, ack, 65535, plen
    p.tcp_wscale = -1
    p.ip_len = 40 + plen
    p.l3, p.l4 = 14, 34
    return p


def ct(tr, m, p, now, in_port=1):
    key = extract(p, in_port)
    v = tr.process(p, key, 0, COMMIT, now)
    assert v.drop is None and v.conn is not None
    return v.conn, m.consider(v.conn, now, pkt=p)


@pytest.fixture
def env(params):
    tr = tracker_mod.Tracker(params)
    return tr, OffloadManager(params, tr)


def test_tcp_handshake_then_age_then_fin(env):
    tr, m = env
    c, why1 = ct(tr, m, pkt(A, B, 6, 40000, 80, TCP_SYN, seq=100), 0)
    _, why2 = ct(tr, m, pkt(B, A, 6, 80, 40000, TCP_SYN | TCP_ACK, seq=500, ack=101), 10, 2)
    _, why3 = ct(tr, m, pkt(A, B, 6, 40000, 80, TCP_ACK, seq=101, ack=501), 20)
    assert (why1, why2, why3) == ("TCP handshake not complete", "TCP handshake not complete", None)
    assert m.state_of(c) is OffloadState.HW_OFFLOAD and c.offloaded
    assert m.gc(30_020) == []
    assert m.gc(31_000) == [(c, "aged out after 30 s idle at t=31")]
    assert not c.offloaded and c.status & (1 << 15) == 0
    # conntrack keeps it: its ESTABLISHED timeout is not longer than 432000 - 30 s, so unchanged
    assert c.expires == 20 + 432_000 * 1000
    assert tr.sweep(40_000) == []
    # next packet: offloaded again; a FIN on the software path tears it down
    _, why = ct(tr, m, pkt(A, B, 6, 40000, 80, TCP_ACK, seq=101, ack=501), 40_000)
    assert why is None and m.state_of(c) is OffloadState.HW_OFFLOAD
    assert m.sw_hit(c, 41_000, 60, False, TCP_FIN | TCP_ACK) is False
    assert c.why == WHY_FIN and not c.offloaded


def test_udp_after_reply_and_icmp_never(env):
    tr, m = env
    u, why = ct(tr, m, pkt(A, B, 17, 5353, 53), 0)
    assert why == "UDP: waiting for a reply"
    _, why = ct(tr, m, pkt(B, A, 17, 53, 5353), 5, 2)
    assert why is None and m.state_of(u) is OffloadState.HW_OFFLOAD
    p = pkt(A, B, 1, 8, 0)
    p.icmp_id = 7
    i, why = ct(tr, m, p, 10)
    assert why == "ICMP is never offloaded" and i.why == why
