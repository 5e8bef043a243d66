"""``ctswitch demo``: the vendor page, step by step, on generated traffic.

It runs every command through the same dispatcher as the CLI, on the switch it is
given (``make demo`` gives it a throwaway database), and prints each command the way
a user would type it, then its real output.  Traffic is generated with ``ctswitch
gen`` into a temporary directory and replayed on the simulated clock.
"""

from __future__ import annotations

import os
import shlex
import tempfile

from .result import Result
from .vendor import EXAMPLE1, EXAMPLE2, with_roce_bypass

STEPS = [
    ("1. The bridge: ctBr with the uplink p0 and the host representor pf0hpf, HW offload on", [
        "ovs-vsctl set Open_vSwitch . other_config:hw-offload=true",
        "ovs-vsctl add-br ctBr",
        "ovs-vsctl add-port ctBr p0",
        "ovs-vsctl add-port ctBr pf0hpf",
        "sysctl -w net.netfilter.nf_conntrack_tcp_be_liberal=1",
    ]),
    ("2. Example 1: every IP connection of the host goes through conntrack; RoCE skips it", [
        *(f'ovs-ofctl add-flow ctBr "{f}"' for f in with_roce_bypass(EXAMPLE1)),
        "ovs-ofctl dump-flows ctBr --no-stats",
    ]),
    ("3. Traffic from host 2.2.2.1 (pf0hpf) to 1.1.1.2 (p0): ARP, 4 iperf-like TCP connections "
     "to 5001 (left open), 2 UDP/53 flows, ping, RoCE", [
        "gen {tmp}/ex1 --preset vendor1 --close open",
        "replay ctBr --in pf0hpf={tmp}/ex1/pf0hpf.pcap --in p0={tmp}/ex1/p0.pcap",
        "conntrack -L",
    ]),
    ("4. Example 2: the Arm source-NATs the host to 1.1.1.16", [
        "ovs-ofctl del-flows ctBr",
        "conntrack -F",
        *(f'ovs-ofctl add-flow ctBr "{f}"' for f in EXAMPLE2),
        "gen {tmp}/ex2 --preset vendor2 --close open",
        "replay ctBr --in pf0hpf={tmp}/ex2/pf0hpf.pcap --in p0={tmp}/ex2/p0.pcap",
    ]),
    ("5. What the real system shows: TCP and UDP in hardware with 1.1.1.16 in the reply tuple; "
     "ping never offloaded", [
        "cat /proc/net/nf_conntrack",
        "explain -p icmp",
        "explain -p udp",
        "devlink resource show pci/0000:03:00.0",
        "ovs-appctl dpctl/offload-stats-show",
    ]),
    ("6. 31 s without traffic: the offload ages out (30 s), conntrack owns the connections again", [
        "time warp 31",
        "conntrack -L -p tcp",
        "explain -p tcp --dport 5001",
    ]),
]


def run(switch, argv: list[str], ctx=None) -> Result:
    """Runs the demo; ``--keep DIR`` keeps the generated pcaps there."""
    from .dispatch import dispatch
    if argv and argv[0] in ("-h", "--help"):
        return Result(out="usage: ctswitch demo [--keep DIR]\nWalks through the NVIDIA BlueField CT "
                          "offload page on a throwaway switch.\n")
    keep = argv[1] if len(argv) > 1 and argv[0] == "--keep" else None
    if switch.bridges:
        return Result(err="ctswitch demo: this database already has bridges; run the demo on a new one "
                          "(ctswitch --db /tmp/demo.db demo, or make demo)\n", code=1)
    tmp = keep or tempfile.mkdtemp(prefix="ctswitch-demo-")
    os.makedirs(tmp, exist_ok=True)
    out = ["ctswitch demo: NVIDIA BlueField connection-tracking offload, on a model of the DPU", ""]
    for title, cmds in STEPS:
        out.append("=" * len(title))
        out.append(title)
        out.append("=" * len(title))
        for cmd in cmds:
            line = cmd.format(tmp=tmp)
            argv_ = shlex.split(line)
            tool = argv_[0]
            shown = line if tool in ("gen", "replay", "explain", "time", "demo") else line
            out.append(f"$ ctswitch {shown}")
            if tool == "gen":
                r = _gen(argv_[1:])
            else:
                r = dispatch(switch, tool, argv_[1:], ctx)
            text = (r.out + r.err).rstrip("\n")
            if text:
                out.append(text)
            if r.code != 0:
                out.append(f"(exit {r.code}: the demo stops here)")
                return Result(out="\n".join(out) + "\n", code=1, changed=True)
        out.append("")
    out.append("That was the vendor page. Try your own flows and traffic: ctswitch --help, README.md.")
    return Result(out="\n".join(out) + "\n", changed=True)


def _gen(argv: list[str]) -> Result:
    import contextlib
    import io

    from ..gen import cli_main
    buf, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(err):
        code = cli_main(argv)
    return Result(out=buf.getvalue(), err=err.getvalue(), code=code)
