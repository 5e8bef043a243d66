"""The compiled core gives the same results as the Python it is compiled from (the reference check).

The same scenario runs in two fresh interpreters, one with ``CTSWITCH_PURE=1`` (every module from its
.py) and one with the compiled core (ctswitch._native), and the two reports must be equal, byte for
byte.  The scenario (``scenario()`` below, which is also this file's ``__main__``) is generated in
each process, so the generator and the pcap writer are compared as well:

* vendor example 2 (SNAT to 1.1.1.16, secure fail mode, hw-offload on): TCP connections with
  handshake, data both ways and FIN close, others closed by RST or left open, UDP request/reply
  flows, one-way UDP streams, pings and RoCE, replayed through the fast loop (``mode="auto"``) with
  output pcaps, and again through the reference loop (``mode="one"``) into another switch; then the
  clock moves on so connections expire and offloads age out;
* the same kinds under limits (a small conntrack table, ct_max_offloaded_conns, a tiny FDB, fewer
  groups, unidirectional UDP offload, no TCP pickup, accounting): drops, refusals, software-only
  offloads;
* a harsher input into a switch with the IPv6 and RELATED flows too: frames truncated at every
  offset, bad IHL / total length / TCP data offset, TCP flag combinations against an established
  SNATed connection, ICMP errors quoting it, IPv4 fragments (whole, overlapping, tiny), IPv6
  extension chains and fragments, VLAN stacks, bad checksums, UDP checksums that become 0 after NAT
  (a one-line change of that rule in the compiled rewrite is caught), and a pcap cut in the middle
  of a record (the replay stops with an error).

The report has the sha256 of every input and output pcap, the replay summaries (wall-clock time
left out), conntrack -L / -S, ovs-ofctl dump-flows, dpctl/dump-flows, dpctl/dump-conntrack,
dpctl/ct-stats-show, dpctl/offload-stats-show, devlink resource show, explain, the datapath counters
and drops and the kernel log.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import subprocess
import sys

import pytest

from ctswitch import _native

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
T0 = 1_700_000_000 * 1_000_000_000


# --- the scenario (runs in the child processes) -------------------------------------------------

def _sha(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _pcaps(title: str, d: str, root: str) -> list[str]:
    out = [f"## {title} pcaps"]
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name)
        out.append(f"{os.path.relpath(p, root)} {os.path.getsize(p)} {_sha(p)}")
    return out


def _state(title: str, sw, root: str) -> list[str]:
    """Everything the tools show about ``sw``."""
    from ctswitch.control.dispatch import dispatch
    cmds = [
        ("conntrack", ["-L"]), ("conntrack", ["-L", "-o", "extended"]), ("conntrack", ["-S"]),
        ("conntrack", ["-C"]),
        ("ovs-ofctl", ["dump-flows", "ctBr"]),
        ("ovs-appctl", ["dpctl/dump-flows", "-m"]), ("ovs-appctl", ["dpctl/dump-conntrack", "-s"]),
        ("ovs-appctl", ["dpctl/ct-stats-show"]), ("ovs-appctl", ["dpctl/offload-stats-show"]),
        ("ovs-appctl", ["fdb/show", "ctBr"]),
        ("devlink", ["resource", "show"]), ("explain", []),
    ]
    lines = [f"## {title}: switch time {sw.now}"]
    for tool, argv in cmds:
        r = dispatch(sw, tool, argv)
        lines.append(f"$ {tool} {' '.join(argv)} -> {r.code}")
        lines.append(r.out.replace(root, "<tmp>").rstrip("\n"))
        if r.err:
            lines.append("stderr: " + r.err.replace(root, "<tmp>").rstrip("\n"))
    dp = sw.datapath
    lines.append("datapath stats " + json.dumps(dict(dp.stats), sort_keys=True))
    lines.append("datapath drops " + json.dumps(dict(dp.drops), sort_keys=True))
    lines.append("tracker stats " + json.dumps(dict(sw.tracker.stats), sort_keys=True))
    lines.append(f"tracker created {sw.tracker.created} log_total {sw.tracker.log_total}")
    lines.extend("log " + m for m in sw.tracker.log)
    for br in sw.bridges.values():
        for p in sorted(br.ports.values(), key=lambda p: p.ofport):
            lines.append(f"port {br.name}/{p.name} " + " ".join(
                f"{k}={getattr(p, k)}" for k in ("rx_packets", "tx_packets", "rx_dropped", "tx_dropped")
                if hasattr(p, k)))
    return lines


def _replay(title: str, sw, inputs, out_dir, root: str, mode: str = "auto") -> list[str]:
    from ctswitch.control.replay_tool import _counters, summary_text
    from ctswitch.io.replay import replay
    before = _counters(sw)
    s = replay(sw, "ctBr", inputs, out_dir, mode=mode)
    s.wall_s = 0.0  # the only wall-clock figure
    error = s.error and s.error.replace(root, "<tmp>")
    lines = [f"## replay {title} (mode {mode})", f"error: {error}", f"interrupted: {s.interrupted}",
             f"packets {s.packets} first {s.first_ns} last {s.last_ns}",
             summary_text(sw, s, before).replace(root, "<tmp>").rstrip("\n")]
    if out_dir:
        lines += _pcaps(f"{title} output", out_dir, root)
    return lines


def _vendor_switch():
    from ctswitch.control import ofctl
    from ctswitch.control.vendor import EXAMPLE2
    from ctswitch.datapath.switch import Switch
    sw = Switch()
    br = sw.add_bridge("ctBr", "secure")
    br.add_port("p0")
    br.add_port("pf0hpf")
    sw.params.set("other_config:hw-offload", True)
    for f in EXAMPLE2:
        assert ofctl.run(sw, ["add-flow", "ctBr", f]).code == 0
    return sw


def _ins(d: str) -> list[tuple[str, str]]:
    return [("pf0hpf", f"{d}/pf0hpf.pcap"), ("p0", f"{d}/p0.pcap")]


def _traffic(root: str) -> list[str]:
    from ctswitch.control.dispatch import dispatch
    from ctswitch.gen.scenario import Scenario, write
    a, b, c = (os.path.join(root, f"gen-{x}") for x in "abc")
    write(Scenario(snat="1.1.1.16", src=["2.2.2.1", "2.2.2.2"], tcp=30, data=3, size=300, udp=8,
                   udp_requests=2, oneway=2, oneway_packets=4, icmp=4, icmp_count=2, roce=2, rate=20_000,
                   start_ns=T0), a)
    write(Scenario(snat="1.1.1.16", arp=False, tcp=12, tcp_sport=42001, data=2, close="rst", rate=50_000,
                   start_ns=T0 + 10**9), b)
    write(Scenario(snat="1.1.1.16", arp=False, tcp=6, tcp_sport=43001, data=1, close="open", size=1514,
                   udp=3, udp_sport=52000, start_ns=T0 + 2 * 10**9), c)
    lines = _pcaps("generated a", a, root) + _pcaps("generated b", b, root) + _pcaps("generated c", c, root)
    sw = _vendor_switch()
    lines += _replay("a", sw, _ins(a), os.path.join(root, "out-a"), root)
    lines += _state("after a", sw, root)
    lines += _replay("b", sw, _ins(b), os.path.join(root, "out-b"), root)
    lines += _replay("c", sw, _ins(c), os.path.join(root, "out-c"), root)
    lines += _state("after b, c", sw, root)
    for secs in ("20", "150", "500000"):  # past CLOSE/TIME_WAIT, UDP and ICMP, then the established timeout
        lines.append(f"$ ctswitch time warp {secs} -> {dispatch(sw, 'time', ['warp', secs]).out.strip()}")
        lines += _state(f"after warp {secs}", sw, root)
    # Limits: a small conntrack table, offload caps, accounting, no TCP pickup, unidirectional UDP
    # offload, a tiny FDB (refused offloads, early drops, insert failures).
    d = os.path.join(root, "gen-d")
    write(Scenario(snat="1.1.1.16", src=["2.2.2.1", "2.2.2.3"], tcp=60, data=2, close="open", udp=20,
                   oneway=10, oneway_packets=3, icmp=10, icmp_count=1, rate=100_000, start_ns=T0), d)
    lines += _pcaps("generated d", d, root)
    lim = _vendor_switch()
    for tool, argv in [("sysctl", ["-w", "net.netfilter.nf_conntrack_max=70"]),
                       ("sysctl", ["-w", "net.netfilter.nf_conntrack_acct=1"]),
                       ("sysctl", ["-w", "net.netfilter.nf_conntrack_tcp_loose=0"]),
                       ("sysctl", ["-w", "net.netfilter.nf_conntrack_udp_timeout=5"]),
                       ("devlink", ["dev", "param", "set", "pci/0000:03:00.0", "name", "ct_max_offloaded_conns",
                                    "value", "25", "cmode", "runtime"]),
                       ("modparam", ["ctswitch", "udp_unidirectional_offload", "1"]),
                       ("modparam", ["ctswitch", "fdb_capacity", "40"]),
                       ("modparam", ["mlx5_core", "num_of_groups", "2"])]:
        r = dispatch(lim, tool, argv)
        lines.append(f"$ {tool} {' '.join(argv)} -> {r.code} {r.out.strip()} {r.err.strip()}")
    lines += _replay("d", lim, _ins(d), os.path.join(root, "out-d"), root)
    lines += _state("limits after d", lim, root)
    lines.append(f"$ ctswitch time warp 10 -> {dispatch(lim, 'time', ['warp', '10']).out.strip()}")
    lines += _replay("d again", lim, _ins(d), os.path.join(root, "out-d2"), root, mode="one")
    lines += _state("limits after d again", lim, root)
    ref = _vendor_switch()  # the reference loop, into another switch
    lines += _replay("a", ref, _ins(a), os.path.join(root, "one-a"), root, mode="one")
    lines += _replay("b", ref, _ins(b), None, root, mode="one")
    lines += _state("reference loop after a, b", ref, root)
    return lines


def _robustness_helpers():
    """tests/robustness/hostile.py (the frame makers and the flows of the robustness suite)."""
    for d in (os.path.join(TESTS, "robustness"), HERE):
        if d not in sys.path:
            sys.path.insert(0, d)
    import hostile
    return hostile


def _hostile_frames():
    """(port, frame) pairs: the robustness suite's hostile kinds, around one established connection."""
    from ctswitch.packet import build
    h = _robustness_helpers()
    from pipeline import HOST_MAC, REMOTE_MAC
    sport = h.PROTECTED_SPORT
    seq, ack = 1001, 5001

    def host(flags, s=sport, payload=b"", sq=seq, ak=ack):
        return build.ipv4_tcp("2.2.2.1", "1.1.1.2", s, 5001, flags, sq, ak, payload,
                              src_mac=HOST_MAC, dst_mac=REMOTE_MAC)

    def remote(flags, d=sport, payload=b"", sq=ack, ak=seq):
        return build.ipv4_tcp("1.1.1.2", "1.1.1.16", 5001, d, flags, sq, ak, payload,
                              src_mac=REMOTE_MAC, dst_mac=HOST_MAC)

    fr = [("pf0hpf", build.arp(1, HOST_MAC, "2.2.2.1", "00:00:00:00:00:00", "1.1.1.2")),
          ("p0", build.arp(2, REMOTE_MAC, "1.1.1.2", HOST_MAC, "2.2.2.1")),
          ("pf0hpf", build.ipv4_tcp("2.2.2.1", "1.1.1.2", sport, 5001, "S", 1000, 0,
                                    options=build.tcp_opts(1460, 7, True), src_mac=HOST_MAC, dst_mac=REMOTE_MAC)),
          ("p0", remote("SA", sq=5000, ak=1001)), ("pf0hpf", host("A")),
          ("pf0hpf", host("PA", payload=b"ping")), ("p0", remote("PA", payload=b"pong", ak=seq + 4))]
    seq += 4
    ack += 4
    for make in (h.host_syn, h.host_udp, h.host_v6_syn, lambda: h.host_syn(vlans=(5,)),
                 lambda: h.host_syn(vlans=((0x88A8, 7), 5)),
                 lambda: build.arp(1, HOST_MAC, "2.2.2.1", "00:00:00:00:00:00", "1.1.1.2")):
        frame = make()
        fr += [("pf0hpf", frame[:n]) for n in range(len(frame))]
    syn = h.host_syn()
    fr += [("pf0hpf", h.with_ihl(syn, i)) for i in range(16)]
    fr += [("pf0hpf", h.with_total_length(syn, t)) for t in [*range(0, 60, 3), 1500, 65535]]
    fr += [("pf0hpf", h.with_tcp_doff(build.ipv4_tcp("2.2.2.1", "1.1.1.2", 1234, 80, "S", 1, 0, bytes(20),
                                                     src_mac=HOST_MAC, dst_mac=REMOTE_MAC), d)) for d in range(16)]
    # TCP flag combinations: new connections from the host, and segments of the established one
    # (in and out of the window, both ways).
    for f in range(0, 512, 5):
        fr.append(("pf0hpf", build.ipv4_tcp("2.2.2.1", "1.1.1.2", 20000 + f, 80, f & 0xFF, 7, 9,
                                            src_mac=HOST_MAC, dst_mac=REMOTE_MAC)))
    for f in (0x10, 0x18, 0x12, 0x11, 0x19, 0x02, 0x00, 0x3F, 0x29, 0x04):
        fr.append(("pf0hpf", host(f, payload=b"x", sq=seq + 1_000_000)))
        fr.append(("p0", remote(f, payload=b"y", sq=ack - 1_000_000)))
    fr += [("pf0hpf", host("PA", payload=b"data")), ("p0", remote("PA", payload=b"data", ak=seq + 4))]
    seq += 4
    ack += 4
    # ICMP errors quoting the SNATed connection (RELATED), a truncated quote and an unrelated one.
    quoted = build.ipv4_tcp("1.1.1.16", "1.1.1.2", sport, 5001, "PA", seq, ack, b"q",
                            src_mac=HOST_MAC, dst_mac=REMOTE_MAC)
    fr.append(("p0", build.ipv4_icmp_error("1.1.1.2", "1.1.1.16", 3, 4, quoted, src_mac=REMOTE_MAC,
                                           dst_mac=HOST_MAC)))
    fr.append(("p0", build.ipv4_icmp_error("1.1.1.2", "1.1.1.16", 11, 0, quoted, quote=2, src_mac=REMOTE_MAC,
                                           dst_mac=HOST_MAC)))
    fr.append(("p0", build.ipv4_icmp_error("1.1.1.2", "1.1.1.16", 3, 3, h.host_udp(999), src_mac=REMOTE_MAC,
                                           dst_mac=HOST_MAC)))
    fr.append(("pf0hpf", build.ipv4_icmp_echo("2.2.2.1", "1.1.1.2", 77, 1, b"ping", src_mac=HOST_MAC,
                                              dst_mac=REMOTE_MAC)))
    fr.append(("p0", build.ipv4_icmp_echo("1.1.1.2", "1.1.1.16", 77, 1, b"ping", reply=True, src_mac=REMOTE_MAC,
                                          dst_mac=HOST_MAC)))
    # IPv4 fragments: a UDP datagram in two pieces, the same overlapping, a tiny first TCP fragment.
    udp = build.udp("2.2.2.1", "1.1.1.2", 3333, 53, bytes(range(40)))
    for ident, pieces in ((11, [(udp[:24], 0, True), (udp[24:], 24, False)]),
                          (12, [(udp[:24], 0, True), (udp[16:], 16, False)]),
                          (13, [(udp[24:], 24, False), (udp[:24], 0, True)])):
        fr += [("pf0hpf", h.v4_fragment(17, p, off, more, ident=ident)) for p, off, more in pieces]
    tcpseg = build.tcp("2.2.2.1", "1.1.1.2", 4444, 80, "S", 1, 0)
    fr.append(("pf0hpf", h.v4_fragment(6, tcpseg[:8], 0, True, ident=14)))
    # IPv6: extension chains, fragments, a truncated extension header.
    v6udp = build.udp(h.H6, h.R6, 5555, 53, b"abcd")
    fr += [("pf0hpf", h.v6_frame(0, h.v6_ext(17, n) + v6udp)) for n in range(3)]
    fr.append(("pf0hpf", h.v6_frame(0, h.v6_ext(60)[:6])))
    fr.append(("pf0hpf", h.v6_frame(44, h.v6_frag_header(17, 0, True) + v6udp[:8])))
    fr.append(("pf0hpf", h.v6_frame(44, h.v6_frag_header(17, 8, False) + v6udp[8:])))
    fr.append(("pf0hpf", h.host_v6_syn(6000)))
    # VLAN stacks of growing depth.
    fr += [("pf0hpf", h.vlan_stack(h.host_syn(7000 + n), [(0x8100, 5)] * n)) for n in range(1, 6)]
    fr.append(("pf0hpf", syn[:12] + b"\x81\x00\x00\x05" * 10))
    # A corrupted IPv4 header checksum and a UDP datagram with a bad checksum.
    bad = bytearray(h.host_syn(7777))
    bad[24] ^= 0xFF
    fr.append(("pf0hpf", bytes(bad)))
    bad = bytearray(h.host_udp(7778))
    bad[40] ^= 0xFF
    fr.append(("pf0hpf", bytes(bad)))
    # UDP checksums that become 0 after the NAT rewrite, both ways: sent as 0xFFFF (0 means "none").
    for src, dst, sp, dp, nat_src, nat_dst, port in (("2.2.2.1", "1.1.1.2", 3456, 53, "1.1.1.16", "1.1.1.2", "pf0hpf"),
                                                      ("1.1.1.2", "1.1.1.16", 53, 3456, "1.1.1.2", "2.2.2.1", "p0")):
        c0 = build.ipv4_udp(nat_src, nat_dst, sp, dp, b"\0\0zz")[40:42]
        macs = (HOST_MAC, REMOTE_MAC) if port == "pf0hpf" else (REMOTE_MAC, HOST_MAC)
        fr.append((port, build.ipv4_udp(src, dst, sp, dp, c0 + b"zz", src_mac=macs[0], dst_mac=macs[1])))
    return fr


