"""ovs-ofctl flow grammar: oracle dump-flows lines, round trips, OVS error messages."""

from __future__ import annotations

import glob
import json
import os
from types import SimpleNamespace

import pytest

from ctswitch.flow import key as K
from ctswitch.flow.actions import OFPP_NORMAL, Ct, GotoTable, Load, Nat, Output, Resubmit, SetField, Subfield
from ctswitch.flow.ofctl_syntax import (
    DictPorts,
    FlowSyntaxError,
    format_actions,
    format_duration,
    format_flow_stats,
    format_match,
    parse_actions,
    parse_flow,
    wire_actions,
)

CASES = sorted(glob.glob("/work/shared/oracle/cases/*"))
VENDOR_FLOWS = [
    "table=0,arp,action=normal",
    "table=0,ip,ct_state=-trk,action=ct(table=1)",
    "table=0,udp,tp_dst=4791,action=normal",
    "table=1,priority=1,ip,ct_state=+trk+new,action=ct(commit),normal",
    "table=1,priority=1,ip,ct_state=+trk+est,action=normal",
    "table=0,ip,ct_state=-trk,action=ct(table=1,nat)",
    "table=1,in_port=pf0hpf,ip,ct_state=+trk+new,action=ct(commit,nat(src=1.1.1.16)), p0",
    "table=1,ip,ct_state=+trk+est,action=normal",
]
PORTS = DictPorts({"p0": 1, "pf0hpf": 2})


def _case(path: str):
    with open(os.path.join(path, "case.json")) as fh:
        meta = json.load(fh)
    with open(os.path.join(path, "flows.txt")) as fh:
        flows = [ln.strip() for ln in fh if ln.strip()]
    with open(os.path.join(path, "expected", "dump-flows.txt")) as fh:
        dump = [ln.rstrip("\n") for ln in fh if ln.startswith(" ")]
    return DictPorts(meta["ports"]), flows, dump


def _rule(spec, **kw):
    base = dict(table_id=spec.table, priority=spec.priority, match=spec.match, actions=spec.actions,
                cookie=spec.cookie, idle_timeout=spec.idle_timeout, hard_timeout=spec.hard_timeout,
                importance=spec.importance, flags=spec.flags, created_ms=0, last_used_ms=0,
                n_packets=0, n_bytes=0)
    base.update(kw)
    return SimpleNamespace(**base)


def _spec_key(s):
    return (s.match, s.actions, s.table, s.priority, s.cookie, s.idle_timeout, s.hard_timeout, s.flags)


@pytest.mark.parametrize("case", CASES, ids=os.path.basename)
def test_oracle_dump_flows_lines(case):
    ports, flows, dump = _case(case)
    assert len(flows) == len(dump)
    for flow, line in zip(flows, dump, strict=True):
        spec = parse_flow(flow, ports)
        # take counters and timings from the real line, everything else from our parse
        fields = dict(p.split("=", 1) for p in line.strip().split(", ")[:6])
        dur_ms = round(float(fields["duration"][:-1]) * 1000)
        rule = _rule(spec, n_packets=int(fields["n_packets"]), n_bytes=int(fields["n_bytes"]),
                     created_ms=1000, last_used_ms=1000 + dur_ms - int(fields["idle_age"]) * 1000)
        assert " " + format_flow_stats(rule, ports, 1000 + dur_ms, names=False) == line
        # the dump line parses back to the same flow
        back = parse_flow(line.strip(), ports)
        assert _spec_key(back) == _spec_key(spec)


@pytest.mark.parametrize("flow", VENDOR_FLOWS)
def test_vendor_flows_round_trip(flow):
    spec = parse_flow(flow, PORTS)
    for names in (True, False):
        text = f"table={spec.table}," + format_match(spec.match, spec.priority, PORTS, names)
        text += " actions=" + format_actions(spec.actions, PORTS, names)
        assert _spec_key(parse_flow(text, PORTS)) == _spec_key(spec)


