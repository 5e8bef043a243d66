"""The reply direction of a TCP connection is cached as the handshake's ACK offloads it.

The conntrack offload puts both directions in hardware at once, and the reply's datapath flows
were installed by the SYN-ACK, so the first reply packet after the handshake is handled in
hardware (Datapath._cache_peer predicts its decision from the recorded passes).
"""

import pytest
from pipeline import REMOTE_MAC as REMOTE
from pipeline import Lab

from ctswitch.conntrack.conn import IPS_OFFLOAD
from ctswitch.control import ofctl


def _decisions(lab) -> list[tuple]:
    """(cache key, reply, outputs, rule texts, extra) of every cached decision, sorted."""
    return sorted((ck, e.reply, e.outputs, [repr(r) for r in e.rules], e.extra)
                  for ck, e in lab.sw.datapath.cached_items())


def _no_prediction(lab) -> Lab:
    lab.sw.datapath._cache_peer = lambda *a: None
    return lab


def _replies(lab, n: int = 3) -> list:
    out = []
    for i in range(n):
        out += lab.send("p0", lab.remote_tcp("A", seq=5001, ack=1001 + i))
        out += lab.send("pf0hpf", lab.host_tcp("PA", seq=1001 + i, ack=5001, payload=b"x"))
    return out


def test_handshake_ack_caches_both_directions():
    lab = Lab()
    lab.handshake()
    dp = lab.sw.datapath
    assert sorted(d[1] for d in _decisions(lab)) == [False, True]  # host direction, reply direction
    slow = dp.stats["slow_path"]
    out = lab.send("p0", lab.remote_tcp("A", seq=5001, ack=1001))
    assert [p for p, _ in out] == ["pf0hpf"]
    assert dp.stats["slow_path"] == slow and dp.stats["fast_hw"] == 1
    assert dp._peer_l2 == {}


def test_predicted_decision_is_the_one_the_reply_would_have_cached():
    """Same frames out, and the same decision as the first reply packet caches without the
    prediction (ports, rewrites, rules, direction); the OpenFlow counters agree too."""
    a, b = Lab(), _no_prediction(Lab())
    for lab in (a, b):
        lab.handshake()
    assert len(_decisions(a)) == 2 and len(_decisions(b)) == 1
    assert _replies(a) == _replies(b)
    assert _decisions(a) == _decisions(b)
    assert b.sw.datapath.stats["slow_path"] == a.sw.datapath.stats["slow_path"] + 1

    def rules(lab):
        return sorted(line.split(", ", 2)[2] for line in ofctl.run(lab.sw, ["dump-flows", "ctBr"]).out.splitlines()[1:])

    assert rules(a) == rules(b)
    assert a.conn().packets == b.conn().packets and a.conn().bytes == b.conn().bytes


def test_batch_table_holds_the_predicted_decision():
    a, b = Lab(), Lab()
    a.sw.datapath.enable_batch()
    for lab in (a, b):
        lab.handshake()
    assert a.sw.datapath.batch.live == 2 and not a.sw.datapath.cache  # both directions are rows
    assert _replies(a) == _replies(b)
    a.sw.datapath.sync_counters()
    assert [(d[0], d[1], d[2]) for d in _decisions(a)] == [(d[0], d[1], d[2]) for d in _decisions(b)]
    assert a.sw.datapath.batch.live == 2


def test_no_prediction_when_the_reply_pass_is_not_recorded():
    """A flow change between the SYN-ACK and the ACK drops the recorded passes: nothing to
    predict from, so the reply direction is cached by its first packet, as before."""
    lab = Lab()
    lab.send("pf0hpf", lab.host_tcp("S", seq=1000))
    lab.send("p0", lab.remote_tcp("SA", seq=5000, ack=1001))
    assert ofctl.run(lab.sw, ["add-flow", "ctBr", "table=5,priority=1,actions=drop"]).code == 0
    lab.send("pf0hpf", lab.host_tcp("A", seq=1001, ack=5001))
    assert [d[1] for d in _decisions(lab)] == [False]
    slow = lab.sw.datapath.stats["slow_path"]
    lab.send("p0", lab.remote_tcp("A", seq=5001, ack=1001))
    assert lab.sw.datapath.stats["slow_path"] == slow + 1
    assert sorted(d[1] for d in _decisions(lab)) == [False, True]


def test_no_prediction_when_the_reply_pass_reads_more_than_the_cached_fields():
    """The reply's established rule matches on the TTL: such a decision is never cached (a
    cached decision stands for every TTL), predicted or not."""
    flows = ["table=0,priority=100,ip,ct_state=-trk,actions=ct(table=1,nat)",
             "table=1,priority=100,in_port=pf0hpf,ip,ct_state=+trk+new,actions=ct(commit,nat(src=1.1.1.16)),p0",
             "table=1,priority=100,in_port=pf0hpf,ip,ct_state=+trk+est,actions=p0",
             "table=1,priority=100,in_port=p0,ip,ct_state=+trk+est,nw_ttl=64,actions=pf0hpf",
             "table=0,priority=10,arp,actions=normal"]
    lab = Lab(flows=flows)
    lab.handshake()
    assert lab.conn().status & IPS_OFFLOAD
    assert all(not d[1] for d in _decisions(lab))
    out = lab.send("p0", lab.remote_tcp("A", seq=5001, ack=1001))
    assert [p for p, _ in out] == ["pf0hpf"]
    assert all(not d[1] for d in _decisions(lab))


