"""Property tests and agreement with the official OVS Python flow parser."""

from __future__ import annotations

import glob
import json
import os
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctswitch.flow.ofctl_syntax import (
    DictPorts,
    FlowSyntaxError,
    format_actions,
    format_flow_stats,
    format_match,
    parse_flow,
)

ofp = pytest.importorskip("ovs.flow.ofp")
PORTS = DictPorts({"p0": 1, "pf0hpf": 2})


def _line(text: str, ports=PORTS, names: bool = False) -> str:
    spec = parse_flow(text, ports)
    rule = SimpleNamespace(table_id=spec.table, priority=spec.priority, match=spec.match, actions=spec.actions,
                           cookie=spec.cookie, idle_timeout=spec.idle_timeout, hard_timeout=spec.hard_timeout,
                           importance=0, flags=0, created_ms=0, last_used_ms=500, n_packets=3, n_bytes=180)
    return format_flow_stats(rule, ports, 1500, names=names)


def _oracle_flows():
    for case in sorted(glob.glob("/work/shared/oracle/cases/*")):
        with open(os.path.join(case, "case.json")) as fh:
            ports = DictPorts(json.load(fh)["ports"])
        with open(os.path.join(case, "flows.txt")) as fh:
            for ln in fh:
                if ln.strip():
                    yield ports, ln.strip()


def test_ovs_python_parser_agrees_on_oracle_flows():
    for ports, flow in _oracle_flows():
        spec = parse_flow(flow, ports)
        parsed = ofp.OFPFlow(_line(flow, ports))
        assert parsed.info["table"] == spec.table and parsed.info["n_packets"] == 3
        assert parsed.info["duration"] == 1.5 and parsed.info["idle_age"] == 1
        assert parsed.match.get("priority", 32768) == spec.priority
        ours = format_match(spec.match, spec.priority, ports, False)
        assert set(parsed.match) == {item.split("=")[0] for item in ours.split(",")}
        kinds = [next(iter(a)) for a in parsed.actions]
        assert len(kinds) == len(spec.actions)


def test_ovs_python_parser_decodes_ct_nat_and_ports():
    parsed = ofp.OFPFlow(_line("table=1,in_port=pf0hpf,ip,ct_state=+trk+new,"
                               "action=ct(commit,zone=5,nat(src=10.0.0.240-10.0.0.254:32768-65535,persistent)),p0"))
    assert parsed.match == {"ct_state": "+new+trk", "ip": True, "in_port": 2}
    ct = parsed.actions[0]["ct"]
    assert ct["commit"] is True and ct["zone"] == 5
    nat = ct["nat"]
    assert nat["type"] == "src" and str(nat["addrs"]["start"]) == "10.0.0.240"
    assert str(nat["addrs"]["end"]) == "10.0.0.254"
    assert nat["ports"] == {"start": 32768, "end": 65535} and nat["persistent"] is True
    assert parsed.actions[1] == {"output": {"port": 1}}
    parsed = ofp.OFPFlow(_line("tcp,nw_src=10.0.0.0/24,tp_dst=80,actions=resubmit(,3),mod_nw_dst:1.2.3.4"))
    assert str(parsed.match["nw_src"]) == "10.0.0.0/24" and parsed.match["tp_dst"] == 80
    assert parsed.actions[0] == {"resubmit": {"port": "", "table": 3}}
    assert str(parsed.actions[1]["mod_nw_dst"]) in ("1.2.3.4", "1.2.3.4/32")


# --- random valid flows round-trip ------------------------------------------------------------

_ip = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
_ct_flags = st.lists(st.sampled_from(["new", "est", "rel", "rpl", "inv", "trk", "snat", "dnat"]),
                     unique=True, min_size=1, max_size=4)
_ct_state = st.tuples(_ct_flags, st.lists(st.booleans(), min_size=4, max_size=4)).map(
    lambda t: "".join(("+" if s else "-") + f for f, s in zip(t[0], t[1], strict=False)))
