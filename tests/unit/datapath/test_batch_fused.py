"""The one-call kernels of the batch table's per-connection operations (``BatchFastPath.add_output``
caching a direction, ``BatchFastPath.forget`` dropping a connection's) against the general path of
several calls (``fastpath._FUSED = False``): the same table, entry ids, free stack, side arrays,
connection map and counters, step by step, over two bridges, generation changes (stale entries),
a full table, a connection map that grows and forget's fallbacks."""

from __future__ import annotations

import os
import random
import sys

import numpy as np
import pytest

pytest.importorskip("numpy")

from ctswitch.control.appctl import fdb_flush  # noqa: E402
from ctswitch.datapath import fastpath  # noqa: E402
from ctswitch.datapath.fastpath import ConnMap  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_batch_cache import _state  # noqa: E402
from test_fastpath import batch_arrays, tcp_pair  # noqa: E402

FLOWS = ("table=0,arp,action=normal", "table=0,ip,ct_state=-trk,action=ct(table=1,nat)",
         "table=1,in_port={pf},ip,ct_state=+trk+new,action=ct(commit,nat(src=1.1.1.16)),{p}",
         "table=1,ip,ct_state=+trk+est,action=normal")


def _switch():
    """Two bridges (br0, br1) of the SNAT flows; some connections stay software-offloaded."""
    from ctswitch.datapath.switch import Switch
    from ctswitch.flow.ofctl_syntax import parse_flow, wire_actions
    from ctswitch.ofproto.rule import Rule
    from ctswitch.packet import build

    sw = Switch()
    sw.params.set("other_config:hw-offload", True)
    sw.params.set("devlink:ct_max_offloaded_conns", 30)
    brs = []
    for b in range(2):
        br = sw.add_bridge(f"br{b}", "secure")
        br.add_port(f"p{b}", 1)
        br.add_port(f"pf{b}hpf", 2)
        br.add_port(f"x{b}", 3)  # floods (unknown MACs after fdb/flush) have two outputs: not mirrorable
        for r in list(br.iter_rules()):
            br.tables[r.table_id].remove(r)
        for text in FLOWS:
            s = parse_flow(text.format(pf=f"pf{b}hpf", p=f"p{b}"), br.names)
            br.add_rule(Rule(s.table, s.priority, s.match, wire_actions(s.actions)))
        sw.datapath.receive(br, 2, build.arp(1, "02:00:00:00:02:01", "10.0.0.1", "00:00:00:00:00:00",
                                             "10.0.0.254"), 1)
        sw.datapath.receive(br, 1, build.arp(2, "02:00:00:00:01:02", "10.0.0.254", "02:00:00:00:02:01",
                                             "10.0.0.1"), 2)
        brs.append(br)
    return sw, brs


def _traffic(rng, n=1500, conns=40):
    """(bridge number, in_port, frame): TCP connections on both bridges (FIN/RST closes, reopens)."""
    out = []
    state = {}
    for _ in range(n):
        c = rng.randrange(conns)
        b = c % 2
        host, sp = f"10.{b}.0.{c + 10}", 2000 + 50 * b + c + 100 * state.get(("gen", c), 0)
        up, dn = tcp_pair(host, sp)
        st = state.get(c, 0)
        if st == 0:
            fr = [up("S", 100, 0), dn("SA", 500, 101), up("A", 101, 501)]
            state[c] = 1
        elif st == 1 and rng.random() < 0.03:
            fr = [up("FA", 101, 501), dn("FA", 501, 102), up("A", 102, 502)]
            state[c] = 2
        elif st == 1 and rng.random() < 0.01:
            fr = [dn("R", 501, 0) if rng.random() < 0.5 else up("RA", 101, 501)]
            state[c] = 2
        elif st == 1:
            pl = bytes(rng.randrange(0, 40))
            fr = [up("PA", 101, 501, pl) if rng.random() < 0.5 else dn("A", 501, 101, pl)]
        else:
            if rng.random() < 0.2:
                state[("gen", c)] = state.get(("gen", c), 0) + 1
                state[c] = 0
            continue
        out += [(b, p, f) for p, f in fr]
    return out


