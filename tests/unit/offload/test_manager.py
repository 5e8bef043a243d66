"""OffloadManager on a simulated clock (reference §7 items 6 and 10), with a fake tracker."""

import json

from ctswitch.offload.manager import WHY_FIN, WHY_RST, OffloadManager, OffloadState
from ctswitch.offload.policy import IPS_HW_OFFLOAD, IPS_OFFLOAD
from ctswitch.packet.headers import FRAG_ANY, TCP_ACK, TCP_FIN, TCP_RST, Packet

MAXC = "devlink:ct_max_offloaded_conns"
NGROUPS = "modparam:mlx5_core.num_of_groups"
CAP = "modparam:ctswitch.fdb_capacity"




def test_tcp_offloaded_on_the_third_handshake_packet(params, tracker):
    m = OffloadManager(params, tracker)
    c = tracker.new(1, nat=True)
    results = []
    for t, (flags, reply) in enumerate((("S", False), ("SA", True), ("A", False))):
        tracker.tcp(c, flags, reply)
        results.append(m.consider(c, t * 10))
    assert results == ["TCP handshake not complete", "TCP handshake not complete", None]
    assert c.status & (IPS_OFFLOAD | IPS_HW_OFFLOAD) == IPS_OFFLOAD | IPS_HW_OFFLOAD
    assert m.state_of(c) is OffloadState.HW_OFFLOAD
    assert c.why is None
    assert tracker.calls == [("on_offload", 1, 20)]
    assert (m.n_sw, m.n_hw, m.hw_rules) == (0, 1, 2)
    assert m.fdb.group_view() == [("tcp4-nat", 1, 800_000, 2, 799_998)]
    assert m.ineligible == {"tcp_handshake": 2}
    # a later slow-path packet changes nothing
    assert m.consider(c, 30) is None
    assert tracker.calls == [("on_offload", 1, 20)]


def test_udp_only_after_a_reply(params, tracker):
    m = OffloadManager(params, tracker)
    c = tracker.new(1, proto=17)
    tracker.udp(c)
    assert m.consider(c, 0) == "UDP: waiting for a reply"
    assert c.why == "UDP: waiting for a reply"
    assert m.consider(c, 5) == "UDP: waiting for a reply"
    tracker.udp(c, reply=True)
    assert m.consider(c, 10) is None
    assert m.state_of(c) is OffloadState.HW_OFFLOAD
    assert m.fdb.group_view() == [("udp4", 1, 800_000, 2, 799_998)]


def test_udp_unidirectional_knob(mk_params, tracker):
    m = OffloadManager(mk_params(**{"modparam:ctswitch.udp_unidirectional_offload": 1}), tracker)
    c = tracker.new(1, proto=17)
    tracker.udp(c)
    assert m.consider(c, 0) is None


def test_icmp_is_never_offloaded(params, tracker):
    m = OffloadManager(params, tracker)
    for cid, proto, ver in ((1, 1, 4), (2, 58, 6)):
        c = tracker.new(cid, proto=proto, ip_ver=ver)
        tracker.udp(c)
        tracker.udp(c, reply=True)
        assert m.consider(c, 0) == "ICMP is never offloaded"
        assert c.status & IPS_OFFLOAD == 0
    assert m.ineligible == {"icmp": 2}
    assert tracker.calls == []


def test_other_reasons(mk_params, params, tracker):
    m = OffloadManager(params, tracker)
    c = tracker.new(1, proto=132)
    tracker.udp(c, reply=True)
    assert m.consider(c, 0) == "SCTP is never offloaded (only TCP and UDP are)"
    c = tracker.new(2, proto=17)
    tracker.udp(c, reply=True)
    c.related = True
    assert m.consider(c, 0) == "related connection (expected by a helper or an ICMP error): never offloaded"
    c.related, c.helper = False, "ftp"
    assert m.consider(c, 0) == "ALG helper ftp attached: connections with a helper are never offloaded"
    c.helper = None
    assert m.consider(c, 0, ct_committed_path=False) == (
        "not committed: only connections stored by ct(commit) are offloaded")
    pkt = Packet()
    pkt.nw_frag = FRAG_ANY
    assert m.consider(c, 0, pkt=pkt).startswith("IP fragment: ")
    pkt.nw_frag, pkt.ip_options = 0, True
    assert m.consider(c, 0, pkt=pkt).startswith("IPv4 header with options: ")
    pkt.ip_options, pkt.nw_ttl = False, 1
    assert m.consider(c, 0, pkt=pkt) == "TTL 1 <= 1: not offloaded; waiting for a packet with a larger TTL"
    pkt.nw_ttl = 64
    assert m.consider(c, 0, pkt=pkt) is None
    u = tracker.new(3)  # not committed at all
    assert m.consider(u, 0) == "not committed: only connections stored by ct(commit) are offloaded"


