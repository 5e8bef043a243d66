"""ovs-ofctl command semantics and output (flow grammar itself: tests/unit/flow)."""

from ctswitch.control import ofctl
from ctswitch.datapath.switch import Switch


def sw_with(*flows):
    sw = Switch()
    br = sw.add_bridge("br0", "secure")
    br.add_port("p0")
    br.add_port("pf0hpf")
    for f in flows:
        r = ofctl.run(sw, ["add-flow", "br0", f])
        assert r.code == 0, r.err
    return sw


def dump(sw, *args):
    return ofctl.run(sw, ["dump-flows", "br0", "--no-stats", *args]).out.splitlines()


def test_strict_and_loose_delete():
    sw = sw_with("priority=5,ip,action=drop", "priority=6,ip,action=drop", "priority=6,tcp,action=drop")
    assert ofctl.run(sw, ["--strict", "del-flows", "br0", "priority=5,ip"]).code == 0
    assert dump(sw) == [" priority=6,ip actions=drop", " priority=6,tcp actions=drop"]
    assert ofctl.run(sw, ["del-flows", "br0", "ip"]).code == 0  # loose: everything at least as specific
    assert dump(sw) == []


def test_mod_flows_keeps_counters_and_changes_actions():
    sw = sw_with("priority=6,ip,action=drop")
    rule = next(sw.bridges["br0"].iter_rules())
    rule.n_packets = 7
    r = ofctl.run(sw, ["mod-flows", "br0", "--strict", "priority=6,ip,actions=output:p0"])
    assert r.code == 0
    assert dump(sw) == [" priority=6,ip actions=output:1"]
    assert dump(sw, "--names") == [" priority=6,ip actions=output:p0"]
    assert next(sw.bridges["br0"].iter_rules()).n_packets == 7


def test_dump_header_counters_and_errors(tmp_path):
    sw = sw_with("table=0,arp,action=normal")
    out = ofctl.run(sw, ["dump-flows", "br0"]).out.splitlines()
    assert out[0] == "NXST_FLOW reply (xid=0x4):"
    assert out[1] == " cookie=0x0, duration=0s, table=0, n_packets=0, n_bytes=0, idle_age=0, arp actions=NORMAL"
    assert ofctl.run(sw, ["dump-flows", "nobr"]).err == "ovs-ofctl: nobr is not a bridge or a socket\n"
    r = ofctl.run(sw, ["add-flow", "br0", "ip,actions=drop,output:1"])
    assert r.code == 1 and r.err == ('ovs-ofctl: "drop" must not be accompanied by any other action or '
                                     "instruction\n")
    r = ofctl.run(sw, ["frobnicate", "br0"])
    assert r.code == 1 and "unknown command 'frobnicate'" in r.err
    f = tmp_path / "flows.txt"
    f.write_text("# comment\ntable=1,ip,actions=normal\n\nbogus=1,actions=drop\n")
    r = ofctl.run(sw, ["add-flows", "br0", str(f)])
    assert r.code == 1 and r.err == f"ovs-ofctl: {f}:4: unknown keyword bogus\n"
    assert dump(sw) == [" arp actions=NORMAL"]  # nothing of the failed file was added


def test_add_flows_from_stdin_and_ct_requires_ip():
    class Ctx:
        stdin = "table=0,ip,action=ct(table=1)\ntable=1,ip,ct_state=+trk+new,action=ct(commit),normal\n"
        cwd = "."
    sw = sw_with()
    assert ofctl.run(sw, ["add-flows", "br0", "-"], Ctx()).code == 0
    assert dump(sw) == [" ip actions=ct(table=1)", " table=1, ct_state=+new+trk,ip actions=ct(commit),NORMAL"]
    r = ofctl.run(sw, ["add-flow", "br0", "arp,action=ct(commit)"])
    assert r.code == 1 and r.err.startswith("ovs-ofctl: actions are invalid with specified match")


def test_switch_errors_print_like_ovs_ofctl():
    """An error reply from the switch is printed without the ``ovs-ofctl:`` prefix, followed
    by the refused flow mod (real ovs-ofctl 3.1 output, hex dump left out)."""
    sw = sw_with()
    r = ofctl.run(sw, ["add-flow", "br0", "table=254,actions=drop"])
    assert r.code == 1
    assert r.err == "OFPT_ERROR (xid=0x8): OFPBRC_EPERM\nOFPT_FLOW_MOD (xid=0x8): ADD table:254 actions=drop\n"
    r = ofctl.run(sw, ["add-flow", "br0", "ct_nw_src=10.0.0.1,actions=drop"])
    assert r.err.splitlines() == ["OFPT_ERROR (xid=0x8): OFPBMC_BAD_PREREQ",
                                  "NXT_FLOW_MOD (xid=0x8): ***decode error: OFPBMC_BAD_PREREQ***"]
    r = ofctl.run(sw, ["add-flow", "br0", "actions=group:1"])
    assert r.err.splitlines() == ["OFPT_ERROR (xid=0x6): OFPBAC_BAD_OUT_GROUP",
                                  "OFPT_FLOW_MOD (xid=0x6): ADD actions=group:1"]
    r = ofctl.run(sw, ["add-flow", "br0", "ip,actions=ct(exec(set_field:1->ct_mark))"])
    assert r.err.splitlines() == ["OFPT_ERROR (xid=0x8): OFPBAC_BAD_ARGUMENT",
                                  "NXT_FLOW_MOD (xid=0x8): ***decode error: OFPBAC_BAD_ARGUMENT***"]
    r = ofctl.run(sw, ["add-flow", "br0", "priority=5,recirc_id=1,actions=drop"])
    assert r.err.splitlines() == ["OFPT_ERROR (xid=0x8): OFPBRC_EPERM",
                                  "NXT_FLOW_MOD (xid=0x8): ADD priority=5,recirc_id=0x1 actions=drop"]
    assert dump(sw) == []


def test_protocol_choice_follows_dash_o():
    sw = sw_with()
    r = ofctl.run(sw, ["add-flow", "br0", "reset_counts,actions=drop"])
    assert r.code == 1 and r.err == ("ovs-ofctl: none of the usable flow formats (OXM) is among the allowed "
                                     "flow formats (OpenFlow10,NXM)\n")
    r = ofctl.run(sw, ["-O", "OpenFlow11", "add-flow", "br0", "no_packet_counts,actions=drop"])
    assert r.err == ("ovs-ofctl: none of the usable flow formats (OXM-OpenFlow13,OXM-OpenFlow14,OXM-OpenFlow15) "
                     "is among the allowed flow formats (OpenFlow11)\n")
    r = ofctl.run(sw, ["del-flows", "br0", "out_group=1"])
    assert r.err == ("ovs-ofctl: none of the usable flow formats (OXM,OpenFlow11) is among the allowed "
                     "flow formats (OpenFlow10,NXM)\n")
    assert ofctl.run(sw, ["-O", "OpenFlow13", "add-flow", "br0", "reset_counts,no_packet_counts,actions=drop"]).code == 0
    assert ofctl.run(sw, ["--protocols=OpenFlow10,OpenFlow13", "del-flows", "br0", "out_group=1"]).code == 0
    assert ofctl.run(sw, ["-O", "OpenFlow99", "dump-flows", "br0"]).err == \
        'ovs-ofctl: Unknown OpenFlow version: "OpenFlow99"\n'
    assert ofctl.run(sw, ["-O", "openflow10, OpenFlow13", "dump-flows", "br0"]).code == 0
