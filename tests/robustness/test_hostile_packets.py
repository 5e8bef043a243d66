"""Crafted packets through the whole switch (vendor SNAT flows, hw-offload on).

Every frame goes through ``Guard.send``: forwarded, or counted as exactly one drop.
After each hostile batch the protected established connection still passes.
"""

from __future__ import annotations

import pytest
from hostile import (
    H6,
    HOST_MAC,
    R6,
    REMOTE_MAC,
    Guard,
    host_syn,
    host_udp,
    host_v6_syn,
    v4_fragment,
    v6_ext,
    v6_frag_header,
    v6_frame,
    vlan_stack,
    with_ihl,
    with_tcp_doff,
    with_total_length,
)

from ctswitch.conntrack import tcp as cttcp
from ctswitch.packet import build, codec
from ctswitch.packet.headers import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, TCP_URG

NAT_IP = 0x01010110


@pytest.fixture
def g() -> Guard:
    return Guard()


def _reasons(layers, n):
    """The drop reason of a frame cut to ``n`` bytes: the first layer whose end is past ``n``."""
    for end, reason in layers:
        if n < end:
            return reason
    return None


TRUNCATION_CASES = {
    # name: (frame maker, port, [(bytes needed, reason if fewer)])
    "ipv4-tcp": (lambda: host_syn(), "pf0hpf", [
        (14, "truncated ethernet header"), (34, "truncated ipv4 header"),
        (54, "ipv4 total length beyond frame")]),
    "ipv4-udp": (lambda: host_udp(), "pf0hpf", [
        (14, "truncated ethernet header"), (34, "truncated ipv4 header"),
        (46, "ipv4 total length beyond frame")]),
    "vlan-ipv4-tcp": (lambda: host_syn(vlans=(5,)), "pf0hpf", [
        (14, "truncated ethernet header"), (18, "truncated vlan header"), (38, "truncated ipv4 header"),
        (58, "ipv4 total length beyond frame")]),
    "qinq-ipv4-tcp": (lambda: host_syn(vlans=((0x88A8, 7), 5)), "pf0hpf", [
        (14, "truncated ethernet header"), (18, "truncated vlan header"), (22, "truncated vlan header"),
        (42, "truncated ipv4 header"), (62, "ipv4 total length beyond frame")]),
    "ipv6-tcp": (lambda: host_v6_syn(), "pf0hpf", [
        (14, "truncated ethernet header"), (54, "truncated ipv6 header"),
        (74, "ipv6 payload length beyond frame")]),
    "arp": (lambda: build.arp(1, HOST_MAC, "2.2.2.1", "00:00:00:00:00:00", "1.1.1.2"), "pf0hpf", [
        (14, "truncated ethernet header"), (42, "truncated arp header")]),
}


@pytest.mark.parametrize("name", sorted(TRUNCATION_CASES))
def test_truncated_at_every_offset(g: Guard, name: str) -> None:
    make, port, layers = TRUNCATION_CASES[name]
    frame = make()
    for n in range(len(frame)):
        reason = g.drop_reason(port, frame[:n])
        want = _reasons(layers, n)
        if want is None:
            # Only Ethernet padding was cut: the frame is whole.
            assert reason is None or not reason.startswith("malformed"), (n, reason)
        else:
            assert reason == "malformed: " + want, (n, reason)
    g.alive()


def test_truncation_rx_dropped_counts(g: Guard) -> None:
    port = g.lab.br.ports["pf0hpf"]
    before = port.rx_dropped
    frame = host_syn()
    for n in range(54):
        g.send("pf0hpf", frame[:n])
    assert port.rx_dropped == before + 54
    g.alive()


def test_ihl(g: Guard) -> None:
    frame = host_syn()  # IHL 5, total length 40, frame 60 bytes
    for ihl in range(16):
        reason = g.drop_reason("pf0hpf", with_ihl(frame, ihl))
        if ihl < 5:
            want = "malformed: bad ihl"
        elif ihl == 5:
            want = None
        elif 14 + ihl * 4 > len(frame):
            want = "malformed: truncated ipv4 header"
        elif ihl * 4 > 40:
            want = "malformed: bad ipv4 total length"
        else:  # options eat the TCP header: fewer than 20 bytes are left for it
            want = "malformed: truncated tcp header"
        assert reason == want, (ihl, reason)
    g.alive()


