"""Frame templates: build a frame once with ``packet.build``, then stamp fields fast.

Theory of operation
-------------------
A template is one correct frame (checksums included) with the variable fields
at zero.  ``TcpTemplate.make(seq, ack, flags)`` copies it, writes the 10 bytes
seq/ack/offset-flags and patches the TCP checksum with one RFC 1624 update
(``checksum.update`` over the 10-byte field as one integer): no per-packet
header building and no full checksum pass.  The IPv4 header never changes
within a template, so its checksum is fixed.
"""

from __future__ import annotations

from ..packet import build
from ..packet.checksum import update

_M32 = 0xFFFFFFFF


class TcpTemplate:
    """An Ethernet/IPv4/TCP frame of one direction of one connection with a fixed payload."""

    __slots__ = ("frame", "off", "csum_off", "csum", "doff")

    def __init__(self, src, dst, sport: int, dport: int, payload: bytes, *, src_mac, dst_mac,
                 options: bytes = b"", win: int = 64240) -> None:
        fr = build.ipv4_tcp(src, dst, sport, dport, 0, 0, 0, payload, win=win, options=options,
                            src_mac=src_mac, dst_mac=dst_mac)
        self.frame = fr
        self.off = 14 + 20 + 4  # seq
        self.csum_off = 14 + 20 + 16
        self.csum = int.from_bytes(fr[self.csum_off:self.csum_off + 2], "big")
        self.doff = fr[14 + 20 + 12] & 0xF0

    def make(self, seq: int, ack: int, flags: int) -> bytes:
        """The frame with ``seq``, ``ack`` and ``flags`` stamped in."""
        b = bytearray(self.frame)
        o = self.off
        new = ((seq & _M32) << 48) | ((ack & _M32) << 16) | ((self.doff | (flags >> 8)) << 8) | (flags & 0xFF)
        old = self.doff << 8
        b[o:o + 10] = new.to_bytes(10, "big")
        c = update(self.csum, old, new)
        b[self.csum_off] = c >> 8
        b[self.csum_off + 1] = c & 0xFF
        return bytes(b)
