"""The batch table holds mirrorable cached decisions without a FastEntry: a batched switch must
behave exactly as a one-at-a-time reference switch (outputs, every counter, dump-flows text)."""

from __future__ import annotations

import os
import random
import sys

import pytest

pytest.importorskip("numpy")

from ctswitch.control.appctl import fdb_flush  # noqa: E402
from ctswitch.datapath.dpflows import format_dp_flows  # noqa: E402
from ctswitch.packet import build  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_fastpath import _switch, batch_arrays, tcp_pair  # noqa: E402

H, R = "02:00:00:00:02:01", "02:00:00:00:01:02"


def _traffic(rng, n=1200, conns=24):
    """TCP connections (some closed by FIN, some by RST, some reopened) and UDP flows, random order."""
    out = []
    state = {}
    for _ in range(n):
        c = rng.randrange(conns)
        udp = c % 5 == 4
        host, sp = f"10.0.0.{c + 10}", 2000 + c + 100 * state.get(("gen", c), 0)
        if udp:
            pl = bytes(rng.randrange(0, 30))
            if rng.random() < 0.5:
                out.append((2, build.ipv4_udp(host, "8.8.4.4", sp, 53, pl, src_mac=H, dst_mac=R)))
            else:
                out.append((1, build.ipv4_udp("8.8.4.4", "1.1.1.16", 53, sp, pl, src_mac=R, dst_mac=H)))
            continue

        up, dn = tcp_pair(host, sp)
        st = state.get(c, 0)
        if st == 0:
            out += [up("S", 100, 0), dn("SA", 500, 101), up("A", 101, 501)]
            state[c] = 1
        elif st == 1 and rng.random() < 0.02:
            out += [up("FA", 101, 501), dn("FA", 501, 102), up("A", 102, 502)]
            state[c] = 2
        elif st == 1 and rng.random() < 0.02:
            out.append(dn("R", 501, 0) if rng.random() < 0.5 else up("RA", 101, 501))
            state[c] = 2
        elif st == 1:
            pl = bytes(rng.randrange(0, 40))
            out.append(up("PA", 101, 501, pl) if rng.random() < 0.5 else dn("A", 501, 101, pl))
        elif rng.random() < 0.2:  # a new connection from the same host, on a new port
            state[("gen", c)] = state.get(("gen", c), 0) + 1
            state[c] = 0
    return out


def _state(sw, br):
    dp = sw.datapath
    dp.sync_counters()
    conns = sorted((c.orig, c.packets, c.bytes, c.status, c.state) for c in sw.tracker.iter_conns())
    return {
        "stats": dict(dp.stats),
        "drops": dict(dp.drops),
        "conns": conns,
        "rules": [(r.n_packets, r.n_bytes, r.last_used_ms) for r in br.iter_rules()],
        "ports": [(p.rx_packets, p.rx_bytes, p.tx_packets, p.tx_bytes) for p in br.ports.values()],
        "offload": sw.offload.counters(),
        "cache": sorted((ck, e.packets, e.bytes, e.used, e.reply, e.cid, e.generation, repr(e.outputs),
                         repr(e.extra), e.created) for ck, e in dp.cached_items()),
        "n": dp.n_cached(),
        "flows": [format_dp_flows(sw, typ, v) for typ in ("all", "offloaded", "ovs") for v in (False, True)],
    }


@pytest.mark.parametrize("seed,capacity,hw_max", [(1, 64, 0), (2, 10, 1000), (3, 4096, 1000), (4, 4096, 1000),
                                                  (5, 30, 1000)])