def test_handshake_l2_forgotten_with_the_connection():
    lab = Lab()
    lab.send("pf0hpf", lab.host_tcp("S", seq=1000))
    assert lab.sw.datapath._peer_l2 == {}  # nothing kept for a SYN (a SYN flood costs nothing here)
    lab.send("p0", lab.remote_tcp("SA", seq=5000, ack=1001))
    assert list(lab.sw.datapath._peer_l2.values())[0][0] == lab.p0  # the SYN-ACK's in_port
    from ctswitch.control import conntrack_tool
    assert conntrack_tool.run(lab.sw, ["-F"]).code == 0
    assert lab.sw.datapath._peer_l2 == {}


# ---------------------------------------------------------------- MAC learning refreshed by hits
def _batch_send(lab, frames: list[tuple[str, bytes]], t: int) -> list[tuple[str, bytes]]:
    """``frames`` as one batch at time ``t`` through the kernel path (receive_batch)."""
    import numpy as np
    lab.t = t
    sw = lab.sw
    sw.now = max(sw.now, t)
    sw.datapath.tick(sw.now)
    lens = np.array([len(f) for _, f in frames], dtype=np.int64)
    offs = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    buf = np.frombuffer(b"".join(f for _, f in frames), dtype=np.uint8).copy()
    inp = np.array([lab.br.ports[p].ofport for p, _ in frames], dtype=np.int64)
    ports, slow = sw.datapath.batch.receive_batch(lab.br, buf, offs, lens, inp, sw.now)
    out = []
    for i, op in enumerate(ports.tolist()):
        if i in slow:
            out += [(lab.br.name_of(p) if p != 0xFFFE else "ctBr", f) for p, f in slow[i]]
        elif op >= 0:
            out.append((lab.br.name_of(op), buf[offs[i]:offs[i] + lens[i]].tobytes()))
    return out


def _mac_lab(batch: bool) -> Lab:
    lab = Lab(**{"other_config:mac-aging-time": 60})
    if batch:
        lab.sw.datapath.enable_batch()
    lab.handshake()  # the remote's MAC learned by the SYN-ACK, at t = 2 ms
    return lab


def _send_at(lab, batch: bool, t: int, frames):
    if batch:
        return _batch_send(lab, frames, t)
    out = []
    for p, f in frames:
        out += lab.at(t).send(p, f, dt=0)
    return out


def _fin(lab):
    return ("pf0hpf", lab.host_tcp("FA", seq=1002, ack=5001))  # slow path: NORMAL looks the remote up


def _reply(lab):
    return ("p0", lab.remote_tcp("A", seq=5001, ack=1001))


def _host(lab):
    return ("pf0hpf", lab.host_tcp("PA", seq=1001, ack=5001, payload=b"x"))


def _remote_mac_port(lab):
    return lab.br.mac.get((0, int(REMOTE.replace(":", ""), 16)), (None,))[0]


@pytest.mark.parametrize("batch", [False, True])
def test_cached_hits_refresh_the_mac_their_normal_learned(batch):
    """MAC aging 60 s. After the handshake the reply direction is seen only as cached hits (t = 20,
    40 s): they refresh the remote's MAC as OVS's revalidators do from the flow statistics, so at
    t = 70 s it is still known and the host's FIN, on the slow path, goes to p0 (not flooded)."""
    lab = _mac_lab(batch)
    slow = lab.sw.datapath.stats["slow_path"]
    _send_at(lab, batch, 20_000, [_reply(lab)])
    _send_at(lab, batch, 40_000, [_reply(lab)])
    assert lab.sw.datapath.stats["slow_path"] == slow  # hits only
    out = _send_at(lab, batch, 70_000, [_fin(lab)])
    assert [p for p, _ in out] == ["p0"] and _remote_mac_port(lab) == lab.p0


def test_batch_table_gives_the_bridge_its_mac_sync():
    """In batch mode a reply hit's MAC refresh waits for the crediting (each tick, views); the
    batch table gives the bridge the ``mac_sync`` that credits it, which the bridge runs before
    expiring a MAC on lookup (tests/unit/ofproto/test_bridge.py has that contract)."""
    lab = _mac_lab(True)
    remote = (0, int(REMOTE.replace(":", ""), 16))
    learned = lab.br.mac[remote][1]
    _batch_send(lab, [_host(lab), _reply(lab)], 20_000)  # the 20 s tick ran before this batch
    assert lab.br.mac[remote][1] == learned  # the reply hit is not credited yet
    lab.br.mac_sync()
    assert lab.br.mac[remote] == (lab.p0, 20_000)
