"""Flow-grammar behaviours found by the differential test against real OVS 3.1
(tests/oracle/test_ofctl_grammar.py); each expectation is what ovs-ofctl printed."""

from __future__ import annotations

import pytest

from ctswitch.flow import fields as F
from ctswitch.flow.action_syntax import switch_error
from ctswitch.flow.ofctl_syntax import FlowSyntaxError, format_actions, format_match, parse_flow, wire_actions


def printed(flow: str) -> str:
    """The flow as dump-flows --no-stats shows it after a round trip through the switch."""
    spec = parse_flow(flow)
    assert spec.prereq_error is None, spec.prereq_error
    m = format_match(spec.match, spec.priority)
    return (m + " " if m else "") + "actions=" + format_actions(wire_actions(spec.actions))


def refused(flow: str) -> str | None:
    return parse_flow(flow).prereq_error


def error(flow: str, command: str = "add") -> str:
    with pytest.raises(FlowSyntaxError) as e:
        parse_flow(flow, command=command)
    return str(e.value)


def test_ipv4_octets_scan_like_ovs_scan():
    assert printed("ip,nw_src=256.1.1.1,actions=drop") == "ip,nw_src=0.1.1.1 actions=drop"
    assert printed("ip,nw_src=1000.1.1.1,actions=drop") == "ip,nw_src=232.1.1.1 actions=drop"
    assert printed("ip,nw_src=-1.1.1.1,actions=drop") == "ip,nw_src=255.1.1.1 actions=drop"
    assert printed("ip,nw_src=01.1.1.1/+8,actions=drop") == "ip,nw_src=1.0.0.0/8 actions=drop"
    assert error("ip,nw_src=0x1.1.1.1,actions=drop") == "0x1.1.1.1: invalid IP address"
    # mod_nw_src goes through inet_pton: strict.
    assert error("ip,actions=mod_nw_src:01.1.1.1") == "01.1.1.1: could not convert to IP address"
    assert error("ip,actions=mod_nw_src:256.1.1.1") == "256.1.1.1: could not convert to IP address"
    assert F.parse_ipv4("10.0.0.1") == 0x0A000001


def test_negative_numbers_are_strtoull():
    assert printed("cookie=-1,actions=drop") == "actions=drop"
    assert parse_flow("cookie=-1,actions=drop").cookie == 2**64 - 1
    assert printed("metadata=-1,actions=drop") == "metadata=0xffffffffffffffff actions=drop"
    assert error("reg0=-1,actions=drop") == "-1: value too large for 4-byte field reg0"
    assert parse_flow("cookie=1/-1", command="dump").cookie_mask == 2**64 - 1


def test_nat_ranges():
    assert printed("ip,actions=ct(commit,nat(src=10.0.0.1:70000))") == "ip actions=ct(commit,nat(src=10.0.0.1:4464))"
    assert printed("ip,actions=ct(commit,nat(src=10.0.0.1:-1))") == "ip actions=ct(commit,nat(src=10.0.0.1:65535))"
    assert printed("ip,actions=ct(commit,nat(src=300.1.1.1))") == "ip actions=ct(commit,nat(src=44.1.1.1))"
    assert error("ip,actions=ct(commit,nat(src=foo))") == 'garbage (oo) after nat range "foo" (pos: 1)'
    assert error("ipv6,actions=ct(commit,nat(src=[fe80::1]x))") == \
        'garbage (x) after nat range "[fe80::1]x" (pos: 9)'
    # Address 0 is not encoded: nat(src) comes back; with ports the switch refuses it.
    assert printed("ip,actions=ct(commit,nat(src=0.0.0.0))") == "ip actions=ct(commit,nat(src))"
    assert refused("ip,actions=ct(commit,nat(src=0.0.0.0:80))") == "OFPBAC_BAD_ARGUMENT"
    assert refused("ip,actions=ct(commit,nat(src=10.0.0.1:0-5))") == "OFPBAC_BAD_ARGUMENT"


def test_ct_nested_actions_keep_their_order():
    assert printed("ip,actions=ct(commit,exec(set_field:1->ct_mark),nat(src=1.1.1.1))") == \
        "ip actions=ct(commit,exec(load:0x1->NXM_NX_CT_MARK[],nat(src=1.1.1.1)))"
    assert printed("ip,actions=ct(commit,exec(nat(src=1.1.1.1)))") == "ip actions=ct(commit,nat(src=1.1.1.1))"
    assert printed("ip,actions=ct(commit,exec(set_field:1->ct_mark),nat(src=1.1.1.1),exec(set_field:2->ct_label))") \
        == ("ip actions=ct(commit,exec(load:0x1->NXM_NX_CT_MARK[],nat(src=1.1.1.1),"
            "load:0x2->NXM_NX_CT_LABEL[0..63],load:0->NXM_NX_CT_LABEL[64..127]))")
    assert printed("ip,actions=ct(commit,nat,exec(set_field:1->ct_mark))") == \
        "ip actions=ct(commit,nat,exec(load:0x1->NXM_NX_CT_MARK[]))"
    ct = parse_flow("ip,actions=ct(commit,exec(set_field:1->ct_mark),nat(src=1.1.1.1))").actions[0]
    assert ct.nat is not None and ct.nat.kind == "src" and len(ct.exec) == 1  # semantics unchanged


