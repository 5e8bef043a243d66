"""ovs-appctl: the unixctl commands of ovs-vswitchd that matter for CT pipelines, and ``time``.

Supported: ofproto/trace (flow text or packet hex, --ct-next), dpctl/dump-conntrack,
dpctl/flush-conntrack, dpctl/ct-stats-show, dpctl/ct-set-limits, ct-get-limits,
ct-del-limits, ct-set-maxconns, ct-get-maxconns, ct-get-nconns, dpctl/dump-flows,
dpctl/offload-stats-show, fdb/show, fdb/flush, time/warp, time/stop, revalidator/wait,
revalidator/purge, version, list-commands.
"""

from __future__ import annotations

import importlib

from ..flow.key import CS_NAMES, extract
from .result import Result

VERSION = "ovs-vswitchd (Open vSwitch) 3.1.0\n"


def _err(msg: str, code: int = 2) -> Result:
    return Result(err=f"{msg}\novs-appctl: ovs-vswitchd: server returned an error\n", code=code)


def _lazy(spec: str):
    mod, _, fn = spec.partition(":")
    return getattr(importlib.import_module(mod), fn)


def run(switch, argv: list[str], ctx=None) -> Result:
    args = [a for a in argv if not a.startswith("--target") and a not in ("-t",)]
    if args and args[0] in ("-h", "--help"):
        return Result(out="usage: ovs-appctl COMMAND [ARG...]\n" + "".join(f"  {c}\n" for c in sorted(_COMMANDS)))
    if not args:
        return Result(err="ovs-appctl: at least one non-option argument is required (use --help for help)\n", code=1)
    cmd, rest = args[0], args[1:]
    fn = _COMMANDS.get(cmd)
    if fn is None:
        return _err(f'"{cmd}" is not a valid command (use "list-commands" to see a list of valid commands)')
    if isinstance(fn, str):
        try:
            fn = _lazy(fn)
        except (ImportError, AttributeError):
            return _err(f"{cmd}: not available in this build")
    return fn(switch, rest, ctx)


# ---------------------------------------------------------------------- ofproto/trace
def _parse_ct_next(text: str) -> tuple[int | None, str]:
    """``--ct-next FLAGS`` as OVS parses it (lib/flow.c ``parse_ct_state`` then
    ``validate_ct_state``): flag names separated by commas or spaces, no ``+``/``-``/``|``.

    Returns (bits, "") or (None, the error OVS prints).
    """
    bits = 0
    names = dict(CS_NAMES)
    for tok in text.replace(",", " ").split():
        b = names.get(tok)
        if b is None:
            return None, f"{tok}: unknown connection tracking state flag"
        bits |= b
    state = "|".join(n for n, b in CS_NAMES if bits & b)
    trk, inv, new, est, rpl = (names[n] for n in ("trk", "inv", "new", "est", "rpl"))
    if bits and not bits & trk:
        return None, f'{state}: invalid connection state: If "trk" is unset, no other flags are set'
    if bits & inv and bits & ~(trk | inv):
        return None, f'{state}: invalid connection state: when "inv" is set, only "trk" may also be set'
    if bits & new and bits & est:
        return None, f'{state}: invalid connection state: "new" and "est" are mutually exclusive'
    if bits & new and bits & rpl:  # sic: OVS 3.1 says "rpy"
        return None, f'{state}: invalid connection state: "new" and "rpy" are mutually exclusive'
    return bits, ""