def test_total_length(g: Guard) -> None:
    frame = host_syn()  # 60 bytes: 46 bytes of IPv4 fit (padding included)
    for tot in list(range(0, 60)) + [1500, 65535]:
        reason = g.drop_reason("pf0hpf", with_total_length(frame, tot))
        if tot < 20:
            want = "malformed: bad ipv4 total length"
        elif tot < 40:
            want = "malformed: truncated tcp header"
        elif tot <= 46:
            want = None
        else:
            want = "malformed: ipv4 total length beyond frame"
        assert reason == want, (tot, reason)
    g.alive()


def test_tcp_data_offset(g: Guard) -> None:
    # 20 bytes of payload: data offsets 5..10 fit in the segment, 11..15 do not.
    frame = build.ipv4_tcp("2.2.2.1", "1.1.1.2", 1234, 80, "S", 1, 0, bytes(20), src_mac=HOST_MAC,
                           dst_mac=REMOTE_MAC)
    for doff in range(16):
        reason = g.drop_reason("pf0hpf", with_tcp_doff(frame, doff))
        want = None if 5 <= doff <= 10 else "malformed: bad tcp data offset"
        assert reason == want, (doff, reason)
    g.alive()


def _new_ok(flags: int) -> bool:
    """Kernel: valid flag combination and a class that can open a connection (SYN, or ACK when loose)."""
    core = flags & (TCP_FIN | TCP_SYN | TCP_RST | TCP_ACK | TCP_URG)
    return core in (TCP_SYN, TCP_SYN | TCP_URG, TCP_ACK, TCP_ACK | TCP_URG)


def test_all_512_tcp_flags_on_new_connections(g: Guard) -> None:
    tracked = len(g.tracker)
    forwarded = 0
    for flags in range(512):
        inv = g.tracker.stats["invalid"]
        f = build.ipv4_tcp("2.2.2.1", "1.1.1.2", 10000 + flags, 80, flags, 1, 1, src_mac=HOST_MAC,
                           dst_mac=REMOTE_MAC)
        out = g.send("pf0hpf", f)
        if _new_ok(flags):
            assert len(out) == 1 and codec.parse(out[0][1]).nw_src == NAT_IP, flags
            forwarded += 1
        else:
            assert out == [], flags
            assert g.tracker.stats["invalid"] == inv + 1, flags
    assert forwarded == 64  # 4 opening combinations x 16 of PSH/ECE/CWR/NS
    assert len(g.tracker) == tracked + 64
    assert g.dp.drops["no matching flow in table 1"] == 512 - 64
    g.alive()


@pytest.mark.parametrize("hw", [True, False])
def test_all_512_tcp_flags_on_established_connections(hw: bool) -> None:
    g = Guard(hw_offload=hw)
    lab = g.lab
    outcomes = {"fast": 0, "slow_fwd": 0, "invalid": 0, "dropped_other": 0}
    for flags in range(512):
        sport = 20000 + flags
        seq, ack = lab.handshake(sport=sport, dport=5001)
        conn = next(c for c in g.tracker.iter_conns() if c.orig[2] == sport)
        assert conn.status & (1 << 2)  # IPS_ASSURED
        assert (conn.offload is not None) is hw
        fast = g.dp.stats["fast_hw"] + g.dp.stats["fast_sw"]
        inv = g.tracker.stats["invalid"]
        out = g.send("pf0hpf", lab.host_tcp(flags, sport, 5001, seq=seq, ack=ack))
        took_fast = g.dp.stats["fast_hw"] + g.dp.stats["fast_sw"] == fast + 1
        closing = flags & (TCP_FIN | TCP_RST)
        if hw and not closing:
            # The offloaded rule matches any segment without FIN/RST (the tcp_flags mask of
            # nf_flow_table_offload.c and mlx5's CT rules), a SYN included: conntrack never sees it.
            assert took_fast and len(out) == 1, flags
            assert codec.parse(out[0][1]).nw_src == NAT_IP
            outcomes["fast"] += 1
            continue
        assert not took_fast, flags
        if flags & (TCP_FIN | TCP_RST):
            assert conn.offload is None, flags  # the flowtable tore it down first
        if not cttcp.flags_valid(flags):
            assert out == [] and g.tracker.stats["invalid"] == inv + 1, flags
            outcomes["invalid"] += 1
        elif out:
            assert codec.parse(out[0][1]).nw_src == NAT_IP, flags
            outcomes["slow_fwd"] += 1
        else:
            outcomes["dropped_other"] += 1
    # 9 valid core combinations (FIN SYN RST ACK URG) x 16 (PSH ECE CWR NS ignored) = 144 valid.
    # With offload, the 128 sets without FIN/RST take the fast path; of the 384 others, 4 x 16
    # (RST, RST+ACK, FIN+ACK, FIN+ACK+URG) are valid.
    if hw:
        assert outcomes["fast"] == 128
        assert outcomes["invalid"] == 384 - 64
        assert outcomes["slow_fwd"] + outcomes["dropped_other"] == 64
    else:
        assert outcomes["fast"] == 0
        assert outcomes["invalid"] == 512 - 144
        assert outcomes["slow_fwd"] + outcomes["dropped_other"] == 144
    g.alive()


