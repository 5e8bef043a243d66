"""The batched fast path against an obvious pure-Python model of the same table semantics."""

from __future__ import annotations

import hashlib
import os
import random
import struct
import subprocess
import sys

import numpy as np
import pytest

from ctswitch.datapath.fastpath import (
    FastTable,
    csum_const,
    key_from_cache_key,
    pack_key,
    pack_row,
    run_in_order,
)

MAC_A, MAC_B, MAC_R = 0x020000000001, 0x020000000002, 0x0200000000FE
SNAT_IP = 0x01010110


# ------------------------------------------------------------------ frames
def csum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def l4_csum(src: int, dst: int, proto: int, seg: bytes) -> int:
    pseudo = struct.pack("!IIBBH", src, dst, 0, proto, len(seg))
    return csum16(pseudo + seg)


def frame(dl_src, dl_dst, src, dst, proto, sport, dport, *, flags=0x10, payload=b"", ttl=64,
          frag=0, udp_zero=False, vlan=None, ihl=5, pad=0) -> bytes:
    """Ethernet/IPv4/TCP|UDP with correct checksums (the test's own builder)."""
    opts = b"\x01" * (4 * (ihl - 5))
    if proto == 6:
        l4 = struct.pack("!HHIIBBHHH", sport, dport, 1000, 2000, 5 << 4, flags, 65535, 0, 0) + payload
        c = l4_csum(src, dst, 6, l4)
        l4 = l4[:16] + struct.pack("!H", c) + l4[18:]
    elif proto == 17:
        l4 = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
        c = 0 if udp_zero else (l4_csum(src, dst, 17, l4) or 0xFFFF)
        l4 = l4[:6] + struct.pack("!H", c) + l4[8:]
    else:  # ICMP echo
        l4 = struct.pack("!BBHHH", 8, 0, 0, 1, 1) + payload
        l4 = l4[:2] + struct.pack("!H", csum16(l4)) + l4[4:]
    tl = 4 * ihl + len(l4)
    ip = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, tl, 1, frag, ttl, proto, 0,
                     src.to_bytes(4, "big"), dst.to_bytes(4, "big")) + opts
    ip = ip[:10] + struct.pack("!H", csum16(ip)) + ip[12:]
    eth = dl_dst.to_bytes(6, "big") + dl_src.to_bytes(6, "big")
    if vlan is not None:
        eth += struct.pack("!HH", 0x8100, vlan)
    eth += b"\x08\x00"
    f = eth + ip + l4
    return f + b"\0" * pad


# ------------------------------------------------------------------ the model
class Model:
    """Same semantics, the obvious way: dict of key -> action, checksums recomputed in full."""

    def __init__(self):
        self.table = {}  # key -> [out_port, new fields dict, packets, bytes, used]

    def insert(self, key, out_port, **new):
        self.table[key] = [out_port, new, 0, 0, 0]

    def remove(self, key):
        return self.table.pop(key, None) is not None

    def handle(self, in_port, f: bytes, now):
        """(out_port, new frame) or None (miss)."""
        if len(f) < 42 or f[12:14] != b"\x08\x00" or f[14] != 0x45:
            return None
        tl, fragw, ttl, proto = struct.unpack_from("!H2xHBB", f, 16)
        if fragw & 0x3FFF or ttl <= 1 or tl + 14 > len(f) or proto not in (6, 17):
            return None
        if proto == 6 and (len(f) < 54 or f[47] & 0x05 or f[46] >> 4 < 5 or 20 + 4 * (f[46] >> 4) > tl):
            return None
        if proto == 17 and tl < 28:
            return None
        src, dst, sport, dport = struct.unpack_from("!IIHH", f, 26)
        key = (in_port, int.from_bytes(f[6:12], "big"), int.from_bytes(f[0:6], "big"), src, dst, proto,
               sport, dport)
        e = self.table.get(key)
        if e is None:
            return None
        out_port, new = e[0], e[1]
        e[2] += 1
        e[3] += len(f)
        e[4] = now
        b = bytearray(f)
        b[0:6] = new.get("new_dl_dst", key[2]).to_bytes(6, "big")
        b[6:12] = new.get("new_dl_src", key[1]).to_bytes(6, "big")
        ns, nd = new.get("new_nw_src", src), new.get("new_nw_dst", dst)
        nsp, ndp = new.get("new_tp_src", sport), new.get("new_tp_dst", dport)
        if (ns, nd, nsp, ndp) != (src, dst, sport, dport):
            b[26:38] = struct.pack("!IIHH", ns, nd, nsp, ndp)
            b[24:26] = b"\0\0"
            b[24:26] = struct.pack("!H", csum16(bytes(b[14:34])))
            seg_end = 14 + tl
            if proto == 6:
                b[50:52] = b"\0\0"
                b[50:52] = struct.pack("!H", l4_csum(ns, nd, 6, bytes(b[34:seg_end])))
            elif f[40:42] != b"\0\0":
                b[40:42] = b"\0\0"
                b[40:42] = struct.pack("!H", l4_csum(ns, nd, 17, bytes(b[34:seg_end])) or 0xFFFF)
        return out_port, bytes(b)


