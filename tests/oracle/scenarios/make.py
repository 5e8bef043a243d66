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
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6  # type: ignore[import-untyped]

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
                 back: tuple[str, int] | None = None, isn: tuple[int, int] = (1000, 5000)):
        self.t, self.name, self.cport, self.sport_ = t, name, cport, sport_
        self.client, self.server = client, server
        self.to = to or (server[1], server[2])
        self.back = back or (client[1], client[2])
        self.cseq, self.sseq = isn

    def _c(self, flags: str, payload: int = 0, note: str = "", seq_adj: int = 0) -> None:
        pkt = (Ether(src=self.client[0], dst=self.server[0]) /
               IP(src=self.client[1], dst=self.to[0]) /
               TCP(sport=self.client[2], dport=self.to[1], flags=flags, seq=self.cseq + seq_adj,
                   ack=self.sseq if "A" in flags else 0, window=65535))
        if payload:
            pkt = pkt / Raw(bytes((i * 7 + 1) & 0xFF for i in range(payload)))
        self.t.add(self.cport, pkt, f"{self.name} {note or flags} (client)")
        self.cseq += payload + (1 if ("S" in flags or "F" in flags) else 0)

    def _s(self, flags: str, payload: int = 0, note: str = "") -> None:
        pkt = (Ether(src=self.server[0], dst=self.client[0]) /
               IP(src=self.server[1], dst=self.back[0]) /
               TCP(sport=self.server[2], dport=self.back[1], flags=flags, seq=self.sseq,
                   ack=self.cseq if "A" in flags else 0, window=65535))
        if payload:
            pkt = pkt / Raw(bytes((i * 11 + 3) & 0xFF for i in range(payload)))
        self.t.add(self.sport_, pkt, f"{self.name} {note or flags} (server)")
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
    pkt = (Ether(src=src[0], dst=dst[0]) / IP(src=src[1], dst=dst_ip or dst[1]) /
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
]
_EXTRA_OFPORT = {name: 10 + i for i, name in enumerate(
    ["s_new_other", "s_inv", "s_zone7", "s_nomark", "s_other", "s_mirror", "s_denied"])}


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
