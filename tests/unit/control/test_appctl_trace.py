"""ovs-appctl ofproto/trace and time warp on the vendor SNAT flows."""

from ctswitch.control import appctl, ofctl
from ctswitch.control.vendor import EXAMPLE2 as FLOWS
from ctswitch.datapath.switch import Switch


def switch():
    sw = Switch()
    br = sw.add_bridge("ctBr", "secure")
    br.add_port("p0")
    br.add_port("pf0hpf")
    for f in FLOWS:
        assert ofctl.run(sw, ["add-flow", "ctBr", f]).code == 0
    return sw


EXPECTED = """\
Flow: tcp,in_port=2,vlan_tci=0x0000,dl_src=00:00:00:00:00:00,dl_dst=00:00:00:00:00:00,nw_src=2.2.2.1,nw_dst=1.1.1.2,nw_tos=0,nw_ecn=0,nw_ttl=0,nw_frag=no,tp_src=0,tp_dst=5001,tcp_flags=0

bridge("ctBr")
--------------
 0. ct_state=-trk,ip, priority 32768
    ct(table=1,nat)
    nat
     -> A clone of the packet is forked to recirculate. The forked pipeline will be resumed at table 1.
     -> Sets the packet to an untracked state, and clears all the conntrack fields.

Final flow: unchanged
Datapath actions: ct(nat),recirc(0x1)

===============================================================================
recirc(0x1) - resume conntrack with default ct_state=trk|new (use --ct-next to customize)
Replacing src/dst IP/ports to simulate NAT:
 Initial flow: \n Modified flow: \n===============================================================================

Flow: recirc_id=0x1,ct_state=new|trk,eth,tcp,in_port=2,vlan_tci=0x0000,dl_src=00:00:00:00:00:00,dl_dst=00:00:00:00:00:00,nw_src=2.2.2.1,nw_dst=1.1.1.2,nw_tos=0,nw_ecn=0,nw_ttl=0,nw_frag=no,tp_src=0,tp_dst=5001,tcp_flags=0

bridge("ctBr")
--------------
    thaw
        Resuming from table 1
 1. ct_state=+new+trk,ip,in_port=2, priority 32768
    ct(commit,nat(src=1.1.1.16))
    nat(src=1.1.1.16)
     -> Sets the packet to an untracked state, and clears all the conntrack fields.
    output:1

Final flow: recirc_id=0x1,eth,tcp,in_port=2,vlan_tci=0x0000,dl_src=00:00:00:00:00:00,dl_dst=00:00:00:00:00:00,nw_src=2.2.2.1,nw_dst=1.1.1.2,nw_tos=0,nw_ecn=0,nw_ttl=0,nw_frag=no,tp_src=0,tp_dst=5001,tcp_flags=0
Datapath actions: ct(commit,nat(src=1.1.1.16)),1
"""


def test_trace_of_a_new_snat_connection():
    sw = switch()
    r = appctl.run(sw, ["ofproto/trace", "ctBr", "in_port=pf0hpf,tcp,nw_src=2.2.2.1,nw_dst=1.1.1.2,tp_dst=5001"])
    assert r.code == 0 and r.out == EXPECTED
    assert list(sw.tracker.iter_conns()) == []  # tracing never touches conntrack


def test_trace_ct_next_reply_goes_normal_and_errors():
    sw = switch()
    r = appctl.run(sw, ["ofproto/trace", "ctBr", "in_port=p0,tcp,nw_src=1.1.1.2,nw_dst=1.1.1.16",
                        "--ct-next", "trk,est,rpl"])
    assert "recirc(0x1) - resume conntrack with ct_state=est|rpl|trk" in r.out
    assert " 1. ct_state=+est+trk,ip, priority 32768\n    NORMAL\n" in r.out
    # No MAC learned yet: NORMAL floods to every port but the ingress one (p0): LOCAL and pf0hpf.
    assert r.out.endswith("Datapath actions: 65534,2\n")
    r = appctl.run(sw, ["ofproto/trace", "nobr", "in_port=1"])
    assert r.code == 2 and r.err.startswith("nobr: unknown bridge\n")
    r = appctl.run(sw, ["ofproto/trace", "ctBr", "in_port=1", "--ct-next", "bogus"])
    assert r.code == 2 and r.err.startswith("bogus: unknown connection tracking state flag\n")
    r = appctl.run(sw, ["no/such"])
    assert r.code == 2 and '"no/such" is not a valid command' in r.err


def test_time_warp_runs_timers():
    sw = switch()
    assert sw.now == 0
    r = appctl.time_cmd(sw, ["warp", "31"])
    assert r.out == "switch time is now 31.000 s\n" and sw.now == 31_000
    r = appctl.time_cmd(sw, ["warp", "x"])
    assert r.code == 2


