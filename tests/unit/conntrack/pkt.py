"""Test helpers: build ``Packet`` records and flow keys from scapy packets.

(The project's codec may not exist yet when these tests are written, and the
tracker only reads a few fields, so the helper fills them directly.)
"""

from __future__ import annotations

import ipaddress

from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, TCPerror, UDPerror
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import Ether

from ctswitch.flow import key as K
from ctswitch.packet.headers import Packet


def ip4(s: str) -> int:
    return int(ipaddress.IPv4Address(s))


def from_scapy(sp) -> Packet:
    p = Packet(bytes(sp))
    if IP in sp:
        ip = sp[IP]
        p.dl_type = 0x0800
        p.ip_ver = 4
        p.nw_src, p.nw_dst = ip4(ip.src), ip4(ip.dst)
        p.nw_proto = ip.proto
        p.nw_ttl = ip.ttl
        p.ip_len = ip.len if ip.len is not None else len(ip)
        l4 = ip.payload
        hl = ip.ihl * 4 if ip.ihl else 20
        plen = p.ip_len - hl
    elif IPv6 in sp:
        ip = sp[IPv6]
        p.dl_type = 0x86DD
        p.ip_ver = 6
        p.nw_src = int(ipaddress.IPv6Address(ip.src))
        p.nw_dst = int(ipaddress.IPv6Address(ip.dst))
        p.nw_proto = ip.nh
        p.ip_len = 40 + (ip.plen if ip.plen is not None else len(ip.payload))
        l4 = ip.payload
        plen = p.ip_len - 40
    else:
        return p
    p.l4 = 34
    if isinstance(l4, TCP):
        p.tp_src, p.tp_dst = l4.sport, l4.dport
        p.tcp_flags = int(l4.flags)
        p.tcp_seq, p.tcp_ack, p.tcp_win = l4.seq, l4.ack, l4.window
        doff = (l4.dataofs or 5) * 4
        p.payload_len = plen - doff
        for name, val in l4.options:
            if name == "WScale":
                p.tcp_wscale = val
            elif name == "SAckOK":
                p.tcp_sack_perm = True
    elif isinstance(l4, UDP):
        p.tp_src, p.tp_dst = l4.sport, l4.dport
        p.payload_len = plen - 8
    elif isinstance(l4, ICMP):
        p.tp_src, p.tp_dst = l4.type, l4.code
        if l4.type in (0, 8, 13, 14, 15, 16, 17, 18):
            p.icmp_id, p.icmp_seq = l4.id, l4.seq
        if IPerror in l4:
            e = l4[IPerror]
            inner = Packet(b"")
            inner.ip_ver = 4
            inner.nw_src, inner.nw_dst, inner.nw_proto = ip4(e.src), ip4(e.dst), e.proto
            if TCPerror in e:
                inner.tp_src, inner.tp_dst = e[TCPerror].sport, e[TCPerror].dport
            elif UDPerror in e:
                inner.tp_src, inner.tp_dst = e[UDPerror].sport, e[UDPerror].dport
            p.inner = inner
    elif isinstance(l4, (ICMPv6EchoRequest, ICMPv6EchoReply)):
        p.tp_src, p.tp_dst = l4.type, l4.code
        p.icmp_id = l4.id
    return p


def key_of(p: Packet, in_port: int = 1) -> list[int]:
    return K.extract(p, in_port)


def pk(sp) -> tuple[Packet, list[int]]:
    """(Packet, key) of a scapy packet (Ether added when missing)."""
    if Ether not in sp:
        sp = Ether() / sp
    sp = sp.__class__(bytes(sp))
    p = from_scapy(sp)
    return p, key_of(p)