def batch_arrays(frames, ports):
    lens = np.array([len(f) for f in frames], dtype=np.int64)
    offs = np.zeros(len(frames), dtype=np.int64)
    offs[1:] = np.cumsum(lens)[:-1] + 0
    # Leave a 2-byte gap between frames so an overrun would show.
    offs += np.arange(len(frames), dtype=np.int64) * 2
    buf = np.zeros(int(offs[-1] + lens[-1] + 2) if frames else 0, dtype=np.uint8)
    for o, f in zip(offs.tolist(), frames):
        buf[o:o + len(f)] = np.frombuffer(f, dtype=np.uint8)
    return buf, offs, lens, np.array(ports, dtype=np.int64)


def make_conns(rng, n):
    """n connections, both directions: (key, out_port, new) triples plus a frame maker per key."""
    entries = []
    for c in range(n):
        proto = 6 if c % 3 else 17
        host = 0x0A000000 + c + 2
        remote = 0x08080000 + rng.randrange(1 << 16)
        sport, dport, nport = 1024 + c, rng.choice((80, 443, 53, 4791)), 30000 + c
        ko = (2, MAC_A + c, MAC_R, host, remote, proto, sport, dport)
        kr = (1, MAC_R, MAC_A + c, remote, SNAT_IP, proto, dport, nport)
        new_o = {"new_nw_src": SNAT_IP, "new_tp_src": nport}
        new_r = {"new_nw_dst": host, "new_tp_dst": sport}
        if c % 5 == 0:  # a MAC rewrite too (e.g. mod_dl_dst)
            new_o["new_dl_dst"] = 0x02AA00000000 + c
        if c % 7 == 0:  # no rewrite at all (plain ct, no NAT)
            new_r = {}
        entries.append((ko, 1, new_o))
        entries.append((kr, 2, new_r))
    return entries


def frame_for(rng, key, **kw):
    in_port, dl_src, dl_dst, src, dst, proto, sport, dport = key
    payload = bytes(rng.randrange(256) for _ in range(rng.choice((0, 6, 100, 1460))))
    return frame(dl_src, dl_dst, src, dst, proto, sport, dport, payload=payload,
                 udp_zero=(proto == 17 and rng.random() < 0.3), **kw)