def test_hw_offload_disabled(mk_params, tracker):
    p = mk_params()
    p.set("other_config:hw-offload", False)
    m = OffloadManager(p, tracker)
    c = tracker.new(1)
    tracker.establish(c)
    assert m.consider(c, 0) == "hw-offload is disabled"
    assert m.explain(c) == "not offloaded: hw-offload is disabled"


def test_closing_tcp_is_not_offloaded(params, tracker):
    m = OffloadManager(params, tracker)
    c = tracker.new(1)
    tracker.establish(c)
    tracker.tcp(c, "FA")
    assert m.consider(c, 0) == "TCP connection is closing (FIN_WAIT)"


def test_idle_30s_ages_out(params, tracker):
    m = OffloadManager(params, tracker)
    c = tracker.offloaded_tcp(m, 1, now=1000)
    assert m.gc(30_999) == []
    assert m.state_of(c) is OffloadState.HW_OFFLOAD
    assert m.gc(31_000) == [(c, "aged out after 30 s idle at t=31")]
    assert c.why == "aged out after 30 s idle at t=31"
    assert c.status & (IPS_OFFLOAD | IPS_HW_OFFLOAD) == 0
    assert c.offload is None
    assert tracker.calls[-1] == ("on_unoffload", 1, 31_000)
    assert (m.n_hw, m.hw_rules, m.fdb.used, m.fdb.groups) == (0, 0, 0, {})
    assert m.stats["aged"] == 1
    assert m.explain(c) == "not offloaded: aged out after 30 s idle at t=31"


def test_aging_happens_on_the_next_whole_second_tick(params, tracker):
    m = OffloadManager(params, tracker)
    c = tracker.offloaded_tcp(m, 1, now=1500)
    assert m.gc(31_999) == []
    assert m.gc(45_000) == [(c, "aged out after 30 s idle at t=32")]
    assert tracker.calls[-1] == ("on_unoffload", 1, 32_000)


def test_traffic_keeps_it_offloaded(params, tracker):
    m = OffloadManager(params, tracker)
    c = tracker.offloaded_tcp(m, 1, now=0)
    for t in range(1000, 100_001, 1000):
        assert m.gc(t) == []
        assert m.hw_hit(c, t, 100, reply=t % 2000 == 0)
    assert c.packets == [50, 50] and c.bytes == [5000, 5000]
    assert c.offload.hw_packets == 100
    assert m.gc(129_999) == []
    assert m.gc(130_000) == [(c, "aged out after 30 s idle at t=130")]


def test_flowtable_timeout_knob(params, tracker):
    m = OffloadManager(params, tracker)
    c = tracker.offloaded_tcp(m, 1, now=0)
    u = tracker.new(2, proto=17)
    tracker.udp(u, reply=True)
    m.consider(u, 0)
    params.set("sysctl:net.netfilter.nf_flowtable_udp_timeout", 5)
    assert m.gc(5000) == [(u, "aged out after 5 s idle at t=5")]
    assert m.gc(29_000) == []
    assert m.gc(30_000) == [(c, "aged out after 30 s idle at t=30")]


def test_reoffload_after_aging(params, tracker):
    m = OffloadManager(params, tracker)
    c = tracker.offloaded_tcp(m, 1, now=0)
    m.gc(30_000)
    assert m.consider(c, 40_000) is None
    assert m.state_of(c) is OffloadState.HW_OFFLOAD
    assert m.explain(c) == ("offloaded to hardware [HW_OFFLOAD] since t=40: 2 FDB rules in group tcp4; "
                            "last used at t=40; ages out at t=70 unless used (30 s idle timeout)")