class _Formatter:
    """Rules and actions as ofproto/trace prints them: port numbers, not names (OVS formats
    the trace with no port map)."""

    def __init__(self, br):
        self.br = br

    def rule(self, rule) -> str:
        from ..flow.ofctl_syntax import format_match
        m = format_match(rule.match, 32768, self.br.names, names=False)
        return f"{m or ''}{', ' if m else ''}priority {rule.priority}" + (
            f", cookie {rule.cookie:#x}" if rule.cookie else "")

    def actions(self, acts) -> str:
        from ..flow.ofctl_syntax import format_actions
        return format_actions(acts, self.br.names, names=False)

    def flow(self, key: list[int], recirc_id: int) -> str:
        """A flow as the trace's ``Flow:``/``Final flow:`` lines print it (flow_format): after a
        recirculation, recirc_id and the set ct_* fields lead, then ``eth``."""
        from ..flow import key as K
        if not recirc_id:
            return flow_summary(self.br, key)
        parts = [f"recirc_id={recirc_id:#x}"]
        cs = key[K.CT_STATE]
        if cs:
            parts.append("ct_state=" + "|".join(n for n, b in K.CS_NAMES if cs & b))
        if key[K.CT_ZONE]:
            parts.append(f"ct_zone={key[K.CT_ZONE]}")
        if key[K.CT_MARK]:
            parts.append(f"ct_mark={key[K.CT_MARK]:#x}")
        if key[K.CT_LABEL]:
            parts.append(f"ct_label={key[K.CT_LABEL]:#x}")
        rest = list(key)
        for i in (K.CT_STATE, K.CT_ZONE, K.CT_MARK, K.CT_LABEL):
            rest[i] = 0
        return ",".join(parts) + ",eth," + flow_summary(self.br, rest)


# Protocol keywords of the exact-flow syntax and what they make true for prerequisites.
_L3_PROTOS = {"ip": "ip", "ipv4": "ip", "ip4": "ip", "icmp": "ip", "tcp": "ip", "udp": "ip", "sctp": "ip",
              "ipv6": "ip6", "ip6": "ip6", "icmp6": "ip6", "tcp6": "ip6", "udp6": "ip6", "sctp6": "ip6",
              "arp": "arp", "rarp": "arp"}
_TCP_PROTOS = ("tcp", "tcp6")
_NEEDS_IP = ("nw_src", "nw_dst", "ip_src", "ip_dst")
_NEEDS_IP_ANY = ("nw_proto", "nw_tos", "nw_ecn", "nw_ttl", "ip_proto", "ip_dscp", "ip_ecn", "ip_ttl")
_NEEDS_IP6 = ("ipv6_src", "ipv6_dst", "ipv6_label")
_NEEDS_TCP = ("tp_src", "tp_dst", "tcp_src", "tcp_dst", "tcp_flags")


def _exact_flow_prereq(text: str) -> str | None:
    """The field of a trace flow whose prerequisites are not met yet where it is set.

    ofproto/trace parses its flow with ``parse_ofp_exact_flow`` (lib/ofp-parse.c), which
    checks each field's prerequisites (``mf_are_prereqs_ok``) against what the text set
    *before* it.  There ``tp_src``/``tp_dst`` are aliases of ``tcp_src``/``tcp_dst``, so
    ``udp,tp_src=1`` is refused (``udp_src`` is the UDP field).
    """
    l3 = proto = ""
    for tok in text.replace(",", " ").split():
        name = tok.split("=", 1)[0].strip()
        if name in _L3_PROTOS:
            l3, proto = _L3_PROTOS[name], name
            continue
        if name in ("dl_type", "eth_type") and "=" in tok:
            v = tok.split("=", 1)[1].lower()
            l3 = {"0x0800": "ip", "0x800": "ip", "2048": "ip", "0x86dd": "ip6", "34525": "ip6",
                  "0x0806": "arp", "0x806": "arp", "2054": "arp"}.get(v, "")
            continue
        if name in ("nw_proto", "ip_proto") and "=" in tok and l3 in ("ip", "ip6"):
            n = tok.split("=", 1)[1]
            proto = {"6": "tcp", "17": "udp", "1": "icmp", "58": "icmp6"}.get(n, proto)
            continue
        if ((name in _NEEDS_IP and l3 != "ip") or (name in _NEEDS_IP_ANY and l3 not in ("ip", "ip6"))
                or (name in _NEEDS_IP6 and l3 != "ip6")
                or (name in _NEEDS_TCP and (l3 not in ("ip", "ip6") or proto not in _TCP_PROTOS + ("tcp",)))):
            return name
    return None


