"""Scenario tests in the user's own language (Click's .clicktest + OVS's .at idioms).

A ``.scn`` file has sections, each starting with a ``%NAME [ARG]`` line:

    %info    one line: what the scenario shows
    %xfail   REASON (optional): the scenario shows a known bug; test_scenarios.py marks it
             ``xfail(strict=True, reason=REASON)`` (running it here ignores the line)
    %run     ctswitch command lines (ovs-vsctl, ovs-ofctl, sysctl, devlink, ...), as typed;
             each must exit 0
    %macs    PORT=MAC ... (default: pf0hpf=02:00:00:00:02:01 p0=02:00:00:00:01:02)
    %packets one packet a line:  TIME_MS PORT SUMMARY [-> PORT[,PORT...] | -> drop]
             TIME_MS is relative to the clock when the section starts (it never goes back);
             SUMMARY: ``tcp A:P>B:Q FLAGS [len=N] [seq=S ack=A win=W]``,
             ``udp A:P>B:Q [len=N]``, ``icmp A>B echo-request|echo-reply [id=N seq=N]``,
             ``arp who-has B tell A`` (broadcast) / ``arp A is-at [to=B]`` (reply)
    %warp    SECONDS (advance the switch clock, running every timer)
    %expect  COMMAND, then the exact expected stdout lines up to the next section (trailing
             blank lines ignored; none at all means empty output); the command must exit 0.
             Volatile numbers may be written as ``<*>``.

Each packet is built with correct checksums; its source MAC is its port's and its
destination MAC that of the first other port in %macs.  Its outputs are checked when an
arrow is given (port names, the bridge's own port by the bridge name).  Sections run in
file order, so %run/%packets/%warp/%expect can alternate.  In %run, %macs and %packets,
blank lines and ``#`` comments are ignored.

Any problem is raised as ``ScenarioError`` (an AssertionError) whose first line is
``FILE:LINE: what went wrong``; an output mismatch adds the expected and actual text.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from ctswitch.control.appctl import advance
from ctswitch.control.dispatch import dispatch
from ctswitch.datapath.switch import Switch
from ctswitch.packet import build

DEFAULT_MACS = {"pf0hpf": "02:00:00:00:02:01", "p0": "02:00:00:00:01:02"}
SECTIONS = ("info", "xfail", "run", "macs", "packets", "warp", "expect")


class ScenarioError(AssertionError):
    """A scenario failed; the message starts with ``FILE:LINE:``."""


@dataclass
class Ctx:
    stdin: str | None = None
    cwd: str = "."
    db_path: str | None = None

    def run_line(self, line):  # scripts inside scenarios are not needed
        raise NotImplementedError


def _sections(text: str):
    """Yields (name, arg, lineno of the % line, [(lineno, line), ...])."""
    sec = None
    arg = ""
    start = 0
    body: list[tuple[int, str]] = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("%"):
            if sec is not None:
                yield sec, arg, start, body
            name, _, arg = line[1:].partition(" ")
            sec, arg, start, body = name.strip(), arg.strip(), n, []
        elif sec is not None:
            body.append((n, line))
        elif line.strip() and not line.lstrip().startswith("#"):
            raise ValueError(f"line {n}: text before the first %section")
    if sec is not None:
        yield sec, arg, start, body


def xfail_reason(path: str) -> str | None:
    """The ``%xfail`` reason of a scenario file, or None."""
    with open(path) as f:
        for line in f:
            if line.startswith("%xfail"):
                return line[len("%xfail"):].strip() or "known bug"
    return None


def build_packet(summary: str, src_mac: str, dst_mac: str) -> bytes:
    toks = summary.split()
    if not toks:
        raise ValueError("empty packet summary")
    kind = toks[0]
    opts = dict(t.split("=", 1) for t in toks[1:] if "=" in t)
    if kind in ("tcp", "udp"):
        m = re.fullmatch(r"([\d.]+):(\d+)>([\d.]+):(\d+)", toks[1] if len(toks) > 1 else "")
        if not m:
            raise ValueError(f"bad tuple {toks[1] if len(toks) > 1 else ''!r} (want A:P>B:Q)")
        src, sport, dst, dport = m.group(1), int(m.group(2)), m.group(3), int(m.group(4))
        payload = b"x" * int(opts.get("len", 0))
        if kind == "tcp":
            flags = toks[2] if len(toks) > 2 and "=" not in toks[2] else ""
            return build.ipv4_tcp(src, dst, sport, dport, flags=flags or 0, seq=int(opts.get("seq", 0)),
                                  ack=int(opts.get("ack", 0)), payload=payload,
                                  win=int(opts.get("win", 65535)), src_mac=src_mac, dst_mac=dst_mac)
        return build.ipv4_udp(src, dst, sport, dport, payload=payload, src_mac=src_mac, dst_mac=dst_mac)
    if kind == "icmp":
        m = re.fullmatch(r"([\d.]+)>([\d.]+)", toks[1] if len(toks) > 1 else "")
        if not m or len(toks) < 3 or toks[2] not in ("echo-request", "echo-reply"):
            raise ValueError("want: icmp A>B echo-request|echo-reply [id=N seq=N]")
        reply = toks[2] == "echo-reply"
        return build.ipv4_icmp_echo(m.group(1), m.group(2), ident=int(opts.get("id", 1)),
                                    seq=int(opts.get("seq", 1)), reply=reply, src_mac=src_mac, dst_mac=dst_mac)
    if kind == "arp":
        if len(toks) >= 5 and toks[1] == "who-has" and toks[3] == "tell":
            return build.arp(op=1, sha=src_mac, spa=toks[4], tha="00:00:00:00:00:00", tpa=toks[2],
                             src_mac=src_mac, dst_mac="ff:ff:ff:ff:ff:ff")
        if len(toks) >= 3 and toks[2] == "is-at":
            return build.arp(op=2, sha=src_mac, spa=toks[1], tha=dst_mac, tpa=opts.get("to", "0.0.0.0"),
                             src_mac=src_mac, dst_mac=dst_mac)
        raise ValueError("want: arp who-has B tell A | arp A is-at [to=B]")
    raise ValueError(f"unknown packet kind {kind!r} (tcp, udp, icmp, arp)")


def _pattern(expected: str) -> re.Pattern:
    return re.compile("^" + re.escape(expected).replace(re.escape("<*>"), ".*?") + "$")


def _first_difference(expected: list[str], got: list[str]) -> str:
    for i, (e, g) in enumerate(zip(expected, got), 1):
        if not _pattern(e).match(g):
            return f"line {i}: expected {e!r}, got {g!r}"
    if len(expected) > len(got):
        return f"{len(got)} lines instead of {len(expected)}; first missing: {expected[len(got)]!r}"
    return f"{len(got)} lines instead of {len(expected)}; first extra: {got[len(expected)]!r}"


def _match_lines(expected: list[str], got: list[str]) -> bool:
    return len(expected) == len(got) and all(_pattern(e).match(g) for e, g in zip(expected, got))


def _dispatch(sw: Switch, ctx: Ctx, where: str, line: str):
    try:
        argv = shlex.split(line)
    except ValueError as e:
        raise ScenarioError(f"{where}: cannot split {line!r}: {e}") from None
    if not argv:
        raise ScenarioError(f"{where}: no command")
    r = dispatch(sw, argv[0], argv[1:], ctx)
    if r.code != 0:
        err = " ".join(r.err.split()) or "(no message)"
        raise ScenarioError(f"{where}: {line!r} exited {r.code}: {err}")
    return r


def _packet(sw: Switch, macs: dict, base: int, where: str, line: str) -> None:
    head, arrow, want = line.partition("->")
    parts = head.split(None, 2)
    if len(parts) < 3:
        raise ScenarioError(f"{where}: want 'TIME_MS PORT SUMMARY [-> PORTS|drop]', got {line.strip()!r}")
    t, port, summary = parts
    if not t.isdigit():
        raise ScenarioError(f"{where}: time {t!r} is not a whole number of milliseconds")
    found = sw.find_port(port)
    if found is None:
        raise ScenarioError(f"{where}: unknown port {port!r} (not on any bridge)")
    if port not in macs:
        raise ScenarioError(f"{where}: port {port!r} has no MAC (give it one in %macs)")
    others = [m for p, m in macs.items() if p != port]
    try:
        frame = build_packet(summary.strip(), macs[port], others[0] if others else "ff:ff:ff:ff:ff:ff")
    except (ValueError, KeyError) as e:
        raise ScenarioError(f"{where}: bad packet {summary.strip()!r}: {e}") from None
    sw.now = max(sw.now, base + int(t))
    sw.datapath.tick(sw.now)
    br, p = found
    outs = sw.datapath.receive(br, p.ofport, frame, sw.now)
    names = sorted(br.name_of(o) if o != 0xFFFE else br.name for o, _ in outs)
    if arrow:
        want = want.strip()
        exp = [] if want == "drop" else sorted(x.strip() for x in want.split(","))
        if names != exp:
            raise ScenarioError(f"{where}: packet '{line.strip()}': sent to {','.join(names) or 'drop'}, "
                                f"expected {','.join(exp) or 'drop'}")


def run_scenario(path: str) -> None:
    """Runs one scenario file; raises ScenarioError (``FILE:LINE: ...``) on any failure."""
    with open(path) as f:
        text = f.read()
    sw = Switch()
    ctx = Ctx()
    macs = dict(DEFAULT_MACS)
    try:
        sections = list(_sections(text))
    except ValueError as e:
        raise ScenarioError(f"{path}:{e}") from None
    for sec, arg, start, body in sections:
        lines = [(n, b) for n, b in body if b.strip() and not b.lstrip().startswith("#")]
        here = f"{path}:{start}"
        if sec in ("info", "xfail"):
            continue
        if sec == "macs":
            for n, tok in [(start, t) for t in arg.split()] + [(n, t) for n, b in lines for t in b.split()]:
                k, eq, v = tok.partition("=")
                if not eq or not re.fullmatch(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}", v):
                    raise ScenarioError(f"{path}:{n}: want PORT=MAC, got {tok!r}")
                macs[k] = v
        elif sec == "run":
            for n, line in lines:
                _dispatch(sw, ctx, f"{path}:{n}", line)
        elif sec == "warp":
            try:
                ms = round(float(arg) * 1000)
            except ValueError:
                ms = -1
            if ms < 0 or lines:
                raise ScenarioError(f"{here}: want '%warp SECONDS' (a number >= 0 on the same line)")
            advance(sw, ms)
        elif sec == "packets":
            base = sw.now
            for n, line in lines:
                _packet(sw, macs, base, f"{path}:{n}", line)
        elif sec == "expect":
            if not arg:
                raise ScenarioError(f"{here}: %expect needs a command")
            r = _dispatch(sw, ctx, here, arg)
            got = [g.rstrip() for g in r.out.splitlines()]
            exp = [e.rstrip() for _, e in body]
            while exp and not exp[-1]:
                exp.pop()
            if not _match_lines(exp, got):
                raise ScenarioError(f"{here}: %expect {arg}: {_first_difference(exp, got)}\n--- expected\n"
                                    + "\n".join(exp) + "\n--- got\n" + "\n".join(got))
        else:
            raise ScenarioError(f"{here}: unknown section %{sec} (known: {', '.join('%' + s for s in SECTIONS)})")
