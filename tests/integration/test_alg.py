"""ct(alg=ftp|tftp): the helpers' expectations make the data connection +rel instead of +new
(nf_conntrack_ftp / nf_conntrack_tftp with loose=0, as ct() attaches them in OVS)."""

from __future__ import annotations

from pipeline import HOST_MAC, REMOTE_MAC, Lab

from ctswitch.conntrack.conn import IPS_EXPECTED
from ctswitch.control import offload_tool
from ctswitch.packet import build

FLOWS = [
    "table=0,arp,action=normal",
    "table=0,ip,ct_state=-trk,action=ct(table=1)",
    "table=1,in_port=pf0hpf,tcp,tp_dst=21,ct_state=+trk+new,action=ct(commit,alg=ftp),normal",
    "table=1,in_port=pf0hpf,udp,tp_dst=69,ct_state=+trk+new,action=ct(commit,alg=tftp),normal",
    "table=1,ip,ct_state=+trk+rel,action=ct(commit),normal",
    "table=1,ip,ct_state=+trk+est,action=normal",
]


def c2s(lab, flags, sport, dport, payload=b"", seq=0, ack=0):
    return lab.send("pf0hpf", lab.host_tcp(flags, sport, dport, payload, seq, ack))


def s2c(lab, flags, sport, dport, payload=b"", seq=0, ack=0):
    return lab.send("p0", lab.remote_tcp(flags, dport, sport, payload, seq, ack, dst="2.2.2.1"))


def control(lab, sport=40000):
    """The FTP control connection's handshake; returns the next (client seq, server seq)."""
    assert len(c2s(lab, "S", sport, 21, seq=100)) == 1
    assert len(s2c(lab, "SA", 21, sport, seq=500, ack=101)) == 1
    assert len(c2s(lab, "A", sport, 21, seq=101, ack=501)) == 1
    return 101, 501


def conn_to(lab, dport):
    (c,) = [c for c in lab.sw.tracker.iter_conns() if c.orig[3] == dport]
    return c


def test_passive_ftp_data_connection_is_related_once():
    lab = Lab(FLOWS)
    cs, ss = control(lab)
    msg = b"227 Entering Passive Mode (1,1,1,2,195,80).\r\n"  # port 50000
    assert len(s2c(lab, "PA", 21, 40000, msg, seq=ss, ack=cs)) == 1
    # The client opens the data connection: related, committed by the +rel flow, forwarded.
    assert [p for p, _ in c2s(lab, "S", 40001, 50000, seq=7)] == ["p0"]
    data = conn_to(lab, 50000)
    assert data.status & IPS_EXPECTED and data.related
    assert [p for p, _ in s2c(lab, "SA", 50000, 40001, seq=9, ack=8)] == ["pf0hpf"]
    assert [p for p, _ in c2s(lab, "A", 40001, 50000, seq=8, ack=10)] == ["p0"]
    # The expectation is used up: another connection to the same port is +new, and no flow
    # commits a new connection to port 50000.
    assert c2s(lab, "S", 40002, 50000, seq=7) == []
    # Neither the control connection (helper) nor the data connection (related) is offloaded.
    text = offload_tool.explain(lab.sw, ["-p", "tcp"]).out
    assert "ALG helper ftp attached: connections with a helper are never offloaded" in text
    assert "related connection (expected by a helper or an ICMP error): never offloaded" in text


def test_active_ftp_and_the_loose_0_address_check():
    lab = Lab(FLOWS)
    cs, ss = control(lab)
    # PORT announcing another host's address creates nothing (loose=0).
    assert len(c2s(lab, "PA", 40000, 21, b"PORT 9,9,9,9,156,64\r\n", seq=cs, ack=ss)) == 1
    cs += 21
    assert s2c(lab, "S", 20, 40000 + 64, seq=1) == []
    assert len(lab.sw.tracker.expectations(lab.t)) == 0
    # PORT with the client's own address: the server's connection from port 20 is related.
    assert len(c2s(lab, "PA", 40000, 21, b"port 2,2,2,1,156,65\r\n", seq=cs, ack=ss)) == 1  # any case
    (e,) = lab.sw.tracker.expectations(lab.t)
    assert (e.src, e.dst, e.dport) == (0x01010102, 0x02020201, 40001)
    assert [p for p, _ in s2c(lab, "S", 20, 40001, seq=1)] == ["pf0hpf"]
    assert conn_to(lab, 40001).status & IPS_EXPECTED


