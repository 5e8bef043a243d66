"""Listings compared with the real kernel sample and the OVS dumps; the conntrack CLI."""

from __future__ import annotations

from pathlib import Path

from scapy.layers.inet import IP, TCP, UDP

from ctswitch.conntrack import render
from ctswitch.conntrack.tracker import Tracker
from ctswitch.control.conntrack_tool import proc_nf_conntrack, run
from ctswitch.flow import key as K
from ctswitch.flow.actions import Ct, Nat, SetField
from ctswitch.params import NF, Params

from .pkt import ip4, pk

SAMPLE = Path("/work/shared/oracle/kernel/sample")
A, B, N = "2.2.2.1", "1.1.1.2", "1.1.1.16"
SNAT = Nat(kind="src", addr_min=ip4(N), addr_max=ip4(N))


class Sw:
    def __init__(self) -> None:
        self.params = Params()
        self.params.set("sysctl:" + NF + "nf_conntrack_acct", 0)  # as on the sample host
        self.tracker = Tracker(self.params)
        self.now = 0


def send(sw, sp, now, commit=False, zone=0, mark=0):
    p, key = pk(sp)
    v = sw.tracker.process(p, key, zone, Ct(table=1, nat=Nat()), now)
    if v.nat_src:
        key[K.NW_SRC], key[K.TP_SRC] = v.nat_src
    if v.nat_dst:
        key[K.NW_DST], key[K.TP_DST] = v.nat_dst
    if commit and v.state & K.CS_NEW:
        ex = (SetField("ct_mark", mark),) if mark else ()
        sw.tracker.process(p, key, zone, Ct(commit=True, nat=SNAT, exec=ex), now)
    return v


def sample_switch() -> Sw:
    """Rebuilds the sample's UDP/53, UDP zone 7 and TCP/443 (mark 42) entries."""
    sw = Sw()
    send(sw, IP(src=A, dst=B) / UDP(sport=50000, dport=53) / b"q", 0, True)
    send(sw, IP(src=B, dst=N) / UDP(sport=53, dport=50000) / b"r", 100)
    send(sw, IP(src=A, dst=B) / TCP(sport=40003, dport=443, flags="S", seq=1, window=500), 200, True, mark=42)
    send(sw, IP(src=B, dst=N) / TCP(sport=443, dport=40003, flags="SA", seq=9, ack=2, window=500), 201)
    send(sw, IP(src=A, dst=B) / TCP(sport=40003, dport=443, flags="A", seq=2, ack=10, window=500), 202, True)
    send(sw, IP(src=A, dst=B) / UDP(sport=50001, dport=5353) / b"z", 300, True, zone=7)
    send(sw, IP(src=B, dst=N) / UDP(sport=5353, dport=50001) / b"z", 310, zone=7)
    sw.now = 3100
    return sw


def sample_lines(name: str) -> dict[str, str]:
    return {line.split(" src=")[1].split()[2] + line.split(" dport=")[1].split()[0]: line
            for line in (SAMPLE / name).read_text().splitlines()}


def test_conntrack_L_matches_kernel_sample():
    sw = sample_switch()
    res = run(sw, ["-L"])
    want = (SAMPLE / "conntrack-L.txt").read_text().splitlines()
    got = res.out.splitlines()
    assert got[0] == want[0]  # udp 50000 -> 53, replied, 27 s left
    assert got[1] == want[3]  # tcp 443 ESTABLISHED [ASSURED] mark=42, 431997 s left
    assert got[2] == want[5]  # zone 7
    assert res.err == "conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.\n"
    assert res.err.replace("3", "9") == (SAMPLE / "conntrack-L.stderr").read_text()


def test_extended_proc_zone_and_src_nat_listings():
    sw = sample_switch()
    ext = (SAMPLE / "conntrack-L-extended.txt").read_text().splitlines()
    assert run(sw, ["-L", "-o", "extended"]).out.splitlines()[:2] == [ext[0], ext[3]]
    proc = (SAMPLE / "proc-nf_conntrack.txt").read_text().splitlines()
    assert proc_nf_conntrack(sw).splitlines() == [proc[0], proc[3], proc[5]]
    assert run(sw, ["-L", "-w", "7"]).out == (SAMPLE / "conntrack-L-zone7.txt").read_text()
    assert run(sw, ["-L", "--src-nat"]).out.count("\n") == 3
    assert run(sw, ["-L", "-p", "tcp", "--dport", "443"]).out.splitlines() == [ext[3][len("ipv4     2 "):]]
    assert run(sw, ["-L", "-m", "42"]).out.count("\n") == 1
    assert run(sw, ["-L", "-u", "ASSURED"]).out.count("\n") == 1
    assert run(sw, ["-L", "-o", "id"]).out.splitlines()[0].endswith("mark=0 use=1 id=1")


