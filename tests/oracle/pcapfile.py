"""Classic libpcap files for the oracle harness (no scapy needed).

Theory of operation: a classic pcap file is a 24-byte global header (magic,
version 2.4, thiszone, sigfigs, snaplen, linktype) followed by records of a
16-byte header (seconds, sub-second, captured length, original length) and the
frame bytes.  The magic tells the byte order and whether the sub-second field is
in microseconds (0xa1b2c3d4) or nanoseconds (0xa1b23c4d).  Reading accepts all
four variants; timestamps come back as integer nanoseconds so that merging
several files by time is exact.  Writing always produces the little-endian
microsecond variant with snaplen 65535, the same layout OVS' own tx_pcap
writer and the stored expected files use, so equal packets give equal bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

LINKTYPE_ETHERNET = 1
_MAGIC_USEC = 0xA1B2C3D4
_MAGIC_NSEC = 0xA1B23C4D
# magic bytes as they appear on disk -> (struct byte order, nanosecond resolution)
_VARIANTS = {
    struct.pack("<I", _MAGIC_USEC): ("<", False),
    struct.pack(">I", _MAGIC_USEC): (">", False),
    struct.pack("<I", _MAGIC_NSEC): ("<", True),
    struct.pack(">I", _MAGIC_NSEC): (">", True),
}

Record = tuple[int, bytes]  # (timestamp in ns, frame)


class PcapError(ValueError):
    """A file that is not a classic Ethernet pcap."""


def read_pcap(path: str | Path) -> list[Record]:
    """All records of a classic pcap file as (ts_ns, frame); a truncated tail is ignored."""
    data = Path(path).read_bytes()
    if len(data) < 24:
        return []
    variant = _VARIANTS.get(data[:4])
    if variant is None:
        raise PcapError(f"{path}: not a classic pcap file (pcapng is not supported)")
    order, nano = variant
    linktype = struct.unpack(order + "I", data[20:24])[0]
    if linktype != LINKTYPE_ETHERNET:
        raise PcapError(f"{path}: linktype {linktype}, only Ethernet (1) is supported")
    rec = struct.Struct(order + "IIII")
    scale = 1 if nano else 1000
    out: list[Record] = []
    pos = 24
    while pos + 16 <= len(data):
        sec, sub, incl, _orig = rec.unpack_from(data, pos)
        pos += 16
        if pos + incl > len(data):
            break
        out.append((sec * 1_000_000_000 + sub * scale, data[pos:pos + incl]))
        pos += incl
    return out


def pcap_bytes(records: Iterable[Record], snaplen: int = 65535) -> bytes:
    """Encode records as a little-endian microsecond pcap."""
    parts = [struct.pack("<IHHiIII", _MAGIC_USEC, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET)]
    rec = struct.Struct("<IIII")
    for ts, frame in records:
        sec, ns = divmod(int(ts), 1_000_000_000)
        parts.append(rec.pack(sec, ns // 1000, len(frame), len(frame)))
        parts.append(frame)
    return b"".join(parts)


def write_pcap(path: str | Path, records: Iterable[Record]) -> None:
    Path(path).write_bytes(pcap_bytes(records))
