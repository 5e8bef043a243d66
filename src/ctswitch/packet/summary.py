"""One-line human summaries of parsed packets (traces, replay logs, test failures).

Theory of operation
-------------------
``summarize(pkt)`` picks a format by protocol from the parsed record only:

| packet        | example                                                       |
| ------------- | ------------------------------------------------------------- |
| TCP           | ``tcp 2.2.2.1:40001>1.1.1.2:80 S`` (+ `` len=N`` with payload) |
| UDP           | ``udp 2.2.2.1:50000>1.1.1.2:53 len=30``                       |
| ICMP echo     | ``icmp 2.2.2.1>1.1.1.2 echo-request id=7 seq=1``              |
| ICMP error    | ``icmp 1.1.1.2>2.2.2.1 dest-unreachable code=3 [udp ...]``    |
| ARP           | ``arp who-has 1.1.1.2 tell 2.2.2.1`` / ``arp reply 1.1.1.2 is-at 02:..`` |
| malformed     | ``drop: truncated ipv4 header``                               |

TCP flags are scapy's letters in scapy's order (FSRPAUECN); IPv6 uses
``tcp6``/``udp6``/``icmp6`` with ``[addr]:port``.  A VLAN-tagged frame is
prefixed with ``vlan=N`` per tag.
"""

from __future__ import annotations

import ipaddress

from .headers import ETH_TYPE_ARP, FRAG_ANY, FRAG_LATER, Packet

_FLAG_LETTERS = (("F", 0x01), ("S", 0x02), ("R", 0x04), ("P", 0x08), ("A", 0x10), ("U", 0x20),
                 ("E", 0x40), ("C", 0x80), ("N", 0x100))
ICMP_NAMES = {0: "echo-reply", 3: "dest-unreachable", 4: "source-quench", 5: "redirect", 8: "echo-request",
              11: "time-exceeded", 12: "parameter-problem", 13: "timestamp-request", 14: "timestamp-reply"}
ICMP6_NAMES = {1: "dest-unreachable", 2: "packet-too-big", 3: "time-exceeded", 4: "parameter-problem",
               128: "echo-request", 129: "echo-reply", 133: "router-solicit", 134: "router-advert",
               135: "neighbor-solicit", 136: "neighbor-advert"}
_PROTO = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp6", 132: "sctp"}


def flags_str(flags: int) -> str:
    """TCP flags as scapy letters, e.g. 0x12 -> "SA"."""
    return "".join(c for c, b in _FLAG_LETTERS if flags & b)


def mac_str(v: int) -> str:
    """A 48-bit int as "02:00:00:00:01:02"."""
    return ":".join(f"{b:02x}" for b in v.to_bytes(6, "big"))


def ip_str(v: int, ver: int) -> str:
    """An address int as text (IPv4 or IPv6)."""
    return str(ipaddress.IPv4Address(v) if ver == 4 else ipaddress.IPv6Address(v))


def _ep(addr: int, port: int, ver: int) -> str:
    return f"{ip_str(addr, ver)}:{port}" if ver == 4 else f"[{ip_str(addr, ver)}]:{port}"


def _l4(pkt: Packet, with_len: bool = True) -> str:
    ver = pkt.ip_ver
    sfx = "" if ver == 4 else "6"
    p = pkt.nw_proto
    src, dst = pkt.nw_src, pkt.nw_dst
    if pkt.nw_frag & FRAG_LATER or pkt.l4 < 0 and ver:
        name = _PROTO.get(p, f"proto={p}")
        return f"ip{sfx} {ip_str(src, ver)}>{ip_str(dst, ver)} {name} fragment len={pkt.payload_len}"
    frag = " frag" if pkt.nw_frag & FRAG_ANY else ""
    if p == 6:
        s = f"tcp{sfx} {_ep(src, pkt.tp_src, ver)}>{_ep(dst, pkt.tp_dst, ver)}"
        fl = flags_str(pkt.tcp_flags)
        if fl:
            s += " " + fl
        if with_len and pkt.payload_len:
            s += f" len={pkt.payload_len}"
        return s + frag
    if p == 17 or p == 132:
        s = f"{_PROTO[p]}{sfx} {_ep(src, pkt.tp_src, ver)}>{_ep(dst, pkt.tp_dst, ver)}"
        if with_len:
            s += f" len={pkt.payload_len}"
        return s + frag
    if p == 1 or p == 58:
        names = ICMP_NAMES if p == 1 else ICMP6_NAMES
        t = pkt.tp_src
        s = f"{'icmp' if p == 1 else 'icmp6'} {ip_str(src, ver)}>{ip_str(dst, ver)} {names.get(t, f'type={t}')}"
        if pkt.icmp_id or t in (0, 8, 128, 129):
            s += f" id={pkt.icmp_id} seq={pkt.icmp_seq}"
        elif pkt.tp_dst or pkt.inner is not None:
            s += f" code={pkt.tp_dst}"
        if pkt.inner is not None:
            s += f" [{_l4(pkt.inner, False)}]"
        return s + frag
    return f"ip{sfx} {ip_str(src, ver)}>{ip_str(dst, ver)} proto={p}{frag}"


def summarize(pkt: Packet) -> str:
    """A one-line summary of ``pkt`` (see the module table)."""
    if pkt.drop is not None:
        return f"drop: {pkt.drop}"
    pre = "".join(f"vlan={tci & 0xFFF} " for tci in pkt.vlans)
    if pkt.ip_ver:
        return pre + _l4(pkt)
    if pkt.dl_type == ETH_TYPE_ARP:
        if pkt.arp_op == 1:
            return f"{pre}arp who-has {ip_str(pkt.nw_dst, 4)} tell {ip_str(pkt.nw_src, 4)}"
        if pkt.arp_op == 2:
            return f"{pre}arp reply {ip_str(pkt.nw_src, 4)} is-at {mac_str(pkt.arp_sha)}"
        return f"{pre}arp op={pkt.arp_op}"
    return f"{pre}eth {mac_str(pkt.dl_src)}>{mac_str(pkt.dl_dst)} type=0x{pkt.dl_type:04x}"
