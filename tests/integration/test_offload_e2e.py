"""The BlueField offload behaviour end to end, on the simulated clock (reference §7 item 10)."""

from pipeline import EXAMPLE1, Lab

from ctswitch.conntrack.conn import IPS_HW_OFFLOAD, IPS_OFFLOAD
from ctswitch.control import offload_tool
from ctswitch.packet import build, codec


def test_handshake_offloads_on_third_packet_and_fast_path_takes_data():
    lab = Lab()
    lab.send("pf0hpf", lab.host_tcp("S", seq=1000))
    assert not lab.conn().status & IPS_OFFLOAD
    lab.send("p0", lab.remote_tcp("SA", seq=5000, ack=1001))
    assert not lab.conn().status & IPS_OFFLOAD
    lab.send("pf0hpf", lab.host_tcp("A", seq=1001, ack=5001))
    c = lab.conn()
    assert c.status & IPS_HW_OFFLOAD and c.status & IPS_OFFLOAD
    assert lab.conntrack() == [
        "tcp      6 src=2.2.2.1 dst=1.1.1.2 sport=34541 dport=5001 src=1.1.1.2 dst=1.1.1.16 "
        "sport=5001 dport=34541 [HW_OFFLOAD] mark=0 use=2"]
    # Data both ways, all in hardware: the handshake's ACK installed the host direction's
    # decision and, as the offload put both directions of the connection in hardware, the reply
    # direction's too (its datapath flows were installed by the SYN-ACK).
    stats = lab.sw.datapath.stats
    for i in range(5):
        out = lab.send("pf0hpf", lab.host_tcp("PA", seq=1001 + 100 * i, ack=5001, payload=b"x" * 100))
        assert [p for p, _ in out] == ["p0"]
        pkt = codec.parse(out[0][1])
        assert (pkt.nw_src, pkt.tp_src) == (0x01010110, 34541)  # SNAT to 1.1.1.16 in the fast path too
        out = lab.send("p0", lab.remote_tcp("A", seq=5001, ack=1101 + 100 * i))
        assert [p for p, _ in out] == ["pf0hpf"]
        assert codec.parse(out[0][1]).nw_dst == 0x02020201  # un-NATed reply
    assert stats["fast_hw"] == 10
    assert c.packets == [2 + 5, 1 + 5]


def test_fast_path_frames_equal_slow_path_frames():
    """The cached decision rewrites exactly as the full pipeline does."""
    fast = Lab()
    slow = Lab(hw_offload=False)
    for lab in (fast, slow):
        lab.handshake()
    for i in range(3):
        f = fast.host_tcp("PA", seq=1001 + i, ack=5001, payload=bytes([i]) * 10)
        assert fast.send("pf0hpf", f) == slow.send("pf0hpf", f)
        r = fast.remote_tcp("PA", seq=5001 + i, ack=1001, payload=bytes([i]) * 20)
        assert fast.send("p0", r) == slow.send("p0", r)
    assert fast.sw.datapath.stats["fast_hw"] == 6
    assert slow.sw.datapath.stats["fast_hw"] == 0


def test_udp_offloaded_only_after_a_reply_and_icmp_never():
    lab = Lab()
    req = build.ipv4_udp("2.2.2.1", "1.1.1.2", 50000, 53, b"q", src_mac="02:00:00:00:02:01",
                         dst_mac="02:00:00:00:01:02")
    lab.send("pf0hpf", req)
    lab.send("pf0hpf", req)
    assert not lab.conn().status & IPS_OFFLOAD
    assert "UDP: waiting for a reply" in lab.conn().why
    rep = build.ipv4_udp("1.1.1.2", "1.1.1.16", 53, 50000, b"r", src_mac="02:00:00:00:01:02",
                         dst_mac="02:00:00:00:02:01")
    lab.send("p0", rep)
    assert lab.conn().status & IPS_HW_OFFLOAD
    lab2 = Lab()
    ping = build.ipv4_icmp_echo("2.2.2.1", "1.1.1.2", 7, 1, src_mac="02:00:00:00:02:01",
                                dst_mac="02:00:00:00:01:02")
    pong = build.ipv4_icmp_echo("1.1.1.2", "1.1.1.16", 7, 1, reply=True, src_mac="02:00:00:00:01:02",
                                dst_mac="02:00:00:00:02:01")
    for _ in range(3):
        assert [p for p, _ in lab2.send("pf0hpf", ping)] == ["p0"]
        out = lab2.send("p0", pong)
        assert [p for p, _ in out] == ["pf0hpf"] and codec.parse(out[0][1]).nw_dst == 0x02020201
    c = lab2.conn()
    assert not c.status & IPS_OFFLOAD and c.why == "ICMP is never offloaded"
    r = offload_tool.run_explain(lab2.sw, ["-p", "icmp"])
    assert "ICMP is never offloaded" in r.out


