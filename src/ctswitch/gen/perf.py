"""Throughput traffic: many TCP connections in rounds, built in bulk with NumPy.

Theory of operation
-------------------
The shape is the OVS oracle's large-pcap generator (``shared/oracle``
§2), so the same files can feed OVS and ctswitch:

* per connection i: sport ``10000 + i % 50000``, dport ``80 + i // 50000``;
  SYN, SYN-ACK, then ``pairs`` x (host PSH+ACK data, remote ACK), then host
  FIN+ACK, remote FIN+ACK, host ACK (``5 + 2*pairs`` packets, ``pairs =
  (packets // conns - 5) // 2``);
* connections are interleaved in rounds (step k of every connection, then step
  k+1), host steps go to ``pf0hpf.pcap``, remote steps to ``p0.pcap``;
* ``p0.pcap`` starts with ``lag`` filler frames (ethertype 0x88b5, dropped by
  the flows) so that, read in lockstep, each reply comes >= lag packets after
  its request; then an ARP request/reply pair; timestamps step 1 µs per
  packet in that global order;
* data frames are ``size`` bytes (64: 10 B payload; 1514: IP 1500), ACKs 60 B.

Bulk building: every step of a connection has the same bytes except ports,
seq/ack and the TCP checksum, and seq/ack depend only on the step.  So a
block of steps x connections is one 2-D ``uint8`` array: the template frame
broadcast into every row, port/seq/ack columns stamped, the TCP checksum
computed for all rows at once as template checksum + the stamped words (RFC
1624 with old words 0), and the 16-byte pcap record headers laid in front.
Each block is written with one ``write`` call; memory is bounded by ``ROWS``.
"""

from __future__ import annotations

import json
import os

import numpy as np

from ..io.pcap import PcapWriter
from ..packet import build
from ..packet.headers import TCP_ACK, TCP_FIN, TCP_PSH, TCP_SYN

T0_NS = 1_700_000_000 * 1_000_000_000
ROWS = 1 << 16  # rows (packets) per NumPy block, at most
CISN, SISN = 1000, 500000


