"""Functional traffic scenarios: connections between a host and a remote, as per-port pcaps.

Theory of operation
-------------------
The topology is the vendor's: a host (``src`` addresses, ``host_mac``) behind
``host_port`` (pf0hpf) and a remote (``dst`` addresses, ``remote_mac``) behind
``remote_port`` (p0).  Host-originated packets go into ``<host_port>.pcap``,
remote packets into ``<remote_port>.pcap``; the pcap timestamps give the global
order (a replayer merges the files by timestamp).  Replies are addressed to
``snat`` when it is set (what the remote sees behind a SNAT gateway, vendor
example 2), else to the original source.

A scenario is a list of *flows* (the table ``FLOW_KINDS``), each a fixed
sequence of (direction, packet) steps:

| kind        | steps                                                                  |
| ----------- | ---------------------------------------------------------------------- |
| tcp         | SYN, SYN-ACK, ACK; D x (host PSH+ACK data, remote PSH+ACK data); host ACK; then FIN+ACK/FIN+ACK/ACK (close=fin), RST+ACK (close=rst) or nothing (open) |
| udp         | K x (request, reply), sport ``udp_sport + j``                          |
| udp1        | K one-way host packets, sport ``oneway_sport + j``                     |
| icmp        | K x (echo request, echo reply), id ``icmp_id + j``, seq 1..K           |
| roce        | K x (host 49152+j -> 4791, remote 49153+j -> 4791): another sport back |

Flow f starts at ``start + f / rate`` seconds (``rate`` = new flows per
second) and its packets are ``gap_ns`` apart, so flows overlap in time
(interleave); with ``interleave=False`` each flow starts ``gap_ns`` after the
previous one ended.  The ARP request/reply pair comes first.  Frames come from
``template`` (built once per flow direction, then stamped), never from scapy.
"""

from __future__ import annotations

import heapq
import ipaddress
import os
from dataclasses import dataclass, field

from ..io.pcap import PcapWriter
from ..packet import build
from ..packet.headers import TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN
from .template import TcpTemplate

T0_NS = 1_700_000_000 * 1_000_000_000
SYN_OPTIONS = build.tcp_opts(mss=1460, wscale=7, sack_perm=True)
FLOW_KINDS = ("tcp", "udp", "udp1", "icmp", "roce")
CLOSES = ("fin", "rst", "open")


class GenError(ValueError):
    """A bad generator option (one-line message)."""


@dataclass
class Scenario:
    """Everything a functional run needs (defaults: vendor topology, nothing to send)."""

    host_port: str = "pf0hpf"
    remote_port: str = "p0"
    host_mac: str = "02:00:00:00:02:01"
    remote_mac: str = "02:00:00:00:01:02"
    src: list[str] = field(default_factory=lambda: ["2.2.2.1"])
    dst: list[str] = field(default_factory=lambda: ["1.1.1.2"])
    snat: str | None = None
    arp: bool = True
    tcp: int = 0
    tcp_dport: int = 5001
    tcp_sport: int = 40001
    data: int = 4
    size: int = 128
    close: str = "fin"
    udp: int = 0
    udp_dport: int = 53
    udp_sport: int = 50000
    udp_requests: int = 1
    oneway: int = 0
    oneway_dport: int = 9999
    oneway_sport: int = 51000
    oneway_packets: int = 10
    icmp: int = 0
    icmp_id: int = 7
    icmp_count: int = 3
    roce: int = 0
    roce_packets: int = 2
    rate: float = 1000.0
    gap_ns: int = 10_000
    interleave: bool = True
    start_ns: int = T0_NS
    nanosecond: bool = False


def parse_range(text: str) -> list[str]:
    """"2.2.2.1", "2.2.2.1-2.2.2.9" or "10.0.0.0/30" (hosts) -> addresses."""
    try:
        if "-" in text:
            a, b = (ipaddress.IPv4Address(x.strip()) for x in text.split("-", 1))
            if int(b) < int(a):
                raise GenError(f"empty address range {text!r}")
            if int(b) - int(a) >= 1 << 20:
                raise GenError(f"address range {text!r} too large")
            return [str(ipaddress.IPv4Address(i)) for i in range(int(a), int(b) + 1)]
        if "/" in text:
            net = ipaddress.IPv4Network(text, strict=False)
            hosts = [str(h) for h in net.hosts()] or [str(net.network_address)]
            return hosts
        return [str(ipaddress.IPv4Address(text.strip()))]
    except ValueError as e:
        if isinstance(e, GenError):
            raise
        raise GenError(f"bad address or range {text!r}") from None