def test_epsv_expectation_expires_after_300_s_and_goes_with_its_master():
    lab = Lab(FLOWS)
    cs, ss = control(lab)
    assert len(s2c(lab, "PA", 21, 40000, b"229 Entering Extended Passive Mode (|||6446|)\r\n", seq=ss, ack=cs)) == 1
    (e,) = lab.sw.tracker.expectations(lab.t)
    assert (e.src, e.dst, e.dport) == (0x02020201, 0x01010102, 6446)
    assert lab.sw.tracker.expectations(lab.t + 299_999) and not lab.sw.tracker.expectations(lab.t + 300_000)
    lab2 = Lab(FLOWS)
    cs, ss = control(lab2)
    s2c(lab2, "PA", 21, 40000, b"229 Entering Extended Passive Mode (|||6446|)\r\n", seq=ss, ack=cs)
    lab2.sw.tracker.delete(conn_to(lab2, 21), lab2.t)
    assert lab2.sw.tracker.expectations(lab2.t) == []


def test_without_the_alg_the_data_connection_is_new():
    lab = Lab([f.replace(",alg=ftp", "") for f in FLOWS])
    cs, ss = control(lab)
    s2c(lab, "PA", 21, 40000, b"227 Entering Passive Mode (1,1,1,2,195,80).\r\n", seq=ss, ack=cs)
    assert c2s(lab, "S", 40001, 50000, seq=7) == []  # +new, and no flow for it


def test_tftp_read_request_expects_the_server_from_any_port():
    lab = Lab(FLOWS)
    rrq = b"\x00\x01file.bin\x00octet\x00"
    out = lab.send("pf0hpf", build.ipv4_udp("2.2.2.1", "1.1.1.2", 3000, 69, rrq,
                                            src_mac=HOST_MAC, dst_mac=REMOTE_MAC))
    assert [p for p, _ in out] == ["p0"]
    data = build.ipv4_udp("1.1.1.2", "2.2.2.1", 4567, 3000, b"\x00\x03\x00\x01" + bytes(512),
                          src_mac=REMOTE_MAC, dst_mac=HOST_MAC)
    assert [p for p, _ in lab.send("p0", data)] == ["pf0hpf"]
    (c,) = [c for c in lab.sw.tracker.iter_conns() if c.orig[2] == 4567]
    assert c.status & IPS_EXPECTED and c.orig == (0x01010102, 0x02020201, 4567, 3000)


def test_conntrack_lists_and_flushes_the_expectation_table():
    from ctswitch.control import conntrack_tool
    lab = Lab(FLOWS)
    cs, ss = control(lab)
    s2c(lab, "PA", 21, 40000, b"227 Entering Passive Mode (1,1,1,2,195,80).\r\n", seq=ss, ack=cs)
    r = conntrack_tool.run(lab.sw, ["-L", "expect"])
    assert r.out == ("300 proto=6 src=2.2.2.1 dst=1.1.1.2 sport=0 dport=50000 mask-src=255.255.255.255 "
                     "mask-dst=255.255.255.255 sport=0 dport=65535 master-src=2.2.2.1 master-dst=1.1.1.2 "
                     "sport=40000 dport=21 class=0 helper=ftp\n")
    assert r.err == "conntrack v1.4.7 (conntrack-tools): 1 expectations have been shown.\n"
    assert conntrack_tool.run(lab.sw, ["-C", "expect"]).out == "1\n"
    assert conntrack_tool.run(lab.sw, ["-F", "expect"]).err.endswith("expectation table has been emptied.\n")
    assert conntrack_tool.run(lab.sw, ["-L", "expect"]).out == ""
    assert c2s(lab, "S", 40001, 50000, seq=7) == []  # no expectation: +new, no flow
