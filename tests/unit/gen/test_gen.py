"""gen: frames valid (scapy checksums), sequences as the options say, perf shape equal to the oracle's."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections import Counter

import pytest

from ctswitch.gen import Scenario, cli_main, events, generate_perf, parse_range, write
from ctswitch.io.pcap import read_all
from ctswitch.packet import codec
from ctswitch.packet.summary import flags_str

_spec = importlib.util.spec_from_file_location(
    "scapy_check", os.path.join(os.path.dirname(__file__), "..", "packet", "scapy_check.py"))
_sc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_sc)

HOST, REMOTE, SNAT = 0x02020201, 0x01010102, 0x01010110
ORACLE = "/work/shared/oracle/gen_perf_pcap.py"


def _merged(d) -> list[tuple[int, str, object]]:
    out = []
    for port in ("pf0hpf", "p0"):
        out += [(t, port, codec.parse(f)) for t, f in read_all(os.path.join(d, f"{port}.pcap"))]
    out.sort(key=lambda x: x[0])
    return out


def test_vendor2_preset(tmp_path, capsys):
    assert cli_main([str(tmp_path), "--preset", "vendor2"]) == 0
    assert capsys.readouterr().out == f"{tmp_path}/pf0hpf.pcap: 62 packets\n{tmp_path}/p0.pcap: 50 packets\n"
    pkts = _merged(tmp_path)
    assert len({t for t, _, _ in pkts}) == len(pkts)  # timestamps are a strict global order
    assert [p.arp_op for _, _, p in pkts[:2]] == [1, 2]
    for _t, port, p in pkts:
        assert p.drop is None
        if p.ip_ver:
            assert _sc.bad_checksums(p.frame) == []
            if port == "p0":
                assert (p.nw_src, p.nw_dst, p.dl_src) == (REMOTE, SNAT, 0x020000000102)
            else:
                assert (p.nw_src, p.nw_dst, p.dl_src) == (HOST, REMOTE, 0x020000000201)
    tcp = [p for _, _, p in pkts if p.nw_proto == 6]
    assert Counter(p.tp_dst for p in tcp if p.nw_src == HOST) == {5001: 4 * (2 + 8 + 1 + 2)}  # SYN, ACK, data, ACK, FIN, ACK
    one = [(flags_str(p.tcp_flags), p.payload_len) for p in tcp if 40001 in (p.tp_src, p.tp_dst)]
    assert one == [("S", 0), ("SA", 0), ("A", 0)] + [("PA", 1460)] * 16 + [("A", 0), ("FA", 0), ("FA", 0), ("A", 0)]
    roce = [(p.nw_src, p.tp_src, p.tp_dst) for _, _, p in pkts if p.tp_dst == 4791]
    assert roce == [(HOST, 49152, 4791), (REMOTE, 49153, 4791)] * 2
    icmp = [(p.tp_src, p.icmp_id, p.icmp_seq) for _, _, p in pkts if p.nw_proto == 1]
    assert icmp == [(8, 7, 1), (0, 7, 1), (8, 7, 2), (0, 7, 2), (8, 7, 3), (0, 7, 3)]


def test_vendor1_replies_to_source(tmp_path):
    assert cli_main([str(tmp_path), "--preset", "vendor1", "--tcp", "1", "--data", "0"]) == 0
    back = {p.nw_dst for t, port, p in _merged(tmp_path) if port == "p0" and p.ip_ver}
    assert back == {HOST}


def test_tcp_sequence_numbers_and_rst_close():
    sc = Scenario(tcp=2, data=2, size=100, close="rst", src=parse_range("2.2.2.1-2.2.2.2"), arp=False)
    pkts = [codec.parse(f) for _, _, f in events(sc)]
    c = [p for p in pkts if p.tp_src == 40002 or p.tp_dst == 40002]
    assert [flags_str(p.tcp_flags) for p in c] == ["S", "SA", "A", "PA", "PA", "PA", "PA", "A", "RA"]
    assert c[0].nw_src == parse_and_int("2.2.2.2")
    syn, synack, ack = c[0], c[1], c[2]
    assert (synack.tcp_ack, ack.tcp_seq, ack.tcp_ack) == (syn.tcp_seq + 1, syn.tcp_seq + 1, synack.tcp_seq + 1)
    assert (syn.tcp_wscale, syn.tcp_sack_perm) == (7, True)
    assert c[4].tcp_ack == c[3].tcp_seq + 46 and c[5].tcp_seq == c[3].tcp_seq + 46
    assert c[-1].tcp_seq == c[5].tcp_seq + 46 and c[-1].tcp_ack == c[6].tcp_seq + 46
    for p in pkts:
        assert _sc.bad_checksums(p.frame) == []


def parse_and_int(a: str) -> int:
    return int.from_bytes(bytes(int(x) for x in a.split(".")), "big")


def test_open_close_udp_oneway_and_timing():
    sc = Scenario(tcp=3, data=0, close="open", udp=1, udp_requests=3, oneway=2, oneway_packets=4, arp=False,
                  rate=100, gap_ns=1000)
    ev = list(events(sc))
    pkts = [codec.parse(f) for _, _, f in ev]
    assert Counter(flags_str(p.tcp_flags) for p in pkts if p.nw_proto == 6) == {"S": 3, "SA": 3, "A": 3}
    assert [(port, p.tp_dst) for (_, port, _), p in zip(ev, pkts) if p.nw_proto == 17 and p.tp_dst in (53, 50000)] == \
        [("pf0hpf", 53), ("p0", 50000)] * 3
    assert Counter(p.tp_src for p in pkts if p.tp_dst == 9999) == {51000: 4, 51001: 4}
    # rate 100/s: flow f starts f * 10 ms after the first.
    starts = {}
    for (t, _, _), p in zip(ev, pkts):
        key = (p.nw_proto, p.tp_src if p.nw_src == HOST else p.tp_dst)
        starts.setdefault(key, t)
    assert sorted(starts.values())[:3] == [ev[0][0], ev[0][0] + 10**7, ev[0][0] + 2 * 10**7]
    seq = Scenario(tcp=2, data=0, close="fin", interleave=False, arp=False, gap_ns=5000)
    ts = [t for t, _, _ in events(seq)]
    assert ts == [seq.start_ns + 5000 * i for i in range(12)]


def test_cli_errors(tmp_path, capsys):
    assert cli_main([str(tmp_path), "--size", "20", "--tcp", "1"]) == 2
    assert capsys.readouterr().err == "ctswitch gen: --size must be 60..9018 (Ethernet frame bytes without FCS)\n"
    assert cli_main([str(tmp_path), "--src", "2.2.2.9-2.2.2.1", "--tcp", "1"]) == 2
    assert capsys.readouterr().err == "ctswitch gen: empty address range '2.2.2.9-2.2.2.1'\n"
    assert cli_main([str(tmp_path), "--no-arp"]) == 2
    assert "nothing to generate" in capsys.readouterr().err
    assert cli_main([str(tmp_path), "--perf", "--size", "2000"]) == 2
    assert capsys.readouterr().err == "ctswitch gen: --size must be 55..1514\n"


def test_perf_counts_and_shape(tmp_path):
    meta = generate_perf(str(tmp_path), packets=2000, conns=100, size=64, snat="1.1.1.16", lag=1024)
    # 20 packets per conn -> 7 pairs -> 19: host SYN + 7 data + FIN + ACK, remote SYN-ACK + 7 ACKs + FIN.
    assert meta["per_port"] == {"pf0hpf": 1 + 100 * 10, "p0": 1024 + 1 + 100 * 9}
    p0 = read_all(tmp_path / "p0.pcap")
    assert all(f[12:14] == b"\x88\xb5" for _, f in p0[:1024])
    host = [codec.parse(f) for _, f in read_all(tmp_path / "pf0hpf.pcap")]
    c0 = [p for p in host if p.tp_src == 10000]
    assert [flags_str(p.tcp_flags) for p in c0] == ["S"] + ["PA"] * 7 + ["FA", "A"]
    assert {len(p.frame) for p in c0} == {60, 64}
    remote = [codec.parse(f) for _, f in p0[1025:]]
    assert {p.nw_dst for p in remote} == {SNAT}
    for p in host[1:50] + host[-50:] + remote[:50] + remote[-50:]:
        assert _sc.bad_checksums(p.frame) == []
    ts = [t for t, _ in p0] + [t for t, _ in read_all(tmp_path / "pf0hpf.pcap")]
    assert len(set(ts)) == len(ts)


@pytest.mark.skipif(not os.path.exists(ORACLE), reason="oracle generator not available")
@pytest.mark.parametrize("args", [("3000", "50", "64", []), ("4000", "60001", "1514", ["--no-nat"])])
def test_perf_byte_identical_to_oracle(tmp_path, args):
    packets, conns, size, extra = args
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    generate_perf(str(ours), int(packets), int(conns), int(size), snat=None if extra else "1.1.1.16", lag=25)
    subprocess.run([sys.executable, ORACLE, "--packets", packets, "--conns", conns, "--size", size, "--lag", "25",
                    "--out", str(theirs), *extra], check=True, capture_output=True)
    for port in ("pf0hpf", "p0"):
        assert (ours / f"{port}.pcap").read_bytes() == (theirs / f"{port}.pcap").read_bytes()


def test_write_library_api(tmp_path):
    counts = write(Scenario(icmp=2, icmp_count=1, arp=False, nanosecond=True), str(tmp_path))
    assert counts == {"pf0hpf": 2, "p0": 2}
    ids = sorted(codec.parse(f).icmp_id for _, f in read_all(tmp_path / "p0.pcap"))
    assert ids == [7, 8]
