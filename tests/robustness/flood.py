"""Flood drivers shared by tests/robustness/test_floods.py (small) and bench/bench_flood.py (big).

Theory of operation
-------------------
``syn(i)`` is the i-th SYN of a flood of distinct connections from the host
side (source 10.a.b.c:port, destination 1.1.x.y:80 so that the single SNAT
address never runs out of ports: the reply tuples differ by destination).
``Flood`` sends frames through ``Datapath.receive`` directly (no per-packet
invariant checks: speed), advancing the switch clock by ``dt_us`` per packet,
running the timers once per simulated millisecond, and tallies outputs.
"""

from __future__ import annotations

import struct

from ctswitch.packet import build
from ctswitch.packet.checksum import csum16

HOST_MAC = "02:00:00:00:02:01"
REMOTE_MAC = "02:00:00:00:01:02"
_TEMPLATE = build.ipv4_tcp("10.0.0.0", "1.1.0.0", 1024, 80, "S", 1, 0, src_mac=HOST_MAC, dst_mac=REMOTE_MAC)


def syn(i: int, dport: int = 80) -> bytes:
    """The i-th distinct SYN (correct IPv4 and TCP checksums)."""
    src = 0x0A000000 + i // 50000
    dst = 0x01010000 + (i // 50000) % 65536 if dport == 80 else 0x01010102
    sport = 1024 + i % 50000
    b = bytearray(_TEMPLATE)
    struct.pack_into("!II", b, 26, src, dst)
    struct.pack_into("!HH", b, 34, sport, dport)
    b[24:26] = b"\0\0"
    b[24:26] = struct.pack("!H", csum16(bytes(b[14:34])))
    b[50:52] = b"\0\0"
    pseudo = bytes(b[26:34]) + struct.pack("!HH", 6, 20)
    b[50:52] = struct.pack("!H", csum16(pseudo + bytes(b[34:54])))
    return bytes(b)


class Flood:
    """Sends frames on one bridge port of a Lab's switch, fast."""

    def __init__(self, lab, port: str = "pf0hpf", dt_us: int = 10) -> None:
        self.lab = lab
        self.sw = lab.sw
        self.br = lab.br
        self.ofport = lab.br.ports[port].ofport
        self.dt_us = dt_us
        self.us = lab.sw.now * 1000
        self.sent = 0
        self.forwarded = 0

    def send(self, frame: bytes) -> int:
        sw = self.sw
        self.us += self.dt_us
        now = self.us // 1000
        if now > sw.now:
            sw.now = now
            sw.datapath.tick(now)
        out = sw.datapath.receive(self.br, self.ofport, frame, sw.now)
        self.sent += 1
        self.forwarded += len(out)
        return len(out)

    def syn_flood(self, n: int, start: int = 0, dport: int = 80) -> None:
        for i in range(start, start + n):
            self.send(syn(i, dport))

    def advance(self, ms: int) -> None:
        """Moves the switch clock (and the lab's) by ``ms`` and runs the timers each second."""
        sw = self.sw
        end = sw.now + ms
        while sw.now < end:
            sw.now = min(end, sw.now + 1000)
            sw.datapath.tick(sw.now)
        self.us = sw.now * 1000
        self.lab.t = max(self.lab.t, sw.now)
