"""The compact tier (conntrack/cold.py): frozen connections thaw back equal, and nothing
outside the tracker and the offload manager can tell a connection was frozen.

* codec round trips on random connections and records (hypothesis);
* the index: lookups in both directions, deletions in the middle of probe runs, growth;
* freezing: only what nothing else references, only what fits the row exactly;
* every thaw trigger, each against a twin switch that never freezes (same frames in,
  same frames out, same listings, same saved state): a packet reaching conntrack
  (data, FIN, RST, a new connection answering the reply tuple, an ICMP error quoting it),
  NAT port choice and commit clashes, lookups by tuple and id, conntrack -L / -D / -F,
  dpctl dump/flush-conntrack, events, offload explain, aging (gc), flow-table timeouts
  changed, the offload flush, nf_conntrack_max, save and restore;
* random operation sequences over both twins (hypothesis).
"""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctswitch.conntrack import cold, render
from ctswitch.conntrack.cold import ColdTier, conn_row, rare_of, row_conn
from ctswitch.conntrack.conn import IPS_OFFLOAD, LAST_FIELDS, WIDE_FIELDS, Conn, TcpConn
from ctswitch.control import appctl, conntrack_tool, ofctl, offload_tool, vendor
from ctswitch.datapath.switch import Switch
from ctswitch.offload.manager import COLD_FIELDS, OffloadManager, OffloadRecord, OffloadState
from ctswitch.packet import build
from ctswitch.params import NF

HOST_MAC, REMOTE_MAC = "02:00:00:00:02:01", "02:00:00:00:01:02"
U32 = st.integers(0, 2**32 - 1)
TIME = st.integers(-(2**40), 2**40)


def slots_of(obj) -> dict:
    """Every slot of ``obj`` (its class and bases) by name."""
    names = [n for k in type(obj).__mro__ for n in getattr(k, "__slots__", ())]
    return {n: getattr(obj, n) for n in names}


def full_state(conn) -> dict:
    """A connection's every slot, its record's every slot included."""
    s = slots_of(conn)
    rec = s.pop("offload")
    s["offload"] = None if rec is None else slots_of(rec)
    s["class"] = type(conn).__name__
    return s


# ---------------------------------------------------------------------------------------------
# codec


@st.composite
def conns(draw):
    tcp = draw(st.booleans())
    k = TcpConn if tcp else Conn
    proto = 6 if tcp else draw(st.sampled_from((17, 6, 132)))
    orig = tuple(draw(st.tuples(U32, U32, st.integers(0, 65535), st.integers(0, 65535))))
    reply = tuple(draw(st.tuples(U32, U32, st.integers(0, 65535), st.integers(0, 65535))))
    c = k(draw(st.integers(0, 65535)), 4, proto, orig, reply, draw(TIME))
    c.id = draw(st.integers(1, 2**64 - 1))
    c.status = draw(st.integers(0, 0xFFFF))
    c.state = draw(st.integers(0, 9))
    c.expires = c.created + draw(st.integers(-(2**31), 2**31 - 1))
    c.timeout = draw(U32)
    c.mark = draw(U32)
    c.pk0, c.pk1, c.by0, c.by1 = draw(st.tuples(U32, U32, U32, U32))
    c.ext = draw(st.integers(0, 3))
    c.confirmed = True
    if draw(st.booleans()):
        c.label = draw(st.integers(0, 2**128 - 1))
        c.helper = draw(st.sampled_from((0, 21, 69)))
        c.related = draw(st.booleans())
        c.why = draw(st.one_of(st.none(), st.text(max_size=20)))
    if tcp:
        for n in WIDE_FIELDS:
            setattr(c, n, draw(U32))
        for n in cold.SMALL_TCP:
            setattr(c, n, draw(st.integers(0, 255)))
        if draw(st.booleans()):
            c.pack()
    return c