def test_stats_count_flush_delete_and_errors():
    sw = sample_switch()
    assert run(sw, ["-C"]).out == "3\n"
    assert run(sw, ["-S"]).out == (
        "cpu=0   \tfound=0 invalid=0 insert=0 insert_failed=0 drop=0 early_drop=0 error=0 "
        "search_restart=0 clash_resolve=0 chaintoolong=0 \n")
    d = run(sw, ["-D", "-p", "udp", "--orig-dst", B, "--dport", "53"])
    assert d.code == 0 and d.out.startswith("udp      17 27 src=2.2.2.1")
    assert d.err == "conntrack v1.4.7 (conntrack-tools): 1 flow entries have been deleted.\n"
    d = run(sw, ["-D", "-p", "udp", "--dport", "53"])
    assert d.code == 1 and d.err.endswith("0 flow entries have been deleted.\n")
    g = run(sw, ["-G", "-s", A, "-d", B, "-p", "tcp", "--sport", "40003", "--dport", "443"])
    assert g.out.startswith("tcp      6 431997 ESTABLISHED")
    bad = run(sw, ["-L", "--bogus"])
    assert bad.code == 2 and bad.err == ("conntrack v1.4.7 (conntrack-tools): unknown option `--bogus'\n"
                                         "Try `conntrack -h' or 'conntrack --help' for more information.\n")
    assert run(sw, ["-L", "-s", "1.2.3"]).err.startswith(
        "conntrack v1.4.7 (conntrack-tools): Invalid IP address `1.2.3'.")
    f = run(sw, ["-F"])
    assert f.err == "conntrack v1.4.7 (conntrack-tools): connection tracking table has been emptied.\n"
    assert run(sw, ["-C"]).out == "0\n"


def test_events_match_kernel_sample_format():
    sw = Sw()
    sw.tracker.events_enabled = True
    send(sw, IP(src=A, dst=B) / UDP(sport=50000, dport=53) / b"q", 0, True)
    send(sw, IP(src=B, dst=N) / UDP(sport=53, dport=50000) / b"r", 0)
    send(sw, IP(src=A, dst=B) / TCP(sport=40009, dport=81, flags="S", seq=1), 0, True)
    send(sw, IP(src=B, dst=N) / TCP(sport=81, dport=40009, flags="RA", seq=0, ack=2), 0)
    ev = [line.split("\t", 1)[1] for line in (SAMPLE / "conntrack-events.txt").read_text().splitlines()]
    got = run(sw, ["-E"]).out.splitlines()
    assert got[0] == ev[14] and got[1] == ev[15]
    assert got[2] == ev[20] and got[3] == ev[21]


def test_dpctl_dump_matches_ovs_plain_format_and_stats_show():
    sw = sample_switch()
    conns = list(sw.tracker.iter_conns())
    assert render.dpctl_line(conns[1]) == (
        "tcp,orig=(src=2.2.2.1,dst=1.1.1.2,sport=40003,dport=443),"
        "reply=(src=1.1.1.2,dst=1.1.1.16,sport=443,dport=40003),mark=42,protoinfo=(state=ESTABLISHED)")
    assert render.dpctl_line(conns[2], verbose=True) == (
        "udp,orig=(src=2.2.2.1,dst=1.1.1.2,sport=50001,dport=5353),"
        "reply=(src=1.1.1.2,dst=1.1.1.16,sport=5353,dport=50001),id=3,zone=7,"
        "status=SEEN_REPLY|CONFIRMED|SRC_NAT|SRC_NAT_DONE")
    assert render.ct_stats_show(conns, verbose=True) == (
        "Connections Stats:\n    Total: 3\n  TCP: 1\n    Conn per TCP states:\n"
        "\t  [ESTABLISHED]=1\n  UDP: 2\n")


def test_get_is_an_exact_lookup_and_zero_refuses_filters():
    sw = sample_switch()
    ok = run(sw, ["-G", "-s", A, "-d", B, "-p", "udp", "--sport", "50001", "--dport", "5353", "-w", "7"])
    assert ok.code == 0 and ok.out.startswith("udp      17 ")
    # The same tuple in zone 0 (no -w), and a tuple without its ports: no such entry.
    for argv in (["-G", "-s", A, "-d", B, "-p", "udp", "--sport", "50001", "--dport", "5353"],
                 ["-G", "-s", A, "-d", B, "-p", "udp"]):
        r = run(sw, argv)
        assert (r.code, r.out, r.err) == (
            1, "", "conntrack v1.4.7 (conntrack-tools): Operation failed: such conntrack doesn't exist\n")
    # The reply tuple finds the entry too (the kernel hashes both directions).
    assert run(sw, ["-G", "-s", B, "-d", N, "-p", "udp", "--sport", "53", "--dport", "50000"]).code == 0
    r = run(sw, ["-L", "-p", "tcp", "-z"])
    assert (r.code, r.err) == (2, "conntrack v1.4.7 (conntrack-tools): Can't use -z with filtering parameters\n"
                                  "Try `conntrack -h' or 'conntrack --help' for more information.\n")
    # ICMP options exist only once -p icmp named the protocol.
    r = run(sw, ["-L", "--icmp-id", "1"])
    assert (r.code, r.err.splitlines()[0]) == (2, "conntrack v1.4.7 (conntrack-tools): unknown option `--icmp-id'")
    assert run(sw, ["-L", "-p", "icmp", "--icmp-id", "1"]).code == 0
