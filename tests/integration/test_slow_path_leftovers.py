"""The slow path's per-packet leftovers against the code they replaced (session 9): ``_slow``
(its per-packet counter read as dict's own ``get``, ``_mac_aging_ms``'s call inlined, no list of
the connections considered unless a packet has two, the offload manager's ``consider`` a typed
positional call), ``_maybe_cache`` (the wildcard check once per mask list, ``_tr_wc``: a replayed
translation's mask is its passes' shared list), ``_cache`` (the FastEntry built field by field, its
learned MACs deduplicated only when there are two or more), ``receive``'s, ``_emit``'s and
``_fast_table``'s counters read as dict's own ``get``.

The previous implementations are below, verbatim but for names; instance attributes shadow the
shipped cpdef methods on a twin switch, which gets the same traffic:
- the traffic of test_offload_peer_memo (shapes changing between connections: a rule that makes
  every table-1 pass read the TOS, so their masks are refused, added and removed; the NAT dropped
  and restored; MAC moves; offload aging; batch mode), every output, cached decision, counter,
  connection and rule compared after every step;
- TCP connections through a pipeline of four ct() in three zones (one zone twice: a packet's
  verdicts name three connections, one of them twice, beyond the first), opened, used, closed by
  FIN or RST, with the offload aging between them;
- the traffic of test_slowpath_cache_reference (two bridges, hardware- and software-offloaded
  connections, FIN/RST closes, generation changes, cache flushes, the dict path and the batch
  table), every step compared.
"""

from __future__ import annotations

import os
import sys
import types

import pytest
import test_offload_peer_memo as M
from pipeline import Lab

from ctswitch.conntrack.conn import IPS_OFFLOAD
from ctswitch.datapath import datapath as D
from ctswitch.flow.key import CS_EST, NW_FRAG
from ctswitch.ofproto import xlate
from ctswitch.ofproto.rule import credit_rules
from ctswitch.packet.headers import TCP_FIN, TCP_RST

pytest.importorskip("numpy")


# ---------------------------------------------------------------- the previous implementations
def previous_receive(self, bridge, in_port, frame, now, _kernel_miss=False):
    stats = self.stats
    stats["rx_packets"] += 1
    by_no = bridge.by_no
    port = by_no.get(in_port)
    if port is not None:
        port.rx_packets += 1
        port.rx_bytes += len(frame)
    pkt = D.parse(frame)
    if pkt.drop is not None:
        self.drops["malformed: " + pkt.drop] += 1
        if port is not None:
            port.rx_dropped += 1
        return []
    key = D.extract(pkt, in_port)
    if self.cache:
        out = self._fast(bridge, pkt, key, frame, now)
        if out is not None:
            return out
    elif self.batch is not None and self.batch.live:
        out = self._fast_table(bridge, pkt, key, frame, now, _kernel_miss)
        if out is not None:
            return out
    return self._slow(bridge, pkt, key, frame, now)