def test_idle_aging_after_30s_and_traffic_keeps_it():
    lab = Lab()
    seq, ack = lab.handshake()
    c = lab.conn()
    for t in range(10_000, 60_000, 10_000):  # a packet every 10 s keeps it offloaded
        lab.at(t).send("pf0hpf", lab.host_tcp("A", seq=seq, ack=ack), dt=0)
        assert c.status & IPS_HW_OFFLOAD, t
    lab.at(50_000 + 31_000).send("pf0hpf", build.eth("ff:ff:ff:ff:ff:ff", "02:00:00:00:09:09", 0x88B5, b""), dt=0)
    assert not c.status & IPS_OFFLOAD
    assert c.why.startswith("aged out after 30 s idle")
    line = lab.conntrack()[0]
    assert " ESTABLISHED " in line and "[ASSURED]" in line
    # New traffic re-offloads it.
    lab.send("pf0hpf", lab.host_tcp("A", seq=seq, ack=ack))
    assert c.status & IPS_HW_OFFLOAD


def test_fin_tears_down_offload():
    lab = Lab()
    seq, ack = lab.handshake()
    lab.send("pf0hpf", lab.host_tcp("PA", seq=seq, ack=ack, payload=b"d"))
    lab.send("p0", lab.remote_tcp("A", seq=ack, ack=seq + 1))  # installs the reply decision
    c = lab.conn()
    assert c.status & IPS_HW_OFFLOAD
    out = lab.send("pf0hpf", lab.host_tcp("FA", seq=seq + 1, ack=ack))
    assert [p for p, _ in out] == ["p0"]
    assert not c.status & IPS_OFFLOAD and c.why == "torn down by FIN"
    assert " FIN_WAIT " in lab.conntrack()[0]


def test_ct_max_offloaded_conns_leaves_extra_connection_in_software():
    lab = Lab(**{"devlink:ct_max_offloaded_conns": 1})
    lab.handshake(sport=1000)
    lab.handshake(sport=1001)
    by_port = {c.orig[2]: c for c in lab.sw.tracker.iter_conns()}
    assert by_port[1000].status & IPS_HW_OFFLOAD
    second = by_port[1001]
    assert second.status & IPS_OFFLOAD and not second.status & IPS_HW_OFFLOAD
    assert "[OFFLOAD]" in [x for x in lab.conntrack() if "sport=1001" in x][0]
    assert second.why == "ct_max_offloaded_conns reached (1)"


def test_example1_roce_bypasses_conntrack():
    lab = Lab(flows=EXAMPLE1, arp=False)
    roce = build.ipv4_udp("2.2.2.1", "1.1.1.2", 49152, 4791, b"r" * 40, src_mac="02:00:00:00:02:01",
                          dst_mac="02:00:00:00:01:02")
    out = lab.send("pf0hpf", roce)
    assert sorted(p for p, _ in out) == ["ctBr", "p0"]  # NORMAL floods the unknown MAC
    assert list(lab.sw.tracker.iter_conns()) == []


def _jump(lab, seq, ack, jump):
    """A host data segment far beyond what conntrack saw (as if traffic bypassed it)."""
    return lab.send("pf0hpf", lab.host_tcp("PA", seq=seq + jump, ack=ack, payload=b"y" * 100))


def test_be_liberal_decides_for_segments_conntrack_never_saw():
    """Without offload, a stream whose bytes went around conntrack is out of window: +inv,
    dropped by the vendor flows, unless nf_conntrack_tcp_be_liberal=1."""
    for liberal, passes in ((0, False), (1, True)):
        lab = Lab(hw_offload=False, **{"sysctl:net.netfilter.nf_conntrack_tcp_be_liberal": liberal})
        seq, ack = lab.handshake()
        out = _jump(lab, seq, ack, 10_000_000)
        assert ([p for p, _ in out] == ["p0"]) is passes, liberal
        assert (lab.sw.tracker.stats["invalid"] > 0) is not passes