def test_rst_and_fin_on_established_follow_the_state_machine(g: Guard) -> None:
    lab = g.lab
    seq, ack = lab.handshake(sport=30001)
    out = g.send("pf0hpf", lab.host_tcp("FA", 30001, seq=seq, ack=ack))
    assert len(out) == 1
    conn = next(c for c in g.tracker.iter_conns() if c.orig[2] == 30001)
    assert cttcp.STATE_NAMES[conn.state] == "FIN_WAIT"
    seq, ack = lab.handshake(sport=30002)
    out = g.send("pf0hpf", lab.host_tcp("RA", 30002, seq=seq, ack=ack))
    assert len(out) == 1
    conn = next(c for c in g.tracker.iter_conns() if c.orig[2] == 30002)
    assert cttcp.STATE_NAMES[conn.state] == "CLOSE"
    g.alive()


# --- ICMP errors ------------------------------------------------------------------------------

def _quoted_packet(g: Guard) -> bytes:
    """What the remote received from the protected connection (after SNAT), as an Ethernet frame."""
    return build.ipv4_tcp("1.1.1.16", "1.1.1.2", 40000, 5001, "PA", g.seq, g.ack, src_mac=REMOTE_MAC,
                          dst_mac=HOST_MAC)


def _icmp_err(quote: bytes) -> bytes:
    msg = build.icmp_error(3, 4, quote, extra=1400)
    return build.eth(HOST_MAC, REMOTE_MAC, 0x0800, build.ipv4("1.1.1.2", "1.1.1.16", 1, msg))


def test_icmp_error_related_is_natted_back(g: Guard) -> None:
    f = build.ipv4_icmp_error("1.1.1.2", "1.1.1.16", 3, 4, _quoted_packet(g), extra=1400,
                              src_mac=REMOTE_MAC, dst_mac=HOST_MAC)
    out = g.send("p0", f)
    assert len(out) == 1 and out[0][0] == "pf0hpf"
    p = codec.parse(out[0][1])
    assert p.nw_dst == 0x02020201
    assert (p.inner.nw_src, p.inner.tp_src) == (0x02020201, 40000)
    g.alive()


def test_icmp_errors_quoting_truncated_or_unrelated_packets(g: Guard) -> None:
    ip = _quoted_packet(g)[14:54]
    bad_version = bytes([0x60]) + ip[1:]
    short_ihl = bytes([0x44]) + ip[1:]
    unrelated = build.ipv4_tcp("1.1.1.16", "1.1.1.2", 40999, 5001, "A", 1, 1)[14:54]
    nested = build.icmp_error(3, 1, ip[:28])
    nested_ip = build.ipv4("1.1.1.16", "1.1.1.2", 1, nested)
    quotes = {
        "empty": b"",
        "ip header cut to 10 bytes": ip[:10],
        "ip header only": ip[:20],
        "ip header + 4 bytes": ip[:24],
        "quoted version 6": bad_version[:28],
        "quoted ihl 4": short_ihl[:28],
        "quoted ihl 15": bytes([0x4F]) + ip[1:28],
        "unrelated connection": unrelated[:28],
        "error quoting an error": nested_ip[:28 + 8],
        "quoted original direction from the wrong side": build.ipv4_tcp("2.2.2.1", "1.1.1.2", 40000, 5001,
                                                                          "A", 1, 1)[14:42],
    }
    for name, q in quotes.items():
        inv = g.tracker.stats["invalid"] + g.tracker.stats["error"]
        out = g.send("p0", _icmp_err(q))
        assert out == [], name
        assert g.tracker.stats["invalid"] + g.tracker.stats["error"] == inv + 1, name
    g.alive()


