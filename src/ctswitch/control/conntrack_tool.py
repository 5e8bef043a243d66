"""The ``conntrack`` command (conntrack-tools 1.4.7) and ``/proc/net/nf_conntrack``.

Theory of operation
-------------------
``run(switch, argv)`` parses argv the way conntrack's getopt table does (short
options, long options, ``--opt=value``), builds a filter, and renders the
tracker's entries with ``conntrack.render``.  Listings go to stdout, the
summary line (``conntrack v1.4.7 (conntrack-tools): N flow entries have been
shown.``) to stderr.  Errors are conntrack's own one-liners followed by the
"Try ..." hint, exit status 2 (parameter problem) or 1 (operation failed).
The switch is duck-typed: ``switch.tracker``, ``switch.now`` (ms),
``switch.params``.

Commands: -L/--dump, -G/--get, -D/--delete, -F/--flush, -E/--event (prints
the recorded events), -C/--count, -S/--stats, -V/--version, -h/--help.
Filters: -p, -s/--src/--orig-src, -d/--dst/--orig-dst, -r/--reply-src,
-q/--reply-dst, --sport/--orig-port-src, --dport/--orig-port-dst,
--reply-port-src, --reply-port-dst, -n/--src-nat, -g/--dst-nat, -j/--any-nat,
-w/--zone, -m/--mark V[/M], -u/--status, -f/--family, --state, -o.
(``-z`` is ``--zero`` as in conntrack; zones are ``-w``.)
"""

from __future__ import annotations

import ipaddress

from ..conntrack import render
from ..conntrack.conn import IPS_ASSURED, IPS_FIXED_TIMEOUT, IPS_HW_OFFLOAD, IPS_OFFLOAD, IPS_SEEN_REPLY
from ..conntrack.helpers import HELPER_NAMES
from ..conntrack.tcp import STATE_BY_NAME
from .result import Result

VERSION = "conntrack v1.4.7 (conntrack-tools): "
TRY = "Try `conntrack -h' or 'conntrack --help' for more information.\n"

COMMANDS = {"-L": "L", "--dump": "L", "-G": "G", "--get": "G", "-D": "D", "--delete": "D",
            "-F": "F", "--flush": "F", "-E": "E", "--event": "E", "-C": "C", "--count": "C",
            "-S": "S", "--stats": "S", "-V": "V", "--version": "V", "-h": "h", "--help": "h"}
# option -> (canonical name, takes a value: 1 required, 2 optional)
OPTIONS = {
    "-s": ("src", 1), "--src": ("src", 1), "--orig-src": ("src", 1),
    "-d": ("dst", 1), "--dst": ("dst", 1), "--orig-dst": ("dst", 1),
    "-r": ("reply-src", 1), "--reply-src": ("reply-src", 1),
    "-q": ("reply-dst", 1), "--reply-dst": ("reply-dst", 1),
    "-p": ("proto", 1), "--proto": ("proto", 1), "--protonum": ("proto", 1),
    "--sport": ("sport", 1), "--orig-port-src": ("sport", 1),
    "--dport": ("dport", 1), "--orig-port-dst": ("dport", 1),
    "--reply-port-src": ("reply-sport", 1), "--reply-port-dst": ("reply-dport", 1),
    "-n": ("src-nat", 2), "--src-nat": ("src-nat", 2),
    "-g": ("dst-nat", 2), "--dst-nat": ("dst-nat", 2),
    "-j": ("any-nat", 2), "--any-nat": ("any-nat", 2),
    "-w": ("zone", 1), "--zone": ("zone", 1), "--orig-zone": ("zone", 1),
    "-m": ("mark", 1), "--mark": ("mark", 1),
    "-u": ("status", 1), "--status": ("status", 1),
    "-f": ("family", 1), "--family": ("family", 1),
    "-o": ("output", 1), "--output": ("output", 1),
    "-z": ("zero", 0), "--zero": ("zero", 0),
    "--ctswitch-since": ("ctswitch-since", 1),  # internal: event streaming from the daemon
    "--state": ("state", 1), "-t": ("timeout", 1), "--timeout": ("timeout", 1),
    "-i": ("id", 1), "--id": ("id", 1),
}
# Options of conntrack-tools' protocol extensions, known once -p names the protocol.
PROTO_OPTIONS = {
    1: {"--icmp-type": "icmp-type", "--icmp-code": "icmp-code", "--icmp-id": "icmp-id"},
    58: {"--icmpv6-type": "icmp-type", "--icmpv6-code": "icmp-code", "--icmpv6-id": "icmp-id"},
}
# Options that filter (-z may not be combined with them).
FILTERS = ("src", "dst", "reply-src", "reply-dst", "proto", "sport", "dport", "reply-sport", "reply-dport",
           "src-nat", "dst-nat", "any-nat", "zone", "mark", "status", "family", "state", "id",
           "icmp-type", "icmp-code", "icmp-id")