def test_vendor_snat_flow_prints_like_ovs():
    spec = parse_flow(VENDOR_FLOWS[6], PORTS)
    assert spec.table == 1 and spec.priority == 32768
    assert format_match(spec.match, spec.priority, PORTS) == "ct_state=+new+trk,ip,in_port=pf0hpf"
    assert format_actions(spec.actions, PORTS) == "ct(commit,nat(src=1.1.1.16)),output:p0"
    assert spec.actions == [Ct(commit=True, nat=Nat("src", 4, 0x01010110, 0x01010110)), Output(1)]


def test_names_and_no_stats_lines():
    spec = parse_flow("table=1,priority=1,ip,ct_state=+trk+est,action=normal", PORTS)
    rule = _rule(spec, created_ms=5000, last_used_ms=9000, n_packets=9, n_bytes=666)
    assert format_flow_stats(rule, PORTS, 17345) == (
        "cookie=0x0, duration=12.345s, table=1, n_packets=9, n_bytes=666, idle_age=8, "
        "priority=1,ct_state=+est+trk,ip actions=NORMAL")
    assert format_flow_stats(rule, PORTS, 17345, stats=False) == (
        "table=1, priority=1,ct_state=+est+trk,ip actions=NORMAL")
    rule0 = _rule(parse_flow("priority=0,actions=NORMAL"), created_ms=0, last_used_ms=0)
    assert format_flow_stats(rule0, PORTS, 30001, stats=False) == "priority=0 actions=NORMAL"
    assert format_flow_stats(rule0, PORTS, 30001) == (
        "cookie=0x0, duration=30.001s, table=0, n_packets=0, n_bytes=0, idle_age=30, priority=0 actions=NORMAL")
    catch_all = _rule(parse_flow("actions=drop"))
    assert format_flow_stats(catch_all, PORTS, 2000, stats=False) == "actions=drop"


def test_timeouts_cookie_hard_age_and_quoted_names():
    ports = DictPorts({"s_new": 10, "p0": 1})
    spec = parse_flow("cookie=0x1f,idle_timeout=10,hard_timeout=60,send_flow_rem,ip,in_port=s_new,"
                      "actions=output:s_new", ports)
    rule = _rule(spec, created_ms=0, last_used_ms=3000, modified_ms=2000)
    assert format_flow_stats(rule, ports, 7500) == (
        'cookie=0x1f, duration=7.500s, table=0, n_packets=0, n_bytes=0, idle_timeout=10, hard_timeout=60, '
        'idle_age=4, hard_age=5, ip,in_port="s_new" actions=output:"s_new"')
    assert format_flow_stats(rule, ports, 7500, protocol="of13", stats=False) == (
        'cookie=0x1f, idle_timeout=10, hard_timeout=60, send_flow_rem ip,in_port="s_new" actions=output:"s_new"')
    assert _spec_key(parse_flow('ip,in_port="s_new",actions=output:"s_new"', ports))[0] == spec.match


def test_duration_format():
    assert [format_duration(x) for x in (0, 1000, 1035, 3093, 12000, 999)] == [
        "0s", "1s", "1.035s", "3.093s", "12s", "0.999s"]


