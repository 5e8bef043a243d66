"""Synthetic SNAT traffic for the benchmarks, built with NumPy (1M 64-byte frames in well under 1 s).

Connection ``c`` (0 <= c < n_conns) is host 10.x.y.z (``HOST_BASE + c``), source port
``1024 + c % 60000``, to 8.8.8.8:80, SNATed to ``SNAT_BASE + c // 60000`` port
``1024 + c % 60000``.  Direction 0 (original) enters on port 2 from the host MAC to
the router MAC; direction 1 (reply) enters on port 1 addressed to the SNAT address.
Frames are Ethernet/IPv4/TCP ACK with correct checksums; each packet picks a
connection and a direction uniformly at random (the worst case for caches).
"""

from __future__ import annotations

import numpy as np

from ctswitch.datapath.fastpath import FastTable, pack_row

HOST_BASE = 0x0A000000
REMOTE = 0x08080808
SNAT_BASE = 0x01010000
MAC_HOST = 0x020000000001
MAC_ROUTER = 0x0200000000FE
PORT_HOST, PORT_UPLINK = 2, 1


def conn_fields(c: np.ndarray):
    host = (HOST_BASE + c).astype(np.uint64)
    port = (1024 + c % 60000).astype(np.uint64)
    snat = (SNAT_BASE + c // 60000).astype(np.uint64)
    return host, port, snat


def keys_and_actions(c: int):
    """The two (key, out_port, new-fields) entries of connection ``c``."""
    host, sport, snat = HOST_BASE + c, 1024 + c % 60000, SNAT_BASE + c // 60000
    ko = (PORT_HOST, MAC_HOST, MAC_ROUTER, host, REMOTE, 6, sport, 80)
    kr = (PORT_UPLINK, MAC_ROUTER, MAC_HOST, REMOTE, snat, 6, 80, sport)
    return (ko, PORT_UPLINK, {"new_nw_src": snat}), (kr, PORT_HOST, {"new_nw_dst": host})


def fill_table(n_conns: int, capacity: int | None = None) -> FastTable:
    """A FastTable holding both directions of ``n_conns`` connections."""
    t = FastTable(capacity or 2 * n_conns)
    rows = np.array([pack_row(key, port, **new) for c in range(n_conns) for key, port, new in keys_and_actions(c)],
                    dtype=np.uint64)
    t.insert_many(rows)
    return t


def _csum_rows(words: np.ndarray) -> np.ndarray:
    s = words.astype(np.uint64).sum(axis=1)
    for _ in range(3):
        s = (s & 0xFFFF) + (s >> 16)
    return (~s & 0xFFFF).astype(np.uint16)


def make_frames(n_pkts: int, n_conns: int, size: int = 64, seed: int = 1):
    """(2-D uint8 frames (n, size), in_ports int64, conn ids, directions)."""
    rng = np.random.default_rng(seed)
    conn = rng.integers(0, n_conns, n_pkts)
    d = rng.integers(0, 2, n_pkts)
    host, port, snat = conn_fields(conn)
    src = np.where(d == 0, host, REMOTE).astype(np.uint32)
    dst = np.where(d == 0, REMOTE, snat).astype(np.uint32)
    sport = np.where(d == 0, port, 80).astype(np.uint16)
    dport = np.where(d == 0, 80, port).astype(np.uint16)
    f = np.zeros((n_pkts, size), dtype=np.uint8)
    mh = np.frombuffer(MAC_HOST.to_bytes(6, "big"), np.uint8)
    mr = np.frombuffer(MAC_ROUTER.to_bytes(6, "big"), np.uint8)
    f[:, 0:6] = np.where(d[:, None] == 0, mr, mh)
    f[:, 6:12] = np.where(d[:, None] == 0, mh, mr)
    f[:, 12] = 0x08
    f[:, 14] = 0x45
    tl = size - 14
    f[:, 16] = tl >> 8
    f[:, 17] = tl & 0xFF
    f[:, 20] = 0x40  # DF
    f[:, 22] = 64
    f[:, 23] = 6

    def put(col, arr, nbytes):
        be = arr.astype(f">u{nbytes}").view(np.uint8).reshape(-1, nbytes)
        f[:, col:col + nbytes] = be

    put(26, src, 4)
    put(30, dst, 4)
    put(34, sport, 2)
    put(36, dport, 2)
    put(38, (conn * 7919).astype(np.uint32), 4)  # seq
    put(42, (conn * 104729).astype(np.uint32), 4)  # ack
    f[:, 46] = 5 << 4
    f[:, 47] = 0x10  # ACK
    f[:, 48] = 0xFF
    f[:, 49] = 0xFF
    put(24, _csum_rows(f[:, 14:34].copy().view(">u2")), 2)
    seg = f[:, 34:].copy()
    if seg.shape[1] % 2:
        seg = np.concatenate([seg, np.zeros((n_pkts, 1), np.uint8)], axis=1)
    words = seg.view(">u2").astype(np.uint64).sum(axis=1)
    pseudo = ((src >> 16).astype(np.uint64) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF) + 6 + tl - 20)
    put(50, _csum_rows(np.stack([words, pseudo], axis=1)), 2)
    in_ports = np.where(d == 0, PORT_HOST, PORT_UPLINK).astype(np.int64)
    return f, in_ports, conn, d


def csum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = int(np.frombuffer(data, ">u2").astype(np.uint64).sum())
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def bad_checksums(frames: list[bytes]) -> int:
    """How many IPv4/TCP frames fail a full checksum recomputation."""
    bad = 0
    for fr in frames:
        tl = int.from_bytes(fr[16:18], "big")
        if csum16(fr[14:34]) != 0:
            bad += 1
            continue
        pseudo = fr[26:34] + b"\0\x06" + (tl - 20).to_bytes(2, "big")
        if csum16(pseudo + fr[34:14 + tl]) != 0:
            bad += 1
    return bad
