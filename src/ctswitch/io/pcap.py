"""pcap and pcapng files: a streaming reader and writers, hand-written for speed.

Theory of operation
-------------------
``PcapReader`` detects the format from the first four bytes:

| magic (as read)            | format                                   |
| -------------------------- | ---------------------------------------- |
| ``d4 c3 b2 a1``            | classic, little-endian, microseconds     |
| ``a1 b2 c3 d4``            | classic, big-endian, microseconds        |
| ``4d 3c b2 a1``            | classic, little-endian, nanoseconds      |
| ``a1 b2 3c 4d``            | classic, big-endian, nanoseconds         |
| ``0a 0d 0d 0a``            | pcapng (byte order from the SHB magic)   |

and iterates ``(ts_ns, frame)`` pairs, or hands out whole chunks of records
as NumPy arrays (``chunks()``, the replay's bulk path).

Why hand-written: on this path a library is too slow.  Measured on this
machine (the project's performance notes, section 2; 1M 64-byte frames):
dpkt reads 0.76 Mpps, scapy's ``RawPcapReader`` 0.96 Mpps and scapy with
dissection 0.007 Mpps, against 4.2-4.8 Mpps for a hand-written ``struct``
walker and 27-31 Mpps for a Numba scan of the record offsets.  The replay
reads every packet of multi-million-packet files, so the reader sets a floor
under the whole run.

Classic pcap: the file is read in large chunks (``CHUNK`` bytes) with
``readinto`` into a fresh ``uint8`` array (no ``bytes`` concatenation); the
bytes of a record that crosses the end of a chunk are carried to the front of
the next one.  ``_pcapscan.scan_records`` walks the 16-byte record headers of a
chunk and fills int64 arrays (timestamp in ns, frame offset, frame length); it
is compiled with Numba (``@njit(cache=True)``, loaded at the first chunk of
64 KiB or more, so small files never load Numba) and, before that or when
numba is missing or ``NUMBA_DISABLE_JIT=1``, replaced by ``scan_records_py``
(``Struct.unpack_from``, same results).  ``chunks()`` yields those arrays and
the chunk; ``__iter__`` slices ``bytes`` frames out of them.  Memory stays
constant (one chunk, grown only for a record larger than a chunk).  pcapng
keeps its Python block walker; its ``chunks()`` packs those records into the
same array types.

pcapng: Section Header Blocks (either byte order, several sections), Interface
Description Blocks (link type, snaplen, ``if_tsresol`` and ``if_tsoffset`` per
interface), Enhanced Packet Blocks, Simple Packet Blocks (no timestamp: they
reuse the last timestamp seen) and obsolete Packet Blocks; every other block
type is skipped.

Errors: a bad file header raises ``PcapError`` from the constructor; bad or
truncated data raises ``PcapError("<file>: record <N>: <reason>")`` when the
iteration reaches it (N counts packet records from 1), after every earlier
record has been yielded.

``PcapWriter`` writes classic pcap (linktype Ethernet, microsecond or
nanosecond timestamps, little-endian unless asked), buffering records and
writing them in large blocks; ``PcapNgWriter`` writes a one-interface pcapng
file (EPBs).  Both are context managers.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import BinaryIO

CHUNK = 1 << 20
LINKTYPE_ETHERNET = 1
MAX_RECORD = 1 << 18  # largest record accepted when the snaplen does not say more

_MAGIC_US = 0xA1B2C3D4
_MAGIC_NS = 0xA1B23C4D
_NG_SHB = 0x0A0D0D0A
_NG_BOM = 0x1A2B3C4D


class PcapError(Exception):
    """A pcap/pcapng file is malformed: "<file>: record <N>: <reason>" or "<file>: <reason>"."""


def _open(path_or_file, mode: str) -> tuple[BinaryIO, str, bool]:
    if isinstance(path_or_file, (str, bytes, os.PathLike)):
        f = open(path_or_file, mode)  # noqa: SIM115 - closed by close()
        return f, os.fsdecode(path_or_file), True
    name = getattr(path_or_file, "name", None)
    return path_or_file, name if isinstance(name, str) else "<stream>", False


def _scanner(nbytes: int):
    """The classic-pcap record scan for a chunk of ``nbytes`` (see ``_pcapscan.scanner``).

    Imported on first use, so that importing this module loads neither NumPy nor Numba."""
    from ._pcapscan import scanner
    return scanner(nbytes)


class PcapReader:
    """Iterates ``(ts_ns, frame_bytes)`` over a classic pcap or pcapng file.

    Attributes:
        name: the file name used in error messages.
        format: "pcap" or "pcapng".
        nanosecond: classic pcap with nanosecond timestamps.
        byteorder: "<" or ">" (classic pcap; pcapng: of the first section).
        linktype: the link type of the file (pcapng: of the first interface, once read).
        snaplen: the snapshot length of the file header (classic pcap).
    """

    def __init__(self, path_or_file, name: str | None = None) -> None:
        self._f, self.name, self._own = _open(path_or_file, "rb")
        if name is not None:
            self.name = name
        self.nanosecond = False
        self.byteorder = "<"
        self.linktype = LINKTYPE_ETHERNET
        self.snaplen = 0
        try:
            head = self._read_exact(4)
            if len(head) < 4:
                raise PcapError(f"{self.name}: not a pcap file (too short)")
            if int.from_bytes(head, "little") == _NG_SHB:
                self.format = "pcapng"
                self._head = head
                return
            self.format = "pcap"
            le, be = int.from_bytes(head, "little"), int.from_bytes(head, "big")
            if le in (_MAGIC_US, _MAGIC_NS):
                self.byteorder = "<"
                self.nanosecond = le == _MAGIC_NS
            elif be in (_MAGIC_US, _MAGIC_NS):
                self.byteorder = ">"
                self.nanosecond = be == _MAGIC_NS
            else:
                raise PcapError(f"{self.name}: not a pcap or pcapng file (magic 0x{be:08x})")
            rest = self._read_exact(20)
            if len(rest) < 20:
                raise PcapError(f"{self.name}: truncated pcap file header")
            _vmaj, _vmin, _tz, _sig, self.snaplen, lt = struct.unpack(self.byteorder + "HHiIII", rest)
            self.linktype = lt & 0x0FFFFFFF
            self._head = b""
        except BaseException:
            self.close()
            raise

    def _read_exact(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            d = self._f.read(n - len(out))
            if not d:
                break
            out += d
        return out

    def close(self) -> None:
        if self._own and self._f is not None:
            self._f.close()
        self._f = None

    def __enter__(self) -> PcapReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        if self.format == "pcap":
            return self._iter_classic()
        return self._iter_ng()

    # --- classic pcap -----------------------------------------------------------------------

    def _iter_classic(self) -> Iterator[tuple[int, bytes]]:
        for ts, data, offs, lens in self.chunks():
            buf = data.tobytes()
            for t, o, n in zip(ts.tolist(), offs.tolist(), lens.tolist()):
                yield t, buf[o:o + n]

    def chunks(self, max_records: int = 8192) -> Iterator[tuple]:
        """The records in bulk: ``(ts_ns, data, offsets, lengths)`` per chunk, NumPy arrays
        (int64 ``ts_ns``, ``offsets`` and ``lengths``; ``data`` a ``uint8`` array holding the
        frames, frame i at ``data[offsets[i]:offsets[i] + lengths[i]]``; no object per frame).
        Classic pcap: one chunk of the file per item (``max_records`` is not used); each
        ``data`` is a new array, never overwritten by later items.  pcapng: up to
        ``max_records`` records of the record iterator per item (``data`` read-only).
        Errors as ``__iter__`` (PcapError naming the record, after the records before it)."""
        import numpy as np
        if self.format == "pcap":
            yield from self._chunks_classic(np)
            return
        it = iter(self)
        error = None
        while error is None:
            ts, offs, lens, parts = [], [], [], []
            pos = 0
            try:
                for t, fr in it:
                    ts.append(t)
                    offs.append(pos)
                    lens.append(len(fr))
                    parts.append(fr)
                    pos += len(fr)
                    if len(ts) >= max_records:
                        break
            except PcapError as e:  # raised once the records before it are out
                error = e
            if ts:
                yield (np.array(ts, dtype=np.int64), np.frombuffer(b"".join(parts), dtype=np.uint8),
                       np.array(offs, dtype=np.int64), np.array(lens, dtype=np.int64))
            elif error is None:
                return
        raise error

    def _chunks_classic(self, np) -> Iterator[tuple]:
        big = self.byteorder == ">"
        mul = 1 if self.nanosecond else 1000
        limit = max(self.snaplen, MAX_RECORD)
        readinto = getattr(self._f, "readinto", None)
        read = self._f.read
        chunk = CHUNK
        carry = None  # the start of a record the last chunk cut (a view of that chunk)
        ncarry = 0
        rec = 0
        cap = -1
        ts = offs = lens = None
        while True:
            buf = np.empty(ncarry + chunk, dtype=np.uint8)
            if ncarry:
                buf[:ncarry] = carry
            if readinto is not None:
                got = readinto(buf[ncarry:]) or 0
            else:
                data = read(chunk)  # a file object without readinto
                got = len(data) if data else 0
                if got:
                    buf[ncarry:ncarry + got] = np.frombuffer(data, dtype=np.uint8)
            if not got:
                if ncarry:
                    what = "truncated record header" if ncarry < 16 else "truncated packet data"
                    raise PcapError(f"{self.name}: record {rec + 1}: {what}")
                return
            end = ncarry + got
            if end // 16 > cap:  # scratch for the most records a chunk this size can hold
                cap = max(end // 16, 1024)
                ts = np.empty(cap, dtype=np.int64)
                offs = np.empty(cap, dtype=np.int64)
                lens = np.empty(cap, dtype=np.int64)
            n, pos, incl = _scanner(end)(buf, end, big, mul, ts, offs, lens)
            incl = int(incl)
            rec += n
            if n:
                yield ts[:n].copy(), buf[:pos], offs[:n].copy(), lens[:n].copy()
            if incl > limit:  # a record header whose frame is beyond this chunk, and too long
                raise PcapError(f"{self.name}: record {rec + 1}: bad record length {incl}")
            if incl + 16 > chunk:
                chunk = incl + 16
            carry = buf[pos:end]
            ncarry = end - pos

    # --- pcapng -----------------------------------------------------------------------------

    def _iter_ng(self) -> Iterator[tuple[int, bytes]]:
        read = self._f.read
        buf = self._head
        pos = 0
        rec = 0
        chunk = CHUNK
        bo = "<"
        ifaces: list[tuple[int, int, int]] = []  # (mult, div, offset_ns) per interface
        last_ts = 0
        hdr = struct.Struct("<II")
        epb = struct.Struct("<IIIII")
        u32 = struct.Struct("<I")
        eof = False
        while True:
            if not eof:
                data = read(chunk)
                if data:
                    buf = buf[pos:] + data if pos < len(buf) else data
                    pos = 0
                else:
                    eof = True
            end = len(buf)
            if eof and pos >= end:
                return
            while pos + 12 <= end:
                btype, blen = hdr.unpack_from(buf, pos)
                nxt = pos + blen
                if btype == 6 and nxt <= end and blen >= 32:
                    # Fast path: a whole Enhanced Packet Block.
                    iface, hi, lo, cap, _orig = epb.unpack_from(buf, pos + 8)
                    if 32 + cap > blen or u32.unpack_from(buf, nxt - 4)[0] != blen or iface >= len(ifaces):
                        self._bad_epb(buf, pos, blen, cap, iface, ifaces, u32, rec)
                    m, d, o = ifaces[iface]
                    last_ts = (((hi << 32) | lo) * m // d) + o
                    rec += 1
                    yield last_ts, buf[pos + 28:pos + 28 + cap]
                    pos = nxt
                    continue
                if btype == _NG_SHB:
                    # The byte order is known only from the magic inside the block.
                    bom = buf[pos + 8:pos + 12]
                    if int.from_bytes(bom, "little") == _NG_BOM:
                        bo = "<"
                    elif int.from_bytes(bom, "big") == _NG_BOM:
                        bo = ">"
                    else:
                        raise PcapError(f"{self.name}: record {rec + 1}: bad pcapng byte-order magic")
                    hdr = struct.Struct(bo + "II")
                    epb = struct.Struct(bo + "IIIII")
                    u32 = struct.Struct(bo + "I")
                    btype, blen = hdr.unpack_from(buf, pos)
                    if rec == 0 and not ifaces:
                        self.byteorder = bo
                    ifaces = []
                if blen < 12 or blen & 3:
                    raise PcapError(f"{self.name}: record {rec + 1}: bad block length {blen}")
                nxt = pos + blen
                if nxt > end:
                    if blen > chunk:
                        if blen > (1 << 26):
                            raise PcapError(f"{self.name}: record {rec + 1}: bad block length {blen}")
                        chunk = blen
                    break
                if u32.unpack_from(buf, nxt - 4)[0] != blen:
                    raise PcapError(f"{self.name}: record {rec + 1}: block length mismatch")
                if btype == 6 or btype == 2:  # enhanced / obsolete packet block
                    if blen < 32:
                        raise PcapError(f"{self.name}: record {rec + 1}: truncated packet block")
                    iface, hi, lo, cap, _orig = epb.unpack_from(buf, pos + 8)
                    if btype == 2:  # 16-bit interface id, then a 16-bit drop count
                        iface = iface & 0xFFFF if bo == "<" else iface >> 16
                    if 32 + cap > blen:
                        raise PcapError(f"{self.name}: record {rec + 1}: packet data beyond block")
                    if iface >= len(ifaces):
                        raise PcapError(f"{self.name}: record {rec + 1}: unknown interface {iface}")
                    m, d, o = ifaces[iface]
                    t = (hi << 32) | lo
                    last_ts = (t * m // d) + o
                    rec += 1
                    yield last_ts, buf[pos + 28:pos + 28 + cap]
                elif btype == 3:  # simple packet block
                    orig = u32.unpack_from(buf, pos + 8)[0]
                    cap = min(orig, blen - 16)
                    rec += 1
                    yield last_ts, buf[pos + 12:pos + 12 + cap]
                elif btype == 1:  # interface description block
                    ifaces.append(self._idb(buf, pos, blen, bo, rec))
                pos = nxt
            if eof:
                if pos < end:
                    raise PcapError(f"{self.name}: record {rec + 1}: truncated block")
                return

    def _bad_epb(self, buf, pos, blen, cap, iface, ifaces, u32, rec) -> None:
        if blen & 3:
            raise PcapError(f"{self.name}: record {rec + 1}: bad block length {blen}")
        if u32.unpack_from(buf, pos + blen - 4)[0] != blen:
            raise PcapError(f"{self.name}: record {rec + 1}: block length mismatch")
        if 32 + cap > blen:
            raise PcapError(f"{self.name}: record {rec + 1}: packet data beyond block")
        raise PcapError(f"{self.name}: record {rec + 1}: unknown interface {iface}")

    def _idb(self, buf: bytes, pos: int, blen: int, bo: str, rec: int) -> tuple[int, int, int]:
        """(multiplier, divisor, offset_ns) turning this interface's ticks into nanoseconds."""
        if blen < 20:
            raise PcapError(f"{self.name}: record {rec + 1}: truncated interface block")
        lt = struct.unpack_from(bo + "H", buf, pos + 8)[0]
        if rec == 0:
            self.linktype = lt
        mult, div, off = 1000, 1, 0  # default resolution: microseconds
        p, end = pos + 16, pos + blen - 4
        while p + 4 <= end:
            code, ln = struct.unpack_from(bo + "HH", buf, p)
            if code == 0:
                break
            if p + 4 + ln > end:
                raise PcapError(f"{self.name}: record {rec + 1}: interface option beyond block")
            v = buf[p + 4:p + 4 + ln]
            if code == 9 and ln >= 1:  # if_tsresol
                r = v[0]
                if r & 0x80:
                    mult, div = 1_000_000_000, 1 << (r & 0x7F)
                elif r <= 9:
                    mult, div = 10 ** (9 - r), 1
                else:
                    mult, div = 1, 10 ** (r - 9)
            elif code == 14 and ln >= 8:  # if_tsoffset, seconds
                off = struct.unpack(bo + "q", v[:8])[0] * 1_000_000_000
            p += 4 + ((ln + 3) & ~3)
        return mult, div, off