def test_icmpv6_errors_quoting_truncated_packets(g: Guard) -> None:
    g.send("pf0hpf", host_v6_syn(555))
    quoted = build.ipv6_tcp(H6, R6, 555, 80, "S", 1)
    related = build.ipv6_icmp_error(R6, H6, 1, 4, quoted, src_mac=REMOTE_MAC, dst_mac=HOST_MAC)
    assert len(g.send("p0", related)) == 1
    for cut in (0, 8, 39, 40, 47):
        f = build.eth(HOST_MAC, REMOTE_MAC, 0x86DD,
                      build.ipv6(R6, H6, 58, build.icmp6_error(R6, H6, 1, 4, quoted[14:14 + cut])))
        assert g.send("p0", f) == [], cut
    g.alive()


# --- fragments ----------------------------------------------------------------------------------

def test_ipv4_fragments(g: Guard) -> None:
    seg = build.udp("2.2.2.1", "1.1.1.2", 1000, 53, bytes(64), v6=False)
    tcpseg = build.tcp("2.2.2.1", "1.1.1.2", 1000, 80, "S", 1, v6=False)
    before = len(g.tracker)
    inv = g.tracker.stats["invalid"]
    reasm = g.tracker.defrag.stats
    g.sw.params.set("sysctl:net.ipv4.ipfrag_time", 5)  # shorter than the protected connection's offload aging
    # ct() reassembles: a first fragment waits for the rest (nothing out, not a drop, not tracked)...
    assert g.queued("pf0hpf", v4_fragment(17, seg[:32], 0, True))
    assert len(g.tracker) == before
    # ... and the last one completes the datagram: tracked once, SNATed, cut as it came.
    out = g.send("pf0hpf", v4_fragment(17, seg[32:], 32, False))
    assert [(len(f), codec.parse(f).nw_src, codec.parse(f).nw_frag) for _, f in out] == [
        (14 + 20 + 32, NAT_IP, 1), (14 + 20 + 40, NAT_IP, 3)]
    assert len(g.tracker) == before + 1
    # Later fragments without their first are kept (never a port-0 connection, never +inv).
    for off, more in ((32, True), (64, False)):
        assert g.queued("pf0hpf", v4_fragment(17, seg[off % 72:off % 72 + 8], off, more, ident=8))
    assert g.tracker.stats["invalid"] == inv and len(g.tracker) == before + 1
    assert all(c.orig[2] != 0 for c in g.tracker.iter_conns())
    # Overlapping data discards the whole queue (Linux since 4.19): one drop.
    assert g.drop_reason("pf0hpf", v4_fragment(17, bytes(16), 56, True, ident=8)) == \
        "ip fragment dropped by reassembly"
    assert reasm["ReasmOverlaps"] == 1
    # A fragment that would end past 65535 bytes: kept until the hole is filled, which cannot be.
    assert g.queued("pf0hpf", v4_fragment(17, bytes(16), 0x1FF8 * 8, False, ident=9))
    # A first TCP fragment too short for the TCP header (tiny-fragment attack) is malformed.
    assert g.drop_reason("pf0hpf", v4_fragment(6, tcpseg[:8], 0, True)) == "malformed: truncated tcp header"
    # Later TCP and ICMP fragments wait for their datagrams too.
    assert g.queued("pf0hpf", v4_fragment(6, tcpseg[8:], 8, False))
    assert g.queued("pf0hpf", v4_fragment(1, bytes(16), 8, False))
    assert len(g.tracker.defrag) == 3
    # ipfrag_time later every incomplete datagram is gone.
    g.lab.at(g.lab.t + 5_000)
    g.sw.datapath.tick(g.lab.t)
    assert len(g.tracker.defrag) == 0 and reasm["ReasmTimeout"] == 3
    g.alive()