def test_batch_table_switch_equals_reference(seed, capacity, hw_max):
    rng = random.Random(seed)
    pkts = _traffic(rng)
    ref_sw, ref_br, _ = _switch(False)
    sw, br, _ = _switch(False)
    for b_ in (ref_br, br):
        b_.add_port("p2", 3)  # floods (unknown MACs after fdb/flush) have two outputs: not mirrorable
    if hw_max:
        # Kernel hits are credited at the next sync, entry by entry: with the hardware full, which
        # connection wins a freed slot at a retry depends on that order (as before this table held
        # the decisions alone; test_fastpath's equivalence test covers the full hardware).
        for s_ in (ref_sw, sw):
            s_.params.set("devlink:ct_max_offloaded_conns", hw_max)
    ref, dp = ref_sw.datapath, sw.datapath
    now = 5000
    pos = 0
    checked = 0
    for k in range(0, len(pkts)):
        if pos >= len(pkts):
            break
        size = rng.randrange(1, 80)
        chunk = pkts[pos:pos + size]
        pos += size
        now += rng.randrange(0, 400)
        for s_ in (ref_sw, sw):
            s_.now = now
            s_.datapath.tick(now)
        if k == 3:
            assert dp.n_cached() > 0 and dp.batch is None
            assert dp.enable_batch(capacity=capacity)  # migrates the dict's decisions
            assert len(dp.batch) > 0 and dp.n_cached() == ref.n_cached()
            sw.now = ref_sw.now = now
            assert _state(sw, br) == _state(ref_sw, ref_br)
        ref_out = [ref.receive(ref_br, p, f, now) for p, f in chunk]
        if dp.batch is None or rng.random() < 0.25:
            got = [dp.receive(br, p, f, now) for p, f in chunk]  # one at a time (table hits via _fast)
        else:
            buf, offs, lens, inp = batch_arrays([f for _p, f in chunk], [p for p, _f in chunk])
            ports, slow = dp.batch.receive_batch(br, buf, offs, lens, inp, now)
            got = []
            for i in range(len(chunk)):
                if i in slow:
                    got.append(slow[i])
                else:
                    o, n = int(offs[i]), int(lens[i])
                    got.append([(int(ports[i]), bytes(buf[o:o + n]))])
        assert got == ref_out
        # Kernel hits are credited at the next sync with their own time stamps: credit them before
        # the clock moves on (as per-tick syncing does), or a later hit's time could be overwritten.
        dp.sync_counters()
        r = rng.random()
        if r < 0.04:  # the generation changes, the caches stay (stale decisions leave at their next use)
            fdb_flush(ref_sw, [])
            fdb_flush(sw, [])
        elif r < 0.06:
            ref.flush_cache()
            dp.flush_cache()
        elif r < 0.08:
            ref_br.generation += 1
            br.generation += 1
        if rng.random() < 0.3:
            sw.now = ref_sw.now = now
            assert _state(sw, br) == _state(ref_sw, ref_br)
            checked += 1
    sw.now = ref_sw.now = now
    assert _state(sw, br) == _state(ref_sw, ref_br)
    assert checked > 3
    st = dp.stats
    assert st["fast_hw"] > 0 and (st["fast_sw"] > 0 or hw_max)
    b = dp.batch
    if capacity == 10:
        assert b.tables["br0"]._nfree == 0 or len(dp.cache) > 0  # the table filled up at some point
    # every connection forgotten: nothing left anywhere
    now += 400_000
    for s_ in (ref_sw, sw):
        s_.now = now
        s_.datapath.tick(now)
    assert _state(sw, br) == _state(ref_sw, ref_br)
    assert dp.n_cached() == len(b) + len(dp.cache)
    assert len(b.conns) == len(b)


def test_full_table_keeps_decisions_in_the_dict():
    rng = random.Random(7)
    pkts = [p for p in _traffic(rng, 600, 30)]
    ref_sw, ref_br, _ = _switch(False)
    sw, br, _ = _switch(False)
    assert sw.datapath.enable_batch(capacity=6)
    dp = sw.datapath
    full = False
    for p, f in pkts:
        assert dp.receive(br, p, f, 5000) == ref_sw.datapath.receive(ref_br, p, f, 5000)
        t = dp.batch.tables.get("br0")
        full = full or (t is not None and t._nfree == 0 and len(dp.cache) > 0)
    assert full
    sw.now = ref_sw.now = 5000
    assert _state(sw, br) == _state(ref_sw, ref_br)
    dp.flush_cache()
    ref_sw.datapath.flush_cache()
    assert dp.n_cached() == 0 and len(dp.batch.conns) == 0
    assert _state(sw, br) == _state(ref_sw, ref_br)


def test_mirrored_decisions_hold_no_python_objects():
    rng = random.Random(3)
    pkts = _traffic(rng, 400, 12)
    sw, br, _ = _switch(True)
    dp = sw.datapath
    for p, f in pkts:
        dp.receive(br, p, f, 5000)
    assert len(dp.batch) > 0
    assert not hasattr(dp.batch, "eid_of") and not hasattr(dp.batch, "entries")
    # Hardware-offloaded connections' decisions are table rows only; those of connections offloaded
    # in software only ([OFFLOAD]: ct_max_offloaded_conns is 8 here) are FastEntries, used one
    # packet at a time (their hits retry the hardware insert: Datapath._cache).
    from ctswitch.conntrack.conn import IPS_HW_OFFLOAD, IPS_OFFLOAD
    assert dp.cache and all(e.conn.status & (IPS_OFFLOAD | IPS_HW_OFFLOAD) == IPS_OFFLOAD
                            for e in dp.cache.values())
    assert set(dp.by_conn) == {e.cid for e in dp.cache.values()}
    in_table = {int(c) - 1 for t in dp.batch.tables.values() for c in t.cid1[t.cid1 != 0]}
    assert in_table and all(sw.tracker.get(i).status & IPS_HW_OFFLOAD for i in in_table)
