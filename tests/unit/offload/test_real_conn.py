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


def test_consider_builds_the_record_its_constructor_would(mk_params, tracker):
    """The OffloadRecord ``consider`` makes: every field equals that of
    ``OffloadRecord(pattern, now, seq, hent, uni)`` with the connection's pattern, the offload's
    order, its aging deadline in the heap entry and the one-way flag, for a TCP, a UDP and a
    one-way UDP offload, in hardware or refused."""
    from ctswitch.offload.manager import HEAP_SHIFT, OffloadRecord

    for knobs in ({}, {"modparam:ctswitch.udp_unidirectional_offload": True},
                  {"devlink:ct_max_offloaded_conns": 0}):
        m = OffloadManager(mk_params(**knobs), tracker)
        base = conn_mod.IPS_CONFIRMED | conn_mod.IPS_SEEN_REPLY
        for cid, proto, status, now in ((10, 6, base | conn_mod.IPS_ASSURED | conn_mod.IPS_SRC_NAT, 1000),
                                        (11, 17, base, 2500), (12, 17, conn_mod.IPS_CONFIRMED, 3000)):
            c = _conn(cid, proto, status, tcp_mod.ESTABLISHED if proto == 6 else 0)
            seq = m._seq
            if m.consider(c, now) is not None:
                continue
            rec = c.offload
            timeout = m._timeouts[0] if proto == 6 else m._timeouts[1]
            uni = bool(knobs) and proto == 17 and not status & conn_mod.IPS_ASSURED and \
                "modparam:ctswitch.udp_unidirectional_offload" in knobs
            ref = OffloadRecord(policy.pattern_of(c), now, seq, (now + timeout * 1000) << HEAP_SHIFT | cid, uni)
            # what consider changes after building it: the hardware insert's fields
            if rec.state is OffloadState.HW_OFFLOAD:
                ref.state, ref.hw_since, ref.g1, ref.g2 = OffloadState.HW_OFFLOAD, now, rec.g1, rec.g2
                assert rec.g1 is not None
            for name in OffloadRecord.__slots__:
                assert getattr(rec, name) == getattr(ref, name), name
                assert type(getattr(rec, name)) is type(getattr(ref, name)), name
            assert rec.pattern is ref.pattern