@settings(max_examples=300, deadline=None)
@given(conns())
def test_codec_round_trip_on_random_connections(c):
    t = ColdTier(())
    row = t.put(conn_row(c))
    back = row_conn(t.values(row), rare_of(c))
    assert full_state(back) == full_state(c)
    assert back.to_state() == c.to_state()
    for tup, d in ((c.orig, 0), (c.reply, 1)):
        rd = t.find((c.zone << 12) | (4 << 8) | c.proto, tup)
        assert rd >> 1 == row and (rd & 1 == d or c.orig == c.reply)


@settings(max_examples=100, deadline=None)
@given(conns(), st.sampled_from(("big counter", "v6 address", "float time", "huge id", "bad wide", "old")))
def test_values_that_do_not_fit_are_refused_and_leave_nothing(c, what):
    if what == "big counter":
        c.by1 = 2**32
    elif what == "v6 address":
        c.orig = (2**100, *c.orig[1:])
    elif what == "float time":
        c.expires = 1.5
    elif what == "huge id":
        c.id = 2**64
    elif what == "old":
        c.created = c.expires - 2**31  # 24.9 days between creation and expiry: no row field for it
    elif c.__class__ is TcpConn:
        c.unpack()
        c.end1 = -1
    else:
        c.mark = -1
    t = ColdTier(())
    with pytest.raises(struct.error):
        t.put(conn_row(c))
    assert t.n == 0 and t.live_rows() == [] and t.free.tolist() in ([], [0])  # [] when conn_row refused


@st.composite
def records(draw):
    r = OffloadRecord(draw(st.sampled_from(((4, 6, True), (4, 17, False), (6, 6, False)))), draw(TIME))
    r.state = draw(st.sampled_from((OffloadState.OFFLOAD, OffloadState.HW_OFFLOAD)))
    r.hw_since = draw(st.one_of(st.none(), st.integers(r.since - 2**30, r.since + 2**30)))
    r.last_used = draw(TIME)
    r.last_try = r.since + draw(st.integers(-(2**31), 2**31 - 1))
    r.g1, r.g2 = draw(st.one_of(st.none(), st.integers(0, 1000))), draw(st.one_of(st.none(), st.integers(0, 1000)))
    r.sw_packets, r.sw_bytes, r.hw_packets, r.hw_bytes = draw(st.tuples(U32, U32, U32, U32))
    r.uni = draw(st.booleans())
    r.seq = draw(st.integers(0, 2**64 - 1))
    return r


@settings(max_examples=200, deadline=None)
@given(records(), st.integers(0, 2**40 - 1), st.integers(1, 2**40 - 1))
def test_record_round_trip(rec, deadline, cid):
    """The manager's part of a row: every record slot back, through a real compaction."""
    from ctswitch.params import Params

    m = OffloadManager(Params(), None)
    rec.hent = deadline << 40 | cid
    conn = TcpConn(0, 4, 6, (1, 2, 3, 4), (2, 1, 4, 3), 0)
    conn.id, conn.confirmed, conn.offload = cid, True, rec
    captured = {}

    class Tr:
        HOLDS = 0

        def freeze(self, c, ext, owner):
            captured["ext"] = ext
            return True

    m.tracker = Tr()
    # Copies the test owns alone (hypothesis keeps references to the drawn record).
    conn.offload = copy = OffloadRecord.__new__(OffloadRecord)
    for k, v in slots_of(rec).items():
        setattr(copy, k, v)
    m._conns[cid] = conn
    before = slots_of(rec)
    del conn, copy  # only the manager's dict holds them now
    m._cold_retry.append(cid)
    assert m.compact() == 1 and cid not in m._conns
    ext = captured["ext"]
    assert len(ext) == len(COLD_FIELDS)
    assert struct.calcsize("<" + "".join(c for _, c in COLD_FIELDS)) > 0
    assert slots_of(m.cold_record(cid, ext)) == before


# ---------------------------------------------------------------------------------------------
# the index


