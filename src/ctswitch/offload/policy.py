"""Offload eligibility: may this connection enter the flow table now, and if not, why?

Theory of operation
-------------------
act_ct decides after every slow-path ct() whether to hand the connection to
nf_flowtable (``tcf_ct_flow_table_process_conn``).  ctswitch follows the
NV-DOC variant (reference §3.2, CHOICE): TCP once ESTABLISHED and ASSURED (the
handshake ACK), UDP after the first reply (bidirectional), never ICMP; UDP before
a reply only with the ``ctswitch.udp_unidirectional_offload`` knob.

``RULES`` is the decision as a table, checked in order; the first rule that
matches gives the reason (a short key for counters and a plain-words message).
``check()`` returns None when the connection is eligible.  It runs after every
slow-path ct() of a connection not offloaded yet, so the common cases skip
the table walk: hw-offload off (the first rule), and a committed TCP/UDP
connection without helper, expectation or sequence adjustment seen on an
ordinary packet, for which only the last three rules can match (handshake,
closing, UDP reply) and are tested directly, in the table's order.
Messages are formatted only when returned.

Packet facts (fragment, IPv4 options, TTL) come from the packet that triggered
the decision: act_ct does not look such packets up in the flow table, so the
connection waits for a later, ordinary packet.

The IPS_* values are the kernel's (``include/uapi/linux/netfilter/nf_conntrack_common.h``),
which is what ``conntrack -L`` status decoding and ``ctswitch.conntrack`` use.
Pure: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# The kernel's status bits, as the conntrack record defines them (re-exported for offload users).
from ctswitch.conntrack.conn import (  # noqa: E402, F401
    IPS_ASSURED,
    IPS_CONFIRMED,
    IPS_DST_NAT,
    IPS_EXPECTED,
    IPS_HW_OFFLOAD,
    IPS_NAT_MASK,
    IPS_OFFLOAD,
    IPS_SEEN_REPLY,
    IPS_SEQ_ADJUST,
    IPS_SRC_NAT,
)
from ctswitch.offload.fdb import PROTO_NAMES, Pattern
from ctswitch.packet.headers import FRAG_ANY, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP

# Kernel TCP conntrack state numbering (enum tcp_conntrack), for trackers that store ints.
TCP_STATE_NAMES = ("NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT",
                   "LAST_ACK", "TIME_WAIT", "CLOSE", "SYN_SENT2")
TCP_OPENING = frozenset(("NONE", "SYN_SENT", "SYN_RECV", "SYN_SENT2"))


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """The knobs eligibility reads (cached by the manager per ``params.version``).

    Attributes:
        hw_offload: ``other_config:hw-offload``.
        udp_unidirectional: ``ctswitch.udp_unidirectional_offload`` (offload UDP before a reply).
    """

    hw_offload: bool = True
    udp_unidirectional: bool = False


def tcp_state_name(conn) -> str:
    """The TCP conntrack state of ``conn`` as its display name ("ESTABLISHED").

    Accepts trackers that store an enum (``.name``), a string or the kernel int.
    """
    st = getattr(conn, "tcp_state", None)
    if st is None:
        st = getattr(conn, "state", None)
    if st.__class__ is int and 0 <= st < len(TCP_STATE_NAMES):  # the conntrack Conn: first
        return TCP_STATE_NAMES[st]
    if st is None:
        return "NONE"
    name = getattr(st, "name", None)
    if isinstance(name, str):
        return name.upper()
    if isinstance(st, str):
        return st.upper()
    if isinstance(st, int) and 0 <= st < len(TCP_STATE_NAMES):
        return TCP_STATE_NAMES[st]
    return str(st)


_PATTERNS: dict[Pattern, Pattern] = {}


def pattern_of(conn) -> Pattern:
    """The FDB traffic pattern of ``conn``: (ip_ver, proto, NATed?), one shared tuple per pattern."""
    p = (conn.ip_ver, conn.proto, bool(conn.status & IPS_NAT_MASK))
    return _PATTERNS.setdefault(p, p)


def proto_name(proto: int) -> str:
    """``132`` -> ``"SCTP"``; unknown numbers -> ``"protocol 99"``."""
    name = PROTO_NAMES.get(proto)
    return name.upper() if name else f"protocol {proto}"


def _pkt(pkt, attr: str, default):
    return default if pkt is None else getattr(pkt, attr, default)


# ALG helpers by the port ct(alg=PORT) names them with.
HELPER_NAMES = {21: "ftp", 69: "tftp"}


def _helper(conn) -> str | None:
    h = getattr(conn, "helper", None)
    if not h:
        return None
    if isinstance(h, int):
        return HELPER_NAMES.get(h, f"alg={h}")
    return getattr(h, "name", None) or str(h)


def _tcp_not_open(c, cfg: PolicyConfig, committed: bool, pkt) -> bool:
    return c.proto == IPPROTO_TCP and (
        tcp_state_name(c) in TCP_OPENING or not c.status & IPS_ASSURED)


def _tcp_closing(c, cfg: PolicyConfig, committed: bool, pkt) -> bool:
    return c.proto == IPPROTO_TCP and tcp_state_name(c) != "ESTABLISHED"


# (key, predicate(conn, cfg, committed, pkt), message template).  Order matters: the
# first match is the reason.
Rule = tuple[str, Callable[[object, PolicyConfig, bool, object], bool], str]
RULES: tuple[Rule, ...] = (
    ("disabled", lambda c, cfg, com, pkt: not cfg.hw_offload, "hw-offload is disabled"),
    ("uncommitted", lambda c, cfg, com, pkt: not com or not c.status & IPS_CONFIRMED,
     "not committed: only connections stored by ct(commit) are offloaded"),
    ("icmp", lambda c, cfg, com, pkt: c.proto in (IPPROTO_ICMP, IPPROTO_ICMPV6), "ICMP is never offloaded"),
    ("protocol", lambda c, cfg, com, pkt: c.proto not in (IPPROTO_TCP, IPPROTO_UDP),
     "{proto} is never offloaded (only TCP and UDP are)"),
    ("related", lambda c, cfg, com, pkt: bool(getattr(c, "related", False)) or bool(c.status & IPS_EXPECTED),
     "related connection (expected by a helper or an ICMP error): never offloaded"),
    ("helper", lambda c, cfg, com, pkt: _helper(c) is not None,
     "ALG helper {helper} attached: connections with a helper are never offloaded"),
    ("seq_adjust", lambda c, cfg, com, pkt: bool(c.status & IPS_SEQ_ADJUST),
     "TCP sequence adjustment in use: never offloaded"),
    ("fragment", lambda c, cfg, com, pkt: bool(_pkt(pkt, "nw_frag", 0) & FRAG_ANY),
     "IP fragment: fragments are not offloaded; waiting for an unfragmented packet"),
    ("ip_options", lambda c, cfg, com, pkt: bool(_pkt(pkt, "ip_options", False)),
     "IPv4 header with options: not offloaded; waiting for a packet without options"),
    ("ttl", lambda c, cfg, com, pkt: pkt is not None and 0 < _pkt(pkt, "nw_ttl", 64) <= 1,
     "TTL {ttl} <= 1: not offloaded; waiting for a packet with a larger TTL"),
    ("tcp_handshake", _tcp_not_open, "TCP handshake not complete"),
    ("tcp_closing", _tcp_closing, "TCP connection is closing ({state})"),
    ("udp_reply", lambda c, cfg, com, pkt: c.proto == IPPROTO_UDP and not cfg.udp_unidirectional
     and not c.status & IPS_SEEN_REPLY, "UDP: waiting for a reply"),
)
_RULE = {k: (k, text) for k, _, text in RULES}
_DISABLED = _RULE["disabled"]
_HANDSHAKE = _RULE["tcp_handshake"]
_CLOSING = _RULE["tcp_closing"]
_UDP_REPLY = _RULE["udp_reply"]
# Status bits that make some rule match (CONFIRMED is required instead).
_BLOCKING = IPS_EXPECTED | IPS_SEQ_ADJUST
_N_STATES = len(TCP_STATE_NAMES)


def _assured_tcp(name: str) -> tuple[str, str] | None:
    """The answer for an assured, plain TCP connection in state ``name`` (the end of ``check``)."""
    if name in TCP_OPENING:
        return _HANDSHAKE
    if name != "ESTABLISHED":
        return _CLOSING[0], _CLOSING[1].format(state=name)
    return None


# The same by int state, built once: no message formatted per packet of a closing connection.
_BY_STATE = tuple(_assured_tcp(name) for name in TCP_STATE_NAMES)


def check(conn, cfg: PolicyConfig, committed: bool = True, pkt=None) -> tuple[str, str] | None:
    """Why ``conn`` may not be offloaded now, or None when it may.

    Args:
        conn: a conntrack Conn (duck-typed: proto, status, tcp state, related, helper).
        cfg: the knobs.
        committed: False when the ct() path that saw the packet did not commit.
        pkt: the triggering packet (reads nw_frag, ip_options, nw_ttl) or None.
        (``committed`` and ``pkt`` may be given by position: the manager's call, without keywords.)

    Returns:
        (reason key, plain-words message) or None.
    """
    if not cfg.hw_offload:
        return _DISABLED
    st = conn.status
    proto = conn.proto
    if (proto == IPPROTO_TCP or proto == IPPROTO_UDP) and committed and st & IPS_CONFIRMED and not st & _BLOCKING:
        try:  # the conntrack Conn and the parsed Packet have every attribute: no getattr defaults
            plain = not conn.related and not conn.helper and (
                pkt is None or (not pkt.nw_frag & FRAG_ANY and not pkt.ip_options and not 0 < pkt.nw_ttl <= 1))
        except AttributeError:  # duck-typed objects without some of them: the defaults
            plain = not getattr(conn, "related", False) and not getattr(conn, "helper", None) and (
                pkt is None or (not getattr(pkt, "nw_frag", 0) & FRAG_ANY and not getattr(pkt, "ip_options", False)
                                and not 0 < getattr(pkt, "nw_ttl", 64) <= 1))
    else:
        plain = False
    if plain:
        # Rules "disabled" to "ttl" do not match: the answer is one of the last three rules.
        if proto == IPPROTO_TCP:
            if not st & IPS_ASSURED:  # SYN, SYN-ACK: no state name needed for the answer
                return _HANDSHAKE
            # tcp_state_name's first case inline: no tcp_state (the conntrack Conn has none), an
            # int state (getattr with a default: no AttributeError raised for the missing one)
            s = getattr(conn, "state", None) if getattr(conn, "tcp_state", None) is None else None
            if s.__class__ is int and 0 <= s < _N_STATES:
                return _BY_STATE[s]
            return _assured_tcp(tcp_state_name(conn))
        if not cfg.udp_unidirectional and not st & IPS_SEEN_REPLY:
            return _UDP_REPLY
        return None
    for key, pred, text in RULES:
        if pred(conn, cfg, committed, pkt):
            if "{" in text:
                text = text.format(proto=proto_name(conn.proto), helper=_helper(conn),
                                   ttl=_pkt(pkt, "nw_ttl", 0), state=tcp_state_name(conn))
            return key, text
    return None