def _trace_err(sw, *argv) -> str:
    r = appctl.run(sw, ["ofproto/trace", *argv])
    assert r.code == 2 and r.out == "" and r.err.endswith("ovs-appctl: ovs-vswitchd: server returned an error\n")
    return r.err.splitlines()[0]


def test_trace_ct_next_is_parsed_like_ovs():
    """parse_ct_state: names split by commas or spaces; validate_ct_state's messages (OVS 3.1)."""
    sw = switch()
    flow = "in_port=pf0hpf,tcp,nw_src=2.2.2.1,nw_dst=1.1.1.2"
    r = appctl.run(sw, ["ofproto/trace", "ctBr", flow, "--ct-next", "trk est"])
    assert "resume conntrack with ct_state=est|trk" in r.out
    assert _trace_err(sw, "ctBr", flow, "--ct-next", "trk|new") == "trk|new: unknown connection tracking state flag"
    assert _trace_err(sw, "ctBr", flow, "--ct-next", "+trk+new") == "+trk+new: unknown connection tracking state flag"
    assert _trace_err(sw, "ctBr", flow, "--ct-next", "trk,bogus") == "bogus: unknown connection tracking state flag"
    assert _trace_err(sw, "ctBr", flow, "--ct-next", "new") == (
        'new: invalid connection state: If "trk" is unset, no other flags are set')
    assert _trace_err(sw, "ctBr", flow, "--ct-next", "trk,inv,new") == (
        'new|inv|trk: invalid connection state: when "inv" is set, only "trk" may also be set')
    assert _trace_err(sw, "ctBr", flow, "--ct-next", "trk,new,est") == (
        'new|est|trk: invalid connection state: "new" and "est" are mutually exclusive')
    assert _trace_err(sw, "ctBr", flow, "--ct-next", "trk,new,rpl") == (
        'new|rpl|trk: invalid connection state: "new" and "rpy" are mutually exclusive')
    assert _trace_err(sw, "ctBr", flow, "--ct-next") == "Missing argument for option --ct-next"
    assert _trace_err(sw, "ctBr", flow, "--ct-next=trk") == "--ct-next=trk: unknown option"
    assert _trace_err(sw, "ctBr") == "syntax error at ctBr (or the bridge name was omitted)"


def test_trace_flow_is_an_exact_flow():
    """parse_ofp_exact_flow: tp_src/tp_dst are the TCP fields, prerequisites in text order."""
    sw = switch()
    assert _trace_err(sw, "ctBr", "in_port=1,udp,tp_src=1") == (
        "Bad openflow flow syntax: in_port=1,udp,tp_src=1: prerequisites not met for setting tp_src")
    assert _trace_err(sw, "ctBr", "tp_dst=1,tcp") == (
        "Bad openflow flow syntax: tp_dst=1,tcp: prerequisites not met for setting tp_dst")
    assert _trace_err(sw, "ctBr", "in_port=1,tcp,nosuchfield=1") == (
        "Bad openflow flow syntax: in_port=1,tcp,nosuchfield=1: unknown field nosuchfield")
    r = appctl.run(sw, ["ofproto/trace", "ctBr", "in_port=1,udp,udp_src=1,udp_dst=2"])
    assert r.code == 0 and ",tp_src=1,tp_dst=2\n" in r.out.splitlines(True)[0]


def test_trace_flow_line_like_flow_format():
    """Port numbers, no L4 ports for an unknown IP protocol, no IP fields for ARP."""
    sw = switch()
    r = appctl.run(sw, ["ofproto/trace", "ctBr", "in_port=p0,ip,nw_proto=50"])
    assert r.out.splitlines()[0] == (
        "Flow: ip,in_port=1,vlan_tci=0x0000,dl_src=00:00:00:00:00:00,dl_dst=00:00:00:00:00:00,"
        "nw_src=0.0.0.0,nw_dst=0.0.0.0,nw_proto=50,nw_tos=0,nw_ecn=0,nw_ttl=0,nw_frag=no")
    r = appctl.run(sw, ["ofproto/trace", "ctBr", "in_port=p0,arp,arp_spa=1.1.1.2,arp_op=1"])
    assert r.out.splitlines()[0] == (
        "Flow: arp,in_port=1,vlan_tci=0x0000,dl_src=00:00:00:00:00:00,dl_dst=00:00:00:00:00:00,"
        "arp_spa=1.1.1.2,arp_tpa=0.0.0.0,arp_op=1,arp_sha=00:00:00:00:00:00,arp_tha=00:00:00:00:00:00")