@pytest.mark.parametrize("text,match_text", [
    ("ip,ct_state=+trk+new,actions=drop", "ct_state=+new+trk,ip"),
    ("ct_state=-trk,ip,actions=drop", "ct_state=-trk,ip"),
    ("ct_state=new|trk,ip,actions=drop", "ct_state=new|trk,ip"),
    ("ct_state=0x21/0x21,ip,actions=drop", "ct_state=+new+trk,ip"),
    ("ct_state=0,actions=drop", "ct_state=0"),
    ("ct_state=+est-rel-inv+trk,actions=drop", "ct_state=+est-rel-inv+trk"),
    ("ip,nw_src=10.0.0.0/24,nw_dst=10.1.0.0/255.255.0.255,actions=drop",
     "ip,nw_src=10.0.0.0/24,nw_dst=10.1.0.0/255.255.0.255"),
    ("ip,nw_src=10.0.0.7/255.255.255.0,actions=drop", "ip,nw_src=10.0.0.0/24"),
    ("tcp,tp_src=0x03e8/0xfff8,tcp_dst=80,actions=drop", "tcp,tp_src=0x3e8/0xfff8,tp_dst=80"),
    ("tcp,tcp_flags=+syn-ack,actions=drop", "tcp,tcp_flags=+syn-ack"),
    ("tcp,tcp_flags=syn|ack,actions=drop", "tcp,tcp_flags=syn|ack"),
    ("icmp,icmp_type=8,icmp_code=0,actions=drop", "icmp,icmp_type=8,icmp_code=0"),
    ("icmp6,icmpv6_type=128,actions=drop", "icmp6,icmp_type=128"),
    ("arp,arp_spa=1.1.1.1,arp_tpa=1.1.1.0/24,arp_op=1,arp_sha=00:01:02:03:04:05,actions=drop",
     "arp,arp_spa=1.1.1.1,arp_tpa=1.1.1.0/24,arp_op=1,arp_sha=00:01:02:03:04:05"),
    ("dl_src=00:00:00:00:00:01/ff:ff:ff:00:00:00,dl_dst=aa:bb:cc:dd:ee:ff,dl_type=0x88cc,actions=drop",
     "dl_src=00:00:00:00:00:00/ff:ff:ff:00:00:00,dl_dst=aa:bb:cc:dd:ee:ff,dl_type=0x88cc"),
    ("ipv6,ipv6_src=fe80::1/64,ipv6_dst=2001:db8::1,ipv6_label=5,actions=drop",
     "ipv6,ipv6_src=fe80::/64,ipv6_dst=2001:db8::1,ipv6_label=0x00005"),
    ("ip,nw_tos=32,nw_ecn=1,nw_ttl=64,ip_frag=first,actions=drop", "ip,nw_tos=32,nw_ecn=1,nw_ttl=64,nw_frag=first"),
    ("ip,ip_dscp=8,nw_frag=not_later,actions=drop", "ip,nw_tos=32,nw_frag=not_later"),
    ("ip,nw_frag=yes,actions=drop", "ip,nw_frag=yes"),
    ("ct_zone=5,ct_mark=0x1/0xff,ct_label=0x10,actions=drop", "ct_zone=5,ct_mark=0x1/0xff,ct_label=0x10"),
    ("ct_mark=0,actions=drop", "ct_mark=0"),
    ("ip,ct_state=+trk+est,ct_nw_src=1.1.1.1,ct_nw_proto=6,ct_tp_dst=80,actions=drop",
     "ct_state=+est+trk,ct_nw_src=1.1.1.1,ct_nw_proto=6,ct_tp_dst=80,ip"),
    ("reg0=5,reg3=0x10/0xf0,metadata=0x1,pkt_mark=7,in_port=LOCAL,actions=drop",
     "pkt_mark=0x7,reg0=0x5,reg3=0x10/0xf0,metadata=0x1,in_port=LOCAL"),
    ("reg0[0..7]=3,actions=drop", "reg0=0x3/0xff"),
    ("dl_vlan=10,dl_vlan_pcp=3,actions=drop", "dl_vlan=10,dl_vlan_pcp=3"),
    ("vlan_tci=0x1000/0x1000,actions=drop", "vlan_tci=0x1000/0x1000"),
    ("priority=65535,udp6,actions=drop", "priority=65535,udp6"),
    ("ip,nw_proto=47,actions=drop", "ip,nw_proto=47"),
    ("sctp,tp_dst=9,actions=drop", "sctp,tp_dst=9"),
    ("rarp,actions=drop", "rarp"),
])
def test_match_printing(text, match_text):
    spec = parse_flow(text, PORTS)
    assert format_match(spec.match, spec.priority, PORTS, False) == match_text
    again = parse_flow(match_text + ",actions=drop", PORTS)
    assert again.match == spec.match and again.priority == spec.priority


def test_prerequisite_normalisation():
    # tp_dst without a protocol and nw_src without ip are dropped, as the switch does
    assert format_match(parse_flow("tp_dst=80,actions=drop").match) == ""
    assert format_match(parse_flow("ip,tp_dst=80,actions=drop").match) == "ip"
    assert format_match(parse_flow("nw_src=1.2.3.4,actions=drop").match) == ""
    assert parse_flow("ct_nw_src=1.1.1.1,actions=drop").prereq_error == "OFPBMC_BAD_PREREQ"
    assert parse_flow("ip,ct_state=-trk,ct_nw_src=1.1.1.1,actions=drop").prereq_error == "OFPBMC_BAD_PREREQ"
    assert parse_flow("ip,ct_state=+trk-inv,ct_nw_src=1.1.1.1,actions=drop").prereq_error is None