PROTOS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "sctp": 132, "gre": 47, "udplite": 136,
          "dccp": 33}
STATUS = {"ASSURED": IPS_ASSURED, "SEEN_REPLY": IPS_SEEN_REPLY, "UNSET": 0,
          "FIXED_TIMEOUT": IPS_FIXED_TIMEOUT, "OFFLOAD": IPS_OFFLOAD, "HW_OFFLOAD": IPS_HW_OFFLOAD}
OUTPUTS = ("xml", "extended", "timestamp", "id", "ktimestamp", "labels", "userspace")


class _Error(Exception):
    def __init__(self, msg: str, code: int = 2) -> None:
        super().__init__(msg)
        self.code = code


def _addr(text: str) -> tuple[int, int]:
    try:
        a = ipaddress.ip_address(text)
    except ValueError:
        raise _Error(f"Invalid IP address `{text}'.") from None
    return a.version, int(a)


def _int(text: str, what: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise _Error(f"Bad parameter `{text}'" if what else f"invalid {what}") from None


def _parse(argv: list[str]) -> tuple[str | None, dict]:
    cmd = None
    opts: dict = {}
    i = 0
    while i < len(argv):
        a = argv[i]
        val = None
        if a.startswith("--") and "=" in a:
            a, val = a.split("=", 1)
        if a in COMMANDS:
            c = COMMANDS[a]
            if cmd is not None and cmd != c:
                raise _Error("Invalid commands combination")
            cmd = c
            if i + 1 < len(argv) and argv[i + 1] in ("conntrack", "expect"):
                if argv[i + 1] == "expect":
                    opts["table"] = "expect"
                i += 1
            i += 1
            continue
        ext = PROTO_OPTIONS.get(PROTOS.get(str(opts.get("proto", "")).lower(), -1), {})
        if a not in OPTIONS and a not in ext:
            raise _Error(f"unknown option `{argv[i]}'")
        name, takes = OPTIONS[a] if a in OPTIONS else (ext[a], 1)
        if takes == 1 and val is None:
            if i + 1 >= len(argv):
                raise _Error(f"option `{a}' requires an argument")
            val = argv[i + 1]
            i += 1
        elif takes == 2 and val is None and i + 1 < len(argv) and not argv[i + 1].startswith("-"):
            val = argv[i + 1]
            i += 1
        opts[name] = True if takes == 0 else (val if val is not None else "")
        i += 1
    return cmd, opts


def _filter(opts: dict):
    """Builds a predicate over Conn from the parsed options."""
    checks = []
    fam = None
    if "family" in opts:
        f = opts["family"]
        if f not in ("ipv4", "ipv6"):
            raise _Error(f"`{f}' unsupported protocol")
        fam = 4 if f == "ipv4" else 6
    if "proto" in opts:
        p = opts["proto"].lower()
        num = PROTOS.get(p)
        if num is None:
            if p.isdigit():
                num = int(p)
            else:
                raise _Error(f"proto `{opts['proto']}' not found")
        checks.append(lambda c, n=num: c.proto == n)
    for name, tup, idx in (("src", "orig", 0), ("dst", "orig", 1), ("reply-src", "reply", 0),
                           ("reply-dst", "reply", 1)):
        if name in opts:
            ver, a = _addr(opts[name])
            if fam is not None and fam != ver:
                raise _Error("mismatched address family")
            fam = ver
            checks.append(lambda c, t=tup, i=idx, a=a: getattr(c, t)[i] == a)
    for name, tup, idx in (("sport", "orig", 2), ("dport", "orig", 3), ("reply-sport", "reply", 2),
                           ("reply-dport", "reply", 3)):
        if name in opts:
            if "proto" not in opts:
                raise _Error(f"missing protocol for `--{name}', use -p")
            port = _int(opts[name], "")
            checks.append(lambda c, t=tup, i=idx, p=port: c.proto not in (1, 58) and getattr(c, t)[i] == p)
    for name, get in (("icmp-type", lambda t: t[3] >> 8), ("icmp-code", lambda t: t[3] & 0xFF),
                      ("icmp-id", lambda t: t[2])):
        if name in opts:
            v = _int(opts[name], "")
            checks.append(lambda c, v=v, g=get: c.proto in (1, 58) and g(c.orig) == v)
    if fam is not None:
        checks.append(lambda c, f=fam: c.ip_ver == f)
    if "zone" in opts:
        z = _int(opts["zone"], "")
        checks.append(lambda c, z=z: c.zone == z)
    if "mark" in opts:
        text = opts["mark"]
        v, _, m = text.partition("/")
        val = _int(v, "")
        mask = _int(m, "") if m else 0xFFFFFFFF
        checks.append(lambda c, v=val, m=mask: (c.mark & m) == v)  # the value is not masked
    if "status" in opts:
        bits = 0
        for word in opts["status"].split(","):
            if word.upper() not in STATUS:
                raise _Error(f"Bad parameter `{opts['status']}'")
            bits |= STATUS[word.upper()]
        if bits:
            checks.append(lambda c, b=bits: (c.status & b) == b)
        else:
            checks.append(lambda c: not c.status & (IPS_ASSURED | IPS_SEEN_REPLY))
    if "state" in opts:
        st = STATE_BY_NAME.get(opts["state"])
        if st is None:
            raise _Error(f"unknown TCP state `{opts['state']}'")
        checks.append(lambda c, s=st: c.proto == 6 and c.state == s)
    for name, fn in (("src-nat", _is_snat), ("dst-nat", _is_dnat)):
        if name in opts:
            ip = opts[name]
            if ip:
                _ver, a = _addr(ip)
                idx = 1 if name == "src-nat" else 0
                checks.append(lambda c, a=a, i=idx, f=fn: f(c) and c.reply[i] == a)
            else:
                checks.append(fn)
    if "any-nat" in opts:
        checks.append(lambda c: _is_snat(c) or _is_dnat(c))
    if "id" in opts:
        cid = _int(opts["id"], "")
        checks.append(lambda c, i=cid: c.id == i)
    return lambda c: all(f(c) for f in checks)


def _is_snat(c) -> bool:
    return c.reply[1] != c.orig[0] or (c.proto not in (1, 58) and c.reply[3] != c.orig[2])


def _is_dnat(c) -> bool:
    return c.reply[0] != c.orig[1] or (c.proto not in (1, 58) and c.reply[2] != c.orig[3])


def _fmt(opts: dict) -> set:
    out = set()
    if "output" in opts:
        for w in opts["output"].split(","):
            if w not in OUTPUTS:
                raise _Error(f"Bad parameter `{opts['output']}'")
            out.add(w)
    return out


def run(switch, argv: list[str], ctx=None) -> Result:
    """Runs ``conntrack ARGV`` against ``switch``."""
    try:
        return _run(switch, argv)
    except _Error as e:
        err = VERSION + str(e) + "\n" + (TRY if e.code == 2 else "")
        return Result(err=err, code=e.code)


def _run(switch, argv: list[str]) -> Result:
    cmd, opts = _parse(argv)
    tr = switch.tracker
    now = switch.now
    if cmd is None:
        raise _Error("no command specified")
    if cmd == "V":
        return Result(out="conntrack v1.4.7 (conntrack-tools)\n")
    if cmd == "h":
        return Result(out=USAGE)
    if opts.get("table") == "expect":
        return _expect_table(tr, cmd, now)
    if cmd == "C":
        return Result(out=f"{tr.count}\n")
    if cmd == "S":
        return Result(out=render.stats_lines(tr.stats))
    if cmd == "F":
        tr.flush(now=now)
        return Result(err=VERSION + "connection tracking table has been emptied.\n", changed=True)
    fmt = _fmt(opts)
    pred = _filter(opts)
    if cmd == "E":
        return _events(tr, opts, fmt, pred)
    if cmd in ("L", "D"):
        if cmd == "L" and "zero" in opts and any(k in opts for k in FILTERS):
            raise _Error("Can't use -z with filtering parameters")
        tr.sweep(now)
        # A plain listing reads copies (frozen connections stay in the compact tier); -D and -z
        # change the connections themselves.
        src = tr.iter_conns() if cmd == "D" or "zero" in opts else tr.snapshot()
        hits = [c for c in src if pred(c)]
        out = _lines(hits, now, fmt)
        if cmd == "L":
            if "zero" in opts:
                for c in hits:
                    c.packets = [0, 0]
                    c.bytes = [0, 0]
            return Result(out=out, err=VERSION + f"{len(hits)} flow entries have been shown.\n",
                          changed="zero" in opts)
        for c in hits:
            tr.delete(c, now)
        return Result(out=out, err=VERSION + f"{len(hits)} flow entries have been deleted.\n",
                      code=0 if hits else 1, changed=bool(hits))
    if cmd == "G":
        need = ("src", "dst", "proto")
        if not all(k in opts for k in need):
            raise _Error("You need to supply the `--src', `--dst' and `--protonum' options")
        tr.sweep(now)
        conn = _get(tr, opts)
        if conn is None:
            raise _Error("Operation failed: such conntrack doesn't exist", 1)
        return Result(out=_lines([conn], now, fmt), err=VERSION + "1 flow entries have been shown.\n")
    raise _Error("no command specified")


class _Event:
    """The attributes of one recorded event line that conntrack's filters look at (events are
    kept as the text the kernel's message renders to; an attribute the message leaves out,
    such as a zero mark or zone, reads as 0)."""

    __slots__ = ("proto", "ip_ver", "orig", "reply", "zone", "mark", "status", "state", "id")

    def __init__(self, line: str) -> None:
        toks = line.split()
        self.proto = int(toks[2]) if len(toks) > 2 and toks[2].isdigit() else -1
        self.ip_ver = 4
        self.zone = self.mark = self.status = 0
        self.state = -1
        self.id = -1
        tuples: list[dict] = []
        for t in toks[3:]:
            k, eq, v = t.partition("=")
            if not eq:
                if t in STATE_BY_NAME:
                    self.state = STATE_BY_NAME[t]
                elif t.startswith("[") and t[1:-1] in STATUS:
                    self.status |= STATUS[t[1:-1]]
                continue
            if k == "src":
                tuples.append({})
            if k in ("src", "dst"):
                a = ipaddress.ip_address(v)
                self.ip_ver = a.version
                tuples[-1][k] = int(a)
            elif k in ("sport", "dport", "type", "code", "id") and tuples:
                tuples[-1][k] = int(v)
            elif k == "mark":
                self.mark = int(v)
            elif k == "zone":
                self.zone = int(v)
        if "[UNREPLIED]" not in toks:
            self.status |= IPS_SEEN_REPLY
        icmp = self.proto in (1, 58)
        tt = [(d.get("src", 0), d.get("dst", 0),
               d.get("id", 0) if icmp else d.get("sport", 0),
               (d.get("type", 0) << 8 | d.get("code", 0)) if icmp else d.get("dport", 0))
              for d in tuples[:2]]
        tt += [(0, 0, 0, 0)] * (2 - len(tt))
        self.orig, self.reply = tt


def _events(tr, opts: dict, fmt: set, pred) -> Result:
    """``-E``: the recorded NEW/UPDATE/DESTROY events that pass the filters, as conntrack's
    ``event_cb`` prints them (``-o timestamp``: ``[%-.8ld.%-.6ld]\t`` of the switch clock;
    ``-o extended``: the ``ipv4     2 `` layer-3 prefix after the event tag); the summary
    ``N flow events have been shown.`` goes to stderr.

    Against a running daemon the client polls with ``--ctswitch-since SEQ`` (the events after
    sequence number SEQ; err carries the new one).  Without a daemon there is no listener
    running in the background: the first ``-E`` subscribes (turns event recording on) and each
    ``-E`` prints, then drains, what was recorded since the previous one."""
    def render_event(ts: int, line: str) -> str:
        if "extended" in fmt:
            l3 = "ipv6     10 " if ":" in line.split("src=", 1)[-1].split(" ", 1)[0] else "ipv4     2 "
            line = line[:10] + l3 + line[10:]
        if "timestamp" in fmt:
            line = f"[{ts // 1000:08d}.{ts % 1000 * 1000:06d}]\t" + line
        return line + "\n"

    def shown(events) -> list[str]:
        return [render_event(ts, line) for ts, kind, line in events
                if kind in ("NEW", "UPDATE", "DESTROY") and pred(_Event(line))]

    events = list(tr.events)
    since = opts.get("ctswitch-since")
    if since is not None:
        base = getattr(tr, "events_total", len(events)) - len(events)
        try:
            events = events[max(int(since) - base, 0):]
        except ValueError:
            return Result(err="conntrack: bad --ctswitch-since\n", code=2)
        return Result(out="".join(shown(events)), err=f"{getattr(tr, 'events_total', 0)}\n")
    lines = shown(events)
    changed = not tr.events_enabled or bool(tr.events)
    tr.events_enabled = True
    tr.events.clear()
    return Result(out="".join(lines), err=VERSION + f"{len(lines)} flow events have been shown.\n",
                  changed=changed)


def _expect_table(tr, cmd: str, now: int) -> Result:
    """``conntrack -L|-F|-C expect``: the helpers' expectations (libnetfilter_conntrack's
    expect line: timeout, the expected tuple with any source port, its mask, the master's
    original tuple, class and helper)."""
    exps = tr.expectations(now)
    if cmd == "C":
        return Result(out=f"{len(exps)}\n")
    if cmd == "F":
        for e in exps:
            tr.unexpect(e.master)
        return Result(err=VERSION + "expectation table has been emptied.\n", changed=bool(exps))
    if cmd != "L":
        raise _Error("this command is not supported on the expectation table", 1)
    lines = []
    for e in exps:
        a = render.addr
        full = "255.255.255.255" if e.ip_ver == 4 else "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        m = e.master
        lines.append(f"{max(e.expires - now, 0) // 1000} proto={e.proto} src={a(e.ip_ver, e.src)} "
                     f"dst={a(e.ip_ver, e.dst)} sport=0 dport={e.dport} mask-src={full} mask-dst={full} "
                     f"sport=0 dport=65535 master-src={a(m.ip_ver, m.orig[0])} master-dst={a(m.ip_ver, m.orig[1])} "
                     f"sport={m.orig[2]} dport={m.orig[3]} class=0 helper={HELPER_NAMES.get(e.helper, e.helper)}\n")
    return Result(out="".join(lines), err=VERSION + f"{len(lines)} expectations have been shown.\n")


def _lines(conns, now: int, fmt: set) -> str:
    if "xml" in fmt:
        if not conns:
            return ""
        return render.XML_HEAD + "".join(render.xml_flow(c, now) + "\n" for c in conns) + render.XML_TAIL
    return "".join(render.conntrack_line(c, now, fmt) + "\n" for c in conns)


def _get(tr, opts: dict):
    """``-G``: the kernel's exact lookup of one tuple (either direction) in the zone of ``-w``
    (0 by default); ports (or ICMP id/type/code) left out are 0."""
    ver, src = _addr(opts["src"])
    ver2, dst = _addr(opts["dst"])
    if ver != ver2:
        raise _Error("mismatched address family")
    p = str(opts["proto"]).lower()
    proto = PROTOS.get(p, int(p) if p.isdigit() else -1)
    if proto in (1, 58):
        tup = (src, dst, _int(opts.get("icmp-id", "0"), ""),
               (_int(opts.get("icmp-type", "0"), "") << 8) | _int(opts.get("icmp-code", "0"), ""))
    else:
        tup = (src, dst, _int(opts.get("sport", "0"), ""), _int(opts.get("dport", "0"), ""))
    return tr.find(_int(opts.get("zone", "0"), ""), ver, proto, tup)


def proc_nf_conntrack(switch) -> str:
    """The text of ``/proc/net/nf_conntrack``."""
    tr = switch.tracker
    tr.sweep(switch.now)
    return "".join(render.proc_line(c, switch.now) + "\n" for c in tr.snapshot())  # thaws nothing


USAGE = """Command line interface for the connection tracking system. Version 1.4.7
Usage: conntrack [commands] [options]

Commands:
  -L [table] [options]\t\tList conntrack or expectation table
  -G [table] parameters\t\tGet conntrack or expectation
  -D [table] parameters\t\tDelete conntrack or expectation
  -E [table] [options]\t\tShow events
  -F [table]\t\t\tFlush table
  -C [table]\t\t\tShow counter
  -S\t\t\t\tShow statistics

Tables: conntrack, expect (-L, -C, -F)

Conntrack parameters and options:
  -n, --src-nat ip\t\t\tsource NAT ip
  -g, --dst-nat ip\t\t\tdestination NAT ip
  -j, --any-nat ip\t\t\tsource or destination NAT ip
  -m, --mark mark\t\t\tSet mark
  -z, --zero \t\t\t\tZero counters while listing
  -o, --output type[,...]\t\tOutput format, eg. xml
  -w, --zone value\t\t\tSet conntrack zone

Common parameters and options:
  -s, --src, --orig-src ip\t\tSource address from original direction
  -d, --dst, --orig-dst ip\t\tDestination address from original direction
  -r, --reply-src ip\t\tSource addres from reply direction
  -q, --reply-dst ip\t\tDestination address from reply direction
  -p, --protonum proto\t\tLayer 4 Protocol, eg. 'tcp'
  -f, --family proto\t\tLayer 3 Protocol, eg. 'ipv6'
  -u, --status status\t\tSet status, eg. ASSURED
"""
