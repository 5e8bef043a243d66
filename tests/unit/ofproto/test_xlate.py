"""xlate: table walk, actions, ct() fork and recirculation, NORMAL, resubmit, trace."""

from ctswitch.flow.key import (
    CS_EST,
    CS_NEW,
    CS_RPL,
    CS_TRK,
    CT_STATE,
    CT_ZONE,
    DL_DST,
    DL_SRC,
    DL_TYPE,
    IN_PORT,
    N_FIELDS,
    NW_DST,
    NW_PROTO,
    NW_SRC,
    REG0,
    TP_DST,
    TP_SRC,
)
from ctswitch.flow.ofctl_syntax import parse_flow, wire_actions
from ctswitch.ofproto.bridge import OFBridge
from ctswitch.ofproto.rule import Rule
from ctswitch.ofproto.xlate import translate
from ctswitch.packet.headers import Packet

H_MAC, R_MAC = 0x020000000201, 0x020000000102


def bridge(flows, fail_mode="secure"):
    br = OFBridge("br0", fail_mode)
    br.add_port("p0")
    br.add_port("pf0hpf")
    for text in flows:
        s = parse_flow(text, br.names)
        br.add_rule(Rule(s.table, s.priority, s.match, wire_actions(s.actions)))
    return br


def tcp_key(in_port, src, dst, sport, dport, smac=H_MAC, dmac=R_MAC):
    k = [0] * N_FIELDS
    k[IN_PORT], k[DL_SRC], k[DL_DST], k[DL_TYPE] = in_port, smac, dmac, 0x0800
    k[NW_SRC], k[NW_DST], k[NW_PROTO], k[TP_SRC], k[TP_DST] = src, dst, 6, sport, dport
    return k


class FakeVerdict:
    def __init__(self, state, zone, nat_src=None):
        self.state, self.zone, self.mark, self.label = state, zone, 0, 0
        self.orig, self.nat_src, self.nat_dst, self.icmp_id, self.icmp_inner = None, nat_src, None, None, None
        self.conn, self.reply, self.drop = None, False, None


class FakeTracker:
    def __init__(self, states, nat_src=None):
        self.states = list(states)
        self.calls = []
        self.nat_src = nat_src

    def process(self, pkt, key, zone, ct, now):
        self.calls.append((zone, ct.commit, ct.nat))
        return FakeVerdict(self.states.pop(0), zone, self.nat_src if ct.commit else None)


def test_vendor_example2_new_connection_is_snatted_and_sent_to_p0():
    br = bridge(["table=0,ip,ct_state=-trk,action=ct(table=1,nat)",
                 "table=1,in_port=pf0hpf,ip,ct_state=+trk+new,action=ct(commit,nat(src=1.1.1.16)),p0",
                 "table=1,ip,ct_state=+trk+est,action=normal"])
    trk = FakeTracker([CS_TRK | CS_NEW, CS_TRK | CS_NEW], nat_src=(0x01010110, None))
    key = tcp_key(2, 0x02020201, 0x01010102, 40001, 80)
    tr = translate(br, Packet(), key, 0, tracker=trk)
    assert [p for p, *_ in tr.outputs] == [1]
    out_key = tr.outputs[0][1]
    assert out_key[NW_SRC] == 0x01010110 and out_key[TP_SRC] == 40001
    assert out_key[CT_STATE] == 0  # the fork after ct() continues untracked
    assert [r.table_id for r in tr.rules] == [0, 1]
    assert trk.calls[0][1] is False and trk.calls[1][1] is True
    assert key[NW_SRC] == 0x02020201  # the caller's key is untouched


def test_table_miss_drops_with_reason():
    br = bridge(["table=0,ip,ct_state=-trk,action=ct(table=1)"])
    trk = FakeTracker([CS_TRK | CS_EST | CS_RPL])
    tr = translate(br, Packet(), tcp_key(1, 1, 2, 3, 4), 0, tracker=trk)
    assert tr.outputs == [] and tr.drop == "no matching flow in table 1"