@pytest.mark.parametrize("text,actions_text", [
    ("ip,actions=NORMAL", "NORMAL"),
    ("ip,actions=normal,flood,all,local,in_port,controller", "NORMAL,FLOOD,ALL,LOCAL,IN_PORT,CONTROLLER:65535"),
    ("ip,actions=output:2,p0,3", "output:2,output:1,output:3"),
    ("ip,actions=drop", "drop"),
    ("ip,actions=", "drop"),
    ("ip,ct_state=+trk+est,actions=resubmit(,1),resubmit:2,resubmit(3,4,ct)", "resubmit(,1),resubmit:2,resubmit(3,4,ct)"),
    ("ip,actions=goto_table:1", "goto_table:1"),
    ("ip,actions=mod_dl_src:00:00:00:00:00:01,mod_dl_dst:0:1:2:3:4:5,mod_nw_src:1.1.1.1,mod_nw_dst:2.2.2.2",
     "mod_dl_src:00:00:00:00:00:01,mod_dl_dst:00:01:02:03:04:05,mod_nw_src:1.1.1.1,mod_nw_dst:2.2.2.2"),
    ("tcp,actions=mod_tp_src:1,mod_tp_dst:2,mod_nw_tos:8,mod_nw_ecn:1,mod_nw_ttl:9,dec_ttl",
     "mod_tp_src:1,mod_tp_dst:2,mod_nw_tos:8,mod_nw_ecn:1,mod_nw_ttl:9,dec_ttl"),
    ("tcp,actions=set_field:10.0.0.1->ip_src,set_field:0x5/0xff->reg1,set_field:80->tp_dst",
     "set_field:10.0.0.1->ip_src,set_field:0x5/0xff->reg1,set_field:80->tcp_dst"),
    ("ip,actions=load:0x1->NXM_NX_REG0[0..15],load:1->reg2[3],move:NXM_OF_IP_SRC[]->NXM_NX_REG1[]",
     "load:0x1->NXM_NX_REG0[0..15],load:0x1->NXM_NX_REG2[3],move:NXM_OF_IP_SRC[]->NXM_NX_REG1[]"),
    ("ip,actions=load:0->NXM_NX_REG0[]", "load:0->NXM_NX_REG0[]"),
    ("ip,actions=ct(commit,zone=1,exec(set_field:0x1->ct_mark))", "ct(commit,zone=1,exec(set_field:0x1->ct_mark))"),
    ("ip,actions=ct(zone=NXM_NX_REG0[0..15],table=2)", "ct(table=2,zone=NXM_NX_REG0[0..15])"),
    ("ip,actions=ct(commit,force,exec(load:0x1->NXM_NX_CT_LABEL[0..63],set_field:0x2->ct_label))",
     "ct(commit,force,exec(load:0x1->NXM_NX_CT_LABEL[0..63],set_field:0x2->ct_label))"),
    ("ip,actions=ct(table=1,zone=1,nat)", "ct(table=1,zone=1,nat)"),
    ("ip,actions=ct(commit,nat(src=10.0.0.240-10.0.0.254:32768-65535,random,persistent))",
     "ct(commit,nat(src=10.0.0.240-10.0.0.254:32768-65535,persistent,random))"),
    ("ipv6,actions=ct(commit,nat(dst=[fe80::1]:80))", "ct(commit,nat(dst=[fe80::1]:80))"),
    ("ipv6,actions=ct(commit,nat(dst=fe80::1-fe80::5,hash))", "ct(commit,nat(dst=fe80::1-fe80::5,hash))"),
    ("ip,actions=ct(commit,nat(src=0.0.0.0))", "ct(commit,nat(src=0.0.0.0))"),
    ("ip,actions=ct(commit,nat(dst))", "ct(commit,nat(dst))"),
    ("tcp,actions=ct(commit,alg=ftp)", "ct(commit,alg=ftp)"),
    ("udp,actions=ct(commit,alg=tftp)", "ct(commit,alg=tftp)"),
    ("ip,actions=ct_clear,note:00.11.22", "ct_clear,note:00.11.22"),
    ("ip,actions=controller(reason=no_match,max_len=128)", "controller(reason=no_match,max_len=128)"),
    ("ip,actions=CONTROLLER:100", "CONTROLLER:100"),
    ("ip,actions=ct(commit,table=3),output:pf0hpf", "ct(commit,table=3),output:2"),
])
def test_action_printing_and_round_trip(text, actions_text):
    spec = parse_flow(text, PORTS)
    assert format_actions(spec.actions, PORTS, names=False) == actions_text
    again = parse_flow(text.split("actions=")[0] + "actions=" + actions_text, PORTS)
    assert again.actions == spec.actions


