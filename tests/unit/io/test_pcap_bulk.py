"""io.pcap bulk path: ``PcapReader.chunks()`` as NumPy arrays, the compiled record scan and its
plain-Python fallback (same results), truncation at every offset, both byte orders, ns/us."""

from __future__ import annotations

import hashlib
import io
import os
import random
import struct
import subprocess
import sys

import numpy as np
import pytest

from ctswitch.io import _pcapscan as S
from ctswitch.io import pcap as P
from ctswitch.io.pcap import PcapError, PcapNgWriter, PcapReader, PcapWriter

T0 = 1_700_000_000_123_456_789
# Lengths chosen to include an empty frame and odd sizes (records are not 4-byte aligned).
LENGTHS = (60, 0, 61, 1, 1514, 75)


def _recs(lengths=LENGTHS) -> list[tuple[int, bytes]]:
    return [(T0 + i * 1_000_001_001, bytes((i * 7 + j) & 0xFF for j in range(n))) for i, n in enumerate(lengths)]


def _file(recs, byteorder="<", ns=True, snaplen=262144) -> bytes:
    buf = io.BytesIO()
    with PcapWriter(buf, nanosecond=ns, byteorder=byteorder, snaplen=snaplen) as w:
        for t, f in recs:
            w.write(t, f)
    return buf.getvalue()


