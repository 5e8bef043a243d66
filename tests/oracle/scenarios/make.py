"""Differential scenarios: generate inputs (scapy, deterministic) and record real OVS.

Theory of operation: every scenario is a small directory in the layout of
/work/shared/oracle/cases -- case.json (bridge, ports, fail_mode, flows file,
description), flows.txt, in/<port>.pcap and in/sequence.tsv (one line per
packet: idx, ts, port, len, what it is).  Packets are written by a `Traffic`
recorder that stamps each one 1 ms after the previous, so the timestamps are
the global arrival order across ports.  TCP helpers keep sequence numbers
consistent so conntrack's window checks see a real-looking conversation.
Address translation is modelled by telling a connection how the server side
sees it (the reply tuple); NAT ports picked by OVS are predicted in the
scenario and checked against the recorded conntrack dump (see docs/oracle.md).

  .venv/bin/python tests/oracle/scenarios/make.py              # rewrite inputs only
  .venv/bin/python tests/oracle/scenarios/make.py --expected   # + run real OVS -> */expected/
  .venv/bin/python tests/oracle/scenarios/make.py --expected dnat zones_mark   # some only

Nothing here depends on the wall clock or on randomness: running it twice
gives identical bytes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scapy.all import ARP, ICMP, IP, TCP, UDP, Ether, Raw  # type: ignore[import-untyped]
from scapy.layers.inet6 import ICMPv6DestUnreach, ICMPv6EchoReply, ICMPv6EchoRequest, IPv6  # type: ignore[import-untyped]

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from pcapfile import write_pcap  # noqa: E402

T0_NS = 1_700_000_000 * 1_000_000_000
STEP_NS = 1_000_000

UPLINK, HOSTPORT = "p0", "pf0hpf"
PORTS = {UPLINK: 1, HOSTPORT: 2}
REMOTE = ("02:00:00:00:01:02", "1.1.1.2")
HOST = ("02:00:00:00:02:01", "2.2.2.1")
HOST2 = ("02:00:00:00:02:02", "2.2.2.2")
HOST3 = ("02:00:00:00:02:03", "2.2.2.3")
BACKEND = ("02:00:00:00:0a:05", "10.0.0.5")
SNAT_IP = "1.1.1.16"
VIP = "1.1.1.100"
BCAST = "ff:ff:ff:ff:ff:ff"


# --------------------------------------------------------------------------- traffic recorder

@dataclass
class Sent:
    ts: int
    port: str
    frame: bytes
    note: str


class Traffic:
    def __init__(self) -> None:
        self.sent: list[Sent] = []

    def add(self, port: str, pkt: object, note: str) -> None:
        self.sent.append(Sent(T0_NS + len(self.sent) * STEP_NS, port, bytes(pkt), note))  # type: ignore[call-overload]

    def arp(self, port: str, src: tuple[str, str], dst: tuple[str, str], reply: bool) -> None:
        if reply:
            pkt = Ether(src=src[0], dst=dst[0]) / ARP(op=2, hwsrc=src[0], psrc=src[1], hwdst=dst[0], pdst=dst[1])
        else:
            pkt = Ether(src=src[0], dst=BCAST) / ARP(op=1, hwsrc=src[0], psrc=src[1], pdst=dst[1])
        self.add(port, pkt, f"ARP {'reply' if reply else 'request'} {src[1]} -> {dst[1]}")

    def write(self, case_dir: Path, ports: dict[str, int]) -> None:
        indir = case_dir / "in"
        indir.mkdir(parents=True, exist_ok=True)
        for port in ports:
            recs = [(s.ts, s.frame) for s in self.sent if s.port == port]
            if recs:
                write_pcap(indir / f"{port}.pcap", recs)
        lines = ["#idx\tts_ns\tport\tlen\tnote"]
        lines += [f"{i}\t{s.ts}\t{s.port}\t{len(s.frame)}\t{s.note}" for i, s in enumerate(self.sent)]
        (indir / "sequence.tsv").write_text("\n".join(lines) + "\n")


class Tcp:
    """One TCP conversation; the client is on `cport`, the server on `sport_`.

    `client` and `server` are (mac, ip, port) as each end sees itself; the
    client addresses `to` (ip, port) and the server answers to `back` (ip,
    port) -- they differ from server/client exactly when NAT is applied.
    """

    def __init__(self, t: Traffic, name: str, cport: str, client: tuple[str, str, int],
                 sport_: str, server: tuple[str, str, int], to: tuple[str, int] | None = None,
                 back: tuple[str, int] | None = None, isn: tuple[int, int] = (1000, 5000), v6: bool = False):
        self.ipcls = IPv6 if v6 else IP
        self.t, self.name, self.cport, self.sport_ = t, name, cport, sport_
        self.client, self.server = client, server
        self.to = to or (server[1], server[2])
        self.back = back or (client[1], client[2])
        self.cseq, self.sseq = isn

    def _c(self, flags: str, payload: int = 0, note: str = "", seq_adj: int = 0, ack_adj: int = 0,
           advance: bool = True) -> None:
        pkt = (Ether(src=self.client[0], dst=self.server[0]) /
               self.ipcls(src=self.client[1], dst=self.to[0]) /
               TCP(sport=self.client[2], dport=self.to[1], flags=flags, seq=(self.cseq + seq_adj) & 0xFFFFFFFF,
                   ack=(self.sseq + ack_adj) & 0xFFFFFFFF if "A" in flags else 0, window=65535))
        if payload:
            pkt = pkt / Raw(bytes((i * 7 + 1) & 0xFF for i in range(payload)))
        self.t.add(self.cport, pkt, f"{self.name} {note or flags} (client)")
        if advance:
            self.cseq += payload + (1 if ("S" in flags or "F" in flags) else 0)

    def _s(self, flags: str, payload: int = 0, note: str = "", seq_adj: int = 0, advance: bool = True) -> None:
        pkt = (Ether(src=self.server[0], dst=self.client[0]) /
               self.ipcls(src=self.server[1], dst=self.back[0]) /
               TCP(sport=self.server[2], dport=self.back[1], flags=flags, seq=(self.sseq + seq_adj) & 0xFFFFFFFF,
                   ack=self.cseq if "A" in flags else 0, window=65535))
        if payload:
            pkt = pkt / Raw(bytes((i * 11 + 3) & 0xFF for i in range(payload)))
        self.t.add(self.sport_, pkt, f"{self.name} {note or flags} (server)")
        if advance:
            self.sseq += payload + (1 if ("S" in flags or "F" in flags) else 0)

    def handshake(self) -> Tcp:
        self._c("S", note="SYN")
        self._s("SA", note="SYN-ACK")
        self._c("A", note="ACK")
        return self

    def up(self, n: int) -> None:
        self._c("PA", n, f"data {n} B")

    def down(self, n: int) -> None:
        self._s("PA", n, f"data {n} B")

    def ack_c(self) -> None:
        self._c("A", note="ACK")

    def ack_s(self) -> None:
        self._s("A", note="ACK")

    def fin_close(self) -> None:
        self._c("FA", note="FIN")
        self._s("A", note="ACK of FIN")
        self._s("FA", note="FIN")
        self._c("A", note="last ACK")

    def syn(self) -> None:
        self._c("S", note="SYN")

    def synack(self) -> None:
        self._s("SA", note="SYN-ACK")

    def rst_c(self) -> None:
        self._c("RA", note="RST")

    def rst_s(self) -> None:
        self._s("RA", note="RST")


def udp(t: Traffic, port: str, src: tuple[str, str, int], dst: tuple[str, str, int], n: int, note: str,
        dst_ip: str | None = None, payload: bytes | None = None) -> None:
    body = payload if payload is not None else bytes((i * 5 + 2) & 0xFF for i in range(n))
    ipcls = IPv6 if ":" in src[1] else IP
    pkt = (Ether(src=src[0], dst=dst[0]) / ipcls(src=src[1], dst=dst_ip or dst[1]) /
           UDP(sport=src[2], dport=dst[2]) / Raw(body))
    t.add(port, pkt, note)


def ping(t: Traffic, port: str, src: tuple[str, str], dst: tuple[str, str], ident: int, seq: int,
         reply: bool, dst_ip: str | None = None) -> None:
    pkt = (Ether(src=src[0], dst=dst[0]) / IP(src=src[1], dst=dst_ip or dst[1]) /
           ICMP(type=0 if reply else 8, id=ident, seq=seq) / Raw(bytes(range(32))))
    t.add(port, pkt, f"ICMP echo {'reply' if reply else 'request'} id={ident} seq={seq}")


def roce_payload(opcode: int, qp: int, psn: int, n: int) -> bytes:
    """InfiniBand BTH (12 B) + payload + 4-byte ICRC placeholder, as carried by RoCEv2."""
    bth = bytes([opcode, 0x40, 0xFF, 0xFF, 0, (qp >> 16) & 0xFF, (qp >> 8) & 0xFF, qp & 0xFF,
                 0x80, (psn >> 16) & 0xFF, (psn >> 8) & 0xFF, psn & 0xFF])
    return bth + bytes(n) + b"\x12\x34\x56\x78"


# --------------------------------------------------------------------------- traffic mixes

def mix_traffic(reply_ip: str | None) -> Traffic:
    """iperf3-like TCP (control + data) and UDP, ping, RoCEv2, an unknown IPv6 packet.

    reply_ip: the address the uplink answers to (the SNAT address), or None for
    the host's own address.  NAT keeps the source ports here (no clashes).
    """
    t = Traffic()
    h = (HOST[0], HOST[1])
    back_ip = reply_ip or HOST[1]
    t.arp(HOSTPORT, h, REMOTE, reply=False)
    t.arp(UPLINK, REMOTE, h, reply=True)
    # iperf3 control connection: stays ESTABLISHED
    ctl = Tcp(t, "iperf-ctl", HOSTPORT, (*h, 45000), UPLINK, (*REMOTE, 5201), back=(back_ip, 45000)).handshake()
    ctl.up(37)
    ctl.ack_s()
    ctl.down(1)
    ctl.ack_c()
    # iperf3 data connection: bulk upload, delayed ACKs, FIN teardown
    data = Tcp(t, "iperf-data", HOSTPORT, (*h, 45002), UPLINK, (*REMOTE, 5201), back=(back_ip, 45002),
               isn=(70000, 90000)).handshake()
    data.up(37)
    for i in range(8):
        data.up(1000)
        if i % 2 == 1:
            data.ack_s()
    data.fin_close()
    # iperf3 UDP test: server hello back, then a one-way stream
    udp(t, HOSTPORT, (*h, 46000), (*REMOTE, 5201), 4, "iperf-udp hello")
    udp(t, UPLINK, (*REMOTE, 5201), (*h, 46000), 4, "iperf-udp hello reply", dst_ip=back_ip)
    for i in range(5):
        udp(t, HOSTPORT, (*h, 46000), (*REMOTE, 5201), 400, f"iperf-udp datagram {i}")
    # ping
    for seq in (1, 2, 3):
        ping(t, HOSTPORT, h, REMOTE, 0x4D2, seq, reply=False)
        ping(t, UPLINK, REMOTE, h, 0x4D2, seq, reply=True, dst_ip=back_ip)
    # RoCEv2: RDMA write from the host, ACK back from the peer on another sport
    for psn in range(3):
        udp(t, HOSTPORT, (*h, 49152), (*REMOTE, 4791), 0, f"RoCE RDMA WRITE psn={psn}",
            payload=roce_payload(0x0A, 0x11, psn, 256))
    udp(t, UPLINK, (*REMOTE, 51000), (*h, 4791), 0, "RoCE ACK (reverse, other sport)", dst_ip=back_ip,
        payload=roce_payload(0x11, 0x22, 2, 4))
    # IPv6 (no flow matches in the explicit cases: table miss)
    t.add(HOSTPORT, Ether(src=HOST[0], dst=REMOTE[0]) / IPv6(src="fd00::1", dst="fd00::2") /
          ICMPv6EchoRequest(id=1, seq=1), "ICMPv6 echo request")
    return t


EX1_NORMAL = """\
table=0,arp,action=normal
table=0,udp,tp_dst=4791,action=normal
table=0,ip,ct_state=-trk,action=ct(table=1)
table=1,priority=1,ip,ct_state=+trk+new,action=ct(commit),normal
table=1,priority=1,ip,ct_state=+trk+est,action=normal
"""
EX1_EXPLICIT = """\
table=0,arp,in_port=pf0hpf,action=output:p0
table=0,arp,in_port=p0,action=output:pf0hpf
table=0,udp,tp_dst=4791,in_port=pf0hpf,action=output:p0
table=0,udp,tp_dst=4791,in_port=p0,action=output:pf0hpf
table=0,ip,ct_state=-trk,action=ct(table=1)
table=1,priority=1,ip,ct_state=+trk+new,in_port=pf0hpf,action=ct(commit),output:p0
table=1,priority=1,ip,ct_state=+trk+new,in_port=p0,action=ct(commit),output:pf0hpf
table=1,priority=1,ip,ct_state=+trk+est,in_port=pf0hpf,action=output:p0
table=1,priority=1,ip,ct_state=+trk+est,in_port=p0,action=output:pf0hpf
"""
EX1_ROCE_LAST = """\
table=0,arp,action=normal
table=0,ip,ct_state=-trk,action=ct(table=1)
table=0,udp,tp_dst=4791,action=normal
table=1,priority=1,ip,ct_state=+trk+new,action=ct(commit),normal
table=1,priority=1,ip,ct_state=+trk+est,action=normal
"""
EX2_NORMAL = """\
table=0,arp,action=normal
table=0,ip,ct_state=-trk,action=ct(table=1,nat)
table=1,in_port=pf0hpf,ip,ct_state=+trk+new,action=ct(commit,nat(src=1.1.1.16)),p0
table=1,ip,ct_state=+trk+est,action=normal
"""
EX2_EXPLICIT = """\
table=0,arp,in_port=pf0hpf,action=output:p0
table=0,arp,in_port=p0,action=output:pf0hpf
table=0,ip,ct_state=-trk,action=ct(table=1,nat)
table=1,in_port=pf0hpf,ip,ct_state=+trk+new,action=ct(commit,nat(src=1.1.1.16)),p0
table=1,ip,ct_state=+trk+est,in_port=pf0hpf,action=output:p0
table=1,ip,ct_state=+trk+est,in_port=p0,action=output:pf0hpf
"""

# every ct verdict leaves through its own port, so trace.tsv shows each packet's ct_state
PROBE_PORTS = {"s_new": 10, "s_est": 11, "s_est_rpl": 12, "s_inv": 13, "s_rel": 14, "s_rel_rpl": 15,
               "s_new_uplink": 16, "s_other": 17}
PROBE_FLOWS = """\
table=0,arp,in_port=pf0hpf,action=output:p0
table=0,arp,in_port=p0,action=output:pf0hpf
table=0,ip,action=ct(table=1)
table=0,priority=0,action=output:s_other
table=1,priority=100,ip,ct_state=+trk+inv,action=output:s_inv
table=1,priority=90,ip,ct_state=+trk+new,in_port=pf0hpf,action=ct(commit),output:s_new
table=1,priority=85,ip,ct_state=+trk+new,action=output:s_new_uplink
table=1,priority=80,ip,ct_state=+trk+est+rpl,action=output:s_est_rpl
table=1,priority=70,ip,ct_state=+trk+est-rpl,action=output:s_est
table=1,priority=60,ip,ct_state=+trk+rel+rpl,action=output:s_rel_rpl
table=1,priority=59,ip,ct_state=+trk+rel-rpl,action=output:s_rel
table=1,priority=1,action=output:s_other
"""


def dnat_traffic() -> Traffic:
    """Clients on the uplink reach VIP 1.1.1.100:80, served by 10.0.0.5:8080 behind pf0hpf."""
    t = Traffic()
    vip_mac = "02:00:00:00:00:64"
    a = Tcp(t, "tcp-vip", UPLINK, (REMOTE[0], REMOTE[1], 33000), HOSTPORT, (BACKEND[0], BACKEND[1], 8080),
            to=(VIP, 80), isn=(100, 200))
    a.server = (vip_mac, a.server[1], a.server[2])  # the client addresses the VIP's MAC
    a.handshake()
    a.up(120)
    a.down(300)
    a.ack_c()
    a.fin_close()
    b = Tcp(t, "tcp-vip-2", UPLINK, ("02:00:00:00:01:03", "1.1.1.3", 33000), HOSTPORT,
            (vip_mac, BACKEND[1], 8080), to=(VIP, 80), isn=(300, 400)).handshake()
    b.up(10)
    # the backend answers from its real address: est+rpl after reverse DNAT
    b.down(20)
    # traffic to the VIP on another port is not DNATed (no matching commit flow)
    Tcp(t, "tcp-vip-443", UPLINK, (REMOTE[0], REMOTE[1], 33001), HOSTPORT, (vip_mac, VIP, 443)).syn()
    udp(t, UPLINK, (REMOTE[0], REMOTE[1], 33002), (vip_mac, VIP, 80), 16, "UDP to VIP:80 (not DNATed)")
    # the backend connects out directly: new from pf0hpf, not committed by these flows
    Tcp(t, "tcp-backend-out", HOSTPORT, (BACKEND[0], BACKEND[1], 50000), UPLINK, (*REMOTE, 22)).syn()
    return t


DNAT_FLOWS = """\
table=0,arp,action=drop
table=0,ip,ct_state=-trk,action=ct(table=1,nat)
table=1,priority=10,tcp,in_port=p0,ct_state=+trk+new,nw_dst=1.1.1.100,tp_dst=80,action=ct(commit,nat(dst=10.0.0.5:8080)),output:pf0hpf
table=1,priority=10,ip,in_port=p0,ct_state=+trk+est,action=output:pf0hpf
table=1,priority=10,ip,in_port=pf0hpf,ct_state=+trk+est,action=output:p0
table=1,priority=5,ip,ct_state=+trk+new,action=output:s_new_other
table=1,priority=5,ip,ct_state=+trk+inv,action=output:s_inv
"""


def snat_range_traffic() -> Traffic:
    """Three hosts, same sport 40000, same destination: a 2-port SNAT range runs out."""
    t = Traffic()
    conns = []
    for i, (host, back_port) in enumerate(((HOST, 40000), (HOST2, 40001), (HOST3, None))):
        c = Tcp(t, f"h{i + 1}", HOSTPORT, (*host, 40000), UPLINK, (*REMOTE, 443),
                back=(SNAT_IP, back_port) if back_port else (host[1], 40000), isn=(1000 * (i + 1), 50000 + i))
        c.syn()
        conns.append(c)
    for c in conns:
        c.synack()
    for c in conns:
        c.ack_c()
    conns[0].up(64)
    conns[1].up(64)
    conns[2].up(64)
    # a reply addressed to the range's ports of the first two
    conns[0].down(32)
    conns[1].down(32)
    # UDP from host 3: ports are per protocol, so the range is free again (no reply is
    # sent: which of the two ports it gets is random in OVS, see case.json)
    udp(t, HOSTPORT, (*HOST3, 40000), (*REMOTE, 53), 20, "h3 UDP 53 (other protocol: range free)")
    return t


SNAT_RANGE_FLOWS = """\
table=0,arp,action=drop
table=0,ip,ct_state=-trk,action=ct(table=1,nat)
table=1,priority=10,ip,in_port=pf0hpf,ct_state=+trk+new,action=ct(commit,nat(src=1.1.1.16:40000-40001)),output:p0
table=1,priority=10,ip,in_port=pf0hpf,ct_state=+trk+est,action=output:p0
table=1,priority=10,ip,in_port=p0,ct_state=+trk+est,action=output:pf0hpf
table=1,priority=5,ip,ct_state=+trk+new,action=output:s_new_other
table=1,priority=5,ip,ct_state=+trk+inv,action=output:s_inv
"""


def zones_traffic() -> Traffic:
    t = Traffic()
    h = (HOST[0], HOST[1])
    t.arp(HOSTPORT, h, REMOTE, reply=False)
    t.arp(UPLINK, REMOTE, h, reply=True)
    a = Tcp(t, "tcp443-zone5", HOSTPORT, (*h, 41000), UPLINK, (*REMOTE, 443)).handshake()
    a.up(50)
    a.down(70)
    a.ack_c()
    udp(t, HOSTPORT, (*h, 41001), (*REMOTE, 5353), 30, "UDP 5353 zone 7 (no mark)")
    udp(t, UPLINK, (*REMOTE, 5353), (*h, 41001), 30, "UDP 5353 reply")
    ping(t, HOSTPORT, h, REMOTE, 7, 1, reply=False)
    ping(t, UPLINK, REMOTE, h, 7, 1, reply=True)
    # the same TCP 5-tuple as tcp443 would be in zone 5 too; a TCP to 80 is marked as well
    b = Tcp(t, "tcp80-zone5", HOSTPORT, (*h, 41002), UPLINK, (*REMOTE, 80), isn=(9000, 9900)).handshake()
    b.fin_close()
    return t


ZONES_FLOWS = """\
table=0,arp,in_port=pf0hpf,action=output:p0
table=0,arp,in_port=p0,action=output:pf0hpf
table=0,tcp,ct_state=-trk,action=ct(zone=5,table=1)
table=0,udp,ct_state=-trk,action=ct(zone=7,table=1)
table=0,icmp,ct_state=-trk,action=ct(table=1)
table=1,priority=10,tcp,in_port=pf0hpf,ct_state=+trk+new,ct_zone=5,action=ct(commit,zone=5,exec(set_field:0x2a->ct_mark)),goto_table:2
table=1,priority=10,udp,in_port=pf0hpf,ct_state=+trk+new,ct_zone=7,action=ct(commit,zone=7),goto_table:2
table=1,priority=10,icmp,in_port=pf0hpf,ct_state=+trk+new,action=ct(commit),goto_table:2
table=1,priority=10,ip,ct_state=+trk+est,action=goto_table:2
table=1,priority=1,ip,action=output:s_other
table=2,priority=20,ct_mark=0x2a,ct_zone=5,action=goto_table:3
table=2,priority=15,ct_zone=7,action=output:s_zone7,goto_table:3
table=2,priority=10,ct_mark=0,action=output:s_nomark,goto_table:3
table=3,in_port=pf0hpf,action=output:p0
table=3,in_port=p0,action=output:pf0hpf
"""


def multi_table_traffic() -> Traffic:
    t = Traffic()
    h = (HOST[0], HOST[1])
    t.arp(HOSTPORT, h, REMOTE, reply=False)
    t.arp(UPLINK, REMOTE, h, reply=True)
    a = Tcp(t, "tcp22", HOSTPORT, (*h, 42000), UPLINK, (*REMOTE, 22)).handshake()
    a.up(40)
    a.down(40)
    a.fin_close()
    udp(t, HOSTPORT, (*h, 42001), (*REMOTE, 123), 48, "NTP request")
    udp(t, UPLINK, (*REMOTE, 123), (*h, 42001), 48, "NTP reply")
    ping(t, HOSTPORT, h, REMOTE, 9, 1, reply=False)
    ping(t, UPLINK, REMOTE, h, 9, 1, reply=True)
    Tcp(t, "tcp-in", UPLINK, (REMOTE[0], REMOTE[1], 42002), HOSTPORT, (*h, 22)).syn()
    return t


MULTI_TABLE_FLOWS = """\
table=0,priority=100,arp,action=resubmit(,3)
table=0,priority=50,ip,action=goto_table:1
table=1,priority=50,ip,ct_state=-trk,action=ct(table=2)
table=2,priority=60,ip,ct_state=+trk+inv,action=drop
table=2,priority=50,tcp,in_port=pf0hpf,ct_state=+trk+new,action=ct(commit),resubmit(,3)
table=2,priority=50,udp,in_port=pf0hpf,ct_state=+trk+new,action=ct(commit),goto_table:3
table=2,priority=50,icmp,in_port=pf0hpf,ct_state=+trk+new,action=ct(commit),resubmit(,3),output:s_mirror
table=2,priority=40,ip,ct_state=+trk+est,action=resubmit(,4)
table=2,priority=30,ip,ct_state=+trk+new,in_port=p0,action=output:s_denied
table=3,priority=10,in_port=pf0hpf,action=output:p0
table=3,priority=10,in_port=p0,action=output:pf0hpf
table=4,priority=20,udp,action=output:s_mirror,resubmit(,3)
table=4,priority=10,ip,action=resubmit(,3)
"""


def teardown_traffic() -> Traffic:
    t = Traffic()
    h = (HOST[0], HOST[1])
    a = Tcp(t, "fin", HOSTPORT, (*h, 43000), UPLINK, (*REMOTE, 80)).handshake()
    a.up(10)
    a.down(10)
    a.ack_c()
    a.fin_close()
    a.up(5)  # data after close: what does ct say?
    b = Tcp(t, "rst-server", HOSTPORT, (*h, 43001), UPLINK, (*REMOTE, 80), isn=(2000, 3000)).handshake()
    b.up(10)
    b.rst_s()
    b.up(5)  # client keeps talking after the RST
    c = Tcp(t, "rst-client", HOSTPORT, (*h, 43002), UPLINK, (*REMOTE, 80), isn=(4000, 5000)).handshake()
    c.rst_c()
    d = Tcp(t, "refused", HOSTPORT, (*h, 43003), UPLINK, (*REMOTE, 81), isn=(6000, 7000))
    d.syn()
    d.rst_s()
    e = Tcp(t, "half-close", HOSTPORT, (*h, 43004), UPLINK, (*REMOTE, 80), isn=(8000, 9000)).handshake()
    e._c("FA", note="FIN")
    e._s("A", note="ACK of FIN")
    e.down(20)  # server still sends after the client's FIN
    e.ack_c()
    f = Tcp(t, "reopen", HOSTPORT, (*h, 43000), UPLINK, (*REMOTE, 80), isn=(50000, 60000))
    f.syn()  # SYN reusing the TIME_WAIT tuple of "fin"
    f.synack()
    f.ack_c()
    return t


def udp_icmp_traffic() -> Traffic:
    t = Traffic()
    h = (HOST[0], HOST[1])
    udp(t, HOSTPORT, (*h, 44000), (*REMOTE, 53), 30, "DNS query")
    udp(t, HOSTPORT, (*h, 44000), (*REMOTE, 53), 30, "DNS query retry (before any reply)")
    udp(t, UPLINK, (*REMOTE, 53), (*h, 44000), 60, "DNS reply")
    udp(t, HOSTPORT, (*h, 44000), (*REMOTE, 53), 30, "DNS query 2 (after reply)")
    udp(t, HOSTPORT, (*h, 44001), (*REMOTE, 9999), 10, "UDP to closed port")
    inner = IP(src=h[1], dst=REMOTE[1]) / UDP(sport=44001, dport=9999) / Raw(bytes((i * 5 + 2) & 0xFF for i in range(10)))
    t.add(UPLINK, Ether(src=REMOTE[0], dst=HOST[0]) / IP(src=REMOTE[1], dst=h[1]) /
          ICMP(type=3, code=3) / bytes(inner), "ICMP port unreachable for the UDP 9999 flow (related)")
    udp(t, UPLINK, (*REMOTE, 7777), (*h, 44002), 10, "unsolicited UDP from uplink")
    ping(t, HOSTPORT, h, REMOTE, 0x77, 1, reply=False)
    ping(t, UPLINK, REMOTE, h, 0x77, 1, reply=True)
    ping(t, HOSTPORT, h, REMOTE, 0x77, 2, reply=False)
    ping(t, UPLINK, REMOTE, h, 0x77, 2, reply=True)
    ping(t, UPLINK, REMOTE, h, 0x78, 1, reply=True)  # unsolicited echo reply
    ping(t, UPLINK, REMOTE, h, 0x79, 1, reply=False)  # inbound ping (not committed)
    # explicit timestamps: scapy would otherwise fill in the current time
    t.add(UPLINK, Ether(src=REMOTE[0], dst=HOST[0]) / IP(src=REMOTE[1], dst=h[1]) /
          ICMP(type=13, id=5, ts_ori=1000, ts_rx=0, ts_tx=0),
          "ICMP timestamp request from uplink")
    inner2 = IP(src=h[1], dst=REMOTE[1]) / UDP(sport=44999, dport=9999) / Raw(b"x" * 8)
    t.add(UPLINK, Ether(src=REMOTE[0], dst=HOST[0]) / IP(src=REMOTE[1], dst=h[1]) /
          ICMP(type=3, code=3) / bytes(inner2), "ICMP unreachable for an unknown flow")
    return t


# --------------------------------------------------------------------------- added scenarios

ROUTER = ("02:00:00:00:01:09", "1.1.1.9")  # an on-path router that sends ICMP errors


def icmp_error(t: Traffic, port: str, src: tuple[str, str], dst_mac: str, dst_ip: str, typ: int, code: int,
               quoted: object, note: str, **kw: int) -> None:
    """An ICMPv4 error from `src` to dst_ip quoting `quoted` (an IP packet, checksums as sent)."""
    t.add(port, Ether(src=src[0], dst=dst_mac) / IP(src=src[1], dst=dst_ip) /
          ICMP(type=typ, code=code, **kw) / bytes(quoted), note)


def _tcp_hdr(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: str, n: int) -> object:
    """What a TCP segment looked like on the wire (for quoting in ICMP errors)."""
    pkt = IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack, window=65535)
    if n:
        pkt = pkt / Raw(bytes((i * 7 + 1) & 0xFF for i in range(n)))
    return IP(bytes(pkt))


def icmp_nat_traffic() -> Traffic:
    """ICMP errors related to SNATed and DNATed connections, both directions; the quoted
    headers must be translated back along with the outer ones."""
    t = Traffic()
    h = (HOST[0], HOST[1])
    vip_mac = "02:00:00:00:00:64"
    # 1. SNAT UDP to a closed port: the remote's port unreachable quotes 1.1.1.16:44000
    udp(t, HOSTPORT, (*h, 44000), (*REMOTE, 9999), 12, "SNAT UDP 44000 -> 1.1.1.2:9999 (closed)")
    q = IP(bytes(IP(src=SNAT_IP, dst=REMOTE[1]) / UDP(sport=44000, dport=9999) /
                 Raw(bytes((i * 5 + 2) & 0xFF for i in range(12)))))
    icmp_error(t, UPLINK, REMOTE, HOST[0], SNAT_IP, 3, 3, q, "ICMP port unreachable to 1.1.1.16 (rel+rpl, un-SNAT)")
    # the same error sent to the host's private address: outer dst != quoted src -> invalid
    icmp_error(t, UPLINK, REMOTE, HOST[0], h[1], 3, 3, q, "ICMP port unreachable to 2.2.2.1 quoting 1.1.1.16 (outer "
               "daddr != inner saddr)")
    # 2. SNAT TCP: a router on the path says "fragmentation needed" for a big segment
    c = Tcp(t, "snat-tcp", HOSTPORT, (*h, 44001), UPLINK, (*REMOTE, 80), back=(SNAT_IP, 44001),
            isn=(7000, 8000)).handshake()
    q = _tcp_hdr(SNAT_IP, REMOTE[1], 44001, 80, c.cseq, c.sseq, "PA", 0)
    c.up(1200)
    icmp_error(t, UPLINK, ROUTER, HOST[0], SNAT_IP, 3, 4, q, "ICMP frag needed from router 1.1.1.9 (rel+rpl, un-SNAT)",
               nexthopmtu=1000)
    c.down(10)
    # the host answers a reply segment with an ICMP error (original direction, SNATed)
    q = _tcp_hdr(REMOTE[1], h[1], 80, 44001, c.sseq, c.cseq, "PA", 0)
    icmp_error(t, HOSTPORT, h, REMOTE[0], REMOTE[1], 3, 3, q, "ICMP port unreachable from the host quoting a reply "
               "(rel, SNAT of outer src and quoted dst)")
    # 3. SNAT ping: time exceeded from the router quotes the translated echo request
    ping(t, HOSTPORT, h, REMOTE, 0x99, 1, reply=False)
    q = IP(bytes(IP(src=SNAT_IP, dst=REMOTE[1], ttl=1) / ICMP(type=8, id=0x99, seq=1) / Raw(bytes(range(32)))))
    icmp_error(t, UPLINK, ROUTER, HOST[0], SNAT_IP, 11, 0, q, "ICMP time exceeded quoting the SNATed echo (rel+rpl)")
    ping(t, UPLINK, REMOTE, h, 0x99, 1, reply=True, dst_ip=SNAT_IP)
    # 4. DNAT UDP VIP:53 -> 10.0.0.5:5353; the backend's port unreachable must leave as the VIP
    udp(t, UPLINK, (REMOTE[0], REMOTE[1], 33053), (vip_mac, VIP, 53), 20, "UDP to VIP 1.1.1.100:53 (DNAT)")
    q = IP(bytes(IP(src=REMOTE[1], dst=BACKEND[1]) / UDP(sport=33053, dport=5353) /
                 Raw(bytes((i * 5 + 2) & 0xFF for i in range(20)))))
    icmp_error(t, HOSTPORT, BACKEND, REMOTE[0], REMOTE[1], 3, 3, q, "backend port unreachable (rel+rpl, un-DNAT)")
    # 5. DNAT TCP: the client side reports an error for a reply segment (original direction)
    d = Tcp(t, "dnat-tcp", UPLINK, (REMOTE[0], REMOTE[1], 33080), HOSTPORT, (vip_mac, BACKEND[1], 8080),
            to=(VIP, 80), isn=(9100, 9200)).handshake()
    d.down(30)
    q = _tcp_hdr(VIP, REMOTE[1], 80, 33080, d.sseq - 30, d.cseq, "PA", 0)
    icmp_error(t, UPLINK, ROUTER, vip_mac, VIP, 3, 4, q, "ICMP frag needed to the VIP quoting a reply (rel, DNAT)",
               nexthopmtu=1000)
    d.ack_c()
    return t


ICMP_NAT_FLOWS = """\
table=0,arp,action=drop
table=0,ip,ct_state=-trk,action=ct(table=1,nat)
table=1,priority=20,udp,in_port=p0,ct_state=+trk+new,nw_dst=1.1.1.100,tp_dst=53,action=ct(commit,nat(dst=10.0.0.5:5353)),output:pf0hpf
table=1,priority=20,tcp,in_port=p0,ct_state=+trk+new,nw_dst=1.1.1.100,tp_dst=80,action=ct(commit,nat(dst=10.0.0.5:8080)),output:pf0hpf
table=1,priority=10,ip,in_port=pf0hpf,ct_state=+trk+new,action=ct(commit,nat(src=1.1.1.16)),output:p0
table=1,priority=10,ip,in_port=p0,ct_state=+trk+est,action=output:pf0hpf
table=1,priority=10,ip,in_port=pf0hpf,ct_state=+trk+est,action=output:p0
table=1,priority=10,ip,in_port=p0,ct_state=+trk+rel,action=output:s_rel_in
table=1,priority=10,ip,in_port=pf0hpf,ct_state=+trk+rel,action=output:s_rel_out
table=1,priority=5,ip,ct_state=+trk+new,action=output:s_new_other
table=1,priority=5,ip,ct_state=+trk+inv,action=output:s_inv
"""


def tcp_window_traffic() -> Traffic:
    """Window tracking (be_liberal 0): segments beyond / far below the window, ACK of unsent
    data, RSTs with bad and inexact sequence numbers, retransmitted SYN and SYN-ACK, reopen
    after an RST from either side."""
    t = Traffic()
    h = (HOST[0], HOST[1])
    a = Tcp(t, "win", HOSTPORT, (*h, 45000), UPLINK, (*REMOTE, 80), isn=(100000, 500000))
    a.syn()
    a._c("S", note="SYN retransmitted", seq_adj=-1, advance=False)
    a.synack()
    a._s("SA", note="SYN-ACK retransmitted", seq_adj=-1, advance=False)
    a.ack_c()
    a.up(100)
    a.ack_s()
    a._c("PA", 10, "data 200000 beyond the window (seq over upper bound)", seq_adj=200000, advance=False)
    a._c("PA", 10, "data 100000 below the window (seq under lower bound)", seq_adj=-100000, advance=False)
    a._c("A", note="ACK of 100000 unsent bytes (ack over upper bound)", ack_adj=100000)
    a._c("PA", 10, "data 1000 ahead of td_end, in window", seq_adj=1000, advance=False)
    a.up(20)
    a._s("RA", note="RST with a bad sequence number (far off)", seq_adj=300000, advance=False)
    a.down(5)
    a._s("RA", note="RST 5 into the window (inexact)", seq_adj=5, advance=False)
    a.down(5)
    a.ack_c()
    a.rst_s()
    a.up(5)  # after the RST
    # reopen after the server's RST: the client SYN on the same tuple
    r = Tcp(t, "win-reopen-after-server-rst", HOSTPORT, (*h, 45000), UPLINK, (*REMOTE, 80), isn=(700000, 800000))
    r.syn()
    r.synack()
    r.ack_c()
    r.up(10)
    # reopen after the client's own RST
    b = Tcp(t, "rst-client", HOSTPORT, (*h, 45001), UPLINK, (*REMOTE, 80), isn=(11000, 12000)).handshake()
    b.up(10)
    b.ack_s()
    b.rst_c()
    b2 = Tcp(t, "rst-client-reopen", HOSTPORT, (*h, 45001), UPLINK, (*REMOTE, 80), isn=(21000, 22000))
    b2.syn()
    b2.synack()
    b2.ack_c()
    # SYN-ACK from the server with a wrong ack (not acking the SYN)
    c = Tcp(t, "bad-synack", HOSTPORT, (*h, 45002), UPLINK, (*REMOTE, 80), isn=(31000, 32000))
    c.syn()
    c.cseq += 5000
    c.synack()
    return t


def mark_label_traffic() -> Traffic:
    t = Traffic()
    h = (HOST[0], HOST[1])
    t.arp(HOSTPORT, h, REMOTE, reply=False)
    t.arp(UPLINK, REMOTE, h, reply=True)
    a = Tcp(t, "tcp80-mark", HOSTPORT, (*h, 46000), UPLINK, (*REMOTE, 80)).handshake()
    a.up(20)
    a.down(30)
    a.ack_c()
    b = Tcp(t, "tcp8443-remark", HOSTPORT, (*h, 46001), UPLINK, (*REMOTE, 8443), isn=(3000, 4000)).handshake()
    b.up(20)  # est from the host: ct(commit,exec(set_field:0x99->ct_mark)) re-marks
    b.down(30)
    b.up(5)
    b.fin_close()
    # UDP: several packets each way, then silence
    for i in range(3):
        udp(t, HOSTPORT, (*h, 46002), (*REMOTE, 5000), 40 + i, f"UDP label {i} (host)")
    for i in range(3):
        udp(t, UPLINK, (*REMOTE, 5000), (*h, 46002), 50 + i, f"UDP label reply {i}")
    for i in range(2):
        udp(t, HOSTPORT, (*h, 46002), (*REMOTE, 5000), 60 + i, f"UDP label more {i} (host)")
    ping(t, HOSTPORT, h, REMOTE, 0x31, 1, reply=False)
    ping(t, UPLINK, REMOTE, h, 0x31, 1, reply=True)
    return t


MARK_LABEL_FLOWS = """\
table=0,arp,in_port=pf0hpf,action=output:p0
table=0,arp,in_port=p0,action=output:pf0hpf
table=0,ip,ct_state=-trk,action=ct(table=1)
table=1,priority=100,tcp,in_port=pf0hpf,ct_state=+trk+new,action=ct(commit,exec(set_field:0x1234/0xff00->ct_mark,set_field:0xabc0000000000000000000000000def->ct_label)),output:p0
table=1,priority=100,udp,in_port=pf0hpf,ct_state=+trk+new,action=ct(commit,exec(load:0x5->NXM_NX_CT_LABEL[64..71],set_field:7->ct_mark)),output:p0
table=1,priority=100,icmp,in_port=pf0hpf,ct_state=+trk+new,action=ct(commit),output:p0
table=1,priority=90,tcp,in_port=pf0hpf,tp_dst=8443,ct_state=+trk+est,ct_mark=0x1200/0xff00,action=ct(commit,exec(set_field:0x99->ct_mark)),output:s_remark,output:p0
table=1,priority=85,ip,ct_state=+trk+est,ct_mark=0x99,action=output:s_mark99,goto_table:2
table=1,priority=80,ip,ct_state=+trk+est,ct_label=0xdef/0xfff,action=output:s_label_lo,goto_table:2
table=1,priority=80,ip,ct_state=+trk+est,ct_label=0x50000000000000000/0xff0000000000000000,ct_mark=7,action=output:s_label_hi,goto_table:2
table=1,priority=60,ip,ct_state=+trk+est,ct_mark=0,ct_label=0,action=output:s_nomark,goto_table:2
table=1,priority=1,action=output:s_other
table=2,in_port=pf0hpf,action=output:p0
table=2,in_port=p0,action=output:pf0hpf
"""


def zone_reg_traffic() -> Traffic:
    t = Traffic()
    h = (HOST[0], HOST[1])
    a = Tcp(t, "tcp-zone-reg", HOSTPORT, (*h, 47000), UPLINK, (*REMOTE, 80)).handshake()
    a.up(10)
    a.down(10)
    # the uplink starts a UDP exchange; it is committed in the uplink's direction
    udp(t, UPLINK, (*REMOTE, 53), (*h, 47001), 20, "UDP from uplink 1.1.1.2:53 -> 2.2.2.1:47001 (committed)")
    udp(t, HOSTPORT, (*h, 47001), (*REMOTE, 53), 20, "host answers: reply direction -> ct(commit,force) "
        "replaces the entry")
    udp(t, UPLINK, (*REMOTE, 53), (*h, 47001), 20, "uplink again: now the reply direction")
    udp(t, HOSTPORT, (*h, 47001), (*REMOTE, 53), 20, "host again: original direction of the new entry")
    # UDP replies from the uplink on another flow go through ct_clear and a second zone
    udp(t, HOSTPORT, (*h, 47002), (*REMOTE, 123), 48, "NTP request (zone 9)")
    udp(t, UPLINK, (*REMOTE, 123), (*h, 47002), 48, "NTP reply: ct_clear, then zone 10 (new there)")
    udp(t, UPLINK, (*REMOTE, 123), (*h, 47002), 48, "NTP reply 2: zone 10 committed, not a reply there")
    return t


ZONE_REG_FLOWS = """\
table=0,priority=10,ip,action=load:0xabcd0009->NXM_NX_REG0[],goto_table:1
table=1,ip,ct_state=-trk,action=ct(zone=NXM_NX_REG0[0..15],table=2)
table=2,priority=20,tcp,in_port=pf0hpf,ct_state=+trk+new,ct_zone=9,action=ct(commit,zone=NXM_NX_REG0[0..15]),output:p0
table=2,priority=20,udp,in_port=p0,tp_src=53,ct_state=+trk+new,action=ct(commit,zone=NXM_NX_REG0[0..15]),output:pf0hpf
table=2,priority=20,udp,in_port=pf0hpf,tp_dst=53,ct_state=+trk+est+rpl,action=ct(commit,force,zone=NXM_NX_REG0[0..15]),output:s_forced,output:p0
table=2,priority=20,udp,in_port=pf0hpf,tp_dst=123,ct_state=+trk+new,action=ct(commit,zone=9),output:p0
table=2,priority=20,udp,in_port=p0,tp_src=123,ct_state=+trk+est,action=ct_clear,goto_table:4
table=2,priority=10,ip,ct_state=+trk+est,ct_zone=9,in_port=pf0hpf,action=output:p0
table=2,priority=10,ip,ct_state=+trk+est,ct_zone=9,in_port=p0,action=output:pf0hpf
table=2,priority=5,ip,ct_state=+trk+inv,action=output:s_inv
table=2,priority=1,action=output:s_other
table=4,priority=10,ip,ct_state=-trk,action=output:s_cleared,ct(zone=10,table=5)
table=4,priority=5,action=output:s_other
table=5,priority=10,ip,ct_state=+trk+new,ct_zone=10,action=ct(commit,zone=10),output:pf0hpf
table=5,priority=10,ct_state=+trk+est,ct_zone=10,action=output:s_zone10_est,output:pf0hpf
table=5,priority=5,action=output:s_other
"""


V6_HOST, V6_REMOTE, V6_SNAT = "fd00:2::1", "fd00:1::2", "fd00:1::16"


def ipv6_snat_traffic() -> Traffic:
    t = Traffic()
    hm, rm = HOST[0], REMOTE[0]
    c = Tcp(t, "tcp6", HOSTPORT, (hm, V6_HOST, 48000), UPLINK, (rm, V6_REMOTE, 443), back=(V6_SNAT, 48000),
            v6=True).handshake()
    c.up(100)
    c.down(200)
    c.ack_c()
    c.fin_close()
    udp(t, HOSTPORT, (hm, V6_HOST, 48001), (rm, V6_REMOTE, 53), 30, "UDP6 query")
    udp(t, UPLINK, (rm, V6_REMOTE, 53), (hm, V6_HOST, 48001), 60, "UDP6 reply", dst_ip=V6_SNAT)
    udp(t, HOSTPORT, (hm, V6_HOST, 48001), (rm, V6_REMOTE, 53), 30, "UDP6 query 2")
    t.add(HOSTPORT, Ether(src=hm, dst=rm) / IPv6(src=V6_HOST, dst=V6_REMOTE) / ICMPv6EchoRequest(id=0x66, seq=1,
          data=bytes(range(16))), "ICMPv6 echo request (SNAT)")
    t.add(UPLINK, Ether(src=rm, dst=hm) / IPv6(src=V6_REMOTE, dst=V6_SNAT) / ICMPv6EchoReply(id=0x66, seq=1,
          data=bytes(range(16))), "ICMPv6 echo reply (un-SNAT)")
    udp(t, HOSTPORT, (hm, V6_HOST, 48002), (rm, V6_REMOTE, 9999), 8, "UDP6 to a closed port")
    q = IPv6(bytes(IPv6(src=V6_SNAT, dst=V6_REMOTE) / UDP(sport=48002, dport=9999) /
                   Raw(bytes((i * 5 + 2) & 0xFF for i in range(8)))))
    t.add(UPLINK, Ether(src=rm, dst=hm) / IPv6(src=V6_REMOTE, dst=V6_SNAT) / ICMPv6DestUnreach(code=4) / bytes(q),
          "ICMPv6 port unreachable quoting the SNATed datagram (rel+rpl)")
    c2 = Tcp(t, "tcp6-in", UPLINK, (rm, V6_REMOTE, 48100), HOSTPORT, (hm, V6_SNAT, 22), v6=True)
    c2.syn()  # inbound to the SNAT address: new from the uplink
    return t


IPV6_SNAT_FLOWS = """\
table=0,ipv6,ct_state=-trk,action=ct(table=1,nat)
table=1,priority=10,ipv6,in_port=pf0hpf,ct_state=+trk+new,action=ct(commit,nat(src=fd00:1::16)),output:p0
table=1,priority=10,ipv6,in_port=pf0hpf,ct_state=+trk+est,action=output:p0
table=1,priority=10,ipv6,in_port=p0,ct_state=+trk+est,action=output:pf0hpf
table=1,priority=10,ipv6,in_port=p0,ct_state=+trk+rel,action=output:s_rel_in
table=1,priority=5,ipv6,ct_state=+trk+new,action=output:s_new_other
table=1,priority=5,ipv6,ct_state=+trk+inv,action=output:s_inv
"""


def fragments(pkt: object, sizes: list[int]) -> list[object]:
    """Split an IPv4 packet's payload into fragments of the given payload sizes (multiples of 8
    except the last); the rest goes into the last fragment."""
    ip = IP(bytes(pkt[IP]))  # type: ignore[index]
    payload = bytes(ip.payload)
    out, off = [], 0
    for i, n in enumerate([*sizes, len(payload)]):
        chunk = payload[off: off + n] if i < len(sizes) else payload[off:]
        if not chunk:
            break
        last = off + len(chunk) >= len(payload)
        f = IP(src=ip.src, dst=ip.dst, id=ip.id, ttl=ip.ttl, proto=ip.proto, flags=0 if last else "MF",
               frag=off // 8) / Raw(chunk)
        out.append(Ether(src=pkt.src, dst=pkt.dst) / f)  # type: ignore[attr-defined]
        off += len(chunk)
    return out


def frag_traffic() -> Traffic:
    t = Traffic()
    h = (HOST[0], HOST[1])
    body = bytes((i * 13 + 5) & 0xFF for i in range(2900))
    req = Ether(src=HOST[0], dst=REMOTE[0]) / IP(src=h[1], dst=REMOTE[1], id=0x101) / UDP(sport=49000, dport=5000) / Raw(body)
    for i, f in enumerate(fragments(req, [1480])):
        t.add(HOSTPORT, f, f"UDP 2900 B request, fragment {i} (in order)")
    rep = Ether(src=REMOTE[0], dst=HOST[0]) / IP(src=REMOTE[1], dst=h[1], id=0x201) / UDP(sport=5000, dport=49000) / Raw(body)
    frs = fragments(rep, [1480])
    for i in (1, 0):
        t.add(UPLINK, frs[i], f"UDP 2900 B reply, fragment {i} (out of order)")
    req2 = Ether(src=HOST[0], dst=REMOTE[0]) / IP(src=h[1], dst=REMOTE[1], id=0x102) / UDP(sport=49000, dport=5000) / Raw(body + body[:1000])
    for i, f in enumerate(fragments(req2, [1480, 1480])):
        t.add(HOSTPORT, f, f"UDP 3900 B request, fragment {i} of 3")
    udp(t, UPLINK, (*REMOTE, 5000), (*h, 49000), 100, "UDP small reply (unfragmented)")
    # a first fragment whose rest never arrives: held by reassembly
    lone = Ether(src=HOST[0], dst=REMOTE[0]) / IP(src=h[1], dst=REMOTE[1], id=0x103) / UDP(sport=49001, dport=5001) / Raw(body)
    t.add(HOSTPORT, fragments(lone, [1480])[0], "lone first fragment (rest never arrives)")
    # fragmented ICMP echo request and its (unfragmented) reply
    er = Ether(src=HOST[0], dst=REMOTE[0]) / IP(src=h[1], dst=REMOTE[1], id=0x104) / ICMP(type=8, id=0x44, seq=1) / Raw(body[:2000])
    for i, f in enumerate(fragments(er, [1480])):
        t.add(HOSTPORT, f, f"ICMP echo 2000 B, fragment {i}")
    ping(t, UPLINK, REMOTE, h, 0x44, 1, reply=True)
    return t


def nat_flags_traffic() -> Traffic:
    t = Traffic()
    h = (HOST[0], HOST[1])
    # UDP: a one-port range with `random` is deterministic; two destinations share the port
    udp(t, HOSTPORT, (*h, 50000), (*REMOTE, 53), 20, "UDP 50000 -> :53, SNAT to 1.1.1.20:5000 (random, 1 port)")
    udp(t, UPLINK, (*REMOTE, 53), (*h, 5000), 30, "UDP reply to 1.1.1.20:5000", dst_ip="1.1.1.20")
    udp(t, HOSTPORT, (*h, 50001), (*REMOTE, 54), 20, "UDP 50001 -> :54 (other destination: port 5000 again)")
    udp(t, UPLINK, (*REMOTE, 54), (*h, 5000), 30, "UDP reply from :54 to 1.1.1.20:5000", dst_ip="1.1.1.20")
    udp(t, HOSTPORT, (*h, 50000), (*REMOTE, 53), 20, "UDP 50000 again (established, SNATed)")
    # ICMP with `hash` to a single address: the echo id may be kept
    ping(t, HOSTPORT, h, REMOTE, 0x55, 1, reply=False)
    ping(t, UPLINK, REMOTE, h, 0x55, 1, reply=True, dst_ip="1.1.1.21")
    # TCP: address and port range with `persistent`; which pair OVS picks is random per process,
    # so the SYN leaves on its own port and nobody answers
    Tcp(t, "tcp-persistent", HOSTPORT, (*h, 50002), UPLINK, (*REMOTE, 443)).syn()
    Tcp(t, "tcp-persistent-2", HOSTPORT, (*h, 50003), UPLINK, (*REMOTE, 443)).syn()
    return t


NAT_FLAGS_FLOWS = """\
table=0,arp,action=drop
table=0,ip,ct_state=-trk,action=ct(table=1,nat)
table=1,priority=10,udp,in_port=pf0hpf,ct_state=+trk+new,action=ct(commit,nat(src=1.1.1.20:5000-5000,random)),output:p0
table=1,priority=10,icmp,in_port=pf0hpf,ct_state=+trk+new,action=ct(commit,nat(src=1.1.1.21,hash)),output:p0
table=1,priority=10,tcp,in_port=pf0hpf,ct_state=+trk+new,action=ct(commit,nat(src=1.1.1.16-1.1.1.17:40000-40001,persistent)),output:s_tcp
table=1,priority=10,ip,in_port=pf0hpf,ct_state=+trk+est,action=output:p0
table=1,priority=10,ip,in_port=p0,ct_state=+trk+est,action=output:pf0hpf
table=1,priority=5,ip,ct_state=+trk+new,action=output:s_new_other
table=1,priority=5,ip,ct_state=+trk+inv,action=output:s_inv
"""


# --------------------------------------------------------------------------- scenario table

@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    flows: str
    traffic: Callable[[], Traffic]
    extra_ports: tuple[str, ...] = ()
    # when OVS itself is not deterministic: why, and which expected files still are
    nondeterministic: str = ""
    stable_files: tuple[str, ...] = ()


def _extra(*names: str) -> tuple[str, ...]:
    return names


SCENARIOS = [
    Scenario("ex1_normal_mix", "Vendor example 1 verbatim (ct + NORMAL) with iperf-like TCP/UDP, ping, RoCE.",
             EX1_NORMAL, lambda: mix_traffic(None)),
    Scenario("ex1_explicit_mix", "Vendor example 1 with explicit outputs, same traffic.",
             EX1_EXPLICIT, lambda: mix_traffic(None)),
    Scenario("ex1_roce_after_ct", "Example 1 with the RoCE flow added after the ct flow: RoCE is tracked.",
             EX1_ROCE_LAST, lambda: mix_traffic(None)),
    Scenario("ex2_snat_normal_mix", "Vendor example 2 verbatim (+arp normal): SNAT to 1.1.1.16, mixed traffic.",
             EX2_NORMAL, lambda: mix_traffic(SNAT_IP)),
    Scenario("ex2_snat_explicit_mix", "Vendor example 2 with explicit outputs, mixed traffic.",
             EX2_EXPLICIT, lambda: mix_traffic(SNAT_IP)),
    Scenario("dnat", "DNAT VIP 1.1.1.100:80 -> 10.0.0.5:8080 with ct(commit,nat(dst=...)); reverse NAT of replies.",
             DNAT_FLOWS, dnat_traffic, _extra("s_new_other", "s_inv")),
    Scenario("snat_port_range", "SNAT to 1.1.1.16:40000-40001 from three hosts on the same sport: clash and exhaustion.",
             SNAT_RANGE_FLOWS, snat_range_traffic, _extra("s_new_other", "s_inv"),
             nondeterministic="OVS 3.1 starts the search for a free port at a hash of the tuple with a "
             "random per-process basis, so which connection gets 40000 and which 40001 (and the UDP "
             "port) varies between runs; the set {40000, 40001}, the exhaustion of h3 and every "
             "per-packet verdict are stable.",
             stable_files=("trace.tsv", "dump-flows.norm.txt", "dpctl-flows.norm.txt", "s_inv.pcap",
                           "s_new_other.pcap")),
    Scenario("zones_mark", "Zones 5/7/0 and ct_mark set by exec() at commit, matched in a later table.",
             ZONES_FLOWS, zones_traffic, _extra("s_zone7", "s_nomark", "s_other")),
    Scenario("multi_table", "goto_table, resubmit(,N) and actions after resubmit around ct(table=2).",
             MULTI_TABLE_FLOWS, multi_table_traffic, _extra("s_mirror", "s_denied")),
    Scenario("tcp_teardown", "ct_state probe: FIN close, RST from server/client, refused SYN, half-close, "
             "SYN reusing a TIME_WAIT tuple.", PROBE_FLOWS, teardown_traffic, tuple(PROBE_PORTS)),
    Scenario("udp_icmp", "ct_state probe: UDP request/retry/reply, ICMP errors (related), echo, unsolicited.",
             PROBE_FLOWS, udp_icmp_traffic, tuple(PROBE_PORTS)),
    Scenario("icmp_error_nat", "ICMP errors (port unreachable, frag needed, time exceeded) related to SNATed and "
             "DNATed UDP/TCP/ICMP connections in both directions: outer and quoted headers translated.",
             ICMP_NAT_FLOWS, icmp_nat_traffic, _extra("s_new_other", "s_inv", "s_rel_in", "s_rel_out")),
    Scenario("tcp_window", "ct_state probe, TCP window tracking: retransmitted SYN/SYN-ACK, data beyond and below "
             "the window, ACK of unsent data, bad and inexact RSTs, reopen after an RST, bad SYN-ACK.",
             PROBE_FLOWS, tcp_window_traffic, tuple(PROBE_PORTS)),
    Scenario("mark_label", "ct_mark/ct_label set with masks by exec() at commit, re-marked by a later commit, "
             "matched (masked) on later packets; UDP with several packets each way.",
             MARK_LABEL_FLOWS, mark_label_traffic,
             _extra("s_remark", "s_mark99", "s_label_lo", "s_label_hi", "s_nomark", "s_other")),
    Scenario("zone_reg_force_clear", "ct(zone=NXM_NX_REG0[0..15]), ct(commit,force) on the reply direction, "
             "ct_clear followed by ct() in a second zone.",
             ZONE_REG_FLOWS, zone_reg_traffic,
             _extra("s_forced", "s_cleared", "s_zone10_est", "s_inv", "s_other")),
    Scenario("ipv6_snat", "IPv6 TCP/UDP/ICMPv6 with SNAT to fd00:1::16, ICMPv6 error related to the SNATed UDP.",
             IPV6_SNAT_FLOWS, ipv6_snat_traffic, _extra("s_new_other", "s_inv", "s_rel_in")),
    Scenario("ipv4_frag", "ct_state probe with IPv4 fragments: in order, out of order, 3 fragments, a lone first "
             "fragment, a fragmented ICMP echo.", PROBE_FLOWS, frag_traffic, tuple(PROBE_PORTS)),
    Scenario("nat_flags", "NAT flags: a one-port range with random (UDP, two destinations share the port), "
             "hash (ICMP), an address+port range with persistent (TCP).",
             NAT_FLAGS_FLOWS, nat_flags_traffic, _extra("s_new_other", "s_inv", "s_tcp"),
             nondeterministic="OVS 3.1 picks the address and port of a range from a hash with a random "
             "per-process basis: the TCP SYNs' source (s_tcp.pcap) and their conntrack entries vary "
             "between runs; everything else is stable.",
             stable_files=("trace.tsv", "dump-flows.norm.txt", "dpctl-flows.norm.txt", "p0.pcap", "pf0hpf.pcap",
                           "s_inv.pcap", "s_new_other.pcap")),
]
_EXTRA_OFPORT = {name: 10 + i for i, name in enumerate(
    ["s_new_other", "s_inv", "s_zone7", "s_nomark", "s_other", "s_mirror", "s_denied",
     "s_rel_in", "s_rel_out", "s_remark", "s_mark99", "s_label_lo", "s_label_hi", "s_forced", "s_cleared",
     "s_zone10_est", "s_tcp"])}


def scenario_ports(sc: Scenario) -> dict[str, int]:
    ports = dict(PORTS)
    for name in sc.extra_ports:
        ports[name] = PROBE_PORTS[name] if sc.flows is PROBE_FLOWS else _EXTRA_OFPORT[name]
    return ports


def write_scenario(sc: Scenario, root: Path) -> Path:
    case_dir = root / sc.name
    if (case_dir / "in").exists():
        shutil.rmtree(case_dir / "in")
    case_dir.mkdir(parents=True, exist_ok=True)
    ports = scenario_ports(sc)
    case: dict[str, object] = {"bridge": "br0", "ports": ports, "fail_mode": "secure", "flows": "flows.txt",
                               "description": sc.description}
    if sc.nondeterministic:
        case["nondeterministic"] = sc.nondeterministic
        case["stable_files"] = list(sc.stable_files)
    (case_dir / "case.json").write_text(json.dumps(case, indent=1) + "\n")
    (case_dir / "flows.txt").write_text(sc.flows)
    sc.traffic().write(case_dir, ports)
    return case_dir


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Generate differential scenarios (and record real OVS).")
    ap.add_argument("names", nargs="*", help="scenarios to write (default: all)")
    ap.add_argument("--expected", action="store_true", help="also run real OVS and rewrite */expected/")
    ap.add_argument("--root", default=str(HERE), help="output root (default: this directory)")
    args = ap.parse_args(argv)
    known = {sc.name: sc for sc in SCENARIOS}
    unknown = [n for n in args.names if n not in known]
    if unknown:
        print(f"error: unknown scenario(s) {', '.join(unknown)}; known: {', '.join(known)}", file=sys.stderr)
        return 2
    chosen = [known[n] for n in args.names] or SCENARIOS
    if args.expected:
        import ovs_harness
        reason = ovs_harness.ovs_available()
        if reason:
            print(f"error: cannot record expected outputs: {reason}", file=sys.stderr)
            return 2
    for sc in chosen:
        case_dir = write_scenario(sc, Path(args.root))
        line = f"{sc.name}: inputs written"
        if args.expected:
            shutil.rmtree(case_dir / "expected", ignore_errors=True)
            try:
                res = ovs_harness.run_case(case_dir)
            except ovs_harness.OracleError as exc:
                print(f"error: {sc.name}: {exc}", file=sys.stderr)
                return 1
            line += f", OVS: {res.summary['input_packets']} packets, tx {res.summary['tx']}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