def _tables(sw) -> dict:
    """Every array and count of the batch table (byte-exact), but the credited counters ``fpk``,
    ``fby`` and ``fused1`` of free entry ids: dead values, which forget's kernel does not write
    when it drops an entry (an insert writes them before the id is used again)."""
    b = sw.datapath.batch
    out = {"live": b.live, "names": list(b.names), "conns": (b.conns.n, b.conns.keys.tobytes(),
                                                            b.conns.vals[b.conns.keys != -1].tobytes())}
    for t in b.by_no:
        live = t.cid1 != 0
        out[t.no] = (t.ent.tobytes(), t.index.tobytes(), None if t.sindex is None else t.sindex.tobytes(),
                     t._free[:t._nfree].tobytes(), t._nfree, t.nstale, t.nins, t.generation,
                     t.cid1.tobytes(), t.meta.tobytes(), t.fpk[live].tobytes(), t.fby[live].tobytes(),
                     t.fused1[live].tobytes(), t.fcreated.tobytes(), [(g, len(r), x, le) for g, r, x, le in t.shapes])
    return out


def _drive(sw, brs, pkts, rng, snapshot, batch: bool = True, sync: bool = False) -> list:
    """Feeds ``pkts`` ((bridge 0/1, in_port, frame)) in random chunks at advancing times, each
    bridge's part of a chunk one frame at a time or (``batch``, 70 %) through the batch receive,
    with random FDB flushes, generation changes, cache flushes and (``sync``) counter syncs between
    chunks; then lets every connection expire.  Returns ``snapshot(outputs)`` after each chunk."""
    dp = sw.datapath
    steps = []
    now = 5000
    pos = 0
    while pos < len(pkts):
        size = rng.randrange(1, 60)
        chunk = pkts[pos:pos + size]
        pos += size
        now += rng.randrange(0, 400)
        sw.now = now
        dp.tick(now)
        got = []
        for b in range(2):
            part = [(p, f) for bb, p, f in chunk if bb == b]
            if not part:
                continue
            if not batch or rng.random() < 0.3:
                got += [dp.receive(brs[b], p, f, now) for p, f in part]
            else:
                buf, offs, lens, inp = batch_arrays([f for _p, f in part], [p for p, _f in part])
                ports, slow = dp.batch.receive_batch(brs[b], buf, offs, lens, inp, now)
                got += [slow[i] if i in slow else [(int(ports[i]), bytes(buf[int(offs[i]):int(offs[i] + lens[i])]))]
                        for i in range(len(part))]
        r = rng.random()
        if r < 0.03:
            fdb_flush(sw, [])  # the generation changes: the current entries become stale
        elif r < 0.05:
            brs[rng.randrange(2)].generation += 1
        elif r < 0.06:
            dp.flush_cache()
        if sync and rng.random() < 0.5:
            dp.sync_counters()
        steps.append(snapshot(got))
    now += 400_000  # every connection expires: forgotten
    sw.now = now
    dp.tick(now)
    return steps


def _run(fused: bool, seed: int, capacity: int, small_map: bool, fout_rows: int, monkeypatch):
    rng = random.Random(seed)
    pkts = _traffic(rng)
    sw, brs = _switch()
    dp = sw.datapath
    assert dp.enable_batch(capacity=capacity)
    if small_map:  # the connection map grows while connections come (the kernel leaves growth to add)
        dp.batch.conns = ConnMap(8)
    dp.batch._fvals = np.empty(fout_rows, dtype=np.int64)  # 1: forget's fallback for 2 entries
    monkeypatch.setattr(fastpath, "_FUSED", fused)
    steps = _drive(sw, brs, pkts, rng, lambda got: (got, _tables(sw)), sync=True)
    steps.append(_tables(sw))
    steps.append([_state(sw, br) for br in brs])
    return steps