def random_traffic(rng, entries, n):
    """Frames and in-ports: mostly hits, plus every kind of miss."""
    frames, ports = [], []
    for _ in range(n):
        key = rng.choice(entries)[0]
        r = rng.random()
        kw = {}
        k = key
        if r < 0.70:
            pass
        elif r < 0.73:
            kw["flags"] = rng.choice((0x02, 0x01 | 0x10, 0x04, 0x12))
        elif r < 0.75:
            kw["frag"] = rng.choice((0x2000, 0x0001, 0x2010))
        elif r < 0.77:
            kw["ttl"] = rng.choice((0, 1))
        elif r < 0.79:
            kw["vlan"] = 5
        elif r < 0.81:
            kw["ihl"] = 6
        elif r < 0.84:
            k = (key[0] ^ 3,) + key[1:]  # wrong port
        elif r < 0.87:
            k = key[:7] + ((key[7] + 1) & 0xFFFF,)  # unknown connection
        elif r < 0.89:
            k = key[:1] + (key[1] ^ 1,) + key[2:]  # other source MAC
        elif r < 0.91:
            k = key[:5] + (1,) + key[6:]  # ICMP
        elif r < 0.93:
            kw["pad"] = 10  # Ethernet padding after the IP packet: still a hit
        if k[5] not in (6, 17):
            f = frame(k[1], k[2], k[3], k[4], 1, 0, 0)
        else:
            f = frame_for(rng, k, **kw)
        if r >= 0.93 and r < 0.95:
            f = f[:rng.randrange(20, len(f))]  # truncated
        if r >= 0.95 and r < 0.96:
            f = f[:16] + b"\xff\xff" + f[18:]  # IP total length beyond the frame
        frames.append(f)
        ports.append(k[0])
    return frames, ports


@pytest.fixture(scope="module")
def setup():
    rng = random.Random(7)
    entries = make_conns(rng, 150)
    t = FastTable(400)
    m = Model()
    for key, port, new in entries:
        assert t.insert(key, port, **new) >= 0
        m.insert(key, port, **new)
    return rng, entries, t, m


def run_model(m, frames, ports, now):
    return [m.handle(p, f, now) for f, p in zip(frames, ports)]


def test_batch_matches_model(setup):
    rng, entries, t, m = setup
    frames, ports = random_traffic(rng, entries, 3000)
    buf, offs, lens, inp = batch_arrays(frames, ports)
    orig = buf.copy()
    outp = np.empty(len(frames), dtype=np.int32)
    eids = np.empty(len(frames), dtype=np.int64)
    hits = t.process(buf, offs, lens, inp, 5000, outp, eids)
    expect = run_model(m, frames, ports, 5000)
    assert hits == sum(e is not None for e in expect)
    assert 1500 < hits < 2900  # the traffic really mixes hits and misses
    for i, e in enumerate(expect):
        o, n = int(offs[i]), int(lens[i])
        got = bytes(buf[o:o + n])
        if e is None:
            assert outp[i] == -1 and eids[i] == -1
            assert got == frames[i]  # a miss leaves the frame untouched
        else:
            assert outp[i] == e[0]
            assert got == e[1], i
    # The gaps between frames were never written.
    gaps = np.ones(len(buf), dtype=bool)
    for o, n in zip(offs.tolist(), lens.tolist()):
        gaps[o:o + n] = False
    assert np.array_equal(buf[gaps], orig[gaps])
    for key, (_port, _new, pk, by, used) in m.table.items():
        assert t.counters(t.lookup(key)) == (pk, by, used if pk else 0)


def test_copy_mode_and_per_frame_clock(setup):
    rng, entries, _t, _m = setup
    t = FastTable(400)
    m = Model()
    for key, port, new in entries:
        t.insert(key, port, **new)
        m.insert(key, port, **new)
    frames, ports = random_traffic(rng, entries, 500)
    buf, offs, lens, inp = batch_arrays(frames, ports)
    out = np.zeros_like(buf)
    nows = np.arange(len(frames), dtype=np.int64) * 3 + 100
    outp = np.empty(len(frames), dtype=np.int32)
    eids = np.empty(len(frames), dtype=np.int64)
    t.process(buf, offs, lens, inp, nows, outp, eids, out=out)
    for i, (f, p) in enumerate(zip(frames, ports)):
        e = m.handle(p, f, int(nows[i]))
        o, n = int(offs[i]), int(lens[i])
        assert bytes(buf[o:o + n]) == f  # input untouched
        if e is not None:
            assert bytes(out[o:o + n]) == e[1]
    for key, (_port, _new, pk, by, used) in m.table.items():
        assert t.counters(t.lookup(key)) == (pk, by, used if pk else 0)