def _expect(recs, ns):
    return [(t if ns else t // 1000 * 1000, f) for t, f in recs]


# The three scans: the compiled kernel (numba; plain Python when NUMBA_DISABLE_JIT is set),
# the struct fallback, and the kernel's own source run as Python on NumPy scalars.
SCANS = {
    "jit": lambda nbytes: S.scanner(1 << 62),
    "py": lambda nbytes: S.scan_records_py,
    "src": lambda nbytes: S.scan_records,
}


@pytest.fixture(params=sorted(SCANS))
def scan(request, monkeypatch):
    monkeypatch.setattr(P, "_scanner", SCANS[request.param])
    return request.param


def _bulk(data: bytes, name="x.pcap", reader_src=None):
    """(records from chunks(), error text, chunk tuples) of a file held in ``data``."""
    got, chunks = [], []
    try:
        with PcapReader(reader_src or io.BytesIO(data), name=name) as r:
            for item in r.chunks():
                chunks.append(item)
                ts, buf, offs, lens = item
                got += [(t, buf[o:o + n].tobytes()) for t, o, n in zip(ts.tolist(), offs.tolist(), lens.tolist())]
    except PcapError as e:
        return got, str(e), chunks
    return got, "", chunks


def _iter(data: bytes, name="x.pcap"):
    got = []
    try:
        for t, f in PcapReader(io.BytesIO(data), name=name):
            got.append((t, f))
    except PcapError as e:
        return got, str(e)
    return got, ""


@pytest.mark.parametrize("byteorder", ["<", ">"])
@pytest.mark.parametrize("ns", [False, True])
@pytest.mark.parametrize("chunk", [1, 7, 100, 1 << 20])
def test_chunks_arrays_both_byte_orders_and_units(scan, monkeypatch, byteorder, ns, chunk):
    monkeypatch.setattr(P, "CHUNK", chunk)
    recs = _recs()
    data = _file(recs, byteorder, ns)
    got, err, chunks = _bulk(data)
    assert (got, err) == (_expect(recs, ns), "")
    for ts, buf, offs, lens in chunks:
        assert [(a.dtype, a.ndim) for a in (ts, offs, lens)] == [(np.dtype(np.int64), 1)] * 3
        assert (type(buf), buf.dtype, len(ts) == len(offs) == len(lens) > 0) == (np.ndarray, np.uint8, True)
        assert int(offs[-1] + lens[-1]) == len(buf)  # data ends with the chunk's last whole frame
    assert _iter(data) == (_expect(recs, ns), "")
    assert [type(t) for t, _ in PcapReader(io.BytesIO(data))] == [int] * len(recs)
    assert [type(f) for _, f in PcapReader(io.BytesIO(data))] == [bytes] * len(recs)


def test_extreme_timestamps_and_a_record_bigger_than_the_chunk(scan, monkeypatch):
    monkeypatch.setattr(P, "CHUNK", 64)
    for ns, frac in ((True, 999_999_999), (False, 999_999), (True, 0xFFFFFFFF), (False, 0xFFFFFFFF)):
        for bo in "<>":
            hdr = struct.pack(bo + "IHHiIII", 0xA1B23C4D if ns else 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
            body = b"".join(struct.pack(bo + "IIII", sec, frac, n, n) + bytes([n & 0xFF]) * n
                            for sec, n in ((0xFFFFFFFF, 3), (0, 200), (1, 0)))
            got, err, _ = _bulk(hdr + body)
            mul = 1 if ns else 1000
            assert err == ""
            assert got == [(s * 10**9 + frac * mul, bytes([n & 0xFF]) * n) for s, n in ((0xFFFFFFFF, 3), (0, 200), (1, 0))]


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_truncated_at_every_offset(scan, monkeypatch, byteorder):
    recs = _recs()
    data = _file(recs, byteorder, ns=True)
    ends, pos = [], 24
    for _, f in recs:
        pos += 16 + len(f)
        ends.append(pos)
    for chunk in (1 << 20, 100, 7):
        monkeypatch.setattr(P, "CHUNK", chunk)
        for cut in range(len(data) + 1):
            part = data[:cut]
            if cut < 24:
                why = "too short" if cut < 4 else "truncated pcap file header"
                with pytest.raises(PcapError, match=why):
                    PcapReader(io.BytesIO(part), name="x.pcap")
                continue
            whole = sum(1 for e in ends if e <= cut)
            left = cut - (ends[whole - 1] if whole else 24)
            err = "" if left == 0 else (f"x.pcap: record {whole + 1}: "
                                        + ("truncated record header" if left < 16 else "truncated packet data"))
            want = recs[:whole]
            got, msg, _ = _bulk(part)
            assert (cut, got, msg) == (cut, want, err)
            assert (cut, *_iter(part)) == (cut, want, err)


def test_bad_record_length_after_the_good_records(scan, monkeypatch):
    recs = _recs((60, 61, 62))
    data = bytearray(_file(recs, ">", ns=False, snaplen=65535))
    struct.pack_into(">I", data, 24 + 76 + 77 + 8, 0x7FFFFFFF)  # record 3's incl_len
    for chunk in (1 << 20, 100, 1):
        monkeypatch.setattr(P, "CHUNK", chunk)
        want = (_expect(recs[:2], False), "x.pcap: record 3: bad record length 2147483647")
        got, msg, chunks = _bulk(bytes(data))
        assert (got, msg) == want
        assert _iter(bytes(data)) == want
    # The limit is max(snaplen, MAX_RECORD): 262145 is too long, 70000 (> snaplen 65535) is not.
    struct.pack_into(">I", data, 24 + 76 + 77 + 8, P.MAX_RECORD + 1)
    for chunk in (1 << 20, 100):
        monkeypatch.setattr(P, "CHUNK", chunk)
        assert _bulk(bytes(data))[:2] == (_expect(recs[:2], False), "x.pcap: record 3: bad record length 262145")
    big = _recs((60, 70000, 61))
    assert _bulk(_file(big, ">", ns=False, snaplen=65535))[:2] == (_expect(big, False), "")


def test_chunks_are_independent_arrays_and_read_only_streams(scan, monkeypatch):
    monkeypatch.setattr(P, "CHUNK", 300)
    recs = _recs((60, 61, 62, 63, 64, 65, 66, 67, 68, 69))
    data = _file(recs)
    got, err, chunks = _bulk(data)
    assert (got, err) == (recs, "") and len(chunks) > 2
    # Every chunk's data still holds its frames after the whole file was read.
    again = [(t, buf[o:o + n].tobytes()) for ts, buf, offs, lens in chunks
             for t, o, n in zip(ts.tolist(), offs.tolist(), lens.tolist())]
    assert again == recs

    class ReadOnly:  # a file object with read() but no readinto()
        def __init__(self, b):
            self.f = io.BytesIO(b)

        def read(self, n=-1):
            return self.f.read(min(n, 50))

    assert _bulk(b"", reader_src=ReadOnly(data))[:2] == (recs, "")
    assert _bulk(b"", reader_src=ReadOnly(data[:-3]))[:2] == (recs[:-1], "x.pcap: record 10: truncated packet data")


def test_pcapng_chunks_give_the_same_array_types():
    recs = _recs()
    buf = io.BytesIO()
    with PcapNgWriter(buf) as w:
        for t, f in recs:
            w.write(t, f)
    r = PcapReader(io.BytesIO(buf.getvalue()))
    chunks = list(r.chunks(max_records=4))
    assert [len(c[0]) for c in chunks] == [4, 2]
    got = []
    for ts, data, offs, lens in chunks:
        assert [a.dtype for a in (ts, data, offs, lens)] == [np.dtype(np.int64), np.dtype(np.uint8),
                                                             np.dtype(np.int64), np.dtype(np.int64)]
        got += [(t, data[o:o + n].tobytes()) for t, o, n in zip(ts.tolist(), offs.tolist(), lens.tolist())]
    assert got == recs
    assert _bulk(buf.getvalue()[:-5])[:2] == (recs[:-1], "x.pcap: record 6: truncated block")


def _random_stream(rng: random.Random, big: bool, n: int) -> bytes:
    out = []
    for _ in range(n):
        ln = rng.choice((0, 1, 14, 60, 61, 1514, rng.randrange(0, 3000)))
        sec, frac = rng.choice((0, 1, 0x7FFFFFFF, 0xFFFFFFFF)), rng.randrange(0, 1 << 32)
        out.append(struct.pack((">" if big else "<") + "IIII", sec, frac, ln, ln + 3) + rng.randbytes(ln))
    return b"".join(out)


def test_the_scans_agree_on_random_buffers():
    rng = random.Random(7)
    jit = S.scanner(1 << 62)
    for trial in range(60):
        big = trial % 2 == 1
        data = _random_stream(rng, big, rng.randrange(0, 40))
        cut = rng.randrange(0, len(data) + 20)
        buf = np.frombuffer(data + bytes(rng.randrange(0, 20)), dtype=np.uint8).copy()
        end = min(cut, len(buf))
        res = []
        for fn in (jit, S.scan_records_py, S.scan_records):
            arrs = [np.full(end // 16 + 1, -7, dtype=np.int64) for _ in range(3)]
            n, pos, incl = fn(buf, end, big, 1 if trial % 4 < 2 else 1000, *arrs)
            res.append((int(n), int(pos), int(incl), [a[:int(n)].tolist() for a in arrs]))
        assert res[0] == res[1] == res[2]


def test_small_files_do_not_load_numba(tmp_path):
    small = tmp_path / "s.pcap"
    small.write_bytes(_file(_recs()))
    code = ("import sys; from ctswitch.io.pcap import read_all; "
            "n = len(read_all(sys.argv[1])); print(n, 'numba' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}
    p = subprocess.run([sys.executable, "-c", code, str(small)], capture_output=True, text=True, env=env,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == [str(len(LENGTHS)), "False"]


SCRIPT = """
import hashlib, sys
from ctswitch.io.pcap import PcapReader
from ctswitch.io import _pcapscan as S
h = hashlib.sha256()
n = 0
for path in sys.argv[1:]:
    try:
        with PcapReader(path) as r:
            for ts, data, offs, lens in r.chunks():
                n += len(ts)
                h.update(ts.tobytes() + offs.tobytes() + lens.tobytes() + data.tobytes())
                h.update(str((ts.dtype, data.dtype, offs.dtype, lens.dtype)).encode())
    except Exception as e:
        h.update(repr(e).encode())
print(n, h.hexdigest(), S.scanner(1 << 62) is S.scan_records_py)
"""


def test_numba_disabled_gives_identical_results(tmp_path):
    """NUMBA_DISABLE_JIT=1 (the no-numba fallback) reads the same arrays and errors as the kernel."""
    recs = [(T0 + i * 999, bytes([i & 0xFF]) * (60 + i % 1400)) for i in range(3000)]  # > JIT_MIN_BYTES
    paths = []
    for k, (bo, ns) in enumerate((("<", True), (">", False), ("<", False), (">", True))):
        p = tmp_path / f"{k}.pcap"
        data = _file(recs, bo, ns)
        p.write_bytes(data if k < 2 else data[:-(k * 37)])  # two of them truncated
        paths.append(str(p))
    res = []
    for extra in ({}, {"NUMBA_DISABLE_JIT": "1"}):
        env = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}
        env.update(extra)
        p = subprocess.run([sys.executable, "-c", SCRIPT, *paths], capture_output=True, text=True, env=env,
                           timeout=120)
        assert p.returncode == 0, p.stderr
        res.append(p.stdout.split())
    assert res[0][:2] == res[1][:2]
    assert (res[0][2], res[1][2]) == ("False", "True")
    assert int(res[0][0]) == 4 * 3000 - 2
    assert res[0][1] != hashlib.sha256(b"").hexdigest()
