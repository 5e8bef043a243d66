"""A real ``Switch`` with the vendor SNAT flows, and traffic for it (used by several benchmarks).

Connection ``c``: host 10.x.y.z (``10.0.0.0 + c``) port ``1024 + c % 30000`` to
``8.8.(c // 30000).8``:80 from pf0hpf (port 2), SNATed to 1.1.1.16 (the NAT
keeps the source port, free per remote address); the uplink p0 (port 1) replies.
"""

from __future__ import annotations

from ctswitch.datapath.switch import Switch
from ctswitch.flow.ofctl_syntax import parse_flow, wire_actions
from ctswitch.ofproto.rule import Rule
from ctswitch.packet import build

VENDOR_SNAT_FLOWS = (
    "table=0,arp,action=normal",
    "table=0,ip,ct_state=-trk,action=ct(table=1,nat)",
    "table=1,in_port=pf0hpf,ip,ct_state=+trk+new,action=ct(commit,nat(src=1.1.1.16)),p0",
    "table=1,ip,ct_state=+trk+est,action=normal",
)
H_MAC, R_MAC = "02:00:00:00:02:01", "02:00:00:00:01:02"
SNAT = "1.1.1.16"
P0, PF = 1, 2


def make_switch(hw_offload: bool = True, max_offloaded: int | None = None):
    sw = Switch()
    sw.params.set("other_config:hw-offload", hw_offload)
    if max_offloaded is not None:
        sw.params.set("devlink:ct_max_offloaded_conns", max_offloaded)
    br = sw.add_bridge("br0", "secure")
    br.add_port("p0", 1)
    br.add_port("pf0hpf", 2)
    for r in list(br.iter_rules()):
        br.tables[r.table_id].remove(r)
    for text in VENDOR_SNAT_FLOWS:
        s = parse_flow(text, br.names)
        br.add_rule(Rule(s.table, s.priority, s.match, wire_actions(s.actions)))
    dp = sw.datapath
    # ARP both ways so NORMAL knows both MACs (as in the oracle cases).
    dp.receive(br, PF, build.arp(1, H_MAC, "10.0.0.1", "00:00:00:00:00:00", "10.0.0.254"), 1)
    dp.receive(br, P0, build.arp(2, R_MAC, "10.0.0.254", H_MAC, "10.0.0.1"), 2)
    return sw, br


def ends(c: int):
    host = f"10.{(c >> 16) & 255}.{(c >> 8) & 255}.{c & 255}"
    remote = f"8.8.{c // 30000}.8"
    return host, remote, 1024 + c % 30000


def handshake(c: int):
    """SYN, SYN-ACK, ACK of connection ``c``: [(in_port, frame)]."""
    host, remote, sp = ends(c)
    return [
        (PF, build.ipv4_tcp(host, remote, sp, 80, "S", 1000, 0, src_mac=H_MAC, dst_mac=R_MAC)),
        (P0, build.ipv4_tcp(remote, SNAT, 80, sp, "SA", 5000, 1001, src_mac=R_MAC, dst_mac=H_MAC)),
        (PF, build.ipv4_tcp(host, remote, sp, 80, "A", 1001, 5001, src_mac=H_MAC, dst_mac=R_MAC)),
    ]


def data(c: int, reply: bool, size: int = 64):
    """An established ACK (with padding/payload up to ``size`` bytes) of connection ``c``."""
    host, remote, sp = ends(c)
    pl = bytes(max(0, size - 54))
    if reply:
        return P0, build.ipv4_tcp(remote, SNAT, 80, sp, "A", 5001, 1001, pl, src_mac=R_MAC, dst_mac=H_MAC)
    return PF, build.ipv4_tcp(host, remote, sp, 80, "A", 1001, 5001, pl, src_mac=H_MAC, dst_mac=R_MAC)


def establish(sw, br, n_conns: int, now: int = 1000) -> None:
    """Handshakes plus one reply packet per connection (both directions end up cached)."""
    recv = sw.datapath.receive
    for c in range(n_conns):
        for port, fr in handshake(c):
            recv(br, port, fr, now)
        port, fr = data(c, True)
        recv(br, port, fr, now)


def established_switch(n_conns: int, size: int, n_pkts: int, seed: int = 1, hw_offload: bool = True):
    """A switch with ``n_conns`` established connections and ``n_pkts`` random data frames."""
    import random

    sw, br = make_switch(hw_offload, max_offloaded=max(n_conns, 1))
    establish(sw, br, n_conns)
    rng = random.Random(seed)
    frames = [data(rng.randrange(n_conns), rng.random() < 0.5, size) for _ in range(n_pkts)]
    return sw, br, frames
