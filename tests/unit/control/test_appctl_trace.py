"""ovs-appctl ofproto/trace and time warp on the vendor SNAT flows."""

from ctswitch.control import appctl, ofctl
from ctswitch.datapath.switch import Switch

FLOWS = [
    "table=0,arp,action=normal",
    "table=0,ip,ct_state=-trk,action=ct(table=1,nat)",
    "table=1,in_port=pf0hpf,ip,ct_state=+trk+new,action=ct(commit,nat(src=1.1.1.16)), p0",
    "table=1,ip,ct_state=+trk+est,action=normal",
]


def switch():
    sw = Switch()
    br = sw.add_bridge("ctBr", "secure")
    br.add_port("p0")
    br.add_port("pf0hpf")
    for f in FLOWS:
        assert ofctl.run(sw, ["add-flow", "ctBr", f]).code == 0
    return sw


EXPECTED = """\
Flow: tcp,in_port=pf0hpf,vlan_tci=0x0000,dl_src=00:00:00:00:00:00,dl_dst=00:00:00:00:00:00,nw_src=2.2.2.1,nw_dst=1.1.1.2,nw_tos=0,nw_ecn=0,nw_ttl=0,nw_frag=no,tp_src=0,tp_dst=5001,tcp_flags=0

bridge("ctBr")
--------------
 0. ct_state=-trk,ip, priority 32768
    ct(table=1,nat)
     -> A clone of the packet is forked to recirculate. The forked pipeline will be resumed at table 1.
     -> Sets the packet to an untracked state, and clears all the conntrack fields.

Datapath actions: ct(nat),recirc(0x1)

===============================================================================
recirc(0x1) - resume conntrack with ct_state=new|trk
===============================================================================

bridge("ctBr")
--------------
    thaw
        Resuming from table 1
 1. ct_state=+new+trk,ip,in_port=pf0hpf, priority 32768
    ct(commit,nat(src=1.1.1.16))
     -> Sets the packet to an untracked state, and clears all the conntrack fields.
    output:p0

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
    assert r.code == 2 and r.err.startswith("no bridge named nobr")
    r = appctl.run(sw, ["ofproto/trace", "ctBr", "in_port=1", "--ct-next", "bogus"])
    assert r.code == 2 and "bogus" in r.err
    r = appctl.run(sw, ["no/such"])
    assert r.code == 2 and '"no/such" is not a valid command' in r.err


def test_time_warp_runs_timers():
    sw = switch()
    assert sw.now == 0
    r = appctl.time_cmd(sw, ["warp", "31"])
    assert r.out == "switch time is now 31.000 s\n" and sw.now == 31_000
    r = appctl.time_cmd(sw, ["warp", "x"])
    assert r.code == 2
