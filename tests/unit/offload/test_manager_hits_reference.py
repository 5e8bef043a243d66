"""OffloadManager.hits (the batch table's crediting of an entry's kernel hits, one call) against the
crediting it replaced (``BatchFastPath._credit_entry``'s bulk count of all hits but the last on the
connection and its record, then the last through ``hw_hit``/``sw_hit``): twin managers over the
same random connections, knobs and refusals (hardware and software offloads, one-way UDP turning
bidirectional or not, retries of refused inserts, inconsistent ``hw`` flags), compared after every
step: connection counters, status and reason, records, manager counters and the FDB."""

import random

import pytest

from ctswitch.conntrack import conn as conn_mod
from ctswitch.offload.manager import WHY_FIN, OffloadManager


def _old_hits(m, conn, now, packets, nbytes, reply, hw):
    """The crediting as BatchFastPath._credit_entry wrote it before ``hits``."""
    rec = conn.offload
    last = nbytes // packets
    if rec is not None and packets > 1:
        n, b = packets - 1, nbytes - last
        if reply:
            conn.pk1 += n
            conn.by1 += b
        else:
            conn.pk0 += n
            conn.by0 += b
        if hw:
            rec.hw_packets += n
            rec.hw_bytes += b
        else:
            rec.sw_packets += n
            rec.sw_bytes += b
    if hw:
        m.hw_hit(conn, now, last, reply)
    else:
        m.sw_hit(conn, now, last, reply)


def _conn(cid, proto, status):
    c = conn_mod.Conn(0, 4, proto, (0x0A000000 + cid, 0x01010102, 1000 + cid, 5001),
                      (0x01010102, 0x01010110, 5001, 1000 + cid), 0)
    c.id = cid
    c.status = status
    c.state = 3  # ESTABLISHED (tcp)
    return c


def _state(m, conns):
    out = []
    for c in conns:
        rec = c.offload
        out.append((c.pk0, c.by0, c.pk1, c.by1, c.status, c.why,
                    None if rec is None else (rec.to_list(), rec.seq, rec.hent)))
    return (out, m.counters(), dict(m.stats), dict(m.refused), dict(m.torn), m.n_sw, m.n_hw, m.n_uni, m.hw_rules,
            m.fdb.to_state(), m.fdb.last_group, [(k, list(v)) for k, v in m.fdb._open.items()])


def _managers(rng, mk_params, tracker_cls):
    kw = {"devlink:ct_max_offloaded_conns": rng.choice((1, 2, 3, 100)),
          "modparam:ctswitch.udp_unidirectional_offload": rng.choice((0, 1)),
          "modparam:ctswitch.fdb_capacity": rng.choice((3, 5, 8, 1000)),
          "modparam:mlx5_core.num_of_groups": rng.choice((1, 2))}
    out = []
    for _ in range(2):
        tracker = tracker_cls()
        m = OffloadManager(mk_params(**kw), tracker)
        m.compaction = False
        out.append((m, tracker))
    return out


@pytest.mark.parametrize("seed", range(40))
def test_hits_matches_bulk_then_last_hit(seed, mk_params, tracker):
    rng = random.Random(seed)
    (ma, ta), (mb, tb) = _managers(rng, mk_params, type(tracker))
    ca, cb = [], []
    now = 1000
    n_fast = 0
    for step in range(300):
        now += rng.choice((0, 1, 7, 400, 1001, 2500))
        r = rng.random()
        if r < 0.15 or not ca:
            cid = len(ca) + 1
            proto = rng.choice((6, 17, 17))
            status = conn_mod.IPS_CONFIRMED | conn_mod.IPS_SRC_NAT
            if rng.random() < 0.7:
                status |= conn_mod.IPS_SEEN_REPLY
            if proto == 6 or rng.random() < 0.4:
                status |= conn_mod.IPS_ASSURED
            for m, t, cs in ((ma, ta, ca), (mb, tb, cb)):
                c = _conn(cid, proto, status)
                t.conns[cid] = c
                cs.append(c)
                m.consider(c, now)
        elif r < 0.2:
            i = rng.randrange(len(ca))
            for c in (ca[i], cb[i]):  # a one-way UDP offload's connection turns ASSURED
                c.status |= conn_mod.IPS_ASSURED | conn_mod.IPS_SEEN_REPLY
        elif r < 0.25:
            i = rng.randrange(len(ca))
            assert ma.teardown(ca[i], WHY_FIN, now) == mb.teardown(cb[i], WHY_FIN, now)
        elif r < 0.28:
            i = rng.randrange(len(ca))
            assert (ma.consider(ca[i], now) is None) == (mb.consider(cb[i], now) is None)
        else:
            i = rng.randrange(len(ca))
            packets = rng.choice((1, 1, 2, 3, 17))
            nbytes = packets * rng.randrange(40, 1500) + rng.randrange(0, packets)
            reply = rng.random() < 0.5
            hw = bool(ca[i].status & conn_mod.IPS_HW_OFFLOAD)
            if rng.random() < 0.05:
                hw = not hw  # a flag that disagrees with the record: the general path either way
            rec = ca[i].offload
            n_fast += (rec is not None and packets > 1 and hw and rec.state is not None
                       and rec.state.value == "hw_offload" and not (reply and rec.uni))
            ma.hits(ca[i], now, packets, nbytes, reply, hw)
            _old_hits(mb, cb[i], now, packets, nbytes, reply, hw)
        assert _state(ma, ca) == _state(mb, cb), f"step {step}"
    ma.gc(now + 400_000)
    mb.gc(now + 400_000)
    assert _state(ma, ca) == _state(mb, cb)
    assert n_fast > 0
