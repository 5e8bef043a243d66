"""One-way UDP offload (``ctswitch.udp_unidirectional_offload``) and FDB patterns by IP version.

Reference §3.2: UDP before ASSURED is offloaded with ``bidirectional = false`` (one HW rule,
the original direction); replies go to conntrack until ASSURED, then the reply rule is added.
§3.5: IPv4 and IPv6 (and NAT / no NAT) tuples are different patterns, each in its own group;
a pattern beyond the num_of_groups big groups gets size-1 groups.
"""

from __future__ import annotations

from ctswitch.offload import render
from ctswitch.offload.manager import OffloadManager, OffloadRecord, OffloadState
from ctswitch.offload.policy import IPS_ASSURED, IPS_HW_OFFLOAD

UNI = "modparam:ctswitch.udp_unidirectional_offload"
CAP = "modparam:ctswitch.fdb_capacity"
MAXC = "devlink:ct_max_offloaded_conns"




def udp_new(m, tracker, cid, now=0, **kw):
    c = tracker.new(cid, proto=17, **kw)
    tracker.udp(c)
    assert m.consider(c, now) is None
    return c


def test_oneway_udp_has_one_rule_and_counts_as_uni(mk_params, tracker):
    m = OffloadManager(mk_params(**{UNI: 1}), tracker)
    c = udp_new(m, tracker, 1)
    assert c.status & IPS_HW_OFFLOAD and c.offload.uni
    assert m.hw_rules == 1 and m.fdb.used == 1
    assert m.counters()["offloaded_uni"] == 1
    stats = render.offload_stats(m)
    assert "CT uni-dir Connections:       1" in stats
    assert "CT bi-dir Connections:       0" in stats
    assert "original direction only: 1 FDB rule in group udp4" in m.explain(c)


def test_oneway_reply_goes_to_conntrack_until_assured(mk_params, tracker):
    m = OffloadManager(mk_params(**{UNI: 1}), tracker)
    c = udp_new(m, tracker, 1)
    assert m.flow_hit(c, 100, 60, False, 0)  # original direction: the HW rule
    assert not m.flow_hit(c, 200, 60, True, 0)  # reply: conntrack sees it
    assert not m.hw_hit(c, 300, 60, reply=True)
    assert c.offload.last_used == 200
    tracker.udp(c, reply=True)
    c.status |= IPS_ASSURED  # conntrack: a reply after 2 s
    assert m.flow_hit(c, 2600, 60, True, 0)  # now the flow table answers, both directions in HW
    assert not c.offload.uni
    assert m.hw_rules == 2 and m.fdb.used == 2 and m.n_uni == 0
    assert c.offload.groups is not None and len(c.offload.groups) == 2
    m.teardown(c, "test", 3000)
    assert m.hw_rules == 0 and m.fdb.used == 0 and m.n_hw == 0


def test_oneway_upgrade_refused_keeps_the_original_rule(mk_params, tracker):
    m = OffloadManager(mk_params(**{UNI: 1, MAXC: 1}), tracker)
    a = udp_new(m, tracker, 1)
    b = udp_new(m, tracker, 2)  # 2 rules for 2 one-way connections: at the limit
    assert m.hw_rules == 2 and m.state_of(b) is OffloadState.HW_OFFLOAD
    a.status |= IPS_ASSURED
    assert m.flow_hit(a, 2600, 60, True, 0)  # forwarded by the software flow table
    assert a.offload.uni and m.hw_rules == 2
    assert a.why == "ct_max_offloaded_conns reached (1)"
    assert a.offload.sw_packets == 1


def test_oneway_ct_max_counts_rules(mk_params, tracker):
    m = OffloadManager(mk_params(**{UNI: 1, MAXC: 1}), tracker)
    udp_new(m, tracker, 1)
    udp_new(m, tracker, 2)
    c = udp_new(m, tracker, 3)
    assert m.state_of(c) is OffloadState.OFFLOAD


def test_replied_udp_without_knob_is_bidirectional(mk_params, tracker):
    m = OffloadManager(mk_params(), tracker)
    c = tracker.new(1, proto=17)
    tracker.udp(c)
    tracker.udp(c, reply=True)
    assert m.consider(c, 0) is None
    assert not c.offload.uni and m.hw_rules == 2


def test_oneway_record_round_trips(mk_params, tracker):
    m = OffloadManager(mk_params(**{UNI: 1}), tracker)
    udp_new(m, tracker, 1)
    m2 = OffloadManager.from_state(mk_params(**{UNI: 1}), tracker, m.to_state())
    assert m2.hw_rules == 1 and m2.n_uni == 1 and m2.n_hw == 1
    old = OffloadRecord.from_list(m.to_state()["conns"][0][1][:11])  # a snapshot from before
    assert old.uni is False


def test_ipv4_and_ipv6_are_separate_groups_and_a_fifth_pattern_gets_size1_groups(mk_params, tracker):
    m = OffloadManager(mk_params(**{CAP: 10}), tracker)  # 4 big groups of 10 // 5 = 2
    tracker.offloaded_tcp(m, 1)  # tcp4
    tracker.offloaded_tcp(m, 2, ip_ver=6)  # tcp6
    tracker.offloaded_tcp(m, 3, nat=True)  # tcp4-nat
    tracker.offloaded_tcp(m, 4, ip_ver=6, nat=True)  # tcp6-nat
    names = [r[0] for r in m.fdb.group_view()]
    assert names == ["tcp4", "tcp6", "tcp4-nat", "tcp6-nat"]
    c = tracker.new(5, proto=17)  # the fifth pattern: udp4
    tracker.udp(c)
    tracker.udp(c, reply=True)
    assert m.consider(c, 0) is None
    assert m.state_of(c) is OffloadState.HW_OFFLOAD
    assert m.fdb.group_view()[-1] == ("udp4", 2, 2, 2, 0)  # two size-1 groups
    d = tracker.new(6, proto=17, orig=(1, 2, 3, 4))
    tracker.udp(d)
    tracker.udp(d, reply=True)
    m.consider(d, 0)
    assert m.state_of(d) is OffloadState.OFFLOAD
    assert d.why == "hardware full: group udp4 has 2/2"