def test_checksums_verified_by_scapy(setup):
    scapy = pytest.importorskip("scapy.all")
    rng, entries, t, _m = setup
    frames = [frame_for(rng, rng.choice(entries)[0]) for _ in range(60)]
    ports = []
    keys = []
    for f in frames:
        src, dst, sport, dport = struct.unpack_from("!IIHH", f, 26)
        k = next(k for k, _p, _n in entries if k[3:5] == (src, dst) and k[6:] == (sport, dport))
        ports.append(k[0])
        keys.append(k)
    buf, offs, lens, inp = batch_arrays(frames, ports)
    outp = np.empty(len(frames), dtype=np.int32)
    eids = np.empty(len(frames), dtype=np.int64)
    assert t.process(buf, offs, lens, inp, 1, outp, eids) == len(frames)
    rewritten = 0
    for i in range(len(frames)):
        o, n = int(offs[i]), int(lens[i])
        raw = bytes(buf[o:o + n])
        p = scapy.Ether(raw)
        ip = p[scapy.IP]
        l4 = p[scapy.TCP] if ip.proto == 6 else p[scapy.UDP]
        got_ip, got_l4 = ip.chksum, l4.chksum
        if ip.proto == 17 and got_l4 == 0:
            assert frames[i][40:42] == b"\0\0"  # zero stays zero
            got_l4 = None
        del ip.chksum
        if got_l4 is not None:
            del l4.chksum
        q = scapy.Ether(bytes(p))
        assert q[scapy.IP].chksum == got_ip
        if got_l4 is not None:
            ql4 = q[scapy.TCP] if ip.proto == 6 else q[scapy.UDP]
            assert ql4.chksum == got_l4
        rewritten += raw != frames[i]
    assert rewritten > 30


def test_insert_remove_against_dict():
    """Backward-shift deletion keeps every remaining key findable; ids stay stable."""
    rng = random.Random(3)
    t = FastTable(64)  # index of 128 slots: long probe chains
    live = {}
    for step in range(4000):
        key = (rng.randrange(4), MAC_A, MAC_B, rng.randrange(8), 9, 6, rng.randrange(6), 80)
        if rng.random() < 0.55:
            e = t.insert(key, 3, new_tp_src=step & 0xFFFF)
            if e < 0:
                assert len(live) == 64 and key not in live
            else:
                live[key] = e
        else:
            assert t.remove(key) == (key in live)
            live.pop(key, None)
        if step % 97 == 0:
            for k, e in live.items():
                assert t.lookup(k) == e
            assert int((t.index >= 0).sum()) == len(live) == len(t)
    for k, e in live.items():
        assert t.lookup(k) == e
    assert t.lookup((9, 1, 1, 1, 1, 6, 1, 1)) == -1


def test_full_table_and_bad_entries():
    t = FastTable(2)
    k = [(1, MAC_A, MAC_B, 1, 2, 6, p, 80) for p in range(3)]
    assert t.insert(k[0], 1) >= 0 and t.insert(k[1], 1) >= 0
    assert t.insert(k[2], 1) == -1
    e0 = t.lookup(k[0])
    assert t.insert(k[0], 2) == e0  # replacing an entry needs no new room and keeps its id
    assert t.out_port(e0) == 2 and len(t) == 2
    assert t.remove(k[1]) and not t.remove(k[1]) and len(t) == 1
    assert t.insert(k[2], 1) >= 0 and t.lookup(k[2]) >= 0
    with pytest.raises(ValueError):
        t.insert((1, MAC_A, MAC_B, 1, 2, 1, 0, 0), 1)
    ck = ("br0", 1, MAC_A, MAC_B, 0x0800, 0, 1, 2, 0, 0, 6, 5, 80)
    assert key_from_cache_key(ck) == (1, MAC_A, MAC_B, 1, 2, 6, 5, 80)
    assert key_from_cache_key(ck[:5] + (0x1005,) + ck[6:]) is None
    assert key_from_cache_key(ck[:4] + (0x86DD,) + ck[5:]) is None