def test_index_deletions_inside_probe_runs_and_growth():
    """Many rows whose keys collide on a tiny table; removals in every order keep every
    other row findable (backward-shift deletion), growth re-indexes everything."""
    import random

    rng = random.Random(7)
    t = ColdTier(())
    live = {}
    gone = []
    for step in range(3000):
        if live and rng.random() < 0.4:
            cid = rng.choice(list(live))
            c = live.pop(cid)
            rd = t.find(4 << 8 | 6, c.orig)
            assert t.find_id(cid) == rd >> 1
            t.remove(rd >> 1)
            gone.append(cid)
        else:
            c = TcpConn(0, 4, 6, (rng.randrange(4), 9, rng.randrange(2000), 80), (9, 7, 80, step), step)
            if t.find(4 << 8 | 6, c.orig) >= 0:
                continue
            c.id, c.confirmed = step + 1, True
            t.put(conn_row(c))
            live[c.id] = c
        if step % 97 == 0:
            assert t.n == len(live) and len(t.live_rows()) == len(live)
            for c in live.values():
                for tup in (c.orig, c.reply):
                    rd = t.find(4 << 8 | 6, tup)
                    assert rd >= 0 and t.values(rd >> 1)[cold.I_ID] == c.id
                assert t.values(t.find_id(c.id))[cold.I_ID] == c.id
            assert all(t.find_id(cid) == -1 for cid in gone)
    assert t.find(4 << 8 | 6, (99, 99, 99, 99)) == -1
    assert t.find(5 << 8 | 6, next(iter(live.values())).orig) == -1  # another zone/ip_ver


# ---------------------------------------------------------------------------------------------
# twins: one switch that freezes whatever it can, one that never does


def lab_switch(compaction: bool, **params) -> Switch:
    sw = Switch()
    br = sw.add_bridge("ctBr")
    br.add_port("p0")
    br.add_port("pf0hpf")
    sw.params.set("other_config:hw-offload", True)
    for k, v in params.items():
        sw.params.set(k, v)
    for f in vendor.EXAMPLE2:
        assert ofctl.run(sw, ["add-flow", "ctBr", f]).code == 0
    sw.offload.compaction = compaction
    sw.tracker.events_enabled = True
    return sw


def host_tcp(flags, sport, seq=0, ack=0, payload=b"", src="2.2.2.1", dport=5001):
    return "pf0hpf", build.ipv4_tcp(src, "1.1.1.2", sport, dport, flags, seq, ack, payload,
                                    src_mac=HOST_MAC, dst_mac=REMOTE_MAC)


def remote_tcp(flags, sport, seq=0, ack=0, payload=b"", sport_remote=5001, dst="1.1.1.16"):
    return "p0", build.ipv4_tcp("1.1.1.2", dst, sport_remote, sport, flags, seq, ack, payload,
                                src_mac=REMOTE_MAC, dst_mac=HOST_MAC)


