"""IPv4 fragments through ct(): reassembled before conntrack, refragmented on output
(ovs-actions(7) "ct": "implicitly reassembled ... and refragmented upon output"; the kernel
datapath's handle_fragments/ip_defrag and ovs_fragment).  Fragments are cut by scapy, an
implementation independent of ctswitch's, and the outputs are reassembled by scapy too."""

from __future__ import annotations

from pipeline import EXAMPLE1, HOST_MAC, REMOTE_MAC, Lab
from scapy.all import IP, UDP, Ether, Raw, defragment, fragment  # type: ignore

PAYLOAD = bytes(range(256)) * 12  # 3072 bytes + 8 of UDP: fragments of 1480, 1480 and 120


def frags(src, dst, sport, dport, ident=7, size=1480, smac=HOST_MAC, dmac=REMOTE_MAC, payload=PAYLOAD):
    pkt = IP(src=src, dst=dst, id=ident) / UDP(sport=sport, dport=dport) / Raw(payload)
    return [bytes(Ether(src=smac, dst=dmac) / f) for f in fragment(pkt, fragsize=size)]


def host_frags(**kw):
    return frags("2.2.2.1", "1.1.1.2", 5000, 53, **kw)


def reply_frags(dst="1.1.1.16", **kw):
    return frags("1.1.1.2", dst, 53, 5000, smac=REMOTE_MAC, dmac=HOST_MAC, **kw)


def header_ok(ip) -> bool:
    c = ip.copy()
    del c.chksum
    return IP(bytes(c)).chksum == ip.chksum


def datagram(frames):
    """The one datagram scapy reassembles from output frames, checksums verified."""
    ips = [Ether(f)[IP] for f in frames]
    assert all(header_ok(ip) for ip in ips)
    out = defragment(ips)
    assert len(out) == 1
    dg = IP(bytes(out[0]))
    c = dg.copy()
    del c[UDP].chksum
    assert IP(bytes(c))[UDP].chksum == dg[UDP].chksum
    return dg


def test_snat_of_a_fragmented_datagram_and_of_its_fragmented_reply():
    lab = Lab()
    fs = host_frags()
    assert [len(f) for f in fs] == [1514, 1514, 154]
    assert lab.send("pf0hpf", fs[0]) == []  # kept for reassembly: nothing out, nothing dropped
    assert lab.send("pf0hpf", fs[1]) == []
    assert len(lab.sw.tracker) == 0  # conntrack has seen nothing yet
    out = lab.send("pf0hpf", fs[2])
    # Cut again along the arrival boundaries, each piece with the SNATed header.
    assert [(p, len(f)) for p, f in out] == [("p0", 1514), ("p0", 1514), ("p0", 154)]
    assert [(Ether(f)[IP].src, Ether(f)[IP].id, Ether(f)[IP].frag, Ether(f)[IP].flags.MF) for _, f in out] == [
        ("1.1.1.16", 7, 0, 1), ("1.1.1.16", 7, 185, 1), ("1.1.1.16", 7, 370, 0)]
    dg = datagram([f for _, f in out])
    assert (dg.src, dg.dst, dg[UDP].sport, dg[UDP].dport, bytes(dg[UDP].payload)) == (
        "1.1.1.16", "1.1.1.2", 5000, 53, PAYLOAD)
    assert lab.sw.datapath.stats["frag_queued"] == 2
    assert dict(lab.sw.datapath.drops) == {}
    assert lab.sw.tracker.defrag.stats == {"ReasmReqds": 3, "ReasmOKs": 1, "ReasmFails": 0,
                                           "ReasmTimeout": 0, "ReasmOverlaps": 0,
                                           "FragOKs": 1, "FragCreates": 3, "FragFails": 0}
    assert lab.conntrack() == [
        "udp      17 30 src=2.2.2.1 dst=1.1.1.2 sport=5000 dport=53 [UNREPLIED] src=1.1.1.2 dst=1.1.1.16 "
        "sport=53 dport=5000 mark=0 use=1"]
    # The reply, fragmented and out of order, comes back un-NATed.
    rs = reply_frags(ident=99)
    assert lab.send("p0", rs[2]) == []
    assert lab.send("p0", rs[0]) == []
    out = lab.send("p0", rs[1])
    assert [p for p, _ in out] == ["pf0hpf"] * 3
    dg = datagram([f for _, f in out])
    assert (dg.src, dg.dst, dg[UDP].dport, bytes(dg[UDP].payload)) == ("1.1.1.2", "2.2.2.1", 5000, PAYLOAD)
    assert lab.conntrack() == [
        "udp      17 30 src=2.2.2.1 dst=1.1.1.2 sport=5000 dport=53 src=1.1.1.2 dst=1.1.1.16 "
        "sport=53 dport=5000 mark=0 use=1"]
    # Never offloaded, although UDP with a reply is.
    assert not lab.conn().offload
    from ctswitch.control.modparam import cat
    assert cat(lab.sw, ["/proc/net/snmp"]).out.splitlines()[1] == (
        "Ip: 2 64 0 0 0 0 0 0 0 0 0 0 0 6 2 0 2 0 6")


def test_without_ct_fragments_pass_as_they_are():
    lab = Lab(["table=0,actions=normal"])
    fs = host_frags()
    outs = [lab.send("pf0hpf", f) for f in fs]
    assert outs == [[("p0", f)] for f in fs]
    assert lab.sw.tracker.defrag.stats["ReasmReqds"] == 0


