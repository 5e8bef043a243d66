"""Tracker behaviour: ct_state sequences, windows, UDP/ICMP, zones, NAT, limits."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.all import rdpcap
from scapy.layers.inet import ICMP, IP, TCP, UDP, IPerror, UDPerror
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6

from ctswitch.conntrack import render
from ctswitch.conntrack.conn import IPS_ASSURED, IPS_SEEN_REPLY
from ctswitch.conntrack.nat import EXHAUSTED_MSG
from ctswitch.conntrack.tracker import TABLE_FULL_MSG, Tracker
from ctswitch.flow import key as K
from ctswitch.flow.actions import Ct, Nat, SetField
from ctswitch.params import NF, Params

from .pkt import from_scapy, ip4, key_of, pk

CASES = Path("/work/shared/oracle/cases")
COMMIT = Ct(commit=True)
LOOK = Ct(table=1)
A, B, N = "2.2.2.1", "1.1.1.2", "1.1.1.16"


def snat(addr=N, lo=0, hi=0):
    return Nat(kind="src", addr_min=ip4(addr), addr_max=ip4(addr), port_min=lo, port_max=hi)


def apply(key, v):
    if v.nat_src:
        key[K.NW_SRC], key[K.TP_SRC] = v.nat_src
    if v.nat_dst:
        key[K.NW_DST], key[K.TP_DST] = v.nat_dst


def run(tr, sp, now, commit=False, nat=None, zone=0):
    p, key = pk(sp)
    v = tr.process(p, key, zone, Ct(table=1, nat=Nat() if nat else None), now)
    apply(key, v)
    if commit and v.state & K.CS_NEW:
        v2 = tr.process(p, key, zone, Ct(commit=True, nat=nat), now)
        apply(key, v2)
        if v2.drop:
            return v2
    return v


def handshake(tr, sport=40001, dport=80, now=0, nat=None, rsrc=B, rdst=A, rdport=None):
    s = [run(tr, IP(src=A, dst=B) / TCP(sport=sport, dport=dport, flags="S", seq=100, window=1000), now, True, nat),
         run(tr, IP(src=rsrc, dst=rdst) / TCP(sport=dport, dport=rdport or sport, flags="SA", seq=500, ack=101,
                                              window=1000), now + 1, nat=nat),
         run(tr, IP(src=A, dst=B) / TCP(sport=sport, dport=dport, flags="A", seq=101, ack=501, window=1000),
             now + 2, True, nat)]
    return [v.state for v in s]


TRK, NEW, EST, RPL, INV, REL = K.CS_TRK, K.CS_NEW, K.CS_EST, K.CS_RPL, K.CS_INV, K.CS_REL


def test_handshake_states_kernel_mapping():
    tr = Tracker(Params())
    assert handshake(tr) == [TRK | NEW, TRK | EST | RPL, TRK | EST]
    (c,) = tr.iter_conns()
    assert c.status & IPS_ASSURED and c.state == 3
    assert render.conntrack_line(c, 1002) == (
        "tcp      6 431999 ESTABLISHED src=2.2.2.1 dst=1.1.1.2 sport=40001 dport=80 "
        "src=1.1.1.2 dst=2.2.2.1 sport=80 dport=40001 [ASSURED] mark=0 use=1")


def _classify(v, port):
    s = v.state
    if s & INV:
        return "s_inv"
    if s & NEW:
        return "s_new" if port == "pf0hpf" else "s_new_nocommit"
    if s & EST:
        return "s_est_rpl" if s & RPL else "s_est"
    if s & REL:
        return "s_rel"
    return "s_other"


@pytest.mark.parametrize("case", ["ct_probe", "snat_probe"])
def test_probe_case_ct_states_match_oracle(case):
    """Emulates table 0 ct(table=1[,nat]) and the commit of +new from pf0hpf."""
    base = CASES / case
    pkts = sorted(((sp.time, port, sp) for port in ("p0", "pf0hpf")
                   for sp in rdpcap(str(base / "in" / f"{port}.pcap"))), key=lambda x: x[0])
    nat = snat() if case.startswith("snat") else None
    tr = Tracker(Params())
    got = []
    t0 = pkts[0][0]
    for ts, port, sp in pkts:
        now = int((ts - t0) * 1000)
        p = from_scapy(sp)
        if p.ip_ver != 4 or p.dl_type != 0x0800:
            got.append("s_other" if p.ip_ver else None)
            continue
        key = key_of(p)
        v = tr.process(p, key, 0, Ct(table=1, nat=Nat() if nat else None), now)
        apply(key, v)
        cls = _classify(v, port)
        if cls == "s_new":
            tr.process(p, key, 0, Ct(commit=True, nat=nat), now)
        got.append(cls)
    expected = []
    for line in (base / "expected" / "trace.tsv").read_text().splitlines()[1:]:
        outs = line.split("\t")[4]
        name = outs.split(":")[0]
        expected.append(name if name.startswith("s_") else None)
    assert got == expected
    dump = sorted(render.dpctl_line(c) for c in tr.iter_conns() if c.proto != 17 or c.expires > now)
    exp = (base / "expected" / "conntrack.txt").read_text().splitlines()
    # UDP entries expire after 30 s in the kernel (OVS userspace keeps them 60 s): compare the rest.
    assert [line for line in dump] == [line for line in exp if line in dump]
    assert {line for line in exp if not line.startswith("udp")} <= set(dump)


def test_invalid_window_with_and_without_be_liberal():
    for liberal, want in ((0, TRK | INV), (1, TRK | EST)):
        params = Params()
        params.set("sysctl:" + NF + "nf_conntrack_tcp_be_liberal", liberal)
        tr = Tracker(params)
        handshake(tr)
        # data far beyond the receiver's window
        v = run(tr, IP(src=A, dst=B) / TCP(sport=40001, dport=80, flags="A", seq=101 + 10_000_000, ack=501, window=1000), 5)
        assert v.state == want


def test_out_of_window_rst_is_invalid_even_when_liberal():
    params = Params()
    params.set("sysctl:" + NF + "nf_conntrack_tcp_be_liberal", 1)
    tr = Tracker(params)
    handshake(tr)
    run(tr, IP(src=A, dst=B) / TCP(sport=40001, dport=80, flags="PA", seq=101, ack=501, window=1000) / (b"x" * 50), 3)
    run(tr, IP(src=B, dst=A) / TCP(sport=80, dport=40001, flags="A", seq=501, ack=151, window=1000), 4)
    v = run(tr, IP(src=B, dst=A) / TCP(sport=80, dport=40001, flags="R", seq=100), 5)
    assert v.state == TRK | INV
    v = run(tr, IP(src=B, dst=A) / TCP(sport=80, dport=40001, flags="R", seq=501), 6)
    assert v.state == TRK | EST | RPL
    (c,) = tr.iter_conns()
    assert c.state == 8 and c.expires == 6 + 10_000


def test_rst_before_reply_deletes_entry():
    tr = Tracker(Params())
    gone = []
    tr.destroy_hook = lambda c, now: gone.append((c.orig[2], now))
    run(tr, IP(src=A, dst=B) / TCP(sport=40009, dport=81, flags="S", seq=1), 0, True)
    v = run(tr, IP(src=B, dst=A) / TCP(sport=81, dport=40009, flags="RA", seq=0, ack=2), 1)
    assert v.state == TRK | EST | RPL
    assert list(tr.iter_conns()) == []
    assert gone == [(40009, 1)]


def test_synack_without_connection_and_bad_flags_are_invalid():
    tr = Tracker(Params())
    for flags in ("SA", "SF", "", "SR", "FPU"):
        v = run(tr, IP(src=B, dst=A) / TCP(sport=80, dport=40008, flags=flags), 0, True)
        assert v.state == TRK | INV, flags
    assert tr.stats["invalid"] == 5 and tr.count == 0


def test_loose_pickup_and_disabled():
    tr = Tracker(Params())
    v = run(tr, IP(src=A, dst=B) / TCP(sport=40002, dport=8080, flags="A", seq=7, ack=9), 0, True)
    assert v.state == TRK | NEW
    (c,) = tr.iter_conns()
    assert render.dpctl_line(c, verbose=True).endswith(
        "protoinfo=(state_orig=ESTABLISHED,state_reply=ESTABLISHED,flags_orig=SACK_PERM|BE_LIBERAL,"
        "flags_reply=SACK_PERM|BE_LIBERAL)")
    params = Params()
    params.set("sysctl:" + NF + "nf_conntrack_tcp_loose", 0)
    tr = Tracker(params)
    v = run(tr, IP(src=A, dst=B) / TCP(sport=40002, dport=8080, flags="A", seq=7, ack=9), 0, True)
    assert v.state == TRK | INV


def test_udp_unreplied_then_stream_assured():
    tr = Tracker(Params())
    q = IP(src=A, dst=B) / UDP(sport=50000, dport=53) / b"q"
    r = IP(src=B, dst=A) / UDP(sport=53, dport=50000) / b"r"
    assert run(tr, q, 0, True).state == TRK | NEW
    (c,) = tr.iter_conns()
    assert c.expires == 30_000 and not c.status & IPS_SEEN_REPLY
    assert run(tr, q, 500, True).state == TRK | NEW
    assert run(tr, r, 1000).state == TRK | EST | RPL
    assert c.status & IPS_SEEN_REPLY and not c.status & IPS_ASSURED and c.expires == 31_000
    assert run(tr, q, 1500).state == TRK | EST
    assert not c.status & IPS_ASSURED and c.expires == 31_500
    run(tr, r, 2500)
    assert c.status & IPS_ASSURED and c.expires == 122_500
    assert tr.sweep(122_499) == [] and tr.sweep(122_500) == [c]


def test_icmp_echo_and_related_errors():
    tr = Tracker(Params())
    assert run(tr, IP(src=A, dst=B) / ICMP(type=8, id=7, seq=1), 0, True).state == TRK | NEW
    assert run(tr, IP(src=B, dst=A) / ICMP(type=0, id=7, seq=1), 1).state == TRK | EST | RPL
    assert run(tr, IP(src=B, dst=A) / ICMP(type=0, id=8, seq=1), 1).state == TRK | INV
    run(tr, IP(src=A, dst=B) / UDP(sport=5000, dport=9999) / b"x", 2, True)
    err = IP(src=B, dst=A) / ICMP(type=3, code=3) / IPerror(src=A, dst=B) / UDPerror(sport=5000, dport=9999)
    assert run(tr, err, 3).state == TRK | REL | RPL
    orphan = IP(src=B, dst=A) / ICMP(type=3, code=3) / IPerror(src=A, dst=B) / UDPerror(sport=1, dport=2)
    assert run(tr, orphan, 4).state == TRK | INV
    assert tr.stats["error"] == 1
    lines = [render.conntrack_line(c, 4) for c in tr.iter_conns()]
    assert lines[0] == ("icmp     1 29 src=2.2.2.1 dst=1.1.1.2 type=8 code=0 id=7 "
                        "src=1.1.1.2 dst=2.2.2.1 type=0 code=0 id=7 mark=0 use=1")


def test_icmp_error_of_snat_connection_is_translated():
    tr = Tracker(Params())
    run(tr, IP(src=A, dst=B) / UDP(sport=5000, dport=9999) / b"x", 0, True, nat=snat())
    err = IP(src="9.9.9.9", dst=N) / ICMP(type=11) / IPerror(src=N, dst=B) / UDPerror(sport=5000, dport=9999)
    v = run(tr, err, 1, nat=True)
    assert v.state == TRK | REL | RPL | K.CS_DNAT
    assert v.nat_dst[0] == ip4(A) and v.nat_src is None
    assert v.icmp_inner == (ip4(A), ip4(B), 5000, 9999)


def test_icmpv6_echo():
    tr = Tracker(Params())
    assert run(tr, IPv6(src="fe80::1", dst="fe80::2") / ICMPv6EchoRequest(id=7), 0, True).state == TRK | NEW
    assert run(tr, IPv6(src="fe80::2", dst="fe80::1") / ICMPv6EchoReply(id=7), 1).state == TRK | EST | RPL
    (c,) = tr.iter_conns()
    assert render.conntrack_line(c, 1) == (
        "icmpv6   58 30 src=fe80::1 dst=fe80::2 type=128 code=0 id=7 "
        "src=fe80::2 dst=fe80::1 type=129 code=0 id=7 mark=0 use=1")
    assert render.proc_line(c, 1).startswith(
        "ipv6     10 icmpv6   58 30 src=fe80:0000:0000:0000:0000:0000:0000:0001 ")


def test_zones_isolate_overlapping_addresses():
    tr = Tracker(Params())
    for z in (1, 2):
        run(tr, IP(src=A, dst=B) / UDP(sport=1, dport=2), 0, True, zone=z)
    assert sorted(c.zone for c in tr.iter_conns()) == [1, 2]
    assert run(tr, IP(src=B, dst=A) / UDP(sport=2, dport=1), 1, zone=1).state == TRK | EST | RPL
    assert run(tr, IP(src=B, dst=A) / UDP(sport=2, dport=1), 1, zone=3).state == TRK | NEW
    z1 = [c for c in tr.iter_conns() if c.zone == 1][0]
    assert render.conntrack_line(z1, 1).endswith("mark=0 zone=1 use=1")
    assert render.proc_line(z1, 1).endswith("mark=0 zone=1 use=2")


def test_snat_clash_takes_next_port_and_reply_gets_dnat():
    tr = Tracker(Params())
    handshake(tr, sport=40003, dport=443, nat=snat(), rdst=N)
    v = run(tr, IP(src="2.2.2.2", dst=B) / TCP(sport=40003, dport=443, flags="S", seq=1), 3, True, nat=snat())
    conns = list(tr.iter_conns())
    assert conns[1].reply == (ip4(B), ip4(N), 443, 40004)
    assert v.state == TRK | NEW
    r = run(tr, IP(src=B, dst=N) / TCP(sport=443, dport=40004, flags="SA", seq=9, ack=2), 4, nat=True)
    assert r.state == TRK | EST | RPL | K.CS_DNAT
    assert r.nat_dst == (ip4("2.2.2.2"), 40003)


def test_nat_exhaustion_drops_and_logs():
    tr = Tracker(Params())
    nat = snat(lo=1000, hi=1001)
    for sport in (1, 2):
        v = run(tr, IP(src=A, dst=B) / UDP(sport=sport, dport=53), 0, True, nat=nat)
        assert v.drop is None
    v = run(tr, IP(src=A, dst=B) / UDP(sport=3, dport=53), 0, True, nat=nat)
    assert v.drop == EXHAUSTED_MSG
    assert tr.count == 2 and tr.stats["drop"] == 1 and tr.log == [EXHAUSTED_MSG]
    assert sorted(c.reply[3] for c in tr.iter_conns()) == [1000, 1001]


def test_conntrack_max_early_drop_then_full_drop():
    params = Params()
    params.set("sysctl:" + NF + "nf_conntrack_max", 2)
    tr = Tracker(params)
    run(tr, IP(src=A, dst=B) / UDP(sport=1, dport=2), 0, True)
    handshake(tr, now=10)
    v = run(tr, IP(src=A, dst=B) / UDP(sport=3, dport=4), 20, True)
    assert v.state == TRK | NEW and tr.stats["early_drop"] == 1
    assert sorted(c.proto for c in tr.iter_conns()) == [6, 17]
    # make the UDP entry assured too: now nothing can be evicted
    run(tr, IP(src=B, dst=A) / UDP(sport=4, dport=3), 21)
    run(tr, IP(src=A, dst=B) / UDP(sport=3, dport=4), 2500)
    run(tr, IP(src=B, dst=A) / UDP(sport=4, dport=3), 2600)
    v = run(tr, IP(src=A, dst=B) / UDP(sport=5, dport=6), 2700, True)
    assert v.drop == TABLE_FULL_MSG and tr.count == 2 and tr.stats["drop"] == 1
    assert tr.log == [TABLE_FULL_MSG]


def test_zone_limit():
    tr = Tracker(Params())
    tr.set_zone_limit(5, 1)
    assert run(tr, IP(src=A, dst=B) / UDP(sport=1, dport=2), 0, True, zone=5).drop is None
    v = run(tr, IP(src=A, dst=B) / UDP(sport=3, dport=2), 0, True, zone=5)
    assert v.drop == "openvswitch: zone: 5 exceeds conntrack limit"
    assert run(tr, IP(src=A, dst=B) / UDP(sport=3, dport=2), 0, True, zone=6).drop is None


def test_mark_exec_events_and_persistence():
    tr = Tracker(Params())
    tr.events_enabled = True
    p, key = pk(IP(src=A, dst=B) / TCP(sport=40003, dport=443, flags="S", seq=1))
    tr.process(p, key, 0, Ct(commit=True, exec=(SetField("ct_mark", 42),)), 0)
    (c,) = tr.iter_conns()
    assert c.mark == 42
    assert tr.events[0][2] == ("    [NEW] tcp      6 120 SYN_SENT src=2.2.2.1 dst=1.1.1.2 sport=40003 "
                               "dport=443 [UNREPLIED] src=1.1.1.2 dst=2.2.2.1 sport=443 dport=40003 mark=42")
    tr2 = Tracker.from_state(Params(), tr.to_state())
    (c2,) = tr2.iter_conns()
    assert render.conntrack_line(c2, 0) == render.conntrack_line(c, 0)
    assert run(tr2, IP(src=B, dst=A) / TCP(sport=443, dport=40003, flags="SA", seq=5, ack=2), 1).state == TRK | EST | RPL


def test_offload_hides_timeout_and_unoffload_fixes_up():
    tr = Tracker(Params())
    handshake(tr)
    (c,) = tr.iter_conns()
    tr.on_offload(c, 10)
    assert render.conntrack_line(c, 10) == (
        "tcp      6 src=2.2.2.1 dst=1.1.1.2 sport=40001 dport=80 src=1.1.1.2 dst=2.2.2.1 "
        "sport=80 dport=40001 [OFFLOAD] mark=0 use=2")
    assert tr.sweep(10**10) == []
    tr.on_unoffload(c, 50_000)
    # kernel: only shortened when more than timeout - flowtable timeout remains
    assert c.expires == 2 + 432_000 * 1000
    assert c.tcp.seen[0].td_maxwin == 0 and c.status & 0xC000 == 0
    u = run(tr, IP(src=A, dst=B) / UDP(sport=1, dport=2), 0, True)
    run(tr, IP(src=B, dst=A) / UDP(sport=2, dport=1), 1)
    assert u.state == TRK | NEW
    uc = [x for x in tr.iter_conns() if x.proto == 17][0]
    tr.on_offload(uc, 10)
    assert uc.expires == 10 + 86_400_000
    tr.on_unoffload(uc, 40_000)
    assert uc.expires == 40_000 + 90_000
