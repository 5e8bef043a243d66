"""ovs-ofctl: OpenFlow flow-table management with OVS's syntax, messages and output.

Supported: add-flow, add-flows (FILE or -), del-flows [--strict], mod-flows [--strict],
dump-flows [--no-stats] [--names|--no-names] [--sort[=F]] [--rsort[=F]], show, dump-ports,
dump-tables, dump-desc.  Options OVS accepts and that do not change anything here
(-O/--protocols, --timeout, --readd, -F) are accepted.

Port and table names are shown when stdout is a terminal (as ovs-ofctl does on an
interactive console), numbers otherwise; ``--names``/``--no-names`` force it.
"""

from __future__ import annotations

import os
import zlib

from ..flow import key as K
from ..flow.actions import Ct, SetField
from ..flow.ofctl_syntax import (
    FF_RESET_COUNTS,
    FlowSyntaxError,
    format_actions,
    format_flow_stats,
    format_match,
    parse_flow,
    wire_actions,
)
from ..ofproto.rule import Rule
from .result import Result

USAGE = """\
ovs-ofctl: OpenFlow switch management utility (ctswitch)
usage: ovs-ofctl [OPTIONS] COMMAND [ARG...]
  add-flow SWITCH FLOW        add flow described by FLOW
  add-flows SWITCH FILE       add flows from FILE (- for stdin)
  mod-flows SWITCH FLOW       modify actions of matching FLOWs
  del-flows SWITCH [FLOW]     delete matching FLOWs
  dump-flows SWITCH [FLOW]    print matching FLOWs
  show SWITCH                 show OpenFlow information
  dump-ports SWITCH [PORT]    print port statistics
  dump-tables SWITCH          print table stats
  dump-desc SWITCH            print switch description
Options: --strict, --no-stats, --names, --no-names, --sort[=FIELD], --rsort[=FIELD],
  -O/--protocols=VERSION (accepted)
"""

_NOARG_OPTS = {"--strict", "--no-stats", "--names", "--no-names", "--readd", "--bundle",
               "--may-create", "--color", "--no-color", "-m", "--more", "--read-only"}
_ARG_OPTS = {"-O", "--protocols", "-F", "--flow-format", "-t", "--timeout", "-P", "--packet-in-format"}


def _err(msg: str, code: int = 1) -> Result:
    return Result(err=f"ovs-ofctl: {msg}\n", code=code)


def run(switch, argv: list[str], ctx=None) -> Result:
    """Runs one ovs-ofctl command line (argv without the program name)."""
    opts: dict[str, str | bool] = {}
    args: list[str] = []
    i = 0
    dashdash = False
    while i < len(argv):
        a = argv[i]
        if a == "--" and not dashdash:
            dashdash = True
            i += 1
            continue
        if a in ("-h", "--help") and not dashdash:
            return Result(out=USAGE)
        # Options may come anywhere (getopt_long permutes), as with the real ovs-ofctl.
        if a.startswith("-") and len(a) > 1 and not dashdash and a != "-":
            name, eq, val = a.partition("=")
            if name in ("--sort", "--rsort"):
                opts[name] = val if eq else True
            elif name in _NOARG_OPTS:
                opts[name] = True
            elif name in _ARG_OPTS:
                if not eq:
                    i += 1
                    if i >= len(argv):
                        return _err(f"option '{name}' requires an argument")
                opts[name] = val if eq else argv[i]
            elif a.startswith("-O") and len(a) > 2:
                opts["-O"] = a[2:]
            else:
                return _err(f"unrecognized option '{a}'")
        else:
            args.append(a)
        i += 1
    if not args:
        return _err("missing command name; use --help for help")
    cmd, rest = args[0], args[1:]
    handler = _COMMANDS.get(cmd)
    if handler is None:
        return _err(f"unknown command '{cmd}'; use --help for help")
    fn, lo, hi = handler
    if len(rest) < lo:
        return _err(f"'{cmd}' command requires at least {lo} arguments")
    if len(rest) > hi:
        return _err(f"'{cmd}' command takes at most {hi} arguments")
    versions = _versions(opts)
    if isinstance(versions, str):
        return _err(f'Unknown OpenFlow version: "{versions}"')
    opts["versions"] = versions
    br = switch.bridges.get(rest[0])
    if br is None:
        return _err(f"{rest[0]} is not a bridge or a socket")
    try:
        return fn(switch, br, rest[1:], opts, ctx)
    except FlowSyntaxError as e:
        return _err(str(e))
    except SwitchRefused as e:
        return Result(err=e.text(br.names), code=1)