class Twins:
    """Two switches fed the same frames and commands; ``a`` freezes, ``b`` never does."""

    def __init__(self, **params):
        self.a = lab_switch(True, **params)
        self.b = lab_switch(False, **params)
        self.now = 1
        self.send(("pf0hpf", build.arp(1, HOST_MAC, "2.2.2.1", "00:00:00:00:00:00", "1.1.1.2")))
        self.send(("p0", build.arp(2, REMOTE_MAC, "1.1.1.2", HOST_MAC, "2.2.2.1")))

    def both(self, fn):
        ra, rb = fn(self.a), fn(self.b)
        assert ra == rb
        return ra

    def set(self, name: str, value) -> None:
        """Sets parameter ``name`` on both switches."""
        for sw in (self.a, self.b):
            sw.params.set(name, value)

    def send(self, port_frame, dt: int = 1):
        port, frame = port_frame
        self.now += dt

        def go(sw):
            sw.now = self.now
            sw.datapath.tick(sw.now)
            br = sw.bridges["ctBr"]
            return sw.datapath.receive(br, br.ports[port].ofport, frame, sw.now)
        return self.both(go)

    def warp(self, ms: int):
        self.now += ms

        def go(sw):
            sw.now = self.now
            sw.datapath.tick(sw.now)
            return sw.datapath.stats.copy()
        return self.both(go)

    def freeze(self) -> int:
        """Drops the datapath caches of both (they pin their connections) and freezes every
        offloaded connection of ``a`` that nothing holds; returns how many are frozen."""
        for sw in (self.a, self.b):
            sw.datapath.flush_cache()
            # The tracker remembers the last packet's connection (ct() actions of one packet
            # share it); the next packet is another object, so forgetting it changes nothing.
            tr = sw.tracker
            tr._c_pkt, tr._c_conn, tr._c_hpkt, tr._c_hconn = None, None, None, None
        self.a.offload.compact(everything=True)
        self.check()
        return self.a.tracker._ncold

    def check(self):
        """Same saved state, counters and counts (none of these thaws anything)."""
        def st_(sw):
            return json.dumps([sw.tracker.to_state(), sw.offload.to_state(), sw.offload.counters(),
                               len(sw.tracker), sw.tracker.zone_count(0)], sort_keys=True)
        self.both(st_)

    def tool(self, run, *argv):
        r = self.both(lambda sw: (lambda x: (x.code, x.out, x.err))(run(sw, list(argv))))
        return r[1]

    def open(self, sport, src="2.2.2.1", dport=5001, nat_port=None):
        """Handshake and one reply of host ``src``:``sport`` to 1.1.1.2:``dport`` (SNAT to
        1.1.1.16:``nat_port``, by default the source port)."""
        np = sport if nat_port is None else nat_port
        self.send(host_tcp("S", sport, 1000, src=src, dport=dport))
        self.send(remote_tcp("SA", np, 5000, 1001, sport_remote=dport))
        self.send(host_tcp("A", sport, 1001, 5001, src=src, dport=dport))
        self.send(remote_tcp("A", np, 5001, 1001, b"hi", sport_remote=dport))


def test_freezing_needs_every_outside_reference_gone():
    t = Twins()
    t.open(40001)
    t.open(40000)  # the last packet's connection: the tracker's per-packet cache holds it too
    for sw in (t.a, t.b):
        sw.datapath.flush_cache()
    held = t.a.tracker.find(0, 4, 6, (0x02020201, 0x01010102, 40000, 5001))
    rec_only = t.a.tracker.find(0, 4, 6, (0x02020201, 0x01010102, 40001, 5001)).offload
    assert t.a.offload.compact(everything=True) == 0  # one held, the other's record held
    del rec_only
    assert t.a.offload.compact(everything=True) == 1
    assert t.a.tracker.find(0, 4, 6, held.orig) is held  # still the same object
    assert t.a.tracker._c_conn is not None
    del held
    assert t.a.offload.compact(everything=True) == 0  # the tracker's per-packet cache holds it
    assert t.freeze() == 2


def test_datapath_cache_finds_frozen_connections_by_id():
    """A cached fast-path decision names its connection by id: it does not keep it from being
    frozen, and its next hit thaws it (``Tracker.get``, through the id table)."""
    t = Twins()
    t.open(40000)
    t.open(40001)  # the tracker's last-packet reference holds this one
    assert t.a.offload.compact(everything=True) == 1 and t.a.tracker._ncold == 1
    assert any(e.cid == 1 for e in t.a.datapath.cache.values())
    t.send(host_tcp("A", 40000, 1001, 5003, b"cached"))  # a cache hit
    assert t.a.tracker._ncold == 0
    t.check()
    assert t.a.tracker.get(10**9) is None and t.a.tracker.get(0) is None


