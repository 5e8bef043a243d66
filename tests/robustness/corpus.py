"""Seed inputs shared by the hypothesis tests (tests/robustness) and the atheris fuzzers (fuzz/).

Each ``*_seeds()`` returns well-formed inputs; the fuzzers mutate them.
``check_*`` functions are the properties: they call the parser under test and
raise AssertionError (or let an unexpected exception escape) when the contract
is broken: a parser may only return, or raise its own one-line error.
"""

from __future__ import annotations

import io
import json

from ctswitch.control.protocol import LineBuffer, ProtocolError, decode_reply, decode_request
from ctswitch.flow.fields import DictPorts
from ctswitch.flow.ofctl_syntax import FlowSyntaxError, parse_flow
from ctswitch.io.pcap import PcapError, PcapNgWriter, PcapReader, PcapWriter
from ctswitch.packet import build, codec, summary

HOST_MAC = "02:00:00:00:02:01"
REMOTE_MAC = "02:00:00:00:01:02"
PORTS = DictPorts({"p0": 1, "pf0hpf": 2})


def frame_seeds() -> list[bytes]:
    tcp = build.ipv4_tcp("2.2.2.1", "1.1.1.2", 34541, 5001, "S", 1000, 0, options=build.tcp_opts(1460, 7, True),
                         src_mac=HOST_MAC, dst_mac=REMOTE_MAC)
    v6tcp = build.ipv6_tcp("2001:db8::1", "2001:db8::2", 1, 2, "SA", 5, 6)
    return [
        tcp,
        build.ipv4_tcp("2.2.2.1", "1.1.1.2", 34541, 5001, "PA", 1001, 5001, b"hello", vlans=(5,)),
        build.ipv4_udp("2.2.2.1", "1.1.1.2", 1000, 53, b"query"),
        build.ipv4_icmp_echo("2.2.2.1", "1.1.1.2", 7, 1, b"ping"),
        build.ipv4_icmp_error("1.1.1.2", "1.1.1.16", 3, 4, tcp, extra=1400),
        build.arp(1, HOST_MAC, "2.2.2.1", "00:00:00:00:00:00", "1.1.1.2"),
        v6tcp,
        build.ipv6_udp("2001:db8::1", "2001:db8::2", 1, 2, b"x"),
        build.ipv6_icmp_echo("2001:db8::1", "2001:db8::2"),
        build.ipv6_icmp_error("2001:db8::2", "2001:db8::1", 1, 4, v6tcp),
        build.eth(REMOTE_MAC, HOST_MAC, 0x0800, build.ipv4("2.2.2.1", "1.1.1.2", 17, bytes(16), mf=True)),
        build.eth(REMOTE_MAC, HOST_MAC, 0x0800, build.ipv4("2.2.2.1", "1.1.1.2", 6, bytes(16), frag_off=8)),
        build.eth(REMOTE_MAC, HOST_MAC, 0x86DD, build.ipv6("2001:db8::1", "2001:db8::2", 0,
                                                           bytes((44, 0, 1, 4, 0, 0, 0, 0))
                                                           + bytes((6, 0, 0, 1, 0, 0, 0, 7)) + bytes(20))),
    ]


def check_frame(frame: bytes) -> None:
    pkt = codec.parse(frame)
    assert pkt.drop is None or pkt.drop in codec.REASONS, pkt.drop
    if pkt.drop is None:
        assert pkt.l4 < len(frame) or pkt.l4 == len(frame)
        assert pkt.payload_len >= 0 or pkt.payload == -1
        line = summary.summarize(pkt)
        assert isinstance(line, str) and "\n" not in line


FLOW_SEEDS = [
    "table=0,arp,action=normal",
    "table=0,ip,ct_state=-trk,action=ct(table=1,nat)",
    "table=1,in_port=pf0hpf,ip,ct_state=+trk+new,action=ct(commit,nat(src=1.1.1.16)), p0",
    "table=1,ip,ct_state=+trk+est,action=normal",
    "table=0,udp,tp_dst=4791,action=normal",
    "priority=100,tcp,nw_src=10.0.0.0/8,tp_dst=80,actions=ct(commit,zone=5,exec(set_field:1->ct_mark)),output:p0",
    "cookie=0x5,table=2,ipv6,ipv6_src=2001:db8::/32,actions=ct(commit,nat(dst=[2001:db8::9]:80-90)),normal",
    "idle_timeout=10,hard_timeout=20,dl_src=02:00:00:00:00:01/ff:ff:ff:00:00:00,actions=load:0x1->NXM_NX_REG0[0..3],"
    "resubmit(,2)",
    "ip,nw_frag=later,actions=drop",
    "tcp,tcp_flags=+syn-ack,actions=move:NXM_OF_IP_SRC[]->NXM_NX_REG1[],dec_ttl,controller",
]
FLOW_TOKENS = ["table", "=", "0", "1", "255", "256", "ip", "ipv6", "tcp", "udp", "icmp", "arp", ",", "ct_state",
               "+trk", "-trk", "+new", "+est", "+rel", "+inv", "actions", "ct(", "commit", "nat", "(src=",
               "1.1.1.16", ")", "-", ":", "65536", "normal", "output:", "p0", "in_port", "priority", "cookie",
               "0x", "/", "-1", "nw_src", "tp_dst", "reg0", "[0..3]", "[", "]", "load:", "->", "set_field:",
               "ct_mark", "ct_label", "exec(", "zone=", "drop", "resubmit(", "dl_src", "ff:ff:ff:ff:ff:ff",
               "ipv6_src", "::", "'", "\"", "\\", "\x00", "é", "18446744073709551616", " ", "{", "}"]