def test_ipv6_fragments_and_extension_chains(g: Guard) -> None:
    tcpseg = build.tcp(H6, R6, 2000, 80, "S", 1, payload=b"x" * 36)  # 56 bytes: 40 + 16
    before = len(g.tracker)
    inv = g.tracker.stats["invalid"]
    # hop-by-hop -> routing -> destination options -> first fragment -> TCP: parsed to the end,
    # and kept by ct() until the datagram is whole.
    exts = v6_ext(43) + v6_ext(60, 1) + v6_ext(44)
    first = v6_frame(0, exts + v6_frag_header(6, 0, True) + tcpseg[:40])
    p = codec.parse(first)
    assert (p.drop, p.nw_proto, p.tp_src, p.nw_frag) == (None, 6, 2000, 1)
    assert g.queued("pf0hpf", first)
    # The last fragment completes it: tracked once, forwarded cut as it came (whole, it would
    # not fit in the largest fragment received).
    out = g.send("pf0hpf", v6_frame(0, exts + v6_frag_header(6, 40, False) + tcpseg[40:]))
    assert [len(f) for _, f in out] == [len(first), len(first) - 24]
    assert [codec.parse(f).nw_frag for _, f in out] == [1, 3]
    assert len(g.tracker) == before + 1
    # A non-last IPv6 fragment whose length is not a multiple of 8 is dropped (RFC 8200),
    # and a later fragment without its first waits for it.
    assert g.drop_reason("pf0hpf", v6_frame(44, v6_frag_header(6, 0, True, ident=8) + tcpseg[:20])) == \
        "ip fragment dropped by reassembly"
    assert g.queued("pf0hpf", v6_frame(44, v6_frag_header(6, 16, False, ident=9) + bytes(16)))
    assert g.tracker.stats["invalid"] == inv
    # 200 hop-by-hop headers in a row, then TCP: parsed to the end, tracked.
    long_chain = b"".join(v6_ext(0) for _ in range(199)) + v6_ext(6) + build.tcp(H6, R6, 2001, 80, "S", 1)
    assert len(g.send("pf0hpf", v6_frame(0, long_chain))) == 1
    # Chain cut inside a header, or a header longer than the payload.
    assert g.drop_reason("pf0hpf", v6_frame(0, v6_ext(60)[:6])) == "malformed: truncated ipv6 extension header"
    assert g.drop_reason("pf0hpf", v6_frame(0, bytes((6, 200)) + bytes(14))) == \
        "malformed: truncated ipv6 extension header"
    # No next header (59) and an unknown protocol: generic connections, tracked.
    assert len(g.send("pf0hpf", v6_frame(59, b""))) == 1
    assert len(g.send("pf0hpf", v6_frame(0, v6_ext(253) + bytes(8)))) == 1
    g.alive()


def test_vlan_stacks(g: Guard) -> None:
    base = host_syn(3000)
    # One tag, QinQ, and a 300-deep stack: parsed, tracked, SNATed; the tags stay on the frame.
    for i, tags in enumerate(([(0x8100, 10)], [(0x88A8, 20), (0x8100, 10)], [(0x8100, 7)] * 300)):
        f = vlan_stack(host_syn(3000 + i), tags)
        p = codec.parse(f)
        assert len(p.vlans) == len(tags) and p.tp_src == 3000 + i
        out = g.send("pf0hpf", f)
        assert len(out) == 1
        q = codec.parse(out[0][1])
        assert (q.nw_src, len(q.vlans)) == (NAT_IP, len(tags))
    # A stack that ends where the frame ends.
    assert g.drop_reason("pf0hpf", base[:12] + b"\x81\x00\x00\x05" * 10) == "malformed: truncated vlan header"
    assert g.drop_reason("pf0hpf", base[:12] + b"\x81\x00\x00\x05" * 10 + b"\x81\x00") == \
        "malformed: truncated vlan header"
    g.alive()