def test_batches_freeze_on_their_own():
    """Without any explicit call: every COLD_BATCH offloads and each GC tick freeze the queued
    connections idle for COLD_IDLE_MS; one offloaded or used more recently waits."""
    from ctswitch.offload.manager import COLD_IDLE_MS

    t = Twins()
    for i in range(300):
        t.send(host_tcp("S", 20000 + i, 1000))
        t.send(remote_tcp("SA", 20000 + i, 5000, 1001))
        t.send(host_tcp("A", 20000 + i, 1001, 5001))  # offloaded, never used since
    assert 100 < t.a.tracker._ncold < 256  # the batch at 256 offloads froze the idle ones
    t.send(host_tcp("S", 30000, 1))  # (releases the tracker's last-packet reference)
    t.warp(1000 - t.now % 1000)  # a GC tick
    t.warp(1000)  # the next one: every connection has been idle long enough
    assert t.a.tracker._ncold == 300
    t.send(remote_tcp("A", 20000, 5001, 1001, b"hi"))  # thaws the first one: busy now
    t.send(host_tcp("S", 30001, 1))
    assert t.a.offload.compact(now=t.now) == 0 and t.a.tracker._ncold == 299
    assert t.a.offload.compact(now=t.now + COLD_IDLE_MS) == 1
    t.check()
    # A listing reads copies (the tracker's snapshot): equal to the twin's, nothing thawed.
    assert t.tool(conntrack_tool.run, "-L") and t.a.tracker._ncold == 300
    assert t.tool(conntrack_tool.run, "-L", "-z") and t.a.tracker._ncold == 0  # -z changes them: thawed


def test_a_compaction_is_bounded(monkeypatch):
    """A walk of every connection (``iter_conns``) thaws everything; the connections are frozen
    again COLD_WORK at a time."""
    from ctswitch.offload import manager

    monkeypatch.setattr(manager, "COLD_WORK", 10)
    t = Twins()
    for i in range(25):
        t.open(40000 + i)
    assert t.freeze() == 25
    t.both(lambda sw: len(list(sw.tracker.iter_conns())))  # thaws all 25 and queues them
    assert t.a.tracker._ncold == 0
    assert [t.a.offload.compact() for _ in range(4)] == [10, 10, 5, 0]
    t.check()


def test_packets_reaching_conntrack_thaw_data_fin():
    t = Twins()
    for i in range(4):
        t.open(40000 + i)
    assert t.freeze() == 4
    # Data both ways: act_ct's flow table answers (counters), conntrack state untouched.
    t.send(host_tcp("A", 40000, 1001, 5003, b"x" * 100))
    t.send(remote_tcp("A", 40001, 5003, 1001, b"y" * 10))
    t.check()
    assert t.freeze() == 4
    # A FIN tears the offload down, then conntrack follows the close.
    t.send(host_tcp("FA", 40002, 1001, 5003))
    t.send(remote_tcp("FA", 40002, 5003, 1002))
    t.send(host_tcp("A", 40002, 1002, 5004))
    t.check()
    assert t.freeze() == 3
    t.send(remote_tcp("R", 40003, 5003))
    t.check()
    assert "TIME_WAIT" in t.tool(conntrack_tool.run, "-L")


def test_reply_direction_new_connection_and_icmp_error_thaw():
    t = Twins()
    t.open(40000)
    t.open(40001)
    assert t.freeze() == 2
    # The reply tuple, from the remote side (a SYN to the NATed address): found, not new.
    t.send(remote_tcp("S", 40000, 9000))
    assert t.a.tracker._ncold == 1
    t.check()
    assert t.freeze() == 2
    # An ICMP error from the remote quoting what it received from the host (after SNAT):
    # related to the frozen connection (found through its reply tuple).
    quoted = build.ipv4_tcp("1.1.1.16", "1.1.1.2", 40001, 5001, "A", 1001, 5003)[14:]
    err = build.ipv4(build.ip4("1.1.1.2"), build.ip4("1.1.1.16"), 1, build.icmp_error(3, 1, quoted))
    t.send(("p0", build.eth(HOST_MAC, REMOTE_MAC, 0x0800, err)))
    assert t.a.tracker._ncold == 1
    t.check()