def _check(sc: Scenario) -> None:
    if sc.close not in CLOSES:
        raise GenError(f"--close must be one of {', '.join(CLOSES)}")
    if not 60 <= sc.size <= 9018:
        raise GenError("--size must be 60..9018 (Ethernet frame bytes without FCS)")
    if sc.rate <= 0:
        raise GenError("--rate must be positive")
    for name in ("tcp", "data", "udp", "udp_requests", "oneway", "oneway_packets", "icmp", "icmp_count",
                 "roce", "roce_packets", "gap_ns"):
        if getattr(sc, name) < 0:
            raise GenError(f"--{name.replace('_', '-')} must not be negative")
    for a in (sc.host_mac, sc.remote_mac):
        build.mac(a)


def _flows(sc: Scenario):
    """Yields (kind, j, steps) per flow; steps is a list of (port_is_remote, frame)."""
    hm, rm = sc.host_mac, sc.remote_mac
    nsrc, ndst = len(sc.src), len(sc.dst)

    def addrs(j: int) -> tuple[str, str, str]:
        s = sc.src[j % nsrc]
        d = sc.dst[(j // nsrc) % ndst]
        return s, d, sc.snat or s

    pl_tcp = bytes((i * 7 + 3) & 0xFF for i in range(max(0, sc.size - 54)))
    pl_udp = bytes((i * 5 + 1) & 0xFF for i in range(max(0, sc.size - 42)))
    for j in range(sc.tcp):
        s, d, back = addrs(j)
        sport = sc.tcp_sport + j % (65536 - sc.tcp_sport) if sc.tcp_sport < 65535 else 65535
        dport = sc.tcp_dport
        up0 = TcpTemplate(s, d, sport, dport, b"", src_mac=hm, dst_mac=rm)
        up_syn = TcpTemplate(s, d, sport, dport, b"", src_mac=hm, dst_mac=rm, options=SYN_OPTIONS)
        upd = TcpTemplate(s, d, sport, dport, pl_tcp, src_mac=hm, dst_mac=rm)
        dn0 = TcpTemplate(d, back, dport, sport, b"", src_mac=rm, dst_mac=hm)
        dn_syn = TcpTemplate(d, back, dport, sport, b"", src_mac=rm, dst_mac=hm, options=SYN_OPTIONS)
        dnd = TcpTemplate(d, back, dport, sport, pl_tcp, src_mac=rm, dst_mac=hm)
        n = len(pl_tcp)
        hs = (0x10000000 + j * 7919) & 0xFFFFFFFF
        rs = (0x50000000 + j * 104729) & 0xFFFFFFFF
        st = [(False, up_syn.make(hs, 0, TCP_SYN)), (True, dn_syn.make(rs, hs + 1, TCP_SYN | TCP_ACK))]
        hs += 1
        rs += 1
        st.append((False, up0.make(hs, rs, TCP_ACK)))
        for _ in range(sc.data):
            st.append((False, upd.make(hs, rs, TCP_PSH | TCP_ACK)))
            hs += n
            st.append((True, dnd.make(rs, hs, TCP_PSH | TCP_ACK)))
            rs += n
        if sc.data:
            st.append((False, up0.make(hs, rs, TCP_ACK)))
        if sc.close == "fin":
            st.append((False, up0.make(hs, rs, TCP_FIN | TCP_ACK)))
            hs += 1
            st.append((True, dn0.make(rs, hs, TCP_FIN | TCP_ACK)))
            rs += 1
            st.append((False, up0.make(hs, rs, TCP_ACK)))
        elif sc.close == "rst":
            st.append((False, up0.make(hs, rs, TCP_RST | TCP_ACK)))
        yield "tcp", j, st
    for j in range(sc.udp):
        s, d, back = addrs(j)
        sport = (sc.udp_sport + j) & 0xFFFF
        req = build.ipv4_udp(s, d, sport, sc.udp_dport, pl_udp, src_mac=hm, dst_mac=rm)
        rep = build.ipv4_udp(d, back, sc.udp_dport, sport, pl_udp, src_mac=rm, dst_mac=hm)
        yield "udp", j, [(False, req), (True, rep)] * sc.udp_requests
    for j in range(sc.oneway):
        s, d, _ = addrs(j)
        fr = build.ipv4_udp(s, d, (sc.oneway_sport + j) & 0xFFFF, sc.oneway_dport, pl_udp, src_mac=hm, dst_mac=rm)
        yield "udp1", j, [(False, fr)] * sc.oneway_packets
    for j in range(sc.icmp):
        s, d, back = addrs(j)
        ident = (sc.icmp_id + j) & 0xFFFF
        pl = bytes(range(56))
        st = []
        for k in range(1, sc.icmp_count + 1):
            st.append((False, build.ipv4_icmp_echo(s, d, ident, k, pl, src_mac=hm, dst_mac=rm)))
            st.append((True, build.ipv4_icmp_echo(d, back, ident, k, pl, reply=True, src_mac=rm, dst_mac=hm)))
        yield "icmp", j, st
    for j in range(sc.roce):
        s, d, back = addrs(j)
        bth = bytes([0x11, 0x40, 0xFF, 0xFF, 0, 0, 0, 0x11, 0x80, 0, 0, j & 0xFF])  # RC ACK-ish BTH
        up = build.ipv4_udp(s, d, (49152 + 2 * j) & 0xFFFF, 4791, bth + pl_udp[12:], src_mac=hm, dst_mac=rm)
        dn = build.ipv4_udp(d, back, (49153 + 2 * j) & 0xFFFF, 4791, bth, src_mac=rm, dst_mac=hm)
        yield "roce", j, [(False, up), (True, dn)] * sc.roce_packets


def events(sc: Scenario):
    """Yields (ts_ns, port_name, frame) in timestamp order."""
    _check(sc)
    t = sc.start_ns
    gap = sc.gap_ns
    if sc.arp:
        yield t, sc.host_port, build.arp(1, sc.host_mac, sc.src[0], "00:00:00:00:00:00", sc.dst[0])
        yield t + gap, sc.remote_port, build.arp(2, sc.remote_mac, sc.dst[0], sc.host_mac, sc.src[0])
        t += 2 * gap
    step = int(1e9 / sc.rate)
    if not sc.interleave:
        for _kind, _j, steps in _flows(sc):
            for remote, fr in steps:
                yield t, sc.remote_port if remote else sc.host_port, fr
                t += gap
        return
    # Interleaved: flow f starts at t + f*step; merge the flows' packet streams by time.
    # Ties go to the earlier flow; a flow's own packets are at least 1 ns apart.
    gap = max(gap, 1)
    def stream(f: int, t0: int, steps: list):
        for k, (r, fr) in enumerate(steps):
            yield t0 + k * gap, f, k, sc.remote_port if r else sc.host_port, fr

    streams = [stream(f, t + f * step, steps) for f, (_kind, _j, steps) in enumerate(_flows(sc))]
    for ts, _f, _k, port, fr in heapq.merge(*streams):
        yield ts, port, fr


def write(sc: Scenario, out_dir: str) -> dict[str, int]:
    """Writes ``<out_dir>/<port>.pcap`` for both ports; returns packets per port."""
    os.makedirs(out_dir, exist_ok=True)
    writers = {p: PcapWriter(os.path.join(out_dir, f"{p}.pcap"), nanosecond=sc.nanosecond)
               for p in (sc.host_port, sc.remote_port)}
    unit = 1 if sc.nanosecond else 1000
    prev = -unit
    try:
        for ts, port, fr in events(sc):
            # Strictly increasing at the file's resolution: the timestamps are the global order.
            ts = max(ts - ts % unit, prev + unit)
            prev = ts
            writers[port].write(ts, fr)
    finally:
        for w in writers.values():
            w.close()
    return {p: w.count for p, w in writers.items()}
