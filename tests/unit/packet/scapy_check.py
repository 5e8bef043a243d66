"""Test helper: do scapy's recomputed checksums agree with a frame's?"""

from __future__ import annotations

from scapy.all import UDP, Ether  # type: ignore
from scapy.packet import NoPayload  # type: ignore
from scapy.utils import checksum  # type: ignore


def bad_checksums(frame: bytes) -> list[str]:
    """Names of the layers whose checksum differs from scapy's recomputation (outer headers only)."""
    p = Ether(frame)
    bad = []
    layer = p
    while not isinstance(layer, NoPayload):
        name = type(layer).__name__
        if name.endswith("error") or name.endswith("error6"):
            break
        for fld in ("chksum", "cksum"):
            if fld in layer.fields and not (isinstance(layer, UDP) and layer.chksum == 0):
                q = Ether(frame)
                ql = q.getlayer(type(layer), nb=1)
                setattr(ql, fld, None)
                want = getattr(Ether(bytes(q)).getlayer(type(layer), nb=1), fld)
                if want != getattr(layer, fld):
                    bad.append(name)
        layer = layer.payload
    return bad


def ipv4_header_ok(data: bytes) -> bool:
    """True when the IPv4 header at the start of ``data`` has a correct checksum."""
    ihl = (data[0] & 15) * 4
    return checksum(data[:ihl]) == 0