def test_action_records():
    assert parse_actions("normal,p0", PORTS) == [Output(OFPP_NORMAL), Output(1)]
    spec = parse_flow("ip,actions=normal,resubmit(,1),load:0x3->NXM_NX_REG0[0..15],ct(commit,exec(set_field:0x1->ct_mark))")
    assert spec.actions == [
        Output(OFPP_NORMAL), Resubmit(None, 1), Load(3, Subfield("reg0", 0, 16)),
        Ct(commit=True, exec=(SetField("ct_mark", 1),)),
    ]
    assert parse_flow("ip,actions=goto_table:3").actions == [GotoTable(3)]


def test_wire_actions_match_ovs_of10_round_trip():
    spec = parse_flow("ip,actions=set_field:00:00:00:00:00:01->eth_src,set_field:1.2.3.4->ip_dst,"
                      "ct(commit,exec(set_field:0x1->ct_mark,set_field:0x1->ct_label)),mod_nw_ttl:9,goto_table:1")
    assert format_actions(wire_actions(spec.actions)) == (
        "mod_dl_src:00:00:00:00:00:01,mod_nw_dst:1.2.3.4,"
        "ct(commit,exec(load:0x1->NXM_NX_CT_MARK[],load:0x1->NXM_NX_CT_LABEL[0..63],"
        "load:0->NXM_NX_CT_LABEL[64..127])),load:0x9->NXM_NX_IP_TTL[],resubmit(,1)")


def test_commands_and_ignored_stats_keys():
    d = parse_flow("table=1,ip,out_port=p0", PORTS, command="del-flows")
    assert d.table == 1 and d.out_port == 1 and d.actions == []
    assert parse_flow("ip", PORTS, command="dump-flows").table is None
    assert parse_flow("cookie=0x5/0xff", PORTS, command="dump").cookie_mask == 0xFF
    m = parse_flow("ip,actions=drop", PORTS, command="mod-flows")
    assert m.table is None and m.actions == []
    a = parse_flow("duration=1.0s, n_packets=3, n_bytes=4, idle_age=2, hard_age=1, ip actions=drop")
    assert a.table == 0 and format_match(a.match) == "ip"
    assert parse_flow("table=255,ip,actions=drop").table == 0