def test_csum_const_is_rfc1624():
    old, new = bytes.fromhex("0a0000020101"), bytes.fromhex("010101107531")
    hdr = bytes.fromhex("45000028000100004006") + b"\0\0" + old + b"\x08\x08\x08\x08"[:2]
    hc = csum16(hdr)
    c = csum_const(old, new)
    x = (~hc & 0xFFFF) + c
    x = (x & 0xFFFF) + (x >> 16)
    x = (x & 0xFFFF) + (x >> 16)
    assert ~x & 0xFFFF == csum16(hdr.replace(old, new))


def _pack_row_from_bytes(key, out_port, new):
    """The row layout spelled out with bytes (what ``pack_row`` computes with integers)."""
    in_port, dl_src, dl_dst, nw_src, nw_dst, proto, sport, dport = key
    v = dict(dl_src=dl_src, dl_dst=dl_dst, nw_src=nw_src, nw_dst=nw_dst, tp_src=sport, tp_dst=dport)
    n = {f: new.get("new_" + f, v[f]) for f in v}
    mac, nmac = (d["dl_dst"].to_bytes(6, "big") + d["dl_src"].to_bytes(6, "big") for d in (v, n))
    net, nnet = (d["nw_src"].to_bytes(4, "big") + d["nw_dst"].to_bytes(4, "big") + d["tp_src"].to_bytes(2, "big")
                 + d["tp_dst"].to_bytes(2, "big") for d in (v, n))
    le = lambda b: int.from_bytes(b, "little")  # noqa: E731
    flags = (1 if nmac != mac else 0) | (2 if nnet != net else 0)
    ipc, l4c = csum_const(net[:8], nnet[:8]), csum_const(net, nnet)
    return [le(mac[:8]), le(mac[8:]) | in_port << 32, le(net[:8]), le(net[8:]) | proto << 32,
            le(nmac[:8]), le(nmac[8:]) | out_port << 32 | flags << 48, le(nnet[:8]), le(nnet[8:]) | ipc << 32 | l4c << 48,
            0, 0, 0]


def test_pack_row_integer_arithmetic_matches_bytes_layout():
    rng = random.Random(8)
    bits = {"new_dl_src": 48, "new_dl_dst": 48, "new_nw_src": 32, "new_nw_dst": 32, "new_tp_src": 16, "new_tp_dst": 16}
    for _ in range(3000):
        key = (rng.randrange(1 << 32), rng.randrange(1 << 48), rng.randrange(1 << 48), rng.randrange(1 << 32),
               rng.randrange(1 << 32), rng.choice((6, 17)), rng.randrange(1 << 16), rng.randrange(1 << 16))
        new = {f: rng.randrange(1 << b) for f, b in bits.items() if rng.random() < 0.3}
        if rng.random() < 0.2:
            new["new_nw_src"] = key[3]  # a "rewrite" to the same value is no rewrite
        port = rng.randrange(1 << 16)
        row = pack_row(key, port, **new)
        assert row == _pack_row_from_bytes(key, port, new)
        assert pack_key(key) == row[:4]
    row = pack_row((1, 2, 3, 4, 5, 6, 7, 8), 9)  # no rewrite: flags 0, new words = key words
    assert (row[4], row[6], row[5] >> 32, row[7] & 0xFFFFFFFF) == (row[0], row[2], 9, row[3] & 0xFFFFFFFF)
    old, new = bytes.fromhex("0a000002010100507531"), bytes.fromhex("01010110010100501f90")
    assert csum_const(int.from_bytes(old, "big"), int.from_bytes(new, "big"), 5) == csum_const(old, new)