def test_ct_max_offloaded_conns_then_promotion(mk_params, tracker):
    p = mk_params(**{MAXC: 2})
    m = OffloadManager(p, tracker)
    a = tracker.offloaded_tcp(m, 1)
    tracker.offloaded_tcp(m, 2)
    c = tracker.offloaded_tcp(m, 3, now=100)
    assert m.state_of(c) is OffloadState.OFFLOAD
    assert c.status & (IPS_OFFLOAD | IPS_HW_OFFLOAD) == IPS_OFFLOAD
    assert c.why == "ct_max_offloaded_conns reached (2)"
    assert (m.n_sw, m.n_hw, m.hw_rules) == (1, 2, 4)
    assert m.refused["ct_max_offloaded_conns"] == 1
    assert m.explain(c) == (
        "offloaded to the software flow table [OFFLOAD] since t=0.1, not in hardware: "
        "ct_max_offloaded_conns reached (2); the hardware insert is retried on software hits; "
        "last used at t=0.1; ages out at t=31 unless used (30 s idle timeout)")
    # space frees: a FIN on the software path tears connection 1 down
    assert m.sw_hit(a, 500, 60, tcp_flags=TCP_FIN | TCP_ACK) is False
    assert a.why == WHY_FIN and a.offload is None
    assert tracker.calls[-1] == ("on_unoffload", 1, 500)
    # the retry waits for the flow table refresh (> 1 s since the last attempt)
    assert m.sw_hit(c, 1100, 60) is True
    assert m.state_of(c) is OffloadState.OFFLOAD
    assert m.sw_hit(c, 1101, 60) is True
    assert m.state_of(c) is OffloadState.HW_OFFLOAD
    assert c.why is None and c.status & IPS_HW_OFFLOAD
    assert c.offload.sw_packets == 2 and c.packets == [2, 0]
    assert m.stats["retries"] == 1 and m.stats["torn_down"] == 1 and m.torn == {WHY_FIN: 1}
    assert (m.n_sw, m.n_hw, m.hw_rules) == (0, 2, 4)


def test_lowering_the_limit_evicts_nothing(params, tracker):
    m = OffloadManager(params, tracker)
    conns = [tracker.offloaded_tcp(m, i) for i in range(3)]
    params.set(MAXC, 1)
    assert all(m.state_of(c) is OffloadState.HW_OFFLOAD for c in conns)
    d = tracker.offloaded_tcp(m, 9)
    assert d.why == "ct_max_offloaded_conns reached (1)"
    assert m.counters()["hw_rules_max"] == 2 and m.counters()["hw_rules"] == 6


def test_hardware_full_group(mk_params, tracker):
    m = OffloadManager(mk_params(**{CAP: 4, NGROUPS: 1}), tracker)  # one big group of 2
    tracker.offloaded_tcp(m, 1)
    tracker.offloaded_tcp(m, 2)  # two size-1 groups
    c = tracker.offloaded_tcp(m, 3)
    assert c.why == "hardware full: group tcp4 has 4/4"
    assert m.fdb.used == 4 and m.refused["group_full"] == 1
    u = tracker.new(4, proto=17)
    tracker.udp(u, reply=True)
    m.consider(u, 0)
    assert u.why == "hardware full: no room for a new udp4 group (4/4 FDB entries allocated)"
    assert m.refused["table_full"] == 1


def test_second_rule_refused_rolls_back_the_first(mk_params, tracker):
    m = OffloadManager(mk_params(**{CAP: 3, NGROUPS: 2}), tracker)  # big groups of 1
    tracker.offloaded_tcp(m, 1)  # two big groups of 1
    c = tracker.offloaded_tcp(m, 2, nat=True)  # one size-1 group, the second rule fails
    assert c.why == "hardware full: no room for a new tcp4-nat group (2/3 FDB entries allocated)"
    assert m.fdb.used == 2 and m.fdb.allocated == 2


def test_num_of_groups_change_pending_until_fdb_empty(params, tracker):
    m = OffloadManager(params, tracker)
    a = tracker.offloaded_tcp(m, 1)
    b = tracker.offloaded_tcp(m, 2)
    params.set(NGROUPS, 1)
    m.gc(0)
    assert (m.fdb.num_of_groups, m.fdb.pending_num_of_groups) == (4, 1)
    m.teardown(a, WHY_RST, 10)
    assert m.fdb.pending_num_of_groups == 1
    assert m.sw_hit(b, 20, tcp_flags=TCP_RST) is False
    assert b.why == WHY_RST
    assert (m.fdb.num_of_groups, m.fdb.group_size, m.fdb.pending) == (1, 2_000_000, False)
    tracker.offloaded_tcp(m, 3)
    assert m.fdb.group_view() == [("tcp4", 1, 2_000_000, 2, 1_999_998)]