def test_equal_priority_roce_bypass_depends_on_order():
    roce = "table=0,udp,tp_dst=4791,action=normal"
    ct = "table=0,ip,ct_state=-trk,action=ct(table=1)"
    key = tcp_key(2, 1, 2, 49152, 4791)
    key[NW_PROTO] = 17
    tr = translate(bridge([roce, ct]), Packet(), key, 0, tracker=FakeTracker([]))
    assert tr.verdicts == [] and len(tr.outputs) == 2  # NORMAL floods p0 and LOCAL
    trk = FakeTracker([CS_TRK | CS_NEW])
    tr = translate(bridge([ct, roce]), Packet(), key, 0, tracker=trk)
    assert len(trk.calls) == 1


def test_normal_learns_then_forwards_unicast():
    br = bridge([], fail_mode="standalone")
    a = tcp_key(2, 1, 2, 3, 4, smac=H_MAC, dmac=R_MAC)
    tr = translate(br, Packet(), a, 0)
    assert sorted(p for p, *_ in tr.outputs) == [1, 0xFFFE]  # flood: p0 and LOCAL, not ingress
    b = tcp_key(1, 2, 1, 4, 3, smac=R_MAC, dmac=H_MAC)
    tr = translate(br, Packet(), b, 10)
    assert [p for p, *_ in tr.outputs] == [2]  # learned from the first packet
    tr = translate(br, Packet(), a, 20)
    assert [p for p, *_ in tr.outputs] == [1]


def test_resubmit_goto_and_registers():
    br = bridge(["table=0,ip,action=load:0x5->NXM_NX_REG0[0..15],resubmit(,2)",
                 "table=2,reg0=5,ip,action=mod_tp_dst:8080,goto_table:3",
                 "table=3,ip,action=output:p0"])
    tr = translate(br, Packet(), tcp_key(2, 1, 2, 3, 80), 0)
    assert [p for p, *_ in tr.outputs] == [1]
    assert tr.outputs[0][1][TP_DST] == 8080 and tr.outputs[0][1][REG0] == 5
    assert [r.table_id for r in tr.rules] == [0, 2, 3]


def test_ct_zone_from_register_and_output_to_input_port_skipped():
    br = bridge(["table=0,ip,action=load:0x7->NXM_NX_REG0[0..15],ct(zone=NXM_NX_REG0[0..15],table=1)",
                 "table=1,ct_zone=7,ip,action=output:pf0hpf,in_port"])
    trk = FakeTracker([CS_TRK | CS_NEW])
    tr = translate(br, Packet(), tcp_key(2, 1, 2, 3, 4), 0, tracker=trk)
    assert trk.calls[0][0] == 7
    assert [p for p, *_ in tr.outputs] == [2]  # in_port action outputs to the ingress port
    assert tr.outputs[0][1][CT_ZONE] == 7


def test_trace_resumes_with_ct_next_and_never_calls_tracker():
    br = bridge(["table=0,ip,ct_state=-trk,action=ct(table=1,nat)",
                 "table=1,ip,ct_state=+trk+est,action=output:p0",
                 "table=1,ip,ct_state=+trk+new,action=drop"])

    from ctswitch.control.appctl import _Formatter

    def Fmt():
        return _Formatter(br)

    tr = translate(br, None, tcp_key(2, 1, 2, 3, 4), 0, trace=True, ct_next=[CS_TRK | CS_EST],
                   formatter=Fmt(), tracker=None)
    text = "\n".join(tr.trace)
    assert "recirc(0x1) - resume conntrack with ct_state=est|trk" in text
    assert text.splitlines()[-1] == "Datapath actions: 1"
    assert "Datapath actions: ct(nat),recirc(0x1)" in text
    tr = translate(br, None, tcp_key(2, 1, 2, 3, 4), 0, trace=True, formatter=Fmt())
    assert tr.outputs == [] and "new|trk" in "\n".join(tr.trace)
