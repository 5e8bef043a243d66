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
def _parse_ct_next(text: str) -> int | None:
    bits = 0
    for tok in text.replace("+", ",").replace("|", ",").split(","):
        tok = tok.strip()
        if not tok:
            continue
        neg = tok.startswith("-")
        name = tok.lstrip("-")
        for n, b in CS_NAMES:
            if n == name:
                if not neg:
                    bits |= b
                break
        else:
            return None
    return bits


class _Formatter:
    def __init__(self, br):
        self.br = br

    def rule(self, rule) -> str:
        from ..flow.ofctl_syntax import format_match
        m = format_match(rule.match, 32768, self.br.names, names=True)
        return f"{m or ''}{', ' if m else ''}priority {rule.priority}" + (
            f", cookie {rule.cookie:#x}" if rule.cookie else "")

    def actions(self, acts) -> str:
        from ..flow.ofctl_syntax import format_actions
        return format_actions(acts, self.br.names, names=True)


def trace(switch, argv: list[str], ctx=None) -> Result:
    from ..flow.ofctl_syntax import FlowSyntaxError, parse_flow
    from ..ofproto import xlate
    from ..packet import codec
    ct_next: list[int] = []
    args = []
    i = 0
    while i < len(argv):
        if argv[i] == "--ct-next":
            if i + 1 >= len(argv):
                return _err("missing argument to --ct-next")
            b = _parse_ct_next(argv[i + 1])
            if b is None:
                return _err(f"{argv[i + 1]}: unknown ct_state flag")
            ct_next.append(b)
            i += 2
            continue
        if argv[i].startswith("--ct-next="):
            b = _parse_ct_next(argv[i].split("=", 1)[1])
            if b is None:
                return _err(f"{argv[i]}: unknown ct_state flag")
            ct_next.append(b)
        else:
            args.append(argv[i])
        i += 1
    if len(args) < 2:
        return _err('"ofproto/trace" command requires at least 2 arguments')
    br = switch.bridges.get(args[0])
    if br is None:
        return _err("no bridge named " + args[0])
    pkt = None
    hexarg = args[2] if len(args) > 2 else None
    if hexarg is None and all(c in "0123456789abcdefABCDEF" for c in args[1]) and len(args[1]) >= 28:
        hexarg, args = args[1], [args[0], "in_port=LOCAL"]
    try:
        spec = parse_flow(args[1], br.names, command="dump")
    except FlowSyntaxError as e:
        return _err(str(e))
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
    return format_match(Match(tuple(key), tuple(mask)), 32768, br.names, names=True)


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
    "dpctl/ct-set-limits": "ctswitch.control.dpctl:ct_set_limits",
    "dpctl/ct-get-limits": "ctswitch.control.dpctl:ct_get_limits",
    "dpctl/ct-del-limits": "ctswitch.control.dpctl:ct_del_limits",
    "dpctl/ct-set-maxconns": "ctswitch.control.dpctl:ct_set_maxconns",
    "dpctl/ct-get-maxconns": "ctswitch.control.dpctl:ct_get_maxconns",
    "dpctl/ct-get-nconns": "ctswitch.control.dpctl:ct_get_nconns",
    "dpctl/dump-flows": "ctswitch.control.dpctl:dump_flows",
    "dpctl/offload-stats-show": "ctswitch.control.offload_tool:offload_stats_show",
}