@pytest.mark.parametrize("text,command,message", [
    ("ip", "add", "must specify an action"),
    ("ip,foo=1,actions=drop", "add", "unknown keyword foo"),
    ("ip,priority,actions=drop", "add", "field priority missing value"),
    ("ip,actions=drop,normal", "add", '"drop" must not be accompanied by any other action or instruction'),
    ("ip,actions=ct(force)", "add", '"force" flag requires "commit" flag.'),
    ("ip,actions=ct(foo)", "add", "invalid argument to \"ct\" action: `foo'"),
    ("ip,actions=ct(table=255)", "add", "invalid table 0xff"),
    ("ip,actions=ct(table=x)", "add", "unknown table x"),
    ("ip,actions=ct(alg=sip)", "add", 'invalid conntrack helper "sip"'),
    ("ip,actions=ct(nat(src=1.1.1.1,dst=2.2.2.2))", "add", 'May only specify one of "src" or "dst".'),
    ("ip,actions=ct(nat(random))", "add", 'Flags allowed only with "src" or "dst".'),
    ("ip,actions=ct(nat(src=1.1.1.1,hash,random))", "add", 'Both "hash" and "random" are not allowed.'),
    ("ip,actions=ct(nat(src=1.1.1.9-1.1.1.1))", "add", 'invalid nat range "1.1.1.9-1.1.1.1"'),
    ("ip,actions=ct(nat(src=1.1.1.1:9-8))", "add", 'invalid nat range "1.1.1.1:9-8"'),
    ("ip,actions=ct(nat(src=1.1.1.1x))", "add", 'garbage (x) after nat range "1.1.1.1x" (pos: 7)'),
    ("ip,actions=ct(nat(foo=1))", "add", 'invalid key "foo" in "nat" argument'),
    ("ip,actions=nat", "add", 'Cannot have NAT action outside of "ct" action'),
    ("table=0x1,ip,actions=drop", "add", 'unknown table "0x1"'),
    ("cookie=1/1,ip,actions=drop", "add", "flow additions cannot use a cookie mask"),
    ("cookie=1", "del", "cannot set cookie (to match on a cookie, specify a mask, e.g. cookie=1/-1)"),
    ("actions=ct(commit)", "add", "actions are invalid with specified match (OFPBAC_MATCH_INCONSISTENT)"),
    ("arp,actions=ct(table=1)", "add", "actions are invalid with specified match (OFPBAC_MATCH_INCONSISTENT)"),
    ("ipv6,actions=ct(commit,nat(src=1.1.1.1))", "add",
     "actions are invalid with specified match (OFPBAC_MATCH_INCONSISTENT)"),
    ("ip,actions=ct(commit,nat(src=[::1]))", "add",
     "actions are invalid with specified match (OFPBAC_MATCH_INCONSISTENT)"),
    ("udp,actions=ct(commit,alg=ftp)", "add", "actions are invalid with specified match (OFPBAC_MATCH_INCONSISTENT)"),
    ("ip,ct_state=+trk+inv,actions=ct(commit)", "add",
     "actions are invalid with specified match (OFPBAC_MATCH_INCONSISTENT)"),
    ("table=2,ip,actions=goto_table:1", "add", "actions are invalid with specified match (OFPBIC_BAD_TABLE_ID)"),
    ("ip,actions=output:65535", "add", "actions are invalid with specified match (OFPBAC_BAD_OUT_PORT)"),
    ("ip,actions=ct(exec(output:1))", "add", "ct action doesn't support nested action output"),
    ("ip,actions=ct(exec(set_field:1->reg0))", "add", "ct action doesn't support nested modification of reg0"),
    ("ip,actions=set_field:1->ct_mark", "add", "cannot set CT fields outside of ct action"),
    ("ip,actions=goto_table:1,normal", "add",
     "invalid instruction ordering: apply_actions must appear before goto_table, for OpenFlow 1.1+ compatibility"),
    ("ip,actions=frob", "add", "unknown action frob"),
    ("ip,actions=output:nope", "add", "nope: output to unknown port"),
    ("ip,actions=resubmit(nope,1)", "add", "nope: resubmit to unknown port"),
    ("ip,actions=resubmit(,1,ct)", "add", "actions are invalid with specified match (OFPBAC_MATCH_INCONSISTENT)"),
    ("ip,actions=set_field:80->tp_dst", "add", "actions are invalid with specified match (OFPBAC_MATCH_INCONSISTENT)"),
    ("ip,actions=resubmit(,)", "add", 'at least one "in_port" or "table" must be specified on resubmit'),
    ("ip,actions=set_field:1", "add", "1: missing `->'"),
    ("ip,actions=set_field:1->foo", "add", "foo is not a valid OXM field name"),
    ("ip,actions=set_field:1->ct_state", "add", "ct_state is read-only"),
    ("ip,actions=load:0x10000->NXM_NX_REG0[0..15]", "add",
     "0x10000->NXM_NX_REG0[0..15]: value 0x10000 does not fit into 16 bits"),
    ("ip,actions=load:1->NXM_NX_REG0[0..40]", "add",
     "NXM_NX_REG0[0..40]: ending bit 40 is not valid because field is only 32 bits wide"),
    ("ip,actions=load:1->FOO[]", "add", "FOO[]: unknown field `FOO'"),
    ("ip,actions=move:NXM_NX_REG0[0..3]->NXM_NX_REG1[0..4]", "add",
     "NXM_NX_REG0[0..3]->NXM_NX_REG1[0..4]: source field is 4 bits wide but destination is 5 bits wide"),
    ("ip,actions=mod_dl_src:zz", "add", "invalid mac address zz"),
    ("ip,actions=mod_nw_src:1.2.3", "add", "1.2.3: could not convert to IP address"),
    ("ip,actions=mod_nw_tos:3", "add", "3: not a valid TOS"),
    ("ip,actions=mod_tp_src:70000", "add", 'invalid source port "70000"'),
    ("ip,actions=note:0g", "add", "bad hex digit in `note' argument"),
    ("ip,nw_src=1.2.3,actions=drop", "add", "1.2.3: invalid IP address"),
    ("ip,nw_src=1.2.3.4/33,actions=drop", "add", "1.2.3.4/33: IPv4 network prefix bits not between 0 and 32, inclusive"),
    ("ipv6,ipv6_src=zz::1,actions=drop", "add", "zz::1: invalid IPv6 address"),
    ("dl_src=00:01,actions=drop", "add", "00:01: invalid Ethernet address"),
    ("tcp,tp_dst=http,actions=drop", "add", "http: bad syntax for tcp_dst value"),
    ("ip,nw_proto=300,actions=drop", "add", "300: value too large for 1-byte field nw_proto"),
    ("in_port=nope,actions=drop", "add", "nope: invalid or unknown port for in_port"),
    ("ip,nw_frag=maybe,actions=drop", "add",
     'maybe: unknown fragment type (valid types are "no", "yes", "first", "later", "not_later"'),
    ("ct_state=+trk+foo,actions=drop", "add", "foo: unknown ct_state flag(s)"),
    ("ct_state=new|foo,actions=drop", "add", "new|foo: unknown ct_state flag(s)"),
    ("ct_state=+trk+trk,actions=drop", "add", "trk: Each ct_state flag can be specified only once"),
    ("ct_state=+trk,new,actions=drop", "add", "field new missing value"),
    ("ct_zone=1/1,actions=drop", "add", "1/1: invalid mask for field ct_zone"),
    ("priority=70000,actions=drop", "add", 'invalid priority "70000"'),
    ("idle_timeout=-1,actions=drop", "add", 'invalid idle_timeout "-1"'),
    ("ip,out_port=1,actions=drop", "add", "unknown keyword out_port"),
    ("priority=5", "del", "unknown keyword priority"),
])
def test_error_messages(text, command, message):
    with pytest.raises(FlowSyntaxError) as exc:
        parse_flow(text, PORTS, command=command)
    assert str(exc.value) == message