_VERSION_NAMES = {"openflow10": 1, "openflow11": 2, "openflow12": 3, "openflow13": 4, "openflow14": 5,
                  "openflow15": 6}
_FORMATS = {1: "OpenFlow10,NXM", 2: "OpenFlow11", 3: "OXM-OpenFlow12", 4: "OXM-OpenFlow13",
            5: "OXM-OpenFlow14", 6: "OXM-OpenFlow15"}


def _versions(opts) -> set[int] | str:
    """The OpenFlow versions ``-O``/``--protocols`` allows (ovs-ofctl's default: 1.0 only),
    or the first name it does not know."""
    text = opts.get("-O") or opts.get("--protocols")
    if not text or text is True:
        return {1}
    out = set()
    for name in str(text).split(","):
        v = _VERSION_NAMES.get(name.strip().lower())
        if v is None:
            return name.strip()
        out.add(v)
    return out


def _parse(text: str, br, opts, command: str):
    """parse_flow, then ovs-ofctl's protocol choice: a flow needing a later OpenFlow version
    than ``-O`` allows is refused as ovs-ofctl refuses it."""
    spec = parse_flow(text, br.names, command=command)
    versions = opts.get("versions") or {1}
    if spec.usable and max(versions) < spec.min_version:
        allowed = ",".join(_FORMATS[v] for v in sorted(versions))
        raise FlowSyntaxError(f"none of the usable flow formats ({spec.usable}) is among the allowed "
                              f"flow formats ({allowed})")
    return spec


def _names(opts) -> bool:
    if opts.get("--names"):
        return True
    if opts.get("--no-names"):
        return False
    return bool(os.isatty(1)) if hasattr(os, "isatty") else False


# Slots an OpenFlow 1.0 match can carry (exactly, except CIDR IPv4); anything else needs NXM.
_OF10_SLOTS = {K.IN_PORT, K.DL_SRC, K.DL_DST, K.VLAN_TCI, K.DL_TYPE, K.NW_TOS, K.NW_PROTO, K.NW_SRC, K.NW_DST,
               K.TP_SRC, K.TP_DST}


def _nxm_actions(actions) -> bool:
    """set_field (outside the OpenFlow 1.0 mod_* spellings) makes ovs-ofctl use NXM."""
    for a in actions:
        if isinstance(a, SetField) and a.spelling == "set_field":
            return True
        if isinstance(a, Ct) and _nxm_actions(a.exec):
            return True
    return False


def _needs_nxm(match) -> bool:
    for i, m in enumerate(match.mask):
        if not m:
            continue
        if i not in _OF10_SLOTS:
            return True
        if i in (K.NW_SRC, K.NW_DST):
            inv = ~m & 0xFFFFFFFF
            if inv & (inv + 1):
                return True
        elif i != K.VLAN_TCI and i != K.NW_TOS and m != K.EXACT[i]:
            return True
    return False


class SwitchRefused(Exception):
    """The switch side refused a flow mod (an OpenFlow error reply).

    ovs-ofctl prints the error and the refused message without its ``ovs-ofctl:`` prefix:
    ``OFPT_ERROR (xid=0x6): OFPBAC_BAD_ARGUMENT`` then ``OFPT_FLOW_MOD (xid=0x6): ...``
    (``NXT_FLOW_MOD`` and xid 0x8 when the flow needed NXM or a table id; the xid follows
    the messages ovs-ofctl sent first).  A message the switch could not decode is shown as a
    decode error (OVS adds a hex dump, which ctswitch leaves out)."""

    def __init__(self, error: str, spec=None) -> None:
        super().__init__(error)
        self.error, self.spec = error, spec

    def text(self, ports=None) -> str:
        spec = self.spec
        if spec is None:
            return f"OFPT_ERROR (xid=0x2): {self.error}\n"
        nxm = _needs_nxm(spec.match) or _nxm_actions(spec.actions) or bool(spec.hidden)
        xid = 8 if nxm or spec.table else 6
        msg = "NXT_FLOW_MOD" if nxm else "OFPT_FLOW_MOD"
        if self.error in ("OFPBRC_EPERM", "OFPBAC_BAD_OUT_GROUP"):
            items = [x for x in format_match(spec.match, spec.priority, ports, False).split(",") if x]
            at = 1 if items and items[0].startswith("priority=") else 0
            match = ",".join(items[:at] + list(spec.hidden) + items[at:])
            body = "ADD" + (f" table:{spec.table}" if spec.table else "") + (f" {match}" if match else "")
            body += " actions=" + format_actions(wire_actions(spec.actions), ports, False)
        else:
            body = f"***decode error: {self.error}***"
        return f"OFPT_ERROR (xid={xid:#x}): {self.error}\n{msg} (xid={xid:#x}): {body}\n"