def test_switch_side_ct_errors():
    assert refused("ip,actions=ct(exec(set_field:1->ct_mark))") == "OFPBAC_BAD_ARGUMENT"
    assert refused("ip,actions=ct(nat(src=10.0.0.1))") == "OFPBAC_BAD_ARGUMENT"
    assert refused("ip,actions=ct(table=1,nat)") is None
    assert refused("ip,actions=ct(zone=NXM_NX_REG0[])") == "OFPBAC_BAD_SET_LEN"
    assert refused("ip,actions=ct(zone=NXM_NX_REG0[0..7])") == "OFPBAC_BAD_SET_LEN"
    assert refused("ip,actions=ct(zone=NXM_NX_REG0[0..15])") is None
    assert refused("actions=load:1->NXM_OF_ETH_TYPE[]") == "OFPBAC_BAD_SET_ARGUMENT"
    assert error("actions=move:NXM_NX_REG0[]->NXM_NX_CT_STATE[]") == \
        "actions are invalid with specified match (OFPBAC_BAD_SET_ARGUMENT)"
    assert refused("actions=group:1") == "OFPBAC_BAD_OUT_GROUP"
    assert error("actions=group:foo") == "invalid numeric format foo"
    assert switch_error(parse_flow("ip,actions=ct(commit,nat(src=1.1.1.1))").actions) is None


def test_switch_side_match_errors():
    assert refused("table=254,actions=drop") == "OFPBRC_EPERM"
    assert refused("ip,actions=ct(table=254)") is None
    assert refused("recirc_id=1,actions=drop") == "OFPBRC_EPERM"
    assert refused("dp_hash=1/0xff,actions=drop") == "OFPBRC_EPERM"
    assert error("recirc_id=1/1,actions=drop") == "1/1: invalid mask for field recirc_id"
    assert refused("ct_nw_src=10.0.0.1,actions=drop") == "OFPBMC_BAD_PREREQ"
    assert refused("ipv6,ct_state=+trk+est,ct_nw_src=10.0.0.1,actions=drop") == "OFPBAC_MATCH_INCONSISTENT"
    assert refused("ip,ct_state=+trk+est,ct_ipv6_src=fe80::1,actions=drop") == "OFPBAC_MATCH_INCONSISTENT"


def test_goto_table_255_and_notes():
    assert printed("actions=goto_table:255") == "actions=resubmit(,)"
    assert error("table=2,actions=goto_table:1") == "actions are invalid with specified match (OFPBIC_BAD_TABLE_ID)"
    assert printed("actions=note:de.ad.be.ef") == "actions=note:de.ad.be.ef.00.00"
    assert printed("actions=note:") == "actions=note:00.00.00.00.00.00"
    assert printed("actions=note:01.02.03.04.05.06") == "actions=note:01.02.03.04.05.06"
    assert printed("actions=note:01020304050607") == "actions=note:01.02.03.04.05.06.07.00.00.00.00.00.00.00"


def test_fields_ctswitch_does_not_model_say_so():
    assert error("tun_id=0x5,actions=drop") == "field tun_id is not supported by ctswitch"
    assert error("vlan_vid=0x1005,actions=drop") == "field vlan_vid is not supported by ctswitch"
    assert error("actions=set_field:1->tun_id") == "set_field to tun_id is not supported by ctswitch"
    assert error("reg16=1,actions=drop") == "unknown keyword reg16"


def test_flags_and_out_group_need_later_openflow():
    spec = parse_flow("reset_counts,actions=drop")
    assert (spec.usable, spec.min_version) == ("OXM", 3)
    spec = parse_flow("reset_counts,no_byte_counts,actions=drop")
    assert (spec.usable, spec.min_version) == ("OXM-OpenFlow13,OXM-OpenFlow14,OXM-OpenFlow15", 4)
    assert parse_flow("out_group=1", command="del").usable == "OXM,OpenFlow11"
    assert parse_flow("send_flow_rem,check_overlap,actions=drop").usable is None
