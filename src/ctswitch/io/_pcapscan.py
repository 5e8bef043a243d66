"""The record scan of classic pcap chunks (``PcapReader.chunks``), compiled by Numba.

``scan_records`` walks the 16-byte record headers of one chunk of a pcap file
(a chunk starts on a record) and fills three int64 arrays: the timestamp in
nanoseconds, the frame's offset in the chunk and its length.  Record walking is
sequential (each offset depends on the length before it), so it does not
vectorise in NumPy; compiled it runs at tens of Mpps, where the same walk with
``Struct.unpack_from`` in Python costs about a microsecond per record.

``scanner(nbytes)`` returns ``scan_records`` compiled (``@njit(cache=True)``)
when numba is installed and ``NUMBA_DISABLE_JIT`` is not set, else
``scan_records_py``: the same walk with ``Struct.unpack_from`` (the source of
``scan_records`` run as plain Python would index NumPy scalars, several times
slower still).  Both give the same results; the tests compare them.

This module imports NumPy (and Numba, on the first big chunk); ``io.pcap``
imports it only when a classic pcap is read in bulk.
"""

from __future__ import annotations

import struct

import numpy as np

_I64 = np.int64


def scan_records(buf, end, big, mul, ts, offs, lens):
    """Walks the records in ``buf[:end]`` (``uint8``; the chunk starts on a record).

    For each whole record i fills ``ts[i]`` (ns: seconds * 1e9 + fraction * ``mul``),
    ``offs[i]`` (the offset of its frame in ``buf``) and ``lens[i]`` (its incl_len);
    ``big``: big-endian headers.  The arrays must hold ``end // 16`` items.  Returns
    ``(n, pos, incl)``: the number of whole records, the offset where the first incomplete
    record starts (``end`` if none), and that record's incl_len (-1 when fewer than 16
    bytes of its header are in ``buf[:end]``)."""
    n = 0
    pos = 0
    while pos + 16 <= end:
        if big:
            sec = (_I64(buf[pos]) << 24) | (_I64(buf[pos + 1]) << 16) | (_I64(buf[pos + 2]) << 8) | _I64(buf[pos + 3])
            frac = ((_I64(buf[pos + 4]) << 24) | (_I64(buf[pos + 5]) << 16) | (_I64(buf[pos + 6]) << 8)
                    | _I64(buf[pos + 7]))
            incl = ((_I64(buf[pos + 8]) << 24) | (_I64(buf[pos + 9]) << 16) | (_I64(buf[pos + 10]) << 8)
                    | _I64(buf[pos + 11]))
        else:
            sec = _I64(buf[pos]) | (_I64(buf[pos + 1]) << 8) | (_I64(buf[pos + 2]) << 16) | (_I64(buf[pos + 3]) << 24)
            frac = (_I64(buf[pos + 4]) | (_I64(buf[pos + 5]) << 8) | (_I64(buf[pos + 6]) << 16)
                    | (_I64(buf[pos + 7]) << 24))
            incl = (_I64(buf[pos + 8]) | (_I64(buf[pos + 9]) << 8) | (_I64(buf[pos + 10]) << 16)
                    | (_I64(buf[pos + 11]) << 24))
        if pos + 16 + incl > end:
            return n, pos, incl
        ts[n] = sec * 1_000_000_000 + frac * mul
        offs[n] = pos + 16
        lens[n] = incl
        n += 1
        pos += 16 + incl
    return n, pos, _I64(-1)


def scan_records_py(buf, end, big, mul, ts, offs, lens):
    """``scan_records`` in plain Python with ``Struct.unpack_from`` (no numba / NUMBA_DISABLE_JIT)."""
    unpack = struct.Struct(">IIII" if big else "<IIII").unpack_from
    tl: list[int] = []
    ol: list[int] = []
    ll: list[int] = []
    pos = 0
    incl = -1
    while pos + 16 <= end:
        sec, frac, incl, _orig = unpack(buf, pos)
        if pos + 16 + incl > end:
            break
        tl.append(sec * 1_000_000_000 + frac * mul)
        ol.append(pos + 16)
        ll.append(incl)
        pos += 16 + incl
        incl = -1
    n = len(tl)
    ts[:n] = tl
    offs[:n] = ol
    lens[:n] = ll
    return n, pos, incl


JIT_MIN_BYTES = 1 << 16  # a smaller chunk is scanned in Python unless the kernel is loaded already
_JIT = None


def scanner(nbytes: int):
    """The scan for a chunk of ``nbytes``: ``scan_records`` compiled by Numba, else ``scan_records_py``.

    Numba is loaded (import, then the kernel from its cache: about 0.3 s in a fresh process,
    a few ms once Numba has compiled or loaded anything) at the first chunk of at least
    ``JIT_MIN_BYTES``; smaller chunks until then use ``scan_records_py`` (under 1 ms), so
    that reading a small file never pays for Numba."""
    global _JIT
    if _JIT is None:
        if nbytes < JIT_MIN_BYTES:
            return scan_records_py
        try:
            import numba
        except ImportError:  # pragma: no cover - numba is the optional "fast" extra
            numba = None
        if numba is not None and not numba.config.DISABLE_JIT:
            _JIT = numba.njit(cache=True, nogil=True)(scan_records)
        else:
            _JIT = scan_records_py
    return _JIT
