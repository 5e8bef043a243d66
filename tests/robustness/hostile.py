"""Hostile-packet helpers shared by the robustness tests, the fuzzers and bench_flood.

Theory of operation
-------------------
``Guard`` wraps the integration ``Lab`` (bridge ctBr, p0 uplink / pf0hpf host,
the vendor example-2 SNAT flows, hw-offload on) and checks one invariant per
frame: ``receive`` returns normally, and the frame is either transmitted or
counted in exactly one drop counter (``Datapath.drops``).  ``alive()`` proves
that a protected, established, ASSURED and offloaded connection still passes
both ways with its SNAT after a hostile batch.

The frame makers build the hostile kinds the robustness suite sends:
truncations at every offset, bad IHL, bad total length, bad TCP data offset,
all 512 TCP flag combinations, ICMP errors quoting truncated or unrelated
packets, IPv4/IPv6 fragments, IPv6 extension-header chains and VLAN stacks.
"""

from __future__ import annotations

import struct

from pipeline import EXAMPLE2, HOST_MAC, REMOTE_MAC, Lab

from ctswitch.packet import build, codec
from ctswitch.packet.checksum import csum16

# The vendor flows plus what a real deployment adds: IPv6 and RELATED (ICMP errors).
EXTRA_FLOWS = [
    "table=1,ip,ct_state=+trk+rel,action=normal",
    "table=1,ipv6,ct_state=+trk+rel,action=normal",
    "table=0,ipv6,ct_state=-trk,action=ct(table=1)",
    "table=1,in_port=pf0hpf,ipv6,ct_state=+trk+new,action=ct(commit),p0",
    "table=1,ipv6,ct_state=+trk+est,action=normal",
]
PROTECTED_SPORT = 40000
H6 = "2001:db8::1"
R6 = "2001:db8::2"


class Guard:
    """A Lab whose every send is checked: forwarded, or counted as exactly one drop."""

    def __init__(self, flows=EXAMPLE2 + EXTRA_FLOWS, **params) -> None:
        self.lab = Lab(flows=flows, **params)
        self.hw = params.get("hw_offload", True)
        self.sw = self.lab.sw
        self.dp = self.sw.datapath
        self.tracker = self.sw.tracker
        self.sent = 0
        self.seq, self.ack = self.lab.handshake(sport=PROTECTED_SPORT)
        self.alive(fast=False)  # the first reply packet takes the slow path and caches its decision
        self.alive()

    def drops(self) -> int:
        return sum(self.dp.drops.values())

    def send(self, port: str, frame: bytes) -> list[tuple[str, bytes]]:
        """Forwarded, counted as exactly one drop, or (an IPv4 fragment through ct()) kept
        for reassembly: exactly one of the three."""
        before = self.drops()
        queued = self.dp.stats["frag_queued"]
        out = self.lab.send(port, bytes(frame))
        self.sent += 1
        after = self.drops()
        kept = self.dp.stats["frag_queued"] - queued
        if out:
            assert (after, kept) == (before, 0), (frame.hex(), self.dp.drops)
        else:
            assert after + kept == before + 1, (frame.hex(), self.dp.drops)
        return out

    def queued(self, port: str, frame: bytes) -> bool:
        """Sends ``frame``; True when it was kept for reassembly (nothing out, no drop)."""
        n = self.dp.stats["frag_queued"]
        return self.send(port, frame) == [] and self.dp.stats["frag_queued"] == n + 1

    def drop_reason(self, port: str, frame: bytes) -> str | None:
        """Sends ``frame``; the drop counter it incremented, or None when it was forwarded."""
        snap = dict(self.dp.drops)
        out = self.send(port, frame)
        if out:
            return None
        (reason,) = [k for k, v in self.dp.drops.items() if v != snap.get(k, 0)]
        return reason

    def relearn(self) -> None:
        """Re-teaches NORMAL where both MACs are (a hostile frame may have moved one: MAC spoofing)."""
        self.lab.send("pf0hpf", build.arp(1, HOST_MAC, "2.2.2.1", "00:00:00:00:00:00", "1.1.1.2"))
        self.lab.send("p0", build.arp(2, REMOTE_MAC, "1.1.1.2", HOST_MAC, "2.2.2.1"))

    def alive(self, fast: bool = True) -> None:
        """The protected connection passes both ways, SNATed, on the fast path."""
        check_fast = fast and self.hw
        lab = self.lab
        fast = self.dp.stats["fast_hw"] + self.dp.stats["fast_sw"]
        out = self.send("pf0hpf", lab.host_tcp("PA", PROTECTED_SPORT, payload=b"ping", seq=self.seq, ack=self.ack))
        assert len(out) == 1 and out[0][0] == "p0", out
        p = codec.parse(out[0][1])
        assert (p.nw_src, p.tp_src) == (0x01010110, PROTECTED_SPORT)
        self.seq += 4
        out = self.send("p0", lab.remote_tcp("PA", PROTECTED_SPORT, payload=b"pong", seq=self.ack, ack=self.seq))
        assert len(out) == 1 and out[0][0] == "pf0hpf", out
        p = codec.parse(out[0][1])
        assert (p.nw_dst, p.tp_dst) == (0x02020201, PROTECTED_SPORT)
        self.ack += 4
        if check_fast:
            assert self.dp.stats["fast_hw"] + self.dp.stats["fast_sw"] == fast + 2