def test_nat_port_choice_and_commit_clash_see_frozen_connections():
    t = Twins()
    t.open(40000, src="2.2.2.1")
    assert t.freeze() == 1
    # Another host, same source port, same server: SNAT to 1.1.1.16 must avoid 40000,
    # which only the frozen connection's reply tuple holds.
    t.open(40000, src="2.2.2.7", nat_port=40001)
    lines = t.tool(conntrack_tool.run, "-L")
    assert "dport=40000" in lines and "dport=40001" in lines
    assert t.freeze() == 2
    # A commit whose reply tuple is a frozen connection's: the insert clash (ct(commit), no NAT).
    from ctswitch.flow.actions import Ct
    from ctswitch.flow.key import extract
    from ctswitch.packet import codec

    frame = build.ipv4_tcp("1.1.1.16", "1.1.1.2", 40001, 5001, "S", 1, 0, src_mac=HOST_MAC, dst_mac=REMOTE_MAC)

    def commit(sw):
        p = codec.parse(frame)
        v = sw.tracker.process(p, extract(p, 1), 0, Ct(commit=True), t.now)
        return v.drop, v.state
    drop, _ = t.both(commit)
    assert drop is not None and "clash" in drop
    t.check()


def test_listings_deletes_and_flushes():
    t = Twins()
    for i in range(6):
        t.open(40000 + i)
    t.freeze()
    for argv in (["-L"], ["-L", "-o", "extended"], ["-L", "-o", "id"], ["-L", "-p", "tcp", "--sport", "40003"],
                 ["-C"]):
        t.freeze()
        t.tool(conntrack_tool.run, *argv)
    for argv in (["dpctl/dump-conntrack", "-m", "-s"], ["dpctl/ct-stats-show"], ["dpctl/offload-stats-show"]):
        t.freeze()
        t.tool(appctl.run, *argv)
    t.freeze()
    t.tool(offload_tool.run_explain, "-p", "tcp")
    t.freeze()
    t.tool(offload_tool.run_devlink_resource_show)
    t.freeze()
    t.tool(conntrack_tool.run, "-D", "-p", "tcp", "--sport", "40001")
    t.check()
    t.freeze()
    t.tool(appctl.run, "dpctl/flush-conntrack", "zone=0",
           "ct_nw_src=2.2.2.1,ct_nw_dst=1.1.1.2,ct_nw_proto=6,ct_tp_src=40002,ct_tp_dst=5001")
    t.check()
    t.freeze()
    t.both(lambda sw: full_state(sw.tracker.get(5)) if sw.tracker.get(5) else None)
    t.freeze()
    t.tool(conntrack_tool.run, "-F")
    t.check()
    assert len(t.a.tracker) == 0 and t.a.tracker._ncold == 0


def test_aging_timeouts_and_offload_flush():
    t = Twins()
    for i in range(5):
        t.open(40000 + i)
        t.warp(400)
    assert t.freeze() == 5
    t.send(host_tcp("A", 40004, 1003, 5003, b"z"))  # one stays busy
    t.freeze()
    t.warp(29_000)
    t.check()
    for _ in range(4):
        t.warp(700)
        t.check()
        t.freeze()
    # Flow-table timeout changed: every deadline is recomputed, frozen ones in their rows.
    t.set("sysctl:" + NF + "nf_flowtable_tcp_timeout", 100)
    t.warp(1000)
    t.check()
    t.open(41000)
    t.freeze()
    t.set("sysctl:" + NF + "nf_flowtable_tcp_timeout", 5)
    t.warp(1)
    t.check()
    t.warp(6000)
    t.check()
    t.open(41001)
    t.open(41002)
    t.freeze()
    t.both(lambda sw: ([full_state(c) for c in sw.tracker.iter_conns()], sw.offload.flush(sw.now)))
    t.check()


def test_table_full_counts_frozen_connections():
    t = Twins(**{"sysctl:" + NF + "nf_conntrack_max": 3})
    for i in range(3):
        t.open(40000 + i)
    assert t.freeze() == 3
    t.send(host_tcp("S", 41000, 1))  # table full: assured/offloaded ones are not early-dropped
    t.check()
    assert t.a.tracker.log == t.b.tracker.log and t.a.tracker.log