def test_after_an_offload_period_the_connection_is_liberal_even_with_be_liberal_0():
    """act_ct marks both directions BE_LIBERAL when it offloads, and the teardown zeroes
    td_maxwin (re-learn): so after 30 s in hardware (conntrack saw none of those bytes) the
    connection keeps working in software even with be_liberal=0."""
    lab = Lab(**{"sysctl:net.netfilter.nf_conntrack_tcp_be_liberal": 0})
    seq, ack = lab.handshake()
    c = lab.conn()
    assert c.status & IPS_HW_OFFLOAD
    for i in range(50):  # 5 MB through the hardware path: conntrack's window goes stale
        lab.send("pf0hpf", lab.host_tcp("PA", seq=seq + i * 100_000, ack=ack, payload=b"z" * 100))
    lab.at(lab.t + 31_000).send("pf0hpf", build.eth("ff:ff:ff:ff:ff:ff", "02:00:00:00:09:09", 0x88B5, b""), dt=0)
    assert not c.status & IPS_OFFLOAD and c.why.startswith("aged out")
    out = _jump(lab, seq, ack, 5_100_000)
    assert [p for p, _ in out] == ["p0"] and lab.sw.tracker.stats["invalid"] == 0


def test_dpctl_dump_flows_lists_offloaded_decisions():
    from ctswitch.control import appctl
    lab = Lab()
    seq, ack = lab.handshake()
    lab.send("pf0hpf", lab.host_tcp("PA", seq=seq, ack=ack, payload=b"x"))
    r = appctl.run(lab.sw, ["dpctl/dump-flows", "type=offloaded"])
    # Both directions since the handshake's ACK offloaded the connection; only the host's was used.
    assert r.out == ("recirc_id(0),in_port(1),eth(src=02:00:00:00:01:02,dst=02:00:00:00:02:01),"
                     "eth_type(0x0800),ipv4(src=1.1.1.2,dst=1.1.1.16,proto=6,frag=no),tcp(src=5001,dst=34541), "
                     "packets:0, bytes:0, used:never, actions:set(ipv4(dst=2.2.2.1)),2\n"
                     "recirc_id(0),in_port(2),eth(src=02:00:00:00:02:01,dst=02:00:00:00:01:02),"
                     "eth_type(0x0800),ipv4(src=2.2.2.1,dst=1.1.1.2,proto=6,frag=no),tcp(src=34541,dst=5001), "
                     "packets:1, bytes:60, used:0.000s, actions:set(ipv4(src=1.1.1.16)),1\n")
    assert appctl.run(lab.sw, ["dpctl/dump-flows", "type=ovs"]).out == ""
    r = appctl.run(lab.sw, ["dpctl/dump-flows", "-m"])
    assert ", offloaded:yes, dp:tc, actions:" in r.out and r.out.startswith("ufid:")


def test_a_replayed_megaflow_keeps_the_bits_it_consulted_out_of_the_fast_path():
    """Regression: a pass replayed from the megaflow cache must un-wildcard what its rules
    consulted (here tcp_flags), or the exact-match fast path, which ignores tcp_flags, would
    forward the PSH segment a higher-priority rule drops."""
    flows = ["table=0,arp,action=normal",
             "table=0,ip,ct_state=-trk,action=ct(table=1)",
             "table=1,ip,ct_state=+trk+new,action=ct(commit),normal",
             "table=1,priority=40000,tcp,ct_state=+trk+est,tcp_flags=+psh,action=drop",
             "table=1,ip,ct_state=+trk+est,action=normal"]
    lab = Lab(flows)
    lab.send("pf0hpf", lab.host_tcp("S", seq=1000))
    lab.send("p0", lab.remote_tcp("SA", seq=5000, ack=1001, dst="2.2.2.1"))
    lab.send("pf0hpf", lab.host_tcp("A", seq=1001, ack=5001))
    assert lab.conn().status & IPS_HW_OFFLOAD
    for i in range(3):  # the second and third replay the first's recorded passes
        out = lab.send("pf0hpf", lab.host_tcp("A", seq=1001 + 10 * i, ack=5001, payload=b"x" * 10))
        assert [p for p, _ in out] == ["p0"]
    out = lab.send("pf0hpf", lab.host_tcp("PA", seq=1031, ack=5001, payload=b"x" * 10))
    assert out == []
    assert lab.sw.datapath.stats["fast_hw"] == 0  # the decision depends on tcp_flags: never cached