def _rule_from_spec(spec, now: int) -> Rule:
    if spec.prereq_error:
        raise SwitchRefused(spec.prereq_error, spec)
    # The switch stores what it will report back: the OpenFlow 1.0 + Nicira spellings.
    return Rule(spec.table, spec.priority, spec.match, wire_actions(spec.actions), cookie=spec.cookie,
                idle_timeout=spec.idle_timeout, hard_timeout=spec.hard_timeout,
                importance=spec.importance, flags=spec.flags, now=now)


def _flush_cache(switch) -> None:
    if switch.datapath is not None:
        switch.datapath.flush_cache()


def _overlaps(a, b) -> bool:
    """True when some packet can match both matches (they agree on every common bit)."""
    return all(((av ^ bv) & am & bm) == 0 for av, am, bv, bm in zip(a.values, a.mask, b.values, b.mask))


OVERLAP_CHECK_MAX = 1000  # tables up to this size get the equal-priority overlap log line


def _notes(switch, br, rule) -> str:
    """Warnings for a new rule: an ALG combined with NAT (the nf_nat_ftp/tftp part is not
    modelled), and an equal-priority overlap whose winner depends on insertion order (logged,
    as the CHOICE of docs says)."""
    err = ""
    for a in rule.actions:
        if isinstance(a, Ct) and a.alg and a.nat is not None:
            name = {21: "ftp", 69: "tftp"}.get(a.alg, str(a.alg))
            err += (f"ovs-ofctl: warning: ct(alg={name},nat): ctswitch models the {name} helper's "
                    f"expectations but not nf_nat_{name}: announced addresses are not rewritten\n")
    t = br.tables[rule.table_id]
    if t is None or len(t) > OVERLAP_CHECK_MAX:
        return err  # a large table: the check would make bulk adds quadratic
    for other in t:
        if other is not rule and other.priority == rule.priority and _overlaps(other.match, rule.match):
            switch.log.append(f"t={switch.now / 1000:.3f} {br.name}: table {rule.table_id}: flows of equal "
                              f"priority {rule.priority} overlap; the one added first wins")
            break
    return err


def cmd_add_flow(switch, br, args, opts, ctx) -> Result:
    spec = _parse(args[0], br, opts, "add")
    rule = br.add_rule(_rule_from_spec(spec, switch.now), reset_counts=bool(spec.flags & FF_RESET_COUNTS))
    _flush_cache(switch)
    return Result(err=_notes(switch, br, rule), changed=True)


def cmd_add_flows(switch, br, args, opts, ctx) -> Result:
    src = args[0]
    if src == "-":
        text = (getattr(ctx, "stdin", None) or "") if ctx is not None else ""
    else:
        path = src if os.path.isabs(src) or ctx is None else os.path.join(getattr(ctx, "cwd", "") or "", src)
        try:
            with open(path) as f:
                text = f.read()
        except OSError as e:
            return _err(f"{src}: open failed ({e.strerror})")
    specs = []
    for lineno, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        try:
            specs.append(_parse(s, br, opts, "add"))
        except FlowSyntaxError as e:
            return _err(f"{src}:{lineno}: {e}")
    rules = [_rule_from_spec(spec, switch.now) for spec in specs]  # all or nothing
    err = ""
    for spec, rule in zip(specs, rules):
        br.add_rule(rule, reset_counts=bool(spec.flags & FF_RESET_COUNTS))
        err += _notes(switch, br, rule)
    _flush_cache(switch)
    return Result(err=err, changed=True)