def test_duplicate_overlap_and_timeout():
    lab = Lab(EXAMPLE1)
    fs = host_frags()
    assert lab.send("pf0hpf", fs[0]) == []
    assert lab.send("pf0hpf", fs[0]) == []  # an exact duplicate is dropped alone
    out = [lab.send("pf0hpf", f) for f in fs[1:]]
    assert out[0] == [] and [p for p, _ in out[1]] == ["p0"] * 3
    # Overlap: the same datagram cut at 1480 and at 1000 bytes, one piece of each.
    other = host_frags(ident=8, size=1000)
    mine = host_frags(ident=8)
    assert lab.send("pf0hpf", mine[0]) == []
    assert lab.send("pf0hpf", other[1]) == []  # offset 1000 inside 0..1480: the queue is gone
    assert lab.send("pf0hpf", mine[1]) == [] and lab.send("pf0hpf", mine[2]) == []  # no head any more
    st = lab.sw.tracker.defrag.stats
    assert (st["ReasmOverlaps"], st["ReasmFails"], len(lab.sw.tracker.defrag)) == (1, 1, 1)
    # The incomplete datagram is freed ipfrag_time (30 s) after its first fragment.
    lab.at(lab.t + 29_000).send("pf0hpf", lab.host_tcp("S"))
    assert len(lab.sw.tracker.defrag) == 1
    lab.at(lab.t + 2_000).send("pf0hpf", lab.host_tcp("S"))
    assert len(lab.sw.tracker.defrag) == 0
    assert (st["ReasmTimeout"], st["ReasmFails"]) == (1, 2)


def test_zones_keep_separate_queues_and_a_too_large_datagram_is_dropped_on_output():
    flows = ["table=0,arp,action=normal",
             "table=0,in_port=pf0hpf,ip,ct_state=-trk,action=ct(zone=1,table=1)",
             "table=0,in_port=p0,ip,ct_state=-trk,action=ct(zone=2,table=1)",
             "table=1,ip,action=normal"]
    lab = Lab(flows)
    fs = host_frags()
    # The same fragments entering on both ports: two zones, two queues.
    lab.send("pf0hpf", fs[0])
    lab.send("p0", fs[1])
    assert len(lab.sw.tracker.defrag) == 2
    # Fragments of 4000 bytes make a datagram that fits the 1500-byte port MTU in no piece.
    big = host_frags(ident=9, size=4000, payload=bytes(6000))
    assert [lab.send("pf0hpf", f) for f in big] == [[], []]
    assert lab.sw.datapath.drops["reassembled datagram larger than the port MTU"] == 1


def test_ipv6_fragments_are_reassembled_and_cut_again():
    from scapy.all import IPv6, IPv6ExtHdrFragment, defragment6, fragment6  # type: ignore
    flows = ["table=0,arp,action=normal",
             "table=0,ipv6,ct_state=-trk,action=ct(table=1)",
             "table=1,ipv6,ct_state=+trk+new,action=ct(commit),normal",
             "table=1,ipv6,ct_state=+trk+est,action=normal"]
    lab = Lab(flows)
    pkt = IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrFragment(id=0x1234) / \
        UDP(sport=5000, dport=53) / Raw(PAYLOAD)
    fs = [bytes(Ether(src=HOST_MAC, dst=REMOTE_MAC) / f) for f in fragment6(pkt, 1280)]
    assert len(fs) == 3
    assert lab.send("pf0hpf", fs[1]) == [] and lab.send("pf0hpf", fs[2]) == []
    out = lab.send("pf0hpf", fs[0])
    assert out == [("p0", f) for f in fs]  # no NAT: the very frames that came in, in offset order
    frags_out = [IPv6(bytes(Ether(f)[IPv6])) for _, f in out]
    assert [(x[IPv6ExtHdrFragment].offset, x[IPv6ExtHdrFragment].m, x[IPv6ExtHdrFragment].id) for x in frags_out] \
        == [(Ether(f)[IPv6ExtHdrFragment].offset, Ether(f)[IPv6ExtHdrFragment].m, 0x1234) for f in fs]
    dg = defragment6(frags_out)
    assert bytes(dg[UDP].payload) == PAYLOAD
    c = dg.copy()
    del c[UDP].chksum
    assert IPv6(bytes(c))[UDP].chksum == dg[UDP].chksum
    assert len(lab.sw.tracker) == 1
    assert lab.sw.tracker.defrag.stats6["ReasmOKs"] == 1 and lab.sw.tracker.defrag.stats["ReasmOKs"] == 0



def _rule_counters(lab) -> dict:
    """(table, actions) -> (n_packets, n_bytes) of each rule, from dump-flows."""
    import re

    from ctswitch.control import ofctl

    out = ofctl.run(lab.sw, ["dump-flows", "ctBr"]).out
    return {(int(t), a): (int(p), int(b))
            for t, p, b, a in re.findall(r"table=(\d+), n_packets=(\d+), n_bytes=(\d+), .*?actions=(\S+)", out)}


def test_rules_after_the_reassembly_count_the_datagram():
    # The rules that ran before ct() reassembled the datagram count each fragment as it came (the
    # first two were kept for reassembly); those after it count the reassembled datagram once.
    lab = Lab()
    before = _rule_counters(lab)
    fs = host_frags()
    for f in fs:
        lab.send("pf0hpf", f)
    after = _rule_counters(lab)
    delta = {k: (after[k][0] - before[k][0], after[k][1] - before[k][1]) for k in after if after[k] != before[k]}
    dg = 14 + 20 + 8 + len(PAYLOAD)  # the reassembled frame
    assert sorted((t, c) for (t, _a), c in delta.items()) == [(0, (3, sum(len(f) for f in fs))), (1, (1, dg))], delta