def test_num_of_groups_change_at_once_when_empty(params, tracker):
    m = OffloadManager(params, tracker)
    params.set(NGROUPS, 3)
    tracker.offloaded_tcp(m, 1)
    assert m.fdb.group_view() == [("tcp4", 1, 1_000_000, 2, 999_998)]


def test_deleted_connection_is_not_handed_back(params, tracker):
    m = OffloadManager(params, tracker)
    c = tracker.offloaded_tcp(m, 1)
    assert m.teardown(c, "conntrack entry deleted", 5, deleted=True)
    assert tracker.calls == [("on_offload", 1, 0)]
    assert m.teardown(c, "again", 6) is False
    assert m.gc(100_000) == []


def test_flush_by_zone(params, tracker):
    m = OffloadManager(params, tracker)
    tracker.offloaded_tcp(m, 1, zone=1)
    c2 = tracker.offloaded_tcp(m, 2, zone=2)
    assert m.flush(5, zone=1) == 1
    assert m.n_hw == 1 and m.state_of(c2) is OffloadState.HW_OFFLOAD
    assert m.flush(5) == 1 and m.n_hw == 0 and m.fdb.used == 0


def test_skip_hw_policy_stays_in_software(mk_params, tracker):
    m = OffloadManager(mk_params(**{"other_config:tc-policy": "skip_hw"}), tracker)
    c = tracker.offloaded_tcp(m, 1)
    assert m.state_of(c) is OffloadState.OFFLOAD
    assert c.why == "tc-policy=skip_hw keeps offloaded connections out of hardware"


def test_hits_on_connections_not_offloaded(params, tracker):
    m = OffloadManager(params, tracker)
    c = tracker.new(1)
    assert m.hw_hit(c, 0, 10) is False and m.sw_hit(c, 0, 10) is False
    assert c.packets == [0, 0]


def test_state_round_trip_through_json(mk_params, tracker):
    p = mk_params(**{MAXC: 1})
    m = OffloadManager(p, tracker)
    a = tracker.offloaded_tcp(m, 1, now=1000)
    b = tracker.offloaded_tcp(m, 2, now=2000)
    i = tracker.new(3, proto=1)
    tracker.udp(i)
    m.consider(i, 0)
    m.hw_hit(a, 3000, 77)
    state = json.loads(json.dumps(m.to_state()))
    m2 = OffloadManager.from_state(p, tracker, state)
    assert m2.to_state() == state
    assert (m2.n_sw, m2.n_hw, m2.hw_rules) == (1, 1, 2)
    assert m2.state_of(a) is OffloadState.HW_OFFLOAD and m2.state_of(b) is OffloadState.OFFLOAD
    assert b.why == "ct_max_offloaded_conns reached (1)" and i.why == "ICMP is never offloaded"
    assert m2.gc(32_000) == [(b, "aged out after 30 s idle at t=32")]
    assert m2.gc(33_000) == [(a, "aged out after 30 s idle at t=33")]
    assert m2.fdb.used == 0


def test_gc_scales_and_is_lazy(params, tracker):
    m = OffloadManager(params, tracker)
    conns = [tracker.offloaded_tcp(m, i, now=i % 1000) for i in range(20_000)]
    assert m.n_hw == 20_000 and m.hw_rules == 40_000
    for t in range(1000, 30_000, 1000):
        assert m.gc(t) == []
    for c in conns[:10]:
        m.hw_hit(c, 29_500)
    # offloaded at t=0 and never hit: ids 1000, 2000, ... 19000
    assert [c.id for c, _ in m.gc(30_000)] == list(range(1000, 20_000, 1000))
    assert len(m.gc(31_000)) == 20_000 - 19 - 10
    assert m.gc(59_999) == []
    assert [c.id for c, _ in m.gc(60_000)] == list(range(10))
    assert m.n_hw == 0 and m.hw_rules == 0 and m.fdb.used == 0


def test_explain_before_any_decision(params, tracker):
    m = OffloadManager(params, tracker)
    c = tracker.new(1)
    assert m.explain(c) == (
        "not offloaded: not evaluated yet (no slow-path ct() verdict since it was created or restored)")