def test_run_in_order_equals_one_at_a_time():
    """Misses go to the slow path in order; what it inserts/removes applies to the next frames."""
    rng = random.Random(11)
    entries = make_conns(rng, 20)
    frames, ports, seq = [], [], []
    for _ in range(400):
        key, _p, _n = rng.choice(entries)
        fl = rng.choice((0x10, 0x10, 0x10, 0x10, 0x11))
        frames.append(frame_for(rng, key, flags=fl))
        ports.append(key[0])
        seq.append((key, fl))
    by_key = {k: (p, n) for k, p, n in entries}

    def slow_model(table, key, fl):
        # The slow path offloads a connection it sees (both directions) and tears it down on FIN.
        if key[5] == 6 and fl & 1:
            table.remove(key)
        else:
            table.insert(key, by_key[key][0], **by_key[key][1])

    # One at a time.
    m = Model()
    expect = []
    for f, p, (key, fl) in zip(frames, ports, seq):
        r = m.handle(p, f, 7)
        if r is None:
            slow_model(m, key, fl)
        expect.append(r)
    t = FastTable(64)
    buf, offs, lens, inp = batch_arrays(frames, ports)
    outp = np.empty(len(frames), dtype=np.int32)
    eids = np.empty(len(frames), dtype=np.int64)
    misses = []

    def slow(i):
        misses.append(i)
        slow_model(t, *seq[i])

    hits = run_in_order(t, buf, offs, lens, inp, 7, outp, eids, slow)
    assert misses == [i for i, e in enumerate(expect) if e is None]
    assert hits == len(frames) - len(misses)
    for i, e in enumerate(expect):
        if e is not None:
            o, n = int(offs[i]), int(lens[i])
            assert (int(outp[i]), bytes(buf[o:o + n])) == e


def test_kernel_reports_sure_misses_behind_a_stop():
    """At a stop the kernel counts the frames right behind the miss that no table could hit."""
    from ctswitch.datapath import fastpath

    rng = random.Random(4)
    (key, port, new), (other, _p, _n) = make_conns(rng, 2)[2:]  # connection 1: TCP
    t = FastTable(8)
    t.insert(key, port, **new)
    hit = frame_for(rng, key)
    frames = [hit, frame_for(rng, other),  # a hit, then a miss (eligible, not in the table)
              frame_for(rng, key, flags=0x04), frame_for(rng, key, flags=0x11), hit[:12] + b"\x08\x06" + hit[14:],
              frame_for(rng, other), hit]  # RST, FIN, not IPv4: sure misses; then an eligible miss again
    buf, offs, lens, inp = batch_arrays(frames, [key[0], other[0], key[0], key[0], key[0], other[0], key[0]])
    outp = np.full(len(frames), 7, dtype=np.int32)
    eids = np.full(len(frames), 7, dtype=np.int64)
    nows = np.zeros(1, dtype=np.int64)
    with np.errstate(over="ignore"):
        r = fastpath._classify(buf, buf, offs, lens, inp, nows, 0, 0, len(frames), t.ent, t.index, t.mask,
                               outp, eids, False, True)
        # Behind the miss at 1: RST, FIN, not IPv4 (never hits: -2) and the eligible miss at 5 (not in
        # the table at the scan: -1), up to the hit at 6.
        assert tuple(int(x) for x in r) == (1, 1, 4)
        assert outp.tolist() == [port, -1, -1, -1, -1, -1, 7] and eids.tolist()[1:] == [-1, -2, -2, -2, -1, 7]
        r = fastpath._classify(buf, buf, offs, lens, inp, nows, 0, 5, len(frames), t.ent, t.index, t.mask,
                               outp, eids, False, True)
        assert tuple(int(x) for x in r) == (0, 0, 0)  # the eligible miss at 5: a hit right behind it
        assert tuple(int(x) for x in fastpath._classify(buf, buf, offs, lens, inp, nows, 0, 6, len(frames), t.ent,
                                                        t.index, t.mask, outp, eids, False, True)) == (1, 1, 0)


SCRIPT = r"""
import hashlib, random, sys
sys.path.insert(0, {testdir!r})
import numpy as np
import test_fastpath as T
from ctswitch.datapath import fastpath
rng = random.Random(5)
entries = T.make_conns(rng, 30)
t = fastpath.FastTable(100)
for k, p, n in entries:
    t.insert(k, p, **n)
frames, ports = T.random_traffic(rng, entries, 300)
buf, offs, lens, inp = T.batch_arrays(frames, ports)
outp = np.empty(len(frames), dtype=np.int32); eids = np.empty(len(frames), dtype=np.int64)
h = t.process(buf, offs, lens, inp, 9, outp, eids)
t.remove(entries[0][0]); t.remove(entries[3][0])
d = hashlib.sha256(buf.tobytes() + outp.tobytes() + eids.tobytes() + t.ent.tobytes() + t.index.tobytes())
print(h, d.hexdigest())
"""