def trace(switch, argv: list[str], ctx=None) -> Result:
    """``ofproto/trace BRIDGE FLOW [--ct-next FLAGS]...`` (or ``BRIDGE in_port=N PACKET_HEX``)."""
    from ..flow.ofctl_syntax import FlowSyntaxError, parse_flow
    from ..ofproto import xlate
    from ..packet import codec
    ct_next: list[int] = []
    args = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--ct-next":
            if i + 1 >= len(argv):
                return _err("Missing argument for option --ct-next")
            b, why = _parse_ct_next(argv[i + 1])
            if b is None:
                return _err(why)
            ct_next.append(b)
            i += 2
            continue
        if a.startswith("--"):
            return _err(f"{a}: unknown option")
        args.append(a)
        i += 1
    if len(args) < 2:
        first = args[0] if args else ""
        return _err(f"syntax error at {first} (or the bridge name was omitted)" if first
                    else '"ofproto/trace" command requires at least 1 arguments')
    br = switch.bridges.get(args[0])
    if br is None:
        return _err(f"{args[0]}: unknown bridge")
    pkt = None
    hexarg = args[2] if len(args) > 2 else None
    if hexarg is None and all(c in "0123456789abcdefABCDEF" for c in args[1]) and len(args[1]) >= 28:
        hexarg, args = args[1], [args[0], "in_port=LOCAL"]
    if hexarg is None:
        bad = _exact_flow_prereq(args[1])
        if bad is not None:
            return _err(f"Bad openflow flow syntax: {args[1]}: prerequisites not met for setting {bad}")
    try:
        spec = parse_flow(args[1], br.names, command="dump")
    except FlowSyntaxError as e:
        msg = str(e)
        if msg.startswith("unknown keyword "):
            msg = "unknown field " + msg[len("unknown keyword "):]
        return _err(f"Bad openflow flow syntax: {args[1]}: {msg}")
    if hexarg is not None:
        try:
            frame = bytes.fromhex(hexarg)
        except ValueError:
            return _err("Trailing garbage in packet data")
        pkt = codec.parse(frame)
        if pkt.drop:
            return _err(f"malformed packet: {pkt.drop}")
        from ..flow.key import IN_PORT
        key = extract(pkt, spec.match.values[IN_PORT])
    else:
        key = list(spec.match.values)
    flow_text = flow_summary(br, key)
    tr = xlate.translate(br, pkt, key, switch.now, trace=True, ct_next=ct_next or None,
                         formatter=_Formatter(br))
    lines = [f"Flow: {flow_text}", "", f'bridge("{br.name}")', "-" * (len(br.name) + 10)]
    lines.extend(tr.trace)
    return Result(out="\n".join(lines) + "\n")


def flow_summary(br, key: list[int]) -> str:
    """The ``Flow:`` line of ofproto/trace: the packet's header fields exactly, plus the
    metadata (registers, ct_*, metadata) that is set."""
    from ..flow import key as K
    from ..flow.key import Match
    from ..flow.ofctl_syntax import format_match
    mask = list(K.EXACT)
    for i in range(K.N_FIELDS):
        if i >= K.CT_STATE and not key[i]:
            mask[i] = 0
    if key[K.DL_TYPE] != 0x86DD:
        mask[K.IPV6_SRC] = mask[K.IPV6_DST] = mask[K.IPV6_LABEL] = 0
    if key[K.DL_TYPE] != 0x0806:
        mask[K.ARP_SHA] = mask[K.ARP_THA] = 0
    else:  # ARP: flow_format() prints no IP tos/ttl/frag or L4 fields
        for i in (K.NW_TOS, K.NW_ECN, K.NW_TTL, K.NW_FRAG, K.TP_SRC, K.TP_DST):
            mask[i] = 0
    if key[K.DL_TYPE] in (0x0800, 0x86DD) and key[K.NW_PROTO] not in (1, 6, 17, 58, 132):
        mask[K.TP_SRC] = mask[K.TP_DST] = 0  # no L4 header that flow_format() knows
    # flow_format() is called without a port map: in_port is a number
    return format_match(Match(tuple(key), tuple(mask)), 32768, br.names, names=False)


# ---------------------------------------------------------------------- time
def time_warp(switch, argv: list[str], ctx=None, *, unit_ms: int = 1) -> Result:
    if not argv:
        return _err('"time/warp" command requires at least 1 arguments')
    try:
        total = int(float(argv[0]) * unit_ms)
        step = int(argv[1]) if len(argv) > 1 else 0
    except ValueError:
        return _err(f"{argv[0]}: invalid time")
    if total < 0:
        return _err("time/warp: negative time")
    advance(switch, total, step)
    return Result(out="warped\n", changed=True)