def test_key_layout_for_shared_slots():
    m = parse_flow("ip,ip_dscp=8,nw_ecn=2,dl_vlan=5,dl_vlan_pcp=1,actions=drop").match
    assert (m.values[K.NW_TOS], m.mask[K.NW_TOS]) == (32, 0xFC)
    assert (m.values[K.NW_ECN], m.mask[K.NW_ECN]) == (2, 0x3)
    assert (m.values[K.VLAN_TCI], m.mask[K.VLAN_TCI]) == (0x1000 | 5 | (1 << 13), 0xFFFF)
    m = parse_flow("icmp,icmp_type=3,in_port=7,actions=drop").match
    assert (m.values[K.TP_SRC], m.mask[K.TP_SRC]) == (3, 0xFFFF)
    assert (m.values[K.IN_PORT], m.mask[K.IN_PORT]) == (7, K.EXACT[K.IN_PORT])
    m = parse_flow("udp,tp_dst=4791,actions=drop").match
    assert (m.values[K.TP_DST], m.values[K.NW_PROTO], m.values[K.DL_TYPE]) == (4791, 17, 0x0800)


def test_icmp_type_code_are_exact_8_bit_after_normalisation():
    m = parse_flow("icmp,tp_src=0x103/0x1ff,icmp_code=0,actions=drop").match
    assert format_match(m) == "icmp,icmp_type=3,icmp_code=0"
