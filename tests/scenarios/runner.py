"""Scenario tests in the user's own language (Click's .clicktest + OVS's .at idioms).

A ``.scn`` file has sections:

    %info    one line: what the scenario shows
    %run     ctswitch command lines (ovs-vsctl, ovs-ofctl, sysctl, devlink, ...), as typed
    %macs    PORT=MAC ... (default: pf0hpf=02:00:00:00:02:01 p0=02:00:00:00:01:02)
    %packets one packet a line:  TIME_MS PORT SUMMARY [-> PORT[,PORT...] | -> drop]
             SUMMARY: ``tcp A:P>B:Q FLAGS [len=N] [seq=S ack=A win=W]``,
             ``udp A:P>B:Q [len=N]``, ``icmp A>B echo-request|echo-reply id=N``,
             ``arp who-has B tell A`` / ``arp A is-at`` (broadcast / reply)
    %warp    SECONDS (advance the switch clock, running every timer)
    %expect  COMMAND, then the exact expected output lines (volatile numbers may be
             written as ``<*>``), up to the next section

Each packet is built with correct checksums; its outputs are checked when an arrow is
given.  Sections run in file order, so %run/%packets/%warp/%expect can alternate.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from ctswitch.control.dispatch import dispatch

from ctswitch.datapath.switch import Switch
from ctswitch.packet import build

DEFAULT_MACS = {"pf0hpf": "02:00:00:00:02:01", "p0": "02:00:00:00:01:02"}


@dataclass
class Ctx:
    stdin: str | None = None
    cwd: str = "."
    db_path: str | None = None

    def run_line(self, line):  # scripts inside scenarios are not needed
        raise NotImplementedError


def _sections(text: str):
    sec = None
    arg = ""
    body: list[str] = []
    for line in text.splitlines():
        if line.startswith("%"):
            if sec is not None:
                yield sec, arg, body
            name, _, arg = line[1:].partition(" ")
            sec, arg, body = name.strip(), arg.strip(), []
        elif sec is not None:
            body.append(line)
    if sec is not None:
        yield sec, arg, body


def build_packet(summary: str, src_mac: str, dst_mac: str) -> bytes:
    toks = summary.split()
    kind = toks[0]
    opts = dict(t.split("=", 1) for t in toks[1:] if "=" in t)
    if kind in ("tcp", "udp"):
        m = re.fullmatch(r"([\d.]+):(\d+)>([\d.]+):(\d+)", toks[1])
        if not m:
            raise ValueError(f"bad tuple {toks[1]!r}")
        src, sport, dst, dport = m.group(1), int(m.group(2)), m.group(3), int(m.group(4))
        payload = b"x" * int(opts.get("len", 0))
        if kind == "tcp":
            flags = toks[2] if len(toks) > 2 and "=" not in toks[2] else ""
            return build.ipv4_tcp(src, dst, sport, dport, flags=flags or 0, seq=int(opts.get("seq", 0)),
                                  ack=int(opts.get("ack", 0)), payload=payload,
                                  win=int(opts.get("win", 65535)), src_mac=src_mac, dst_mac=dst_mac)
        return build.ipv4_udp(src, dst, sport, dport, payload=payload, src_mac=src_mac, dst_mac=dst_mac)
    if kind == "icmp":
        m = re.fullmatch(r"([\d.]+)>([\d.]+)", toks[1])
        src, dst = m.group(1), m.group(2)
        reply = toks[2] == "echo-reply"
        return build.ipv4_icmp_echo(src, dst, ident=int(opts.get("id", 1)), seq=int(opts.get("seq", 1)),
                                    reply=reply, src_mac=src_mac, dst_mac=dst_mac)
    if kind == "arp":
        if toks[1] == "who-has":
            return build.arp(op=1, sha=src_mac, spa=toks[4], tha="00:00:00:00:00:00", tpa=toks[2],
                             src_mac=src_mac, dst_mac="ff:ff:ff:ff:ff:ff")
        return build.arp(op=2, sha=src_mac, spa=toks[1], tha=dst_mac, tpa=opts.get("to", "0.0.0.0"),
                         src_mac=src_mac, dst_mac=dst_mac)
    raise ValueError(f"unknown packet kind {kind!r}")


def _match_lines(expected: list[str], got: list[str]) -> bool:
    if len(expected) != len(got):
        return False
    for e, g in zip(expected, got):
        pat = "^" + re.escape(e).replace(re.escape("<*>"), ".*?") + "$"
        if not re.match(pat, g):
            return False
    return True


def run_scenario(path: str) -> None:
    """Runs one scenario file; raises AssertionError with a readable diff on a mismatch."""
    text = open(path).read()
    sw = Switch()
    ctx = Ctx()
    macs = dict(DEFAULT_MACS)
    for sec, arg, body in _sections(text):
        lines = [b for b in body if b.strip() and not b.lstrip().startswith("#")]
        if sec == "info":
            continue
        if sec == "macs":
            for tok in (arg + " " + " ".join(lines)).split():
                k, v = tok.split("=", 1)
                macs[k] = v
        elif sec == "run":
            for line in lines:
                argv = shlex.split(line)
                r = dispatch(sw, argv[0], argv[1:], ctx)
                assert r.code == 0, f"{path}: {line}: exit {r.code}: {r.err.strip()}"
        elif sec == "warp":
            from ctswitch.control.appctl import advance
            advance(sw, int(float(arg) * 1000))
        elif sec == "packets":
            base = sw.now
            for line in lines:
                head, arrow, want = line.partition("->")
                t, port, summary = head.split(None, 2)
                others = [m for p, m in macs.items() if p != port]
                frame = build_packet(summary.strip(), macs[port], others[0] if others else "ff:ff:ff:ff:ff:ff")
                now = base + int(t)
                sw.now = max(sw.now, now)
                sw.datapath.tick(sw.now)
                br, p = sw.find_port(port)
                outs = sw.datapath.receive(br, p.ofport, frame, sw.now)
                names = sorted(br.name_of(o) if o != 0xFFFE else br.name for o, _ in outs)
                if arrow:
                    exp = sorted(x.strip() for x in want.split(",")) if want.strip() != "drop" else []
                    assert names == exp, f"{path}: packet '{line.strip()}': outputs {names or ['drop']} != {exp or ['drop']}"
        elif sec == "expect":
            argv = shlex.split(arg)
            r = dispatch(sw, argv[0], argv[1:], ctx)
            got = [g.rstrip() for g in r.out.splitlines()]
            exp = [e.rstrip() for e in body]
            while exp and not exp[-1]:
                exp.pop()
            if not _match_lines(exp, got):
                raise AssertionError(f"{path}: {arg}\n--- expected\n" + "\n".join(exp) + "\n--- got\n" + "\n".join(got))
        else:
            raise ValueError(f"{path}: unknown section %{sec}")