class PcapWriter:
    """Writes a classic pcap file (linktype Ethernet by default).

    ``write(ts_ns, frame)`` appends one record; ``write_records(data, count)`` appends
    already-encoded records (16-byte header + frame each, in this writer's byte order
    and timestamp unit) as one block, for bulk generators.
    """

    def __init__(self, path_or_file, nanosecond: bool = False, *, byteorder: str = "<",
                 snaplen: int = 262144, linktype: int = LINKTYPE_ETHERNET) -> None:
        self._f, self.name, self._own = _open(path_or_file, "wb")
        self.nanosecond = nanosecond
        self.byteorder = byteorder
        self._rec = struct.Struct(byteorder + "IIII").pack
        self._div = 1 if nanosecond else 1000
        self._frac = 1_000_000_000 if nanosecond else 1_000_000
        self._buf: list[bytes] = []
        self._size = 0
        self.count = 0
        magic = _MAGIC_NS if nanosecond else _MAGIC_US
        self._f.write(struct.pack(byteorder + "IHHiIII", magic, 2, 4, 0, 0, snaplen, linktype))

    def write(self, ts_ns: int, frame: bytes | bytearray | memoryview) -> None:
        """Appends one frame with timestamp ``ts_ns`` (nanoseconds since the epoch)."""
        sec, frac = divmod(ts_ns // self._div, self._frac)
        n = len(frame)
        self._buf.append(self._rec(sec, frac, n, n))
        self._buf.append(frame)
        self.count += 1
        self._size += n + 16
        if self._size >= CHUNK:
            self.flush()

    def write_records(self, data: bytes | bytearray | memoryview, count: int) -> None:
        """Appends ``count`` pre-encoded records held in ``data``."""
        self.flush()
        self._f.write(data)
        self.count += count

    def flush(self) -> None:
        if self._buf:
            self._f.write(b"".join(self._buf))
            self._buf.clear()
            self._size = 0

    def close(self) -> None:
        if self._f is None:
            return
        self.flush()
        if self._own:
            self._f.close()
        else:
            self._f.flush()
        self._f = None

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PcapNgWriter:
    """Writes a pcapng file: one section, one Ethernet interface, Enhanced Packet Blocks.

    Timestamps are stored in nanoseconds (``if_tsresol`` = 9) unless ``nanosecond=False``.
    """

    def __init__(self, path_or_file, nanosecond: bool = True, *, byteorder: str = "<",
                 linktype: int = LINKTYPE_ETHERNET) -> None:
        self._f, self.name, self._own = _open(path_or_file, "wb")
        self.byteorder = bo = byteorder
        self._div = 1 if nanosecond else 1000
        self.count = 0
        shb = struct.pack(bo + "IIIHHq", _NG_SHB, 28, _NG_BOM, 1, 0, -1) + struct.pack(bo + "I", 28)
        opts = b""
        if nanosecond:
            opts = struct.pack(bo + "HH", 9, 1) + b"\x09\x00\x00\x00" + struct.pack(bo + "HH", 0, 0)
        idb_len = 20 + len(opts)
        idb = struct.pack(bo + "IIHHI", 1, idb_len, linktype, 0, 262144) + opts + struct.pack(bo + "I", idb_len)
        self._f.write(shb + idb)
        self._epb = struct.Struct(bo + "IIIIIII").pack
        self._tail = struct.Struct(bo + "I").pack

    def write(self, ts_ns: int, frame: bytes | bytearray | memoryview) -> None:
        t = ts_ns // self._div
        n = len(frame)
        pad = -n & 3
        blen = 32 + n + pad
        self._f.write(self._epb(6, blen, 0, t >> 32, t & 0xFFFFFFFF, n, n) + bytes(frame) + bytes(pad)
                      + self._tail(blen))
        self.count += 1

    def close(self) -> None:
        if self._f is None:
            return
        if self._own:
            self._f.close()
        else:
            self._f.flush()
        self._f = None

    def __enter__(self) -> PcapNgWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_all(path_or_file) -> list[tuple[int, bytes]]:
    """Every (ts_ns, frame) of a file (small files: tests and tools)."""
    with PcapReader(path_or_file) as r:
        return list(r)
