"""The slow path's caching and output code against the implementation it replaced (session 7):
``Datapath._cache`` (the batch table given the translation's rules and learned MACs without
copies), ``_cache_peer`` (cpdef, the tracker asked by ``xlate.predict_reply`` instead of a
lambda), ``_maybe_cache``/``_cache_peer``'s wildcard check (``_consults_uncacheable`` instead of
``any(itemgetter(...))``), ``_emit``'s loop without ICMP rewrites or refragmenting, the flow-key
reads at C indices (``_cache_key``, ``_fast_table``, ``_note_peer``).

The previous implementations are below, verbatim but for names; they replace the current ones
(instance attributes shadow the datapath's cpdef methods) for a reference run of the same traffic (two bridges, hardware- and software-offloaded
connections, FIN/RST closes, generation changes, cache flushes, the dict path and the batch
table): every output, every array of the batch table and every counter must be the same."""

from __future__ import annotations

import os
import random
import sys
import types
from operator import itemgetter

import pytest

pytest.importorskip("numpy")

from ctswitch.conntrack.conn import IPS_HW_OFFLOAD, IPS_OFFLOAD  # noqa: E402
from ctswitch.datapath import datapath as D  # noqa: E402
from ctswitch.flow.key import (  # noqa: E402
    CS_EST,
    DL_DST,
    DL_SRC,
    DL_TYPE,
    IN_PORT,
    IPV6_DST,
    IPV6_SRC,
    N_FIELDS,
    NW_DST,
    NW_FRAG,
    NW_PROTO,
    NW_SRC,
    TP_DST,
    TP_SRC,
    VLAN_TCI,
)
from ctswitch.ofproto import xlate  # noqa: E402
from ctswitch.packet import rewrite  # noqa: E402
from ctswitch.packet.headers import ETH_TYPE_IP, ETH_TYPE_IPV6, TCP_FIN, TCP_RST  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_batch_cache import _state  # noqa: E402
from test_batch_fused import _drive, _switch, _tables, _traffic  # noqa: E402

_uncacheable_of = itemgetter(*D._UNCACHEABLE)


# ---------------------------------------------------------------- the previous implementations
def ref_cache_key(self, bridge, key):
    return (bridge.name, key[IN_PORT], key[DL_SRC], key[DL_DST], key[DL_TYPE], key[VLAN_TCI],
            key[NW_SRC], key[NW_DST], key[IPV6_SRC], key[IPV6_DST], key[NW_PROTO], key[TP_SRC], key[TP_DST])


def ref_fast_table(self, bridge, pkt, key, frame, now, kernel_miss):
    if key[DL_TYPE] != 0x0800 or key[VLAN_TCI] or (key[NW_PROTO] != 6 and key[NW_PROTO] != 17):
        return None
    b = self.batch
    t = b.tables.get(bridge.name)
    if t is None or len(t) == 0:
        return None
    if t.generation != bridge.generation:
        t = b._table(bridge.name, bridge.generation)
    if kernel_miss and not t.nstale:
        return None
    found, e, cid1, meta = t.find_flow(not kernel_miss and t.live_current() != 0, key[IN_PORT], key[DL_SRC],
                                       key[DL_DST], key[NW_SRC], key[NW_DST], key[NW_PROTO], key[TP_SRC],
                                       key[TP_DST])
    tracker = self.switch.tracker
    if found != 1:
        if found == 2:
            tracker.get(cid1 - 1)
            b.remove(t, e)
        return None
    conn = tracker.get(cid1 - 1)
    if conn is None or not (conn.status & IPS_OFFLOAD):
        b.remove(t, e)
        return None
    reply = bool(meta & 1)
    flags = pkt.tcp_flags
    if flags & (TCP_FIN | TCP_RST):
        self.switch.offload.sw_hit(conn, now, 0, reply, flags)
        b.remove(t, e, cid1)
        return None
    if pkt.nw_frag or pkt.ip_options or pkt.nw_ttl <= 1:
        return None
    b._credit_one(t, e)
    n = len(frame)
    t.fpk[e] += 1
    t.fby[e] += n
    t.fused1[e] = now + 1
    hw = bool(conn.status & IPS_HW_OFFLOAD)
    off = self.switch.offload
    if hw:
        self.stats["fast_hw"] += 1
        off.hw_hit(conn, now, n, reply)
    else:
        self.stats["fast_sw"] += 1
        off.sw_hit(conn, now, n, reply)
    _gen, rules, extra, learns = t.shapes[meta >> 1]
    for rl in rules:
        rl.n_packets += 1
        rl.n_bytes += n
        rl.last_used_ms = now
    if learns:
        bridge.learn(0, key[DL_SRC], key[IN_PORT], now)
    port, dl_src, dl_dst, nw_src, nw_dst, tp_src, tp_dst = D._row_new(t.ent[e].tolist())
    okey = key
    if (dl_src != key[DL_SRC] or dl_dst != key[DL_DST] or nw_src != key[NW_SRC] or nw_dst != key[NW_DST]
            or tp_src != key[TP_SRC] or tp_dst != key[TP_DST]):
        okey = list(key)
        okey[DL_SRC], okey[DL_DST], okey[NW_SRC], okey[NW_DST], okey[TP_SRC], okey[TP_DST] = \
            dl_src, dl_dst, nw_src, nw_dst, tp_src, tp_dst
    return self._emit(bridge, pkt, key, frame, [(port, okey)], extra)