def _hostile(root: str) -> list[str]:
    from ctswitch.control import ofctl
    from ctswitch.datapath.switch import Switch
    from ctswitch.io.pcap import PcapWriter
    h = _robustness_helpers()
    d = os.path.join(root, "hostile")
    os.makedirs(d)
    frames = _hostile_frames()
    w = {p: PcapWriter(os.path.join(d, f"{p}.pcap")) for p in ("pf0hpf", "p0")}
    for i, (port, frame) in enumerate(frames):
        w[port].write(T0 + i * 50_000, frame)
    for x in w.values():
        x.close()
    # A pcap cut in the middle of its last record (a minute later): the replay stops there with an error.
    cut = os.path.join(root, "cut")
    os.makedirs(cut)
    with open(os.path.join(d, "pf0hpf.pcap"), "rb") as f:
        data = f.read()
    with open(os.path.join(cut, "pf0hpf.pcap"), "wb") as f:
        f.write(data + struct.pack("<IIII", T0 // 10**9 + 60, 0, 200, 200) + b"\x00" * 40)
    sw = Switch()
    br = sw.add_bridge("ctBr")
    br.add_port("p0")
    br.add_port("pf0hpf")
    sw.params.set("other_config:hw-offload", True)
    for f in [*h.EXAMPLE2, *h.EXTRA_FLOWS]:
        assert ofctl.run(sw, ["add-flow", "ctBr", f]).code == 0
    lines = _pcaps("hostile input", d, root) + _pcaps("cut input", cut, root)
    lines += _replay("hostile", sw, [("pf0hpf", f"{d}/pf0hpf.pcap"), ("p0", f"{d}/p0.pcap")],
                     os.path.join(root, "out-hostile"), root, mode="one")
    lines += _state("after hostile", sw, root)
    lines += _replay("cut", sw, [("pf0hpf", f"{cut}/pf0hpf.pcap")], os.path.join(root, "out-cut"), root)
    lines += _state("after cut", sw, root)
    return lines


def _ipv6_nat_and_icmp_errors(root: str) -> list[str]:
    """IPv6 TCP and UDP through SNAT to a port range (the general rewrite: each field and its
    checksums in turn) and ICMP / ICMPv6 errors quoting NATed datagrams (the quoted header and
    both checksums rewritten): the rewrite paths the vendor traffic does not take."""
    from scapy.all import ICMP, IP, UDP, Ether, ICMPv6DestUnreach, IPv6, Raw
    from scapy.all import TCP as STCP

    from ctswitch.control import ofctl
    from ctswitch.datapath.switch import Switch
    from ctswitch.io.pcap import PcapWriter
    sw = Switch()
    br = sw.add_bridge("ctBr", "secure")
    br.add_port("p0")
    br.add_port("pf0hpf")
    sw.params.set("other_config:hw-offload", True)
    for f in ("table=0,ip,ct_state=-trk,action=ct(table=1,nat)", "table=0,ipv6,ct_state=-trk,action=ct(table=1,nat)",
              "table=1,in_port=pf0hpf,ip,ct_state=+trk+new,action=ct(commit,nat(src=1.1.1.16)),p0",
              "table=1,in_port=pf0hpf,ipv6,ct_state=+trk+new,action=ct(commit,nat(src=[fd00::16]:40000-40010)),p0",
              "table=1,in_port=pf0hpf,ct_state=+trk+est,action=p0", "table=1,in_port=p0,ct_state=+trk+est,action=pf0hpf",
              "table=1,in_port=p0,ct_state=+trk+rel,action=pf0hpf"):
        assert ofctl.run(sw, ["add-flow", "ctBr", f]).code == 0, f
    h, r = "02:00:00:00:00:01", "02:00:00:00:00:02"
    h6 = Ether(src=h, dst=r) / IPv6(src="fd00::1", dst="fd00::99")
    r6 = Ether(src=r, dst=h) / IPv6(src="fd00::99", dst="fd00::16")
    r4 = Ether(src=r, dst=h) / IP(src="1.1.1.2", dst="1.1.1.16")
    frames = [
        ("pf0hpf", h6 / STCP(sport=1234, dport=80, flags="S", seq=100)),
        ("p0", r6 / STCP(sport=80, dport=40000, flags="SA", seq=500, ack=101)),
        ("pf0hpf", h6 / STCP(sport=1234, dport=80, flags="A", seq=101, ack=501)),
        ("pf0hpf", h6 / STCP(sport=1234, dport=80, flags="PA", seq=101, ack=501) / Raw(b"hello")),
        ("p0", r6 / STCP(sport=80, dport=40000, flags="FA", seq=501, ack=106)),
        ("pf0hpf", h6 / UDP(sport=5353, dport=53) / Raw(b"q")),
        ("p0", r6 / UDP(sport=53, dport=40000) / Raw(b"a")),
        ("p0", r6 / ICMPv6DestUnreach(code=4) / IPv6(src="fd00::16", dst="fd00::99") / UDP(sport=40000, dport=53)
         / Raw(b"q")),
        ("pf0hpf", Ether(src=h, dst=r) / IP(src="2.2.2.1", dst="1.1.1.2") / UDP(sport=6000, dport=53) / Raw(b"q")),
        ("p0", r4 / ICMP(type=3, code=3) / IP(src="1.1.1.16", dst="1.1.1.2") / UDP(sport=6000, dport=53) / Raw(b"q")),
    ]
    d = os.path.join(root, "v6")
    os.makedirs(d)
    w = {p: PcapWriter(os.path.join(d, f"{p}.pcap")) for p in ("pf0hpf", "p0")}
    for i, (port, fr) in enumerate(frames):
        w[port].write(T0 + i * 1_000_000, bytes(fr))
    for x in w.values():
        x.close()
    lines = _replay("ipv6 and icmp errors", sw, _ins(d), os.path.join(root, "out-v6"), root, mode="one")
    return lines + _state("after ipv6 and icmp errors", sw, root)


def scenario(root: str) -> str:
    """The report of the whole scenario, run in ``root`` (paths in it shown as <tmp>)."""
    return "\n".join(_traffic(root) + _hostile(root) + _ipv6_nat_and_icmp_errors(root)) + "\n"


def _loaded_compiled() -> list[str]:
    """The ctswitch modules this process loaded from an extension of the compiled core."""
    return sorted(name for name, m in list(sys.modules.items())
                  if name.startswith("ctswitch.")
                  and os.path.dirname(getattr(m, "__file__", None) or "") == _native.NATIVE_DIR)


# --- the test ----------------------------------------------------------------------------------

# Modules the scenario must run compiled when the build is fresh (else the comparison says little).
MUST_RUN_COMPILED = {"ctswitch.conntrack.tracker", "ctswitch.conntrack.nat", "ctswitch.conntrack.tcp",
                     "ctswitch.conntrack.defrag", "ctswitch.datapath.datapath", "ctswitch.datapath.switch",
                     "ctswitch.offload.manager", "ctswitch.offload.policy", "ctswitch.ofproto.classifier",
                     "ctswitch.ofproto.xlate", "ctswitch.io.replay", "ctswitch.io.pcap",
                     "ctswitch.packet.codec", "ctswitch.packet.rewrite", "ctswitch.packet.build"}


def _run(root: str, pure: bool) -> tuple[str, list[str]]:
    """(report, [status line, compiled modules loaded]) of the scenario in a fresh interpreter."""
    env = {k: v for k, v in os.environ.items() if k != _native.ENV_PURE}
    if pure:
        env[_native.ENV_PURE] = "1"
    env["PYTHONHASHSEED"] = "0"
    os.makedirs(root)
    p = subprocess.run([sys.executable, os.path.abspath(__file__), root], env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-4000:]
    return p.stdout, p.stderr.strip().splitlines()[-2:]


def test_compiled_core_gives_the_same_results_as_python(tmp_path) -> None:
    fresh, _stale = _native.check(_native.read_manifest())
    if not fresh:
        pytest.skip("no compiled build: run make native (scripts/build_native.py)")
    pure_out, (pure_status, pure_loaded) = _run(str(tmp_path / "pure"), pure=True)
    comp_out, (comp_status, comp_loaded) = _run(str(tmp_path / "compiled"), pure=False)
    assert pure_status == "pure Python (CTSWITCH_PURE=1)"
    assert pure_loaded == "compiled modules loaded:"
    assert comp_status.startswith("compiled core (Cython")  # (", profile-guided)" or ")": test_native)
    assert comp_status.endswith(f": {len(fresh)} of {len(_native.MODULES)} modules")
    loaded = set(comp_loaded.split(":", 1)[1].split())
    assert loaded <= set(fresh)
    assert MUST_RUN_COMPILED & set(fresh) <= loaded
    # Not vacuous: connections were tracked, SNATed and offloaded, limits refused some, hostile
    # frames were dropped as malformed, and the cut pcap stopped its replay.
    assert "connections created: 46; expired: 0; offload aged out: 0" in pure_out
    assert "offloaded now: 8 [HW_OFFLOAD], 0 [OFFLOAD] (software only)" in pure_out
    assert pure_out.count("src=1.1.1.2 dst=1.1.1.16 sport=5001") > 100
    assert "dropped: 70 (nf_conntrack: table full, dropping packet: 70)" in pure_out
    assert "malformed: truncated ethernet header: 84" in pure_out
    cut = re.search(r"^error: <tmp>/cut/pf0hpf\.pcap: record (\d+): truncated packet data\n"
                    r"interrupted: False\npackets (\d+) ", pure_out, re.M)
    assert cut and int(cut[1]) == int(cut[2]) + 1 > 500  # every record before the cut was replayed
    v6 = pure_out[pure_out.index("## replay ipv6 and icmp errors"):]
    assert "packets 10 " in v6 and "tcp,orig=(src=fd00::1,dst=fd00::99,sport=1234,dport=80)," \
        "reply=(src=fd00::99,dst=fd00::16,sport=80,dport=40000)" in v6
    assert '"tx_packets": 10' in v6  # every frame forwarded, the two ICMP errors as related
    if pure_out != comp_out:
        pl, cl = pure_out.splitlines(), comp_out.splitlines()
        diff = [f"line {i + 1}:\n  pure:     {a}\n  compiled: {b}"
                for i, (a, b) in enumerate(zip(pl + [""] * len(cl), cl + [""] * len(pl))) if a != b][:20]
        pytest.fail(f"compiled and pure Python differ ({len(pl)} vs {len(cl)} lines):\n" + "\n".join(diff))


if __name__ == "__main__":
    sys.stdout.write(scenario(sys.argv[1]))
    # The loader's own lines go to stderr: they differ between the two runs by design.
    print(_native.status(), file=sys.stderr)
    print("compiled modules loaded: " + " ".join(_loaded_compiled()), file=sys.stderr)