# --- frame makers -------------------------------------------------------------------------

def host_syn(sport: int = 1234, **kw) -> bytes:
    return build.ipv4_tcp("2.2.2.1", "1.1.1.2", sport, 80, "S", 1, 0, src_mac=HOST_MAC, dst_mac=REMOTE_MAC, **kw)


def host_udp(sport: int = 1234, payload: bytes = b"data") -> bytes:
    return build.ipv4_udp("2.2.2.1", "1.1.1.2", sport, 53, payload, src_mac=HOST_MAC, dst_mac=REMOTE_MAC)


def host_v6_syn(sport: int = 1234) -> bytes:
    return build.ipv6_tcp(H6, R6, sport, 80, "S", 1, src_mac=HOST_MAC, dst_mac=REMOTE_MAC)


def ip_fix(frame: bytes | bytearray, l3: int = 14) -> bytes:
    """Recomputes the IPv4 header checksum of ``frame`` (after a header field was patched)."""
    b = bytearray(frame)
    ihl = (b[l3] & 15) * 4
    if ihl >= 20 and l3 + ihl <= len(b):
        b[l3 + 10:l3 + 12] = b"\0\0"
        b[l3 + 10:l3 + 12] = struct.pack("!H", csum16(bytes(b[l3:l3 + ihl])))
    return bytes(b)


def with_ihl(frame: bytes, ihl: int) -> bytes:
    b = bytearray(frame)
    b[14] = 0x40 | ihl
    return ip_fix(b)


def with_total_length(frame: bytes, tot: int) -> bytes:
    b = bytearray(frame)
    b[16:18] = struct.pack("!H", tot)
    return ip_fix(b)


def with_tcp_doff(frame: bytes, doff: int, l4: int = 34) -> bytes:
    b = bytearray(frame)
    b[l4 + 12] = (doff << 4) | (b[l4 + 12] & 0x0F)
    return bytes(b)


def v4_fragment(proto: int, l4_bytes: bytes, offset: int, more: bool, ident: int = 7,
                src: str = "2.2.2.1", dst: str = "1.1.1.2") -> bytes:
    """An IPv4 fragment carrying ``l4_bytes`` at byte ``offset`` of the datagram."""
    return build.eth(REMOTE_MAC, HOST_MAC, 0x0800,
                     build.ipv4(src, dst, proto, l4_bytes, mf=more, frag_off=offset, ident=ident))


def v6_frag_header(nh: int, offset: int, more: bool, ident: int = 7) -> bytes:
    return struct.pack("!BBHI", nh, 0, offset | int(more), ident)


def v6_ext(nh: int, length8: int = 0) -> bytes:
    """A hop-by-hop / routing / destination-options header of (length8 + 1) * 8 bytes (PadN)."""
    body = bytes((1, 4 + 8 * length8)) + bytes(4 + 8 * length8)
    return bytes((nh, length8)) + body


def v6_frame(nh: int, payload: bytes) -> bytes:
    return build.eth(REMOTE_MAC, HOST_MAC, 0x86DD, build.ipv6(H6, R6, nh, payload))


def vlan_stack(frame: bytes, tags: list[tuple[int, int]]) -> bytes:
    """``frame`` with (tpid, tci) tags inserted after the MAC addresses, outermost first."""
    return frame[:12] + b"".join(struct.pack("!HH", t, c) for t, c in tags) + frame[12:]