def test_save_and_restore():
    t = Twins()
    for i in range(4):
        t.open(40000 + i)
    t.freeze()
    states = t.both(lambda sw: json.dumps(sw.to_state(), sort_keys=True))
    t.a, t.b = Switch.from_state(json.loads(states)), Switch.from_state(json.loads(states))
    t.b.offload.compaction = False
    t.check()
    assert t.freeze() == 4  # restored connections are frozen again
    t.send(host_tcp("FA", 40000, 1001, 5003))
    t.check()
    t.both(lambda sw: sw.offload.load_state(sw.offload.to_state(), sw.tracker) or sw.offload.counters())
    t.check()


def test_expectation_master_is_never_frozen():
    t = Twins()
    t.open(40000)
    # An expectation holds its master connection object: it stays hot.
    tr = t.a.tracker
    conn = tr.find(0, 4, 6, (0x02020201, 0x01010102, 40000, 5001))
    tr._expect(conn, 6, 1, 2, 3, t.now)
    t.b.tracker._expect(t.b.tracker.find(0, 4, 6, conn.orig), 6, 1, 2, 3, t.now)
    del conn
    assert t.freeze() == 0


OPS = st.one_of(
    st.tuples(st.just("open"), st.integers(0, 5)),
    st.tuples(st.just("data"), st.integers(0, 5), st.booleans(), st.integers(0, 300)),
    st.tuples(st.just("fin"), st.integers(0, 5), st.booleans()),
    st.tuples(st.just("rst"), st.integers(0, 5), st.booleans()),
    st.tuples(st.just("warp"), st.sampled_from((1, 500, 1000, 15_000, 31_000, 200_000))),
    st.tuples(st.just("freeze")),
    st.tuples(st.just("list"), st.sampled_from(("-L", "-C"))),
    st.tuples(st.just("delete"), st.integers(0, 5)),
    st.tuples(st.just("timeout"), st.sampled_from((2, 30, 100))),
    st.tuples(st.just("flush")),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OPS, min_size=1, max_size=25))
def test_random_operations_look_the_same_frozen_or_not(ops):
    t = Twins()
    seqs = {}
    for op in ops:
        kind = op[0]
        if kind == "open":
            sport = 40000 + op[1]
            t.open(sport)
            seqs[sport] = [1001, 5003]
        elif kind in ("data", "fin", "rst"):
            sport = 40000 + op[1]
            s, a = seqs.get(sport, [1001, 5003])
            flags = {"data": "A", "fin": "FA", "rst": "R"}[kind]
            pl = b"d" * op[3] if kind == "data" else b""
            if op[2]:
                t.send(remote_tcp(flags, sport, a, s, pl))
            else:
                t.send(host_tcp(flags, sport, s, a, pl))
        elif kind == "warp":
            t.warp(op[1])
        elif kind == "freeze":
            t.freeze()
        elif kind == "list":
            t.tool(conntrack_tool.run, op[1])
        elif kind == "delete":
            t.tool(conntrack_tool.run, "-D", "-p", "tcp", "--sport", str(40000 + op[1]))
        elif kind == "timeout":
            t.set("sysctl:" + NF + "nf_flowtable_tcp_timeout", op[1])
        elif kind == "flush":
            t.both(lambda sw: sw.offload.flush(sw.now))
        t.check()
    t.freeze()
    t.tool(conntrack_tool.run, "-L", "-o", "extended")
    t.both(lambda sw: [render.dpctl_line(c, True, True, sw.now) for c in sw.tracker.iter_conns()])
    t.both(lambda sw: sorted(full_state(c)["id"] for c in sw.tracker.iter_conns()))
    assert all(c.status & IPS_OFFLOAD or c.offload is None for c in t.a.tracker.iter_conns())
    assert LAST_FIELDS  # the TCP annotations are part of full_state through the slots