def _select(br, args, opts, command):
    if args:
        strict = bool(opts.get("--strict"))
        spec = _parse(args[0], br, opts, f"{command}-strict" if strict and command in ("del", "mod") else command)
        return spec, br.select(spec.match, spec.table, strict=strict,
                               priority=spec.priority if strict else None,
                               out_port=spec.out_port, cookie=spec.cookie, cookie_mask=spec.cookie_mask)
    return None, br.select(None, None)


def cmd_del_flows(switch, br, args, opts, ctx) -> Result:
    _spec, rules = _select(br, args, opts, "del")
    br.remove_rules(rules, switch.now)
    _flush_cache(switch)
    return Result(changed=True)


def cmd_mod_flows(switch, br, args, opts, ctx) -> Result:
    spec, rules = _select(br, args, opts, "mod")
    if spec.prereq_error:
        raise SwitchRefused(spec.prereq_error, spec)
    actions = wire_actions(spec.actions)
    for r in rules:
        r.actions = list(actions)
        r.modified_ms = switch.now
        if spec.cookie_given:
            r.cookie = spec.cookie
        if spec.flags & FF_RESET_COUNTS:
            r.n_packets = r.n_bytes = 0
    if rules:
        br.generation += 1
        _flush_cache(switch)
    return Result(changed=True)


_SORT_KEYS = {
    "priority": lambda r: r.priority, "table": lambda r: r.table_id, "cookie": lambda r: r.cookie,
    "n_packets": lambda r: r.n_packets, "n_bytes": lambda r: r.n_bytes,
}


def cmd_dump_flows(switch, br, args, opts, ctx) -> Result:
    if switch.datapath is not None:
        switch.datapath.sync_counters()
    _spec, rules = _select(br, args, opts, "dump")
    names = _names(opts)
    for opt, rev in (("--sort", False), ("--rsort", True)):
        if opts.get(opt):
            f = opts[opt]
            if f is True:
                rules.sort(key=lambda r: (r.priority, r.table_id), reverse=not rev)
                if not rev:
                    rules.reverse()
            else:
                k = _SORT_KEYS.get(f)
                if k is None:
                    return _err(f"{f}: unknown field for sorting")
                rules.sort(key=k, reverse=rev)
    stats = not opts.get("--no-stats")
    # Like ovs-ofctl: the reply header only on the plain dump (not with names, no-stats or sort).
    plain = stats and not names and not opts.get("--sort") and not opts.get("--rsort")
    lines = ["NXST_FLOW reply (xid=0x4):"] if plain else []
    for r in rules:
        lines.append(" " + format_flow_stats(r, br.names, switch.now, names=names, stats=stats))
    return Result(out="\n".join(lines) + "\n" if lines else "")


def _port_label(br, p, names: bool) -> str:
    from ..flow.actions import OFPP_LOCAL
    if p.ofport == OFPP_LOCAL:
        return "LOCAL"
    return p.name if names else str(p.ofport)


def cmd_show(switch, br, args, opts, ctx) -> Result:
    from ..flow.actions import OFPP_LOCAL
    dpid = f"{br.datapath_id or (zlib.crc32(br.name.encode()) & 0xFFFFFFFFFFFF):016x}"
    out = [f"OFPT_FEATURES_REPLY (xid=0x2): dpid:{dpid}",
           "n_tables:254, n_buffers:0",
           "capabilities: FLOW_STATS TABLE_STATS PORT_STATS QUEUE_STATS ARP_MATCH_IP",
           "actions: output enqueue set_vlan_vid set_vlan_pcp strip_vlan mod_dl_src mod_dl_dst "
           "mod_nw_src mod_nw_dst mod_nw_tos mod_tp_src mod_tp_dst"]
    ports = sorted(br.ports.values(), key=lambda p: (p.ofport == OFPP_LOCAL, p.ofport))
    for p in ports:
        label = "LOCAL" if p.ofport == OFPP_LOCAL else str(p.ofport)
        mac = 0x0200_0000_0000 | zlib.crc32(f"{br.name}/{p.name}".encode())  # stable across runs
        out.append(f" {label}({p.name}): addr:{':'.join(f'{(mac >> s) & 0xff:02x}' for s in range(40, -8, -8))}")
        out.append("     config:     0")
        out.append("     state:      0")
        out.append("     speed: 0 Mbps now, 0 Mbps max")
    out.append("OFPT_GET_CONFIG_REPLY (xid=0x4): frags=normal miss_send_len=0")
    return Result(out="\n".join(out) + "\n")