def ref_emit(self, bridge, pkt, key, frame, outputs, extra, defrag=None):
    result = []
    icmp_id, inner = extra if extra is not None else (None, None)
    by_no = bridge.by_no
    for o in outputs:
        ofport, okey = o[0], o[1]
        if inner is not None:
            si, di = (IPV6_SRC, IPV6_DST) if pkt.ip_ver == 6 else (NW_SRC, NW_DST)
            src = okey[si] if okey[si] != key[si] else None
            dst = okey[di] if okey[di] != key[di] else None
            data = rewrite.nat_icmp_error(frame, pkt, src, dst, *inner)
        else:
            data = frame if okey == key else rewrite.apply(frame, pkt, key, okey)
        if icmp_id is not None and icmp_id != pkt.icmp_id:
            data = rewrite.set_icmp_id(data, pkt, icmp_id)
        p = by_no.get(ofport)
        for piece in (data,) if defrag is None else self._refragment(data, pkt.l3, defrag):
            if p is not None:
                p.tx_packets += 1
                p.tx_bytes += len(piece)
            result.append((ofport, bytes(piece)))
    self.stats["tx_packets"] += len(result)
    return result


def ref_note_peer(self, c, reply, key, was):
    peers = self._peer_l2
    if c.state in D._HANDSHAKE:
        if reply:
            peers[c.id] = (key[IN_PORT], key[DL_SRC], key[DL_DST], key[VLAN_TCI])
        return None
    l2 = peers.pop(c.id, None) if peers else None
    if l2 is None or reply or was or not c.status & IPS_OFFLOAD:
        return None
    return c, l2


def ref_cache_peer(self, bridge, conn, l2, now):
    tup = conn.reply
    k = [0] * N_FIELDS
    k[IN_PORT], k[DL_SRC], k[DL_DST], k[VLAN_TCI] = l2
    if conn.ip_ver == 4:
        k[DL_TYPE] = ETH_TYPE_IP
        k[NW_SRC], k[NW_DST] = tup[0], tup[1]
    else:
        k[DL_TYPE] = ETH_TYPE_IPV6
        k[IPV6_SRC], k[IPV6_DST] = tup[0], tup[1]
    k[NW_PROTO] = conn.proto
    k[TP_SRC], k[TP_DST] = tup[2], tup[3]
    tracker = self.switch.tracker
    tr = xlate.predict(bridge, k, now, self.megaflows,
                       lambda act, zone: tracker.offloaded_verdict(conn, True, zone, act))
    if tr is None or tr.stateful or tr.controller or len(tr.outputs) != 1 or any(_uncacheable_of(tr.wc)):
        return
    for v in tr.verdicts:
        if v.conn is not conn or not (v.state & CS_EST) or v.state & 0x15 & ~CS_EST:
            return
    self._cache(bridge, k, self._cache_key(bridge, k), conn, True, tr, now)


