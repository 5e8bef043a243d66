"""Timeouts (ms) and tracker switches read from the sysctl params.

Theory of operation
-------------------
``Timeouts.get(params)`` returns a cached ``Timeouts`` built from the
``net.netfilter.*`` sysctls; it is rebuilt only when ``params.version``
changes, so the per-packet cost is one integer comparison.  TCP timeouts are
indexed by the TCP state number of ``tcp.py`` (SYN_SENT2 uses syn_sent, as
the kernel does).
"""

from __future__ import annotations

from ..params import NF, Params

TCP_STATE_SYSCTL = (None, "syn_sent", "syn_recv", "established", "fin_wait", "close_wait",
                    "last_ack", "time_wait", "close", "syn_sent")


class Timeouts:
    """Timeouts in ms, plus the boolean/int knobs the tracker reads per packet."""

    __slots__ = ("version", "ext", "tcp", "tcp_retrans", "tcp_unack", "udp", "udp_stream", "icmp",
                 "icmpv6", "generic", "be_liberal", "loose", "ignore_invalid_rst",
                 "max_retrans", "conntrack_max", "acct", "flow_tcp", "flow_udp")

    def __init__(self, params: Params) -> None:
        def g(name: str) -> int:
            return int(params.get("sysctl:" + NF + name))
        self.version = params.version
        self.tcp = tuple(0 if s is None else g(f"nf_conntrack_tcp_timeout_{s}") * 1000
                         for s in TCP_STATE_SYSCTL)
        self.tcp_retrans = g("nf_conntrack_tcp_timeout_max_retrans") * 1000
        self.tcp_unack = g("nf_conntrack_tcp_timeout_unacknowledged") * 1000
        self.udp = g("nf_conntrack_udp_timeout") * 1000
        self.udp_stream = g("nf_conntrack_udp_timeout_stream") * 1000
        self.icmp = g("nf_conntrack_icmp_timeout") * 1000
        self.icmpv6 = g("nf_conntrack_icmpv6_timeout") * 1000
        self.generic = g("nf_conntrack_generic_timeout") * 1000
        self.be_liberal = bool(g("nf_conntrack_tcp_be_liberal"))
        self.loose = bool(g("nf_conntrack_tcp_loose"))
        self.ignore_invalid_rst = bool(g("nf_conntrack_tcp_ignore_invalid_rst"))
        self.max_retrans = g("nf_conntrack_tcp_max_retrans")
        self.conntrack_max = g("nf_conntrack_max")
        self.acct = bool(g("nf_conntrack_acct"))
        # The extensions a new connection gets (conn.EXT_*): fixed at its creation, as the
        # kernel's init_conntrack attaches acct/tstamp only when the sysctl is on then.
        self.ext = (1 if self.acct else 0) | (2 if g("nf_conntrack_timestamp") else 0)
        self.flow_tcp = g("nf_flowtable_tcp_timeout") * 1000
        self.flow_udp = g("nf_flowtable_udp_timeout") * 1000
