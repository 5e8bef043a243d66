"""A tiny driver for end-to-end tests: a Switch with the vendor topology, frames in, frames out."""

from __future__ import annotations

from ctswitch.control import ofctl, vendor
from ctswitch.datapath.switch import Switch
from ctswitch.packet import build

HOST_MAC = "02:00:00:00:02:01"
REMOTE_MAC = "02:00:00:00:01:02"

EXAMPLE2 = list(vendor.EXAMPLE2)
EXAMPLE1 = list(vendor.with_roce_bypass(vendor.EXAMPLE1))  # example 1 with the RoCE bypass line


class Lab:
    """ctBr with p0 (uplink, 1.1.1.2 behind it) and pf0hpf (host 2.2.2.1)."""

    def __init__(self, flows=EXAMPLE2, hw_offload=True, arp=True, **params):
        self.sw = Switch()
        self.br = self.sw.add_bridge("ctBr")
        self.p0 = self.br.add_port("p0").ofport
        self.pf = self.br.add_port("pf0hpf").ofport
        if hw_offload:
            self.sw.params.set("other_config:hw-offload", True)
        for k, v in params.items():
            self.sw.params.set(k, v)
        for f in flows:
            r = ofctl.run(self.sw, ["add-flow", "ctBr", f])
            assert r.code == 0, r.err
        self.t = 0
        if arp:
            # The ARP exchange teaches NORMAL where both MACs are, as in the oracle cases.
            self.send("pf0hpf", build.arp(1, HOST_MAC, "2.2.2.1", "00:00:00:00:00:00", "1.1.1.2"))
            self.send("p0", build.arp(2, REMOTE_MAC, "1.1.1.2", HOST_MAC, "2.2.2.1"))

    def at(self, ms: int) -> Lab:
        self.t = ms
        return self

    def send(self, port: str, frame: bytes, dt: int = 1) -> list[tuple[str, bytes]]:
        self.t += dt
        sw = self.sw
        if self.t > sw.now:
            sw.now = self.t
        sw.datapath.tick(sw.now)
        out = sw.datapath.receive(self.br, self.br.ports[port].ofport, frame, sw.now)
        return [(self.br.name_of(p) if p != 0xFFFE else "ctBr", f) for p, f in out]

    def host_tcp(self, flags, sport=34541, dport=5001, payload=b"", seq=0, ack=0, dst="1.1.1.2"):
        return build.ipv4_tcp("2.2.2.1", dst, sport, dport, flags, seq, ack, payload,
                              src_mac=HOST_MAC, dst_mac=REMOTE_MAC)

    def remote_tcp(self, flags, dport=34541, sport=5001, payload=b"", seq=0, ack=0, dst="1.1.1.16"):
        return build.ipv4_tcp("1.1.1.2", dst, sport, dport, flags, seq, ack, payload,
                              src_mac=REMOTE_MAC, dst_mac=HOST_MAC)

    def handshake(self, sport=34541, dport=5001, nat_dst="1.1.1.16"):
        """SYN, SYN-ACK, ACK with consistent sequence numbers; returns the next (seq, ack)."""
        self.send("pf0hpf", self.host_tcp("S", sport, dport, seq=1000))
        self.send("p0", self.remote_tcp("SA", sport, dport, seq=5000, ack=1001, dst=nat_dst))
        self.send("pf0hpf", self.host_tcp("A", sport, dport, seq=1001, ack=5001))
        return 1001, 5001

    def conntrack(self, *args) -> list[str]:
        from ctswitch.control import conntrack_tool
        r = conntrack_tool.run(self.sw, ["-L", *args])
        return r.out.splitlines()

    def conn(self):
        conns = list(self.sw.tracker.iter_conns())
        assert len(conns) == 1, conns
        return conns[0]