def ref_maybe_cache(self, bridge, key, tr, now):
    if key[NW_FRAG]:
        return
    last = tr.verdicts[-1].conn
    if last is None or not (last.status & IPS_OFFLOAD) or tr.stateful or tr.controller or not tr.outputs:
        return
    conn = None
    reply = False
    for v in tr.verdicts:
        if v.conn is None or not (v.state & CS_EST) or v.state & 0x15 & ~CS_EST:
            return
        if conn is not None and v.conn is not conn:
            return
        conn, reply = v.conn, v.reply
    if conn is None or not (conn.status & IPS_OFFLOAD):
        return
    if reply and getattr(conn.offload, "uni", False):
        return
    if any(_uncacheable_of(tr.wc)):
        return
    self._cache(bridge, key, self._cache_key(bridge, key), conn, reply, tr, now)


def ref_cache(self, bridge, key, ck, conn, reply, tr, now):
    if ck in self.cache:
        self._uncache(ck)
    rules = list(tr.rules)
    extra = tr.outputs[0][2]
    learns = tuple(dict.fromkeys(tr.learns))
    mirror = self.batch is not None and len(tr.outputs) == 1 and D._batchable(conn)
    if mirror and self.batch.add_output(ck, bridge.generation, conn.id, reply, tr.outputs[0][0], key,
                                        tr.outputs[0][1], rules, extra, now, learns) >= 0:
        return
    outputs = [(port, [] if okey == key else [(i, okey[i]) for i in D._REWRITABLE if okey[i] != key[i]])
               for port, okey, _ in tr.outputs]
    entry = D.FastEntry(bridge.generation, conn, reply, outputs, rules, extra, now, self.switch.tracker, learns)
    if self.batch is not None and not mirror:
        self.batch.discard(ck)
    self.cache[ck] = entry
    self.by_conn.setdefault(conn.id, []).append(ck)


_DATAPATH = {"_cache_key": ref_cache_key, "_fast_table": ref_fast_table, "_emit": ref_emit,
             "_note_peer": ref_note_peer, "_cache_peer": ref_cache_peer, "_maybe_cache": ref_maybe_cache,
             "_cache": ref_cache}


# ---------------------------------------------------------------- the runs
def _run(reference: bool, seed: int, batch: bool) -> list:
    """The steps of one run of seeded traffic (with the previous implementations: ``reference``)."""
    rng = random.Random(seed)
    pkts = _traffic(rng, 1200)
    sw, brs = _switch()
    dp = sw.datapath
    if reference:
        for name, f in _DATAPATH.items():
            setattr(dp, name, types.MethodType(f, dp))
    if batch:
        assert dp.enable_batch(capacity=rng.choice((12, 4096)))
    rule_no = {id(r): (b, i) for b, br in enumerate(brs) for i, r in enumerate(br.iter_rules())}
    steps = _drive(sw, brs, pkts, rng, lambda got: (
        got, _tables(sw) if batch else None,
        sorted((ck, e.generation, e.cid, e.reply, repr(e.outputs), [rule_no[id(r)] for r in e.rules], e.extra,
                e.packets, e.bytes, e.used, e.created, e.learns) for ck, e in dp.cache.items()),
        sorted(dp.by_conn.items()), dict(dp._peer_l2)), batch=batch)
    steps.append([_state(sw, br) for br in brs])
    return steps


@pytest.mark.parametrize("seed,batch", [(1, False), (2, False), (3, True), (4, True), (5, True)])
def test_slow_path_caching_equals_previous_implementation(seed, batch):
    ref = _run(True, seed, batch)
    got = _run(False, seed, batch)
    assert len(got) == len(ref)
    cached = sum(len(s[2]) for s in ref[:-1]) + sum(s[1]["live"] for s in ref[:-1] if s[1] is not None)
    assert cached > 50  # decisions were cached along the way
    for i, (g, r) in enumerate(zip(got, ref, strict=True)):
        assert g == r, f"step {i}"


def test_consults_uncacheable_equals_any_itemgetter():
    rng = random.Random(7)
    for _ in range(3000):
        wc = [0] * N_FIELDS
        for _ in range(rng.randrange(0, 4)):
            wc[rng.randrange(N_FIELDS)] = rng.choice((0, 1, 0xFFFF, 1 << 100))
        assert D._consults_uncacheable(wc) is any(_uncacheable_of(wc))