def test_pure_python_path_gives_identical_results():
    """NUMBA_DISABLE_JIT=1 runs the kernels as plain Python: the no-numba fallback."""
    testdir = os.path.dirname(os.path.abspath(__file__))
    code = SCRIPT.format(testdir=testdir)
    res = []
    for env_extra in ({}, {"NUMBA_DISABLE_JIT": "1"}):
        env = dict(os.environ, **env_extra)
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        assert p.returncode == 0, p.stderr
        res.append(p.stdout.split())
    assert res[0] == res[1]
    assert int(res[0][0]) > 100
    assert hashlib.sha256(b"").hexdigest() not in res[0]


# ------------------------------------------------------------------ against the real Datapath
def _switch(batched: bool):
    from ctswitch.datapath.switch import Switch
    from ctswitch.flow.ofctl_syntax import parse_flow, wire_actions
    from ctswitch.ofproto.rule import Rule
    from ctswitch.packet import build

    sw = Switch()
    sw.params.set("other_config:hw-offload", True)
    sw.params.set("devlink:ct_max_offloaded_conns", 8)  # some connections stay [OFFLOAD] (software)
    br = sw.add_bridge("br0", "secure")
    br.add_port("p0", 1)
    br.add_port("pf0hpf", 2)
    for r in list(br.iter_rules()):
        br.tables[r.table_id].remove(r)
    for text in ("table=0,arp,action=normal", "table=0,ip,ct_state=-trk,action=ct(table=1,nat)",
                 "table=1,in_port=pf0hpf,ip,ct_state=+trk+new,action=ct(commit,nat(src=1.1.1.16)),p0",
                 "table=1,ip,ct_state=+trk+est,action=normal"):
        s = parse_flow(text, br.names)
        br.add_rule(Rule(s.table, s.priority, s.match, wire_actions(s.actions)))
    dp = sw.datapath
    dp.receive(br, 2, build.arp(1, "02:00:00:00:02:01", "10.0.0.1", "00:00:00:00:00:00", "10.0.0.254"), 1)
    dp.receive(br, 1, build.arp(2, "02:00:00:00:01:02", "10.0.0.254", "02:00:00:00:02:01", "10.0.0.1"), 2)
    bfp = None
    if batched:
        assert dp.enable_batch(capacity=64)  # the datapath's own hook-up (teardown hook included)
        bfp = dp.batch
    return sw, br, bfp


def tcp_pair(host: str, sp: int):
    """(up, dn): frame builders of one TCP connection of the SNAT switch, ``up(flags, seq, ack,
    payload)`` from ``host``:``sp`` to 8.8.8.8:80 in on port 2, ``dn(...)`` the reply to
    1.1.1.16:``sp`` in on port 1."""
    from ctswitch.packet import build
    H, R = "02:00:00:00:02:01", "02:00:00:00:01:02"

    def up(f, s, a, pl=b""):
        return 2, build.ipv4_tcp(host, "8.8.8.8", sp, 80, f, s, a, pl, src_mac=H, dst_mac=R)

    def dn(f, s, a, pl=b""):
        return 1, build.ipv4_tcp("8.8.8.8", "1.1.1.16", 80, sp, f, s, a, pl, src_mac=R, dst_mac=H)

    return up, dn


def _traffic(rng):
    out = []
    state = {}
    for _ in range(900):
        c = rng.randrange(20)
        up, dn = tcp_pair(f"10.0.0.{c + 10}", 2000 + c)
        st = state.get(c, 0)
        if st == 0:
            out += [up("S", 100, 0), dn("SA", 500, 101), up("A", 101, 501)]
            state[c] = 1
        elif st == 1 and rng.random() < 0.03:
            out += [up("FA", 101, 501), dn("FA", 501, 102), up("A", 102, 502)]
            state[c] = 2
        elif st == 1:
            pl = bytes(rng.randrange(0, 40))
            out.append(up("PA", 101, 501, pl) if rng.random() < 0.5 else dn("A", 501, 101, pl))
    return out