@pytest.mark.parametrize("seed,capacity,small_map,fout_rows", [(1, 4096, False, 8), (2, 12, True, 8),
                                                               (3, 4096, True, 1), (4, 40, False, 8)])
def test_fused_kernels_equal_general_path(seed, capacity, small_map, fout_rows, monkeypatch):
    calls = {"put": 0, "forget": 0}
    put, forget = fastpath._mt_put, fastpath._mt_forget

    def counted_put(*a):
        calls["put"] += 1
        return put(*a)

    def counted_forget(*a):
        calls["forget"] += 1
        return forget(*a)

    monkeypatch.setattr(fastpath, "_mt_put", counted_put)
    monkeypatch.setattr(fastpath, "_mt_forget", counted_forget)
    ref = _run(False, seed, capacity, small_map, fout_rows, monkeypatch)
    assert calls == {"put": 0, "forget": 0}
    got = _run(True, seed, capacity, small_map, fout_rows, monkeypatch)
    assert calls["put"] > 20 and calls["forget"] > 10
    assert len(got) == len(ref)
    for i, (g, r) in enumerate(zip(got, ref, strict=True)):
        assert g == r, f"step {i}"


def _readd_all(sw, generation: int, now: int) -> list[int]:
    """``add_output`` again of every decision the batch table holds (as the slow path would cache it)."""
    from ctswitch.flow.key import (
        DL_DST,
        DL_SRC,
        DL_TYPE,
        IN_PORT,
        N_FIELDS,
        NW_DST,
        NW_PROTO,
        NW_SRC,
        TP_DST,
        TP_SRC,
    )

    b = sw.datapath.batch
    res = []
    for ck, fe in sorted(b.items(), key=lambda x: x[0]):
        key = [0] * N_FIELDS
        key[IN_PORT], key[DL_SRC], key[DL_DST], key[DL_TYPE] = ck[1], ck[2], ck[3], ck[4]
        key[NW_SRC], key[NW_DST], key[NW_PROTO], key[TP_SRC], key[TP_DST] = ck[6], ck[7], ck[10], ck[11], ck[12]
        (port, deltas), = fe.outputs
        okey = list(key)
        for i, v in deltas:
            okey[i] = v
        res.append(b.add_output(ck, generation, fe.cid, fe.reply, port, key, okey, fe.rules, fe.extra, now,
                                tuple(fe.learns)))
    return res


def _loaded(seed: int):
    rng = random.Random(seed)
    sw, brs = _switch()
    dp = sw.datapath
    assert dp.enable_batch(capacity=4096)
    now = 5000
    for b, p, f in _traffic(rng, 600):
        dp.receive(brs[b], p, f, now)
        now += 3
    dp.sync_counters()
    return sw, brs, now


@pytest.mark.parametrize("stale", [False, True])
def test_readding_a_held_key_replaces_it(stale, monkeypatch):
    """A decision cached again under a key the table holds (current, or stale after a generation
    change): the kernel leaves it to the general path (the old entry credited and freed first)."""
    out = []
    for fused in (False, True):
        monkeypatch.setattr(fastpath, "_FUSED", fused)
        sw, brs, now = _loaded(5)
        assert len(sw.datapath.batch) > 20
        gen = brs[0].generation
        if stale:
            for br in brs:
                br.generation += 1
            gen += 1
        res = _readd_all(sw, gen, now)
        assert all(e >= 0 for e in res)
        out.append((res, _tables(sw), [_state(sw, br) for br in brs]))
    assert out[0] == out[1]


def test_out_of_range_rewrite_raises_as_pack_row_does(monkeypatch):
    import struct

    from ctswitch.flow.key import TP_SRC

    out = []
    for fused in (False, True):
        monkeypatch.setattr(fastpath, "_FUSED", fused)
        sw, brs, now = _loaded(6)
        b = sw.datapath.batch
        ck, fe = next(iter(b.items()))
        b.forget(fe.cid)
        before = _tables(sw)
        key = [0] * 64
        okey = list(key)
        okey[TP_SRC] = 1 << 16
        ck = ck[:11] + (0, 0)
        with pytest.raises(struct.error):
            b.add_output(ck, brs[0].generation, fe.cid, fe.reply, 1, key, okey, [], None, now, ())
        assert _tables(sw) == before
        out.append(before)
    assert out[0] == out[1]