def cmd_dump_ports(switch, br, args, opts, ctx) -> Result:
    from ..flow.actions import OFPP_LOCAL
    names = _names(opts)
    ports = sorted(br.ports.values(), key=lambda p: (p.ofport != OFPP_LOCAL, p.ofport))
    if args:
        want = br.number(args[0]) if not args[0].isdigit() else int(args[0])
        if want is None:
            return _err(f"{args[0]}: unknown port")
        ports = [p for p in ports if p.ofport == want]  # a number no port has: an empty reply, as OVS
    out = [f"OFPST_PORT reply (xid=0x2): {len(ports)} ports"]
    for p in ports:
        label = _port_label(br, p, names)
        out.append(f"  port {label:>2}: rx pkts={p.rx_packets}, bytes={p.rx_bytes}, drop={p.rx_dropped}, "
                   f"errs=0, frame=0, over=0, crc=0")
        out.append(f"           tx pkts={p.tx_packets}, bytes={p.tx_bytes}, drop={p.tx_dropped}, errs=0, coll=0")
    return Result(out="\n".join(out) + "\n")


_TABLE_FEATURES = ("    max_entries=1000000", "    matching:",
                   "      exact match or wildcard: in_port eth_{src,dst,type} vlan_{vid,pcp} ip_{src,dst} "
                   "nw_{proto,tos} tcp_{src,dst}")


def cmd_dump_tables(switch, br, args, opts, ctx) -> Result:
    """OpenFlow 1.0 table stats as OVS prints them (ofputil_table_features_format): every table
    up to the one after the last used, table 0 with its features, the others "(same
    features)", then the rest as "ditto".  lookup = matched + the packets a table missed."""
    drops = {}
    if switch.datapath is not None:
        switch.datapath.sync_counters()  # fast-path hits are credited to the rules lazily
        drops = switch.datapath.drops
    used = [tid for tid, t in enumerate(br.tables) if t is not None and len(t)]
    last = (used[-1] if used else 0) + 1
    out = ["OFPST_TABLE reply (xid=0x2):"]
    for tid in range(last + 1):
        t = br.tables[tid] if tid < len(br.tables) else None
        rules = list(t) if t is not None else []
        matched = sum(r.n_packets for r in rules)
        lookups = matched + drops.get(f"no matching flow in table {tid}", 0)
        out.append(f"  table {tid}:")
        out.append(f"    active={len(rules)}, lookup={lookups}, matched={matched}")
        out.extend(_TABLE_FEATURES if tid == 0 else ("    (same features)",))
        out.append("")
    out.append(f"  tables {last + 1}...253: ditto")
    return Result(out="\n".join(out) + "\n")


def cmd_dump_desc(switch, br, args, opts, ctx) -> Result:
    return Result(out="OFPST_DESC reply (xid=0x2):\nManufacturer: ctswitch\nHardware: ctswitch model of "
                      "BlueField CT offload\nSoftware: 0.1.0 (Open vSwitch 3.1.0 semantics)\n"
                      "Serial Num: None\nDP Description: None\n")


_COMMANDS = {
    "add-flow": (cmd_add_flow, 2, 2),
    "add-flows": (cmd_add_flows, 2, 2),
    "del-flows": (cmd_del_flows, 1, 2),
    "mod-flows": (cmd_mod_flows, 2, 2),
    "dump-flows": (cmd_dump_flows, 1, 2),
    "show": (cmd_show, 1, 1),
    "dump-ports": (cmd_dump_ports, 1, 2),
    "dump-tables": (cmd_dump_tables, 1, 1),
    "dump-desc": (cmd_dump_desc, 1, 1),
}