def test_receive_batch_sent_counts_what_the_outputs_held():
    """``receive_batch(..., sent)`` (the replay that only counts) keeps no slow-path output: the
    ports it appends to ``sent`` are those of the outputs the dict holds without it, in order, and
    the hits' ports and rewritten frames, the counters, connections, rules, ports and offload
    records are the same."""
    rng = random.Random(22)
    pkts = _traffic(rng)
    runs = []
    for keep in (True, False):
        sw, br, bfp = _switch(True)
        ports_seen, bufs, sent_all = [], [], []
        for s in range(0, len(pkts), 64):
            chunk = pkts[s:s + 64]
            buf, offs, lens, inp = batch_arrays([f for _p, f in chunk], [p for p, _f in chunk])
            sent = None if keep else []
            ports, slow = bfp.receive_batch(br, buf, offs, lens, inp, 5000, sent)
            if keep:
                sent_all += [o[0] for i in sorted(slow) for o in slow[i]]
            else:
                assert slow == {}
                sent_all += sent
            ports_seen.append(ports.tolist())
            bufs.append(buf.tobytes())
        sw.datapath.sync_counters()
        runs.append((ports_seen, bufs, sent_all, dict(sw.datapath.stats), dict(sw.datapath.drops),
                     sorted((c.orig, c.packets, c.bytes, c.status, c.state) for c in sw.tracker.iter_conns()),
                     [(r.n_packets, r.n_bytes, r.last_used_ms) for r in br.iter_rules()],
                     [(p.rx_packets, p.rx_bytes, p.tx_packets, p.tx_bytes) for p in br.ports.values()],
                     sw.offload.counters()))
    assert len(runs[0][2]) > 100
    assert runs[0] == runs[1]


def test_batched_datapath_equals_one_at_a_time():
    rng = random.Random(21)
    pkts = _traffic(rng)
    ref_sw, ref_br, _ = _switch(False)
    sw, br, bfp = _switch(True)
    ref_out = [ref_sw.datapath.receive(ref_br, p, f, 5000) for p, f in pkts]
    got = []
    for s in range(0, len(pkts), 64):
        chunk = pkts[s:s + 64]
        buf, offs, lens, inp = batch_arrays([f for _p, f in chunk], [p for p, _f in chunk])
        ports, slow = bfp.receive_batch(br, buf, offs, lens, inp, 5000)
        for i in range(len(chunk)):
            if i in slow:
                got.append(slow[i])
            else:
                o, n = int(offs[i]), int(lens[i])
                got.append([(int(ports[i]), bytes(buf[o:o + n]))])
    assert got == ref_out
    sw.datapath.sync_counters()  # hits are credited lazily (timer ticks, views, saves)
    assert sw.datapath.stats["fast_hw"] + sw.datapath.stats["fast_sw"] > 400
    assert sw.datapath.stats["fast_sw"] > 0 and sw.datapath.stats["fast_hw"] > 0
    assert dict(sw.datapath.stats) == dict(ref_sw.datapath.stats)
    ref_conns = sorted((c.orig, c.packets, c.bytes, c.status, c.state) for c in ref_sw.tracker.iter_conns())
    conns = sorted((c.orig, c.packets, c.bytes, c.status, c.state) for c in sw.tracker.iter_conns())
    assert conns == ref_conns
    assert [(r.n_packets, r.n_bytes, r.last_used_ms) for r in br.iter_rules()] == \
        [(r.n_packets, r.n_bytes, r.last_used_ms) for r in ref_br.iter_rules()]
    assert [(p.rx_packets, p.rx_bytes, p.tx_packets, p.tx_bytes) for p in br.ports.values()] == \
        [(p.rx_packets, p.rx_bytes, p.tx_packets, p.tx_bytes) for p in ref_br.ports.values()]
    assert sw.offload.counters() == ref_sw.offload.counters()
    ref_e = {ck: (e.packets, e.bytes, e.used) for ck, e in ref_sw.datapath.cached_items()}
    assert {ck: (e.packets, e.bytes, e.used) for ck, e in sw.datapath.cached_items()} == ref_e