def test_forget_crediting_a_mac_that_syncs_the_bridge(monkeypatch):
    """A forgotten connection's hits re-learn a MAC the bridge lost (fdb/flush, no sync since):
    ``learn`` credits the bridge's pending hits (``mac_sync``) in the middle of the forget, while
    the connection's later entries are still in the table, as the general path leaves them."""
    from ctswitch.conntrack.conn import IPS_HW_OFFLOAD

    out = []
    for fused in (False, True):
        monkeypatch.setattr(fastpath, "_FUSED", fused)
        rng = random.Random(8)
        sw, brs = _switch()
        dp = sw.datapath
        assert dp.enable_batch(capacity=4096)
        pkts = _traffic(rng, 900)
        now = 5000
        for b, p, f in pkts[:600]:
            dp.receive(brs[b], p, f, now)
        dp.sync_counters()
        # kernel hits pending on every entry of br0 (both directions of each connection)
        part = [(p, f) for b, p, f in pkts[600:] if b == 0 and f[47] & 0x07 == 0]
        buf, offs, lens, inp = batch_arrays([f for _p, f in part], [p for p, _f in part])
        nows = np.arange(now + 50, now + 50 + 7 * len(part), 7, dtype=np.int64)  # last uses differ
        dp.batch.receive_batch(brs[0], buf, offs, lens, inp, nows)
        assert dp.batch.dirty.get("br0")
        fdb_flush(sw, ["br0"])
        gone = [c for c in sorted(sw.tracker.iter_conns(), key=lambda c: c.id) if c.status & IPS_HW_OFFLOAD]
        assert len(gone) > 4
        for c in gone:
            dp.forget_conn(c)
        out.append((_tables(sw), [_state(sw, br) for br in brs], sorted(brs[0].mac.items())))
    assert out[0] == out[1]


def test_forget_credits_each_bridge_of_a_connection_on_two_bridges(monkeypatch):
    """One connection (the same tuple, zone 0: one conntrack entry) cached by both bridges, with
    kernel hits pending in both tables: its entries span two tables, which forget's kernel leaves
    to the general path (its first call returns -2), so each entry's hits go to the bridge of its
    own table (ports, rules, MACs); the other tests' connections each live on one bridge."""
    out = []
    for fused in (False, True):
        monkeypatch.setattr(fastpath, "_FUSED", fused)
        sw, brs = _switch()
        dp = sw.datapath
        assert dp.enable_batch(capacity=4096)
        up, dn = tcp_pair("10.0.0.10", 2000)
        now = 5000
        for br in brs:  # the handshake and a first data packet each way through both bridges
            for p, f in (up("S", 100, 0), dn("SA", 500, 101), up("A", 101, 501), up("PA", 101, 501, b"x"),
                         dn("A", 501, 102, b"y")):
                now += 10
                dp.receive(br, p, f, now)
        assert {t.no for t in dp.batch.by_no if (t.cid1 != 0).any()} == {0, 1}
        for b, br in enumerate(brs):  # kernel hits pending in both bridges' tables, unequal per bridge
            fr = [up("PA", 102, 502, bytes(3 + b)), dn("A", 502, 105 + b, bytes(2))] * (2 + 3 * b)
            buf, offs, lens, inp = batch_arrays([f for _p, f in fr], [p for p, _f in fr])
            now += 10
            dp.batch.receive_batch(br, buf, offs, lens, inp, now)
        (conn,) = sw.tracker.iter_conns()
        dp.forget_conn(conn)
        out.append((_tables(sw), [_state(sw, br) for br in brs]))
    assert out[0] == out[1]
