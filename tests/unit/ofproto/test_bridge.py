import pytest

from ctswitch.flow.actions import OFPP_LOCAL, OFPP_NORMAL, Output
from ctswitch.flow.key import DL_TYPE, IN_PORT, ZERO, Match
from ctswitch.ofproto.bridge import BridgeError, OFBridge
from ctswitch.ofproto.rule import Rule


def m(**kw):
    values = list(ZERO)
    mask = list(ZERO)
    for name, v in kw.items():
        idx = {"in_port": IN_PORT, "dl_type": DL_TYPE}[name]
        values[idx] = v
        mask[idx] = 0xFFFF if name == "dl_type" else 0xFFFFFFFF
    return Match(tuple(values), tuple(mask))


def test_new_standalone_bridge_has_local_port_and_normal_flow():
    br = OFBridge("ctBr")
    assert br.ports["ctBr"].ofport == OFPP_LOCAL
    rules = list(br.iter_rules())
    assert len(rules) == 1 and rules[0].priority == 0 and rules[0].actions == [Output(OFPP_NORMAL)]
    assert list(OFBridge("s", "secure").iter_rules()) == []


def test_ports_numbered_from_one_and_requests():
    br = OFBridge("br0")
    assert br.add_port("p0").ofport == 1
    assert br.add_port("pf0hpf").ofport == 2
    assert br.add_port("x", ofport_request=10).ofport == 10
    assert br.add_port("y").ofport == 3
    with pytest.raises(BridgeError):
        br.add_port("p0")
    br.del_port("p0")
    assert br.add_port("z").ofport == 1
    assert br.number("LOCAL") == OFPP_LOCAL and br.name_of(2) == "pf0hpf"


def test_add_replaces_identical_keeping_counters_and_flush_readds_default():
    br = OFBridge("br0")
    r1 = br.add_rule(Rule(0, 10, m(in_port=1), [Output(2)]))
    r1.n_packets = 5
    r2 = br.add_rule(Rule(0, 10, m(in_port=1), [Output(3)]))
    assert r2.n_packets == 5 and len([r for r in br.iter_rules() if r.priority == 10]) == 1
    r3 = br.add_rule(Rule(0, 10, m(in_port=1), [Output(3)]), reset_counts=True)
    assert r3.n_packets == 0
    br.remove_rules(br.select(None, None), now=0)
    rules = list(br.iter_rules())
    assert [r.priority for r in rules] == [0]  # standalone re-adds NORMAL after a flush


def test_nonstrict_and_strict_selection():
    br = OFBridge("br0", "secure")
    a = br.add_rule(Rule(0, 10, m(in_port=1, dl_type=0x0800), []))
    b = br.add_rule(Rule(0, 20, m(in_port=1), []))
    c = br.add_rule(Rule(1, 10, m(dl_type=0x0800), []))
    assert br.select(m(in_port=1), None) == [b, a]
    assert br.select(m(dl_type=0x0800), None) == [a, c]
    assert br.select(m(dl_type=0x0800), 1) == [c]
    assert br.select(m(in_port=1), None, strict=True, priority=20) == [b]
    assert br.select(m(in_port=1), None, strict=True, priority=10) == []


def test_timeouts_expire_on_switch_clock():
    br = OFBridge("br0", "secure")
    idle = br.add_rule(Rule(0, 1, m(in_port=1), [], idle_timeout=10, now=0))
    hard = br.add_rule(Rule(0, 2, m(in_port=2), [], hard_timeout=5, now=0))
    assert br.expire(4999) == []
    assert br.expire(5000) == [(hard, "hard")]
    idle.last_used_ms = 8000
    assert br.expire(17999) == []
    assert br.expire(18000) == [(idle, "idle")]


def test_mac_learning_and_aging():
    br = OFBridge("br0")
    g = br.generation
    br.learn(0, 0x020000000102, 1, now=0)
    assert br.generation == g + 1
    br.learn(0, 0x020000000102, 1, now=10)
    assert br.generation == g + 1  # refresh is not a change
    assert br.mac_lookup(0, 0x020000000102, now=100, aging_ms=300_000) == 1
    br.learn(0, 0xFFFFFFFFFFFF, 2, now=0)  # broadcast source never learned
    assert (0, 0xFFFFFFFFFFFF) not in br.mac
    assert br.mac_lookup(0, 0x020000000102, now=300_010, aging_ms=300_000) is None


def test_mac_sync_runs_before_a_mac_expires_on_lookup():
    """``mac_sync`` (the datapath's batched hits, credited late) runs only when a MAC would expire
    on lookup; a refresh it credits keeps the MAC, with no generation change."""
    br = OFBridge("br0")
    mac = 0x020000000102
    br.learn(0, mac, 1, now=0)
    calls = []

    def sync():
        calls.append(1)
        br.learn(0, mac, 1, now=60_400)  # a hit at 60.4 s, credited now

    br.mac_sync = sync
    g = br.generation
    assert br.mac_lookup(0, mac, now=59_000, aging_ms=60_000) == 1 and calls == []
    assert br.mac_lookup(0, mac, now=60_500, aging_ms=60_000) == 1 and calls == [1]
    assert br.generation == g and br.mac[(0, mac)] == (1, 60_400)
    assert br.mac_lookup(0, mac, now=120_400, aging_ms=60_000) is None  # synced again: nothing new
    assert calls == [1, 1] and br.generation == g + 1