def advance(switch, total_ms: int, step_ms: int = 0) -> None:
    """Moves the switch clock forward by ``total_ms``, running the timers on the way.

    Timers run every ``step_ms`` (default: every second of switch time, coarser for very
    long warps so that a warp of days stays cheap: at most about 2000 steps).
    """
    if step_ms <= 0:
        step_ms = max(1000, total_ms // 2000)
    end = switch.now + total_ms
    dp = switch.datapath
    while switch.now < end:
        switch.now = min(end, switch.now + step_ms)
        if dp is not None:
            dp.tick(switch.now)


def time_cmd(switch, argv: list[str], ctx=None) -> Result:
    """``ctswitch time warp SECONDS`` / ``ctswitch time show``."""
    if not argv or argv[0] in ("-h", "--help"):
        return Result(out="usage: ctswitch time warp SECONDS | ctswitch time show\n")
    if argv[0] == "warp":
        r = time_warp(switch, argv[1:2], ctx, unit_ms=1000)
        if r.code:
            return Result(err=f"ctswitch time: {argv[1] if len(argv) > 1 else ''}: invalid number of seconds\n", code=2)
        return Result(out=f"switch time is now {switch.now / 1000:.3f} s\n", changed=True)
    if argv[0] == "show":
        return Result(out=f"switch time is {switch.now / 1000:.3f} s\n")
    return Result(err=f"ctswitch time: unknown subcommand '{argv[0]}'\n", code=2)


def _ok(switch, argv, ctx=None) -> Result:
    return Result()


def _version(switch, argv, ctx=None) -> Result:
    return Result(out=VERSION)


def _list(switch, argv, ctx=None) -> Result:
    return Result(out="The available commands are:\n" + "".join(f"  {c}\n" for c in sorted(_COMMANDS)))


def fdb_show(switch, argv, ctx=None) -> Result:
    if not argv or argv[0] not in switch.bridges:
        return _err("no such bridge")
    br = switch.bridges[argv[0]]
    aging = int(switch.params.get("other_config:mac-aging-time")) * 1000
    out = [" port  VLAN  MAC                Age"]
    for (vlan, mac), (port, t) in sorted(br.mac.items(), key=lambda kv: (kv[1][0], kv[0])):
        if switch.now - t >= aging:
            continue
        name = "LOCAL" if port == 0xFFFE else str(port)
        macs = ":".join(f"{(mac >> s) & 0xff:02x}" for s in range(40, -8, -8))
        out.append(f"{name:>5}  {vlan:>4}  {macs}  {(switch.now - t) // 1000:>3}")
    return Result(out="\n".join(out) + "\n")


def fdb_flush(switch, argv, ctx=None) -> Result:
    for name, br in switch.bridges.items():
        if argv and name != argv[0]:
            continue
        br.mac.clear()
        br.generation += 1
    return Result(out="table successfully flushed\n", changed=True)


_COMMANDS = {
    "ofproto/trace": trace,
    "time/warp": time_warp,
    "time/stop": _ok,
    "revalidator/wait": _ok,
    "revalidator/purge": _ok,
    "version": _version,
    "list-commands": _list,
    "fdb/show": fdb_show,
    "fdb/flush": fdb_flush,
    "dpctl/dump-conntrack": "ctswitch.control.dpctl:dump_conntrack",
    "dpctl/flush-conntrack": "ctswitch.control.dpctl:flush_conntrack",
    "dpctl/ct-stats-show": "ctswitch.control.dpctl:ct_stats_show",
    "dpctl/ct-bkts": "ctswitch.control.dpctl:ct_bkts",
    "dpctl/ct-set-limits": "ctswitch.control.dpctl:ct_set_limits",
    "dpctl/ct-get-limits": "ctswitch.control.dpctl:ct_get_limits",
    "dpctl/ct-del-limits": "ctswitch.control.dpctl:ct_del_limits",
    "dpctl/ct-set-maxconns": "ctswitch.control.dpctl:ct_set_maxconns",
    "dpctl/ct-get-maxconns": "ctswitch.control.dpctl:ct_get_maxconns",
    "dpctl/ct-get-nconns": "ctswitch.control.dpctl:ct_get_nconns",
    "dpctl/dump-flows": "ctswitch.control.dpctl:dump_flows",
    "dpctl/offload-stats-show": "ctswitch.control.offload_tool:offload_stats_show",
}