def previous_slow(self, bridge, pkt, key, frame, now):
    sw = self.switch
    self.stats["slow_path"] += 1
    cache = self.megaflows
    if cache is not None:  # xlate.translate through the cache, called in C
        tr = xlate._replay(bridge, pkt, key, now, sw.tracker, self._mac_aging_ms(), None, None, None, cache)
    else:
        tr = xlate.translate(bridge, pkt, key, now, tracker=sw.tracker, mac_aging_ms=self._mac_aging_ms())
    n = len(frame)
    d = tr.defrag
    if d is None:
        credit_rules(tr.rules, 1, n, now)
    else:  # the rules after a reassembly (the first d[3] ran before it) see the datagram
        credit_rules(tr.rules[:d[3]], 1, n, now)
        credit_rules(tr.rules[d[3]:], 1, len(d[0].frame), now)
    extra = tr.outputs[0][2] if tr.outputs else None
    if d is None:
        out = self._emit(bridge, pkt, key, frame, tr.outputs, extra)
    else:  # a ct() completed an IPv4 datagram: outputs after it carry it, refragmented
        r, dkey, n_pre, _ = d
        out = self._emit(bridge, pkt, key, frame, tr.outputs[:n_pre], extra) if n_pre else []
        out += self._emit(bridge, r.pkt, dkey, r.frame, tr.outputs[n_pre:], extra, r)
    if not out:
        if tr.stolen:
            self.stats["frag_queued"] += 1  # kept for reassembly: not a drop
        else:
            self.drops[tr.drop or "dropped"] += 1
    off = sw.offload
    if off is not None and tr.verdicts:
        peer = None
        seen = []  # the connections considered (a packet has one or two ct() verdicts)
        closing = pkt.tcp_flags & (TCP_FIN | TCP_RST)
        for v in tr.verdicts:
            c = v.conn
            if c is None:
                continue
            for x in seen:
                if x is c:
                    break
            else:
                seen.append(c)
                if closing:
                    # A closing TCP connection is never (re)offloaded; keep the teardown reason.
                    if c.status & IPS_OFFLOAD:
                        off.teardown(c, "torn down by RST" if closing & TCP_RST else "torn down by FIN", now)
                else:
                    was = c.status & IPS_OFFLOAD
                    off.consider(c, now, pkt=pkt)
                    if c.proto == D.PROTO_TCP:
                        peer = self._note_peer(c, v.reply, key, was) or peer
        self._maybe_cache(bridge, key, tr, now)
        if peer is not None:
            self._cache_peer(bridge, peer[0], peer[1], now)
    return out


def previous_emit(self, bridge, pkt, key, frame, outputs, extra, defrag=None):
    if extra is None and defrag is None:
        result = []
        by_no = bridge.by_no
        for o in outputs:
            ofport, okey = o[0], o[1]
            data = frame if okey == key else D.apply(frame, pkt, key, okey)
            p = by_no.get(ofport)
            if p is not None:
                p.tx_packets += 1
                p.tx_bytes += len(data)
            result.append((ofport, bytes(data)))
        self.stats["tx_packets"] += len(result)
        return result
    return D.Datapath._emit(self, bridge, pkt, key, frame, outputs, extra, defrag)  # (unchanged there)


def previous_maybe_cache(self, bridge, key, tr, now):
    if key[NW_FRAG]:
        return  # fragments never take the fast path
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
        return  # a one-way offload (UDP before ASSURED): its replies go to conntrack
    if D._consults_uncacheable(tr.wc):
        return
    self._cache(bridge, key, self._cache_key(bridge, key), conn, reply, tr, now)


def previous_cache(self, bridge, key, ck, conn, reply, tr, now):
    cache = self.cache
    if cache and ck in cache:
        self._uncache(ck)
    touts = tr.outputs
    out0 = touts[0]
    extra = out0[2]
    batch = self.batch
    mirror = batch is not None and len(touts) == 1 and D._batchable(conn)
    if mirror and batch.add_output(ck, bridge.generation, conn.id, reply, out0[0], key, out0[1], tr.rules,
                                   extra, now, tr.learns) >= 0:
        return
    outputs = []
    for o in touts:
        okey = o[1]
        deltas = []
        if okey != key:
            for i in D._REWRITABLE:
                v = okey[i]
                if v != key[i]:
                    deltas.append((i, v))
        outputs.append((o[0], deltas))
    entry = D.FastEntry(bridge.generation, conn, reply, outputs, tr.rules, extra, now, self.switch.tracker,
                        tuple(dict.fromkeys(tr.learns)))
    cid = conn.id
    if batch is not None and not mirror:
        batch.discard(ck)
    cache[ck] = entry
    cks = self.by_conn.get(cid)
    if cks is None:
        self.by_conn[cid] = [ck]
    else:
        cks.append(ck)


_PREVIOUS = {"receive": previous_receive, "_slow": previous_slow, "_emit": previous_emit,
             "_maybe_cache": previous_maybe_cache, "_cache": previous_cache}


def _previous(dp) -> None:
    for name, f in _PREVIOUS.items():
        setattr(dp, name, types.MethodType(f, dp))


class _Pair(M.Pair):
    """test_offload_peer_memo's pair, its second switch with the previous leftovers too."""

    def __init__(self, config: dict) -> None:
        super().__init__(config)
        _previous(self.b.sw.datapath)


