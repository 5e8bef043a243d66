"""policy.check's answer for an assured TCP connection by its int state (``_BY_STATE``, built once)
against the code it replaced, which named the state and formatted the closing message per call:
every state, states out of range or of another type, a ``tcp_state`` object, with and without a
packet; the answer and the reason text must be equal."""

from __future__ import annotations

import pytest

from ctswitch.offload import policy

conn_mod = pytest.importorskip("ctswitch.conntrack.conn")


def ref_tail(conn) -> tuple[str, str] | None:
    """The end of ``check`` for a plain, assured TCP connection before ``_BY_STATE`` (verbatim but
    for names)."""
    try:
        s = conn.state if conn.tcp_state is None else None
    except AttributeError:
        s = None
    if s.__class__ is int and 0 <= s < policy._N_STATES:
        if s == policy.TCP_STATE_NAMES.index("ESTABLISHED"):
            return None
        name = policy.TCP_STATE_NAMES[s]
    else:
        name = policy.tcp_state_name(conn)
    if name in policy.TCP_OPENING:
        return policy._HANDSHAKE
    if name != "ESTABLISHED":
        return policy._CLOSING[0], policy._CLOSING[1].format(state=name)
    return None


class _Pkt:
    nw_frag = 0
    ip_options = False
    nw_ttl = 64


def _conn(state, cls=None):
    c = (cls or conn_mod.Conn)(1, 4, 6, (0x02020201, 0x01010102, 34541, 5001), (0x01010102, 0x01010110, 5001, 34541), 0)
    c.status = conn_mod.IPS_CONFIRMED | conn_mod.IPS_ASSURED | conn_mod.IPS_SEEN_REPLY | conn_mod.IPS_SRC_NAT
    c.state = state
    return c


class _NamedState:
    """A duck-typed connection whose TCP state is an object with a name (``tcp_state_name``'s other cases)."""

    def __init__(self, name):
        self.proto = 6
        self.status = conn_mod.IPS_CONFIRMED | conn_mod.IPS_ASSURED
        self.related = False
        self.helper = None
        self.state = None
        self.tcp_state = type("S", (), {"name": name})()


@pytest.mark.parametrize("pkt", [None, _Pkt()])
def test_assured_tcp_answer_by_state_equals_previous_code(pkt, params):
    from ctswitch.offload.policy import PolicyConfig
    cfg = PolicyConfig()
    states = list(range(-2, policy._N_STATES + 3)) + [True, 3.0, None, "ESTABLISHED"]
    seen = set()
    for s in states:
        # (the conntrack Conn and TcpConn: their state read directly, no tcp_state lookup)
        for cls in (conn_mod.Conn, conn_mod.TcpConn):
            c = _conn(s, cls)
            got = policy.check(c, cfg, pkt=pkt)
            assert got == ref_tail(c), s
            assert policy.check(c, cfg, True, pkt) == got  # by position, as the manager calls it
            seen.add(got if got is None else got[0])
    for name in list(policy.TCP_STATE_NAMES) + ["SOMETHING"]:
        c = _NamedState(name)
        assert policy.check(c, cfg, pkt=pkt) == ref_tail(c), name
    assert seen == {None, "tcp_handshake", "tcp_closing"}