def check_flow(text: str) -> None:
    for command in ("add", "mod-strict", "del", "dump"):
        try:
            parse_flow(text, PORTS, command=command)
        except FlowSyntaxError as e:
            msg = str(e)
            # One line, unless it quotes the user's own text (as OVS does) and that had newlines.
            assert msg and ("\n" not in msg or "\n" in text), repr(msg)


def pcap_seeds() -> list[bytes]:
    out = []
    for writer in (PcapWriter, PcapNgWriter):
        for ns in (False, True):
            for bo in ("<", ">"):
                b = io.BytesIO()
                w = writer(b, nanosecond=ns, byteorder=bo)
                for i, f in enumerate(frame_seeds()[:4]):
                    w.write(1_000_000_007 * i, f)
                w.flush() if hasattr(w, "flush") else None
                out.append(b.getvalue())
    return out


def check_pcap(data: bytes) -> int:
    """Reads ``data`` as a capture file; returns how many records came out before the end or an error."""
    n = 0
    try:
        for ts, frame in PcapReader(io.BytesIO(data), name="fuzz.pcap"):
            assert isinstance(ts, int) and isinstance(frame, bytes)
            n += 1
    except PcapError as e:
        msg = str(e)
        assert msg.startswith("fuzz.pcap: ") and "\n" not in msg, msg
    return n


REQUEST_SEEDS = [
    b'{"tool":"ovs-ofctl","argv":["dump-flows","ctBr"],"stdin":null,"cwd":"/tmp"}',
    b'{"tool":"conntrack","argv":["-L"]}',
    b'{"out":"x\\n","err":"","code":0}',
]


def check_request(line: bytes) -> None:
    for decode in (decode_request, decode_reply):
        try:
            obj = decode(line)
        except ProtocolError as e:
            # One line, unless it names a field whose (JSON-escaped) name holds a newline.
            assert str(e) and ("\n" not in str(e) or b"\\n" in bytes(line)), str(e)
        else:
            assert isinstance(obj, dict)
            if decode is decode_request:
                assert isinstance(obj["tool"], str) and obj["tool"]
                assert all(isinstance(a, str) for a in obj["argv"])
                json.dumps(obj)


def check_linebuffer(chunks: list[bytes], limit: int) -> None:
    lb = LineBuffer(limit)
    got = []
    for c in chunks:
        got += lb.feed(c)
    data = b"".join(chunks)
    want = data.split(b"\n")[:-1]
    if not lb.overflow:
        assert got == want
        assert bytes(lb.buf) == data.split(b"\n")[-1]
    else:
        assert got == want[:len(got)]
        assert all(len(x) <= limit for x in got)


SCRIPT_SEEDS = [
    "ovs-vsctl add-br ctBr\novs-vsctl add-port ctBr p0\novs-vsctl add-port ctBr pf0hpf\n"
    "ovs-vsctl set Open_vSwitch . other_config:hw-offload=true\n"
    "ovs-ofctl add-flow ctBr \"table=0,ip,ct_state=-trk,action=ct(table=1,nat)\"\n"
    "ovs-ofctl dump-flows ctBr | grep -c ct_state\n",
    "$ BR=ctBr\n$ sudo ovs-vsctl add-br $BR \\\n  -- set-fail-mode ${BR} secure\n# comment\nconntrack -L\n",
    "sysctl -w net.netfilter.nf_conntrack_max=1000\ndevlink dev param show\n"
    "echo 8 > /sys/module/mlx5_core/parameters/num_of_groups\ncat /proc/net/nf_conntrack\n",
    "ovs-appctl dpctl/dump-conntrack -m\nconntrack -C\nctswitch modparam mlx5_core num_of_groups\n",
]
SCRIPT_TOKENS = ["ovs-vsctl", "ovs-ofctl", "ovs-appctl", "conntrack", "sysctl", "devlink", "echo", "cat",
                 "ctswitch", "modparam", "sudo", "add-br", "ctBr", "add-port", "p0", "set", "Open_vSwitch", ".",
                 "other_config:hw-offload=true", "--", "add-flow", "del-flows", "dump-flows", "-L", "-D", "-F",
                 "-w", "net.netfilter.nf_conntrack_max=10", "dev", "param", "show", "name", "value", "cmode",
                 "runtime", ">", "/proc/net/nf_conntrack", "$X", "${Y}", "X=1", "export", "'", "\"", "\\",
                 "#", "$ ", "# ", "|", "grep", "-v", "-c", "[", "&&", ";", "Copy Copied!", "\u00a0", "\r",
                 "\n", "\\\n", "ip,actions=normal", "-1", "18446744073709551616", " ", "time", "warp"]


UNSAFE_WORDS = ("start", "stop", "status", "daemon", "lab", "replay", "gen", "demo", "run")


def check_script(text: str) -> None:
    from ctswitch.control.script import run_text
    from ctswitch.datapath.switch import Switch

    if any(w in text for w in UNSAFE_WORDS):
        return  # daemon, lab and file-writing verbs act outside the switch: not fuzzed
    res = run_text(Switch(), text, "fuzz.sh")
    assert isinstance(res.out, str) and isinstance(res.err, str)
    assert "Traceback" not in res.err and "internal error" not in res.err, res.err
    if res.code != 0:
        last = res.err.rstrip("\n").split("\n")[-1]
        assert last.startswith("ctswitch run: fuzz.sh:"), res.err