def plan(per_conn: int, payload_len: int) -> list[tuple[bool, int, bool, int, int]]:
    """Steps of one connection: (remote?, flags, with_payload, seq, ack)."""
    n_pairs = max(0, (per_conn - 5) // 2)
    shape = [(False, TCP_SYN, False), (True, TCP_SYN | TCP_ACK, False)]
    shape += [(False, TCP_PSH | TCP_ACK, True), (True, TCP_ACK, False)] * n_pairs
    shape += [(False, TCP_FIN | TCP_ACK, False), (True, TCP_FIN | TCP_ACK, False), (False, TCP_ACK, False)]
    steps = []
    hseq, rseq = CISN, SISN
    for remote, flags, has_pl in shape:
        if not remote:
            steps.append((False, flags, has_pl, hseq, 0 if flags == TCP_SYN else rseq))
            hseq += (1 if flags & (TCP_SYN | TCP_FIN) else 0) + (payload_len if has_pl else 0)
        else:
            steps.append((True, flags, has_pl, rseq, hseq))
            rseq += 1 if flags & (TCP_SYN | TCP_FIN) else 0
    return steps


def _rows(template: bytes, step_ids: np.ndarray, seqs: np.ndarray, acks: np.ndarray, conns: int,
          remote: bool, base_idx: int) -> bytes:
    """pcap records (header + frame) for every (step, connection) of a block."""
    L = len(template)
    S = len(step_ids)
    R = S * conns
    i = np.tile(np.arange(conns, dtype=np.int64), S)
    k = np.repeat(step_ids.astype(np.int64), conns)
    hsport = 10000 + i % 50000
    hdport = 80 + i // 50000
    sp, dp = (hdport, hsport) if remote else (hsport, hdport)
    seq = np.repeat(seqs.astype(np.int64), conns)
    ack = np.repeat(acks.astype(np.int64), conns)
    arr = np.empty((R, 16 + L), dtype=np.uint8)
    arr[:, 16:] = np.frombuffer(template, dtype=np.uint8)
    ts = T0_NS + (base_idx + k * conns + i) * 1000
    hdr = np.empty((R, 4), dtype="<u4")
    hdr[:, 0] = ts // 1_000_000_000
    hdr[:, 1] = (ts % 1_000_000_000) // 1000
    hdr[:, 2] = L
    hdr[:, 3] = L
    arr[:, :16] = hdr.view(np.uint8).reshape(R, 16)
    t = 16 + 34  # TCP header in the record
    for off, v in ((t, sp), (t + 2, dp)):
        arr[:, off] = v >> 8
        arr[:, off + 1] = v & 0xFF
    for off, v in ((t + 4, seq), (t + 8, ack)):
        arr[:, off] = v >> 24
        arr[:, off + 1] = (v >> 16) & 0xFF
        arr[:, off + 2] = (v >> 8) & 0xFF
        arr[:, off + 3] = v & 0xFF
    c0 = int.from_bytes(template[50:52], "big")
    s = (~c0 & 0xFFFF) + sp + dp + (seq >> 16) + (seq & 0xFFFF) + (ack >> 16) + (ack & 0xFFFF)
    s %= 0xFFFF
    s[s == 0] = 0xFFFF
    c = ~s & 0xFFFF
    arr[:, t + 16] = c >> 8
    arr[:, t + 17] = c & 0xFF
    return arr.tobytes()


def generate(out_dir: str, packets: int = 1_000_000, conns: int = 10_000, size: int = 64, *,
             snat: str | None = None, lag: int = 1024, host_port: str = "pf0hpf", remote_port: str = "p0",
             host_mac: str = "02:00:00:00:02:01", remote_mac: str = "02:00:00:00:01:02",
             host_ip: str = "2.2.2.1", remote_ip: str = "1.1.1.2") -> dict:
    """Writes ``<host_port>.pcap``, ``<remote_port>.pcap`` and ``meta.json``; returns the meta dict."""
    if conns < 1:
        raise ValueError("--conns must be at least 1")
    if not 55 <= size <= 1514:
        raise ValueError("--size must be 55..1514")
    if lag < 0:
        raise ValueError("--lag must not be negative")
    if conns > 50000 * (65536 - 80):
        raise ValueError("--conns too large")
    per_conn = max(5, packets // conns)
    payload = bytes((i * 7 + 3) & 0xFF for i in range(size - 54))
    steps = plan(per_conn, len(payload))
    back = snat or host_ip
    os.makedirs(out_dir, exist_ok=True)
    wh = PcapWriter(os.path.join(out_dir, f"{host_port}.pcap"), snaplen=65535)
    wr = PcapWriter(os.path.join(out_dir, f"{remote_port}.pcap"), snaplen=65535)
    try:
        ts = T0_NS
        filler = build.mac("ff:ff:ff:ff:ff:ff") + build.mac(remote_mac) + b"\x88\xb5" + bytes(46)
        for _ in range(lag):
            wr.write(ts, filler)
            ts += 1000
        wh.write(ts, build.arp(1, host_mac, host_ip, "00:00:00:00:00:00", remote_ip))
        wr.write(ts + 1000, build.arp(2, remote_mac, remote_ip, host_mac, host_ip))
        base = lag + 2
        per_block = max(1, ROWS // conns)

        def emit(ids: list[int]) -> None:
            """Writes steps ``ids`` (same side, flags and payload) for every connection."""
            remote, flags, has_pl = steps[ids[0]][:3]
            if remote:
                tpl = build.ipv4_tcp(remote_ip, back, 0, 0, flags, 0, 0, b"", win=65000,
                                     src_mac=remote_mac, dst_mac=host_mac)
            else:
                tpl = build.ipv4_tcp(host_ip, remote_ip, 0, 0, flags, 0, 0, payload if has_pl else b"",
                                     win=65000, src_mac=host_mac, dst_mac=remote_mac)
            seqs = np.array([steps[x][3] for x in ids], dtype=np.int64)
            acks = np.array([steps[x][4] for x in ids], dtype=np.int64)
            (wr if remote else wh).write_records(
                _rows(tpl, np.array(ids), seqs, acks, conns, remote, base), len(ids) * conns)

        n = len(steps)
        emit([0])
        emit([1])
        n_pairs = (n - 5) // 2
        for p0 in range(0, n_pairs, per_block):
            pairs = range(p0, min(n_pairs, p0 + per_block))
            emit([2 + 2 * q for q in pairs])  # host data (pf0hpf.pcap)
            emit([3 + 2 * q for q in pairs])  # remote ACKs (p0.pcap)
        for x in (n - 3, n - 2, n - 1):
            emit([x])
    finally:
        wh.close()
        wr.close()
    meta = {"packets": wh.count + wr.count, "per_port": {host_port: wh.count, remote_port: wr.count},
            "conns": conns, "filler_frames_in_p0": lag, "packets_per_conn": len(steps),
            "data_frame_len": max(60, size), "nat": snat is not None,
            "order": "rounds; 1 us timestamp steps"}
    with open(os.path.join(out_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    return meta
