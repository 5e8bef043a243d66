"""io.pcap: round trips in every format, cross-checks with scapy (and tshark), corrupt input."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess

import pytest
from scapy.utils import PcapNgWriter as ScapyNgWriter  # type: ignore
from scapy.utils import rdpcap  # type: ignore

from ctswitch.io import pcap as P
from ctswitch.io.pcap import PcapError, PcapNgWriter, PcapReader, PcapWriter
from ctswitch.packet import build

T0 = 1_700_000_000_123_456_789


def _records(n: int = 50) -> list[tuple[int, bytes]]:
    out = []
    for i in range(n):
        fr = build.ipv4_udp("2.2.2.1", "1.1.1.2", 1000 + i, 53, b"x" * (i * 7 % 90))
        out.append((T0 + i * 1_000_001, fr))
    out.append((T0 + 10**9, build.ipv4_tcp("2.2.2.1", "1.1.1.2", 1, 2, payload=bytes(1460))))
    return out


def _us(recs):
    return [(t // 1000 * 1000, f) for t, f in recs]


@pytest.mark.parametrize("byteorder", ["<", ">"])
@pytest.mark.parametrize("ns", [False, True])
def test_classic_round_trip(tmp_path, byteorder, ns):
    recs = _records()
    path = tmp_path / "a.pcap"
    with PcapWriter(path, nanosecond=ns, byteorder=byteorder) as w:
        for t, f in recs:
            w.write(t, f)
    r = PcapReader(str(path))
    assert (r.format, r.byteorder, r.nanosecond, r.linktype) == ("pcap", byteorder, ns, 1)
    assert list(r) == (recs if ns else _us(recs))
    # scapy reads the same frames and times.
    pkts = rdpcap(str(path))
    assert [bytes(p) for p in pkts] == [f for _, f in recs]
    assert [int(p.time * 10**6) for p in pkts] == [t // 1000 for t, _ in recs]


@pytest.mark.parametrize("byteorder", ["<", ">"])
@pytest.mark.parametrize("ns", [False, True])
def test_pcapng_round_trip(tmp_path, byteorder, ns):
    recs = _records()
    path = tmp_path / "a.pcapng"
    with PcapNgWriter(path, nanosecond=ns, byteorder=byteorder) as w:
        for t, f in recs:
            w.write(t, f)
    r = PcapReader(path)
    assert r.format == "pcapng"
    assert list(r) == (recs if ns else _us(recs))
    pkts = rdpcap(str(path))
    assert [bytes(p) for p in pkts] == [f for _, f in recs]


def test_reads_scapy_pcapng(tmp_path):
    from scapy.all import Ether  # type: ignore
    recs = _records(5)
    path = str(tmp_path / "s.pcapng")
    w = ScapyNgWriter(path)
    for t, f in recs:
        p = Ether(f)
        p.time = t // 1000 / 1e6
        w.write(p)
    w.close()
    got = list(PcapReader(path))
    assert [f for _, f in got] == [f for _, f in recs]
    assert [abs(a - b) < 2000 for (a, _), (b, _) in zip(got, _us(recs))] == [True] * len(recs)


def _ng_block(bo: str, btype: int, body: bytes) -> bytes:
    body += bytes(-len(body) & 3)
    n = 12 + len(body)
    return struct.pack(bo + "II", btype, n) + body + struct.pack(bo + "I", n)


def test_pcapng_hand_built_blocks_resolutions_offsets_and_sections():
    bo = ">"
    shb = _ng_block(bo, 0x0A0D0D0A, struct.pack(bo + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    # iface 0: microseconds + offset of 10 s; iface 1: 2^-10 s units.
    idb0 = _ng_block(bo, 1, struct.pack(bo + "HHI", 1, 0, 65535) + struct.pack(bo + "HH", 14, 8)
                     + struct.pack(bo + "q", 10) + struct.pack(bo + "HH", 0, 0))
    idb1 = _ng_block(bo, 1, struct.pack(bo + "HHI", 1, 0, 65535) + struct.pack(bo + "HH", 9, 1) + b"\x8a\0\0\0")
    f1, f2, f3 = b"A" * 60, b"B" * 61, b"C" * 62
    epb0 = _ng_block(bo, 6, struct.pack(bo + "IIIII", 0, 0, 5, 60, 60) + f1)
    nrb = _ng_block(bo, 4, b"\0" * 8)  # name resolution block: skipped
    epb1 = _ng_block(bo, 6, struct.pack(bo + "IIIII", 1, 0, 1024 * 3, 61, 61) + f2)
    spb = _ng_block(bo, 3, struct.pack(bo + "I", 62) + f3)
    # A second section in the other byte order.
    shb2 = _ng_block("<", 0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb2 = _ng_block("<", 1, struct.pack("<HHI", 1, 0, 0) + struct.pack("<HH", 9, 1) + b"\x09\0\0\0")
    epb2 = _ng_block("<", 6, struct.pack("<IIIII", 0, 1, 7, 60, 60) + f1)
    data = shb + idb0 + idb1 + epb0 + nrb + epb1 + spb + shb2 + idb2 + epb2
    got = list(PcapReader(io.BytesIO(data)))
    assert got == [(10 * 10**9 + 5000, f1), (3 * 10**9, f2), (3 * 10**9, f3), ((1 << 32) + 7, f1)]


def test_streaming_across_chunk_edges(monkeypatch, tmp_path):
    recs = _records(200)
    path = tmp_path / "a.pcap"
    with PcapWriter(path, nanosecond=True) as w:
        for t, f in recs:
            w.write(t, f)
    ng = tmp_path / "a.pcapng"
    with PcapNgWriter(ng) as w:
        for t, f in recs:
            w.write(t, f)
    for chunk in (1, 7, 100, 1000):
        monkeypatch.setattr(P, "CHUNK", chunk)
        assert list(PcapReader(path)) == recs
        assert list(PcapReader(ng)) == recs


def test_file_object_and_writer_to_file_object():
    buf = io.BytesIO()
    w = PcapWriter(buf)
    w.write(T0, b"\x01" * 60)
    w.close()
    assert buf.getvalue()[:4] == b"\xd4\xc3\xb2\xa1" and len(buf.getvalue()) == 24 + 16 + 60
    assert list(PcapReader(io.BytesIO(buf.getvalue()))) == [(T0 // 1000 * 1000, b"\x01" * 60)]


def _classic(n: int = 3) -> bytes:
    buf = io.BytesIO()
    with PcapWriter(buf) as w:
        for i in range(n):
            w.write(T0 + i * 1000, bytes([i]) * 60)
    return buf.getvalue()


def _consume(data: bytes, name: str = "x.pcap") -> tuple[int, str]:
    got = 0
    try:
        for _ in PcapReader(io.BytesIO(data), name=name):
            got += 1
    except PcapError as e:
        return got, str(e)
    return got, ""


def test_corrupt_and_truncated():
    good = _classic(3)
    assert _consume(good) == (3, "")
    assert _consume(good[:-10]) == (2, "x.pcap: record 3: truncated packet data")
    assert _consume(good[:-(60 + 8)]) == (2, "x.pcap: record 3: truncated record header")
    bad = bytearray(good)
    struct.pack_into("<I", bad, 24 + 76 + 8, 0x7FFFFFFF)  # record 2's incl_len
    assert _consume(bytes(bad)) == (1, "x.pcap: record 2: bad record length 2147483647")
    with pytest.raises(PcapError, match=r"^x.pcap: not a pcap or pcapng file \(magic 0x00010203\)$"):
        PcapReader(io.BytesIO(b"\x00\x01\x02\x03" + bytes(40)), name="x.pcap")
    with pytest.raises(PcapError, match="truncated pcap file header"):
        PcapReader(io.BytesIO(good[:10]), name="x.pcap")
    with pytest.raises(PcapError, match="too short"):
        PcapReader(io.BytesIO(b""), name="x.pcap")


def test_corrupt_pcapng():
    buf = io.BytesIO()
    with PcapNgWriter(buf) as w:
        for i in range(3):
            w.write(T0 + i, bytes([i]) * 60)
        data = buf.getvalue()
    assert _consume(data) == (3, "")
    assert _consume(data[:-5]) == (2, "x.pcap: record 3: truncated block")
    bad = bytearray(data)
    last = len(data) - 92
    struct.pack_into("<I", bad, len(data) - 4, 88)
    assert _consume(bytes(bad)) == (2, "x.pcap: record 3: block length mismatch")
    bad = bytearray(data)
    struct.pack_into("<I", bad, last + 4, 90)
    assert _consume(bytes(bad)) == (2, "x.pcap: record 3: bad block length 90")
    bad = bytearray(data)
    struct.pack_into("<I", bad, last + 8, 3)  # interface id 3
    assert _consume(bytes(bad)) == (2, "x.pcap: record 3: unknown interface 3")


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_reads_our_files(tmp_path):
    recs = _records(10)[:10]
    for name, cls in (("a.pcap", PcapWriter), ("a.pcapng", PcapNgWriter)):
        path = tmp_path / name
        with cls(path, nanosecond=True) as w:
            for t, f in recs:
                w.write(t, f)
        out = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "frame.len", "-e", "udp.srcport"],
                             capture_output=True, text=True, check=True).stdout.split("\n")
        assert [line.split("\t") for line in out if line] == [[str(len(f)), str(1000 + i)] for i, (_, f) in enumerate(recs)]