_match_items = st.lists(st.one_of(
    st.builds(lambda s: f"ct_state={s}", _ct_state),
    st.builds(lambda p: f"in_port={p}", st.sampled_from(["p0", "pf0hpf", "3", "LOCAL"])),
    st.builds(lambda a, n: f"nw_src={a}/{n}", _ip, st.integers(0, 32)),
    st.builds(lambda a: f"nw_dst={a}", _ip),
    st.builds(lambda p: f"tp_dst={p}", st.integers(0, 65535)),
    st.builds(lambda v, m: f"tp_src={v:#x}/{m:#x}", st.integers(0, 65535), st.integers(1, 65535)),
    st.builds(lambda v: f"ct_mark={v:#x}", st.integers(0, 2**32 - 1)),
    st.builds(lambda v: f"ct_zone={v}", st.integers(0, 65535)),
    st.builds(lambda r, v: f"reg{r}={v}", st.integers(0, 15), st.integers(0, 2**32 - 1)),
    st.builds(lambda v: f"nw_ttl={v}", st.integers(0, 255)),
), max_size=5)
_nat = st.one_of(
    st.just("nat"),
    st.builds(lambda k, a, p: f"nat({k}={a}" + (f":{p}" if p else "") + ")",
              st.sampled_from(["src", "dst"]), _ip, st.integers(0, 65535)),
)
_action = st.one_of(
    st.sampled_from(["normal", "NORMAL", "p0", "output:2", "drop_never", "local", "flood", "ct_clear",
                     "dec_ttl", "resubmit(,2)", "load:0x5->NXM_NX_REG0[0..7]", "move:NXM_NX_REG0[]->NXM_NX_REG1[]"]),
    st.builds(lambda c, t, z, n: "ct(" + ",".join(x for x in (c, t, z, n) if x) + ")",
              st.sampled_from(["", "commit"]), st.sampled_from(["", "table=1", "table=254"]),
              st.sampled_from(["", "zone=7", "zone=NXM_NX_REG0[0..15]"]), _nat),
    st.builds(lambda v: f"set_field:{v:#x}->reg3", st.integers(0, 2**32 - 1)),
)


@settings(max_examples=200, deadline=None)
@given(proto=st.sampled_from(["ip", "tcp", "udp", "icmp", "sctp"]), items=_match_items,
       prio=st.integers(0, 65535), table=st.integers(0, 254),
       actions=st.lists(_action.filter(lambda a: a != "drop_never"), min_size=1, max_size=4))
def test_random_valid_flows_round_trip(proto, items, prio, table, actions):
    text = f"table={table},priority={prio},{proto}," + ",".join(items) + ",actions=" + ",".join(actions)
    try:
        spec = parse_flow(text, PORTS)
    except FlowSyntaxError as e:  # a few generated combinations are invalid in OVS too
        assert "invalid" in str(e) or "must" in str(e)
        return
    for names in (True, False):
        printed = f"table={spec.table}," + format_match(spec.match, spec.priority, PORTS, names)
        printed += " actions=" + format_actions(spec.actions, PORTS, names)
        again = parse_flow(printed, PORTS)
        assert (again.match, again.actions, again.priority, again.table) == (
            spec.match, spec.actions, spec.priority, spec.table)
        assert format_match(again.match, again.priority, PORTS, names) == format_match(
            spec.match, spec.priority, PORTS, names)


_junk_alphabet = st.sampled_from(list("abcdefgnprstxz0123456789,=:()[]-+/.>_ |\"\\") +
                                 ["ct(", "nat(", "actions=", "ip", "tcp", "table=", "load:", "->", "NXM_NX_REG0",
                                  "ct_state=", "set_field:", "exec(", "output:", "resubmit(", "0x"])


@settings(max_examples=400, deadline=None)
@given(st.lists(_junk_alphabet, max_size=30).map("".join),
       st.sampled_from(["add", "del", "dump", "mod", "del-strict"]))
def test_junk_only_raises_flow_syntax_error(text, command):
    try:
        spec = parse_flow(text, PORTS, command=command)
    except FlowSyntaxError:
        return
    format_match(spec.match, spec.priority, PORTS)
    format_actions(spec.actions, PORTS)