def assert_twins_agree(a: Lab, b: Lab) -> None:
    """Two labs fed the same frames hold the same cached decisions, datapath counters,
    conntrack listing, offload counters and connections."""
    assert M._cached(a) == M._cached(b)
    for x in ("stats", "drops"):
        assert getattr(a.sw.datapath, x) == getattr(b.sw.datapath, x)
    assert a.conntrack("-o", "extended") == b.conntrack("-o", "extended")
    assert a.sw.offload.counters() == b.sw.offload.counters()
    assert [(c.id, c.status, c.why) for c in a.sw.tracker.iter_conns()] == \
        [(c.id, c.status, c.why) for c in b.sw.tracker.iter_conns()]


@pytest.mark.parametrize("block", range(3))
def test_leftovers_match_previous_on_changing_shapes(block, monkeypatch):
    monkeypatch.setattr(M, "Pair", _Pair)
    seen: set = set()
    for seed in range(block * 20, block * 20 + 20):
        seen |= M._run(seed)[1]
    assert {"nat", "plain", "tosnat", "move", "batch"} <= seen, seen


@pytest.mark.parametrize("seed,batch", [(11, False), (12, True), (13, True)])
def test_leftovers_match_previous_on_cache_reference_traffic(seed, batch, monkeypatch):
    """test_slowpath_cache_reference's run, its reference switch with the previous receive and _slow too
    (its own previous _emit, _maybe_cache and _cache already there)."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit", "datapath"))
    try:
        import test_slowpath_cache_reference as S
    finally:
        del sys.path[0]
    monkeypatch.setitem(S._DATAPATH, "receive", previous_receive)
    monkeypatch.setitem(S._DATAPATH, "_slow", previous_slow)
    ref = S._run(True, seed, batch)
    got = S._run(False, seed, batch)
    assert len(got) == len(ref)
    for i, (g, r) in enumerate(zip(got, ref, strict=True)):
        assert g == r, f"step {i}"


# Four ct() in three zones, zone 2 twice: every packet's verdicts name three connections.
ZONES = ("table=0,arp,action=normal",
         "table=0,ip,ct_state=-trk,action=ct(zone=1,table=1)",
         "table=1,ip,action=ct(zone=2,table=2)",
         "table=2,ip,action=ct(zone=3,table=3)",
         "table=3,ip,action=ct(zone=2,table=4)",
         "table=4,ip,ct_state=+new,action=ct(commit,zone=1),ct(commit,zone=2),ct(commit,zone=3),normal",
         "table=4,ip,ct_state=+est,action=normal")


@pytest.mark.parametrize("config", [{}, {"devlink:ct_max_offloaded_conns": 2}])
def test_leftovers_match_previous_with_connections_in_several_zones(config):
    a, b = Lab(flows=ZONES, **config), Lab(flows=ZONES, **config)
    _previous(b.sw.datapath)
    calls = []
    real = a.sw.datapath._maybe_cache
    a.sw.datapath._maybe_cache = lambda br, key, tr, now: (calls.append(len(tr.verdicts)), real(br, key, tr, now))
    for i, sport in enumerate((34541, 34542, 34543, 34544)):
        for lab in (a, b):
            seq, ack = lab.handshake(sport=sport, nat_dst="2.2.2.1")
            frames = [("pf0hpf", lab.host_tcp("A", sport, 5001, b"x" * 10, seq=seq, ack=ack)),
                      ("p0", lab.remote_tcp("A", sport, 5001, b"y" * 20, seq=ack, ack=seq + 10, dst="2.2.2.1")),
                      ("pf0hpf", lab.host_tcp("A", sport, 5001, b"z" * 5, seq=seq + 10, ack=ack + 20)),
                      ("p0", lab.remote_tcp("FA" if i % 2 else "R", sport, 5001, seq=ack + 20, ack=seq + 15,
                                            dst="2.2.2.1"))]
            lab.outs = [lab.send(port, fr) for port, fr in frames]
            if i == 1:
                lab.at(lab.t + 31_000)
        assert a.outs == b.outs
        assert_twins_agree(a, b)
    assert max(calls) == 7 and a.sw.offload.counters()["offloaded"] >= 6
