"""ovs-ofctl flow syntax: ``parse_flow`` (text -> FlowSpec) and the dump-flows printers.

Theory of operation
-------------------
``parse_flow`` follows OVS's ``parse_ofp_str__``:

1. For commands that carry actions (add, mod-flows), the action text is whatever
   follows the first ``=`` after the first occurrence of the substring
   ``action`` (so ``action=`` and ``actions=`` both work); none gives
   ``must specify an action``.  del-flows/dump-flows take no actions.
2. The rest is ``key[=value]`` items (``action_syntax.split_kv``).  Each key is,
   in order: a protocol shorthand, a flow-mod flag, a field name or alias
   (``fields.by_name``; an empty value wildcards it), ``FIELD[a..b]=V``, or a
   keyword (table, priority, timeouts, importance, cookie, out_port,
   out_group); dump-flows statistics (duration, n_packets...) are ignored so a
   dump line parses back.  Which keywords a command accepts is the
   ``_COMMAND_KEYWORDS`` table.
3. Actions are parsed (``action_syntax.parse_actions``) and checked against the
   match (``check_actions``): ``actions are invalid with specified match (ERR)``.

The match kept in the ``FlowSpec`` is normalised (``match_syntax.normalize_match``):
fields whose prerequisites are missing are dropped, as the switch does.
``FlowSpec.prereq_error`` names the OpenFlow error the switch would return
for an unacceptable match (ct tuple fields without a valid ct_state).

``format_flow_stats`` prints one ``ovs-ofctl dump-flows`` line (without the
leading space), following ``ofputil_flow_stats_format`` for the NXST reply
ovs-ofctl gets by default (no flags/importance there) or ``--no-stats``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import fields as F
from . import key as K
from .action_syntax import (
    check_actions,
    format_action,
    format_actions,
    format_nat,
    parse_actions,
    parse_nat,
    parse_subfield,
    parse_table,
    split_kv,
    switch_error,
    wire_actions,
)
from .fields import DictPorts, FlowSyntaxError, PortNames
from .match_syntax import (
    DEFAULT_PRIORITY,
    PROTOCOLS,
    MatchBuilder,
    format_match,
    normalize_match,
    prereq_error,
)

__all__ = [
    "FlowSyntaxError", "PortNames", "DictPorts", "FlowSpec", "parse_flow", "format_match", "format_actions",
    "format_action", "format_flow_stats", "format_duration", "parse_actions", "check_actions",
    "wire_actions", "normalize_match", "split_kv", "parse_nat", "format_nat", "FLAG_NAMES",
    "FF_SEND_FLOW_REM", "FF_CHECK_OVERLAP", "FF_RESET_COUNTS", "FF_NO_PKT_COUNTS", "FF_NO_BYT_COUNTS",
    "DEFAULT_PRIORITY",
]

# Flow-mod flags (OVS OFPUTIL_FF_* bits) in OVS's printing order.
FF_SEND_FLOW_REM = 1 << 0
FF_CHECK_OVERLAP = 1 << 1
FF_RESET_COUNTS = 1 << 2
FF_NO_PKT_COUNTS = 1 << 3
FF_NO_BYT_COUNTS = 1 << 4
FLAG_NAMES = {"send_flow_rem": FF_SEND_FLOW_REM, "check_overlap": FF_CHECK_OVERLAP,
              "reset_counts": FF_RESET_COUNTS, "no_packet_counts": FF_NO_PKT_COUNTS,
              "no_byte_counts": FF_NO_BYT_COUNTS}

# Which optional keywords each command accepts [parse_ofp_str__ F_* sets].
_COMMAND_KEYWORDS = {
    "add": {"actions", "timeout", "priority", "flags", "importance"},
    "mod": {"actions", "timeout", "priority", "flags"},
    "mod-strict": {"actions", "timeout", "priority", "flags"},
    "del": {"out_port"},
    "del-strict": {"out_port", "priority"},
    "dump": {"out_port"},
}
_COMMAND_ALIASES = {"add-flow": "add", "add-flows": "add", "mod-flows": "mod", "del-flows": "del",
                    "dump-flows": "dump", "dump-aggregate": "dump", "replace-flows": "add",
                    "diff-flows": "add", "modify": "mod", "delete": "del", "modify_strict": "mod-strict",
                    "delete_strict": "del-strict"}
_IGNORED = ("duration", "n_packets", "n_bytes", "idle_age", "hard_age")


@dataclass
class FlowSpec:
    """One parsed flow (``table`` None = all tables; ``cookie_mask`` nonzero = match cookies)."""

    match: K.Match = field(default_factory=K.Match)
    actions: list = field(default_factory=list)
    table: int | None = 0
    priority: int = DEFAULT_PRIORITY
    cookie: int = 0
    cookie_mask: int = 0
    idle_timeout: int = 0
    hard_timeout: int = 0
    importance: int = 0
    flags: int = 0  # FF_* bits
    out_port: int | None = None  # None = any
    out_group: int | None = None  # None = any
    cookie_given: bool = False  # a cookie (without mask) was given: mod-flows then sets it
    prereq_error: str | None = None  # e.g. "OFPBMC_BAD_PREREQ": the switch refuses this flow mod
    # Flow formats that can carry this flow when it needs more than OpenFlow 1.0 + NXM
    # (ovs-ofctl's wording, e.g. "OXM-OpenFlow13,OXM-OpenFlow14,OXM-OpenFlow15") and the
    # lowest OpenFlow version (0x01 = 1.0 ... 0x06 = 1.5) that has them.
    usable: str | None = None
    min_version: int = 1
    hidden: tuple[str, ...] = ()  # recirc_id/dp_hash matches as OVS prints them (the switch refuses them)

    def flag_names(self) -> list[str]:
        return [n for n, b in FLAG_NAMES.items() if self.flags & b]


def _u16(value: str, name: str) -> int:
    v = F.c_int(value)
    if v is None or not 0 <= v <= 0xFFFF:
        raise FlowSyntaxError(f'invalid {name} "{value}"')
    return v


def _u64(value: str) -> int:
    if not value:
        raise FlowSyntaxError("missing required numeric argument")
    try:
        v = F.c_strtoull(value)
    except ValueError:
        raise FlowSyntaxError(f"invalid numeric format {value}") from None
    if v >> 64:
        raise FlowSyntaxError(f"invalid numeric format {value}")
    return v


def parse_flow(text: str, ports: PortNames = F.NO_PORTS, *, command: str = "add") -> FlowSpec:
    """Parses one ovs-ofctl flow for ``command`` (add, mod, mod-strict, del, del-strict, dump,
    or the ovs-ofctl command names add-flow, mod-flows, del-flows, dump-flows...).

    Raises FlowSyntaxError with OVS's message.
    """
    cmd = _COMMAND_ALIASES.get(command, command)
    if cmd not in _COMMAND_KEYWORDS:
        raise ValueError(f"unknown flow command {command!r}")
    allowed = _COMMAND_KEYWORDS[cmd]
    spec = FlowSpec(table=None)
    hidden = False
    act_text: str | None = None
    if "actions" in allowed:
        i = text.find("action")
        j = text.find("=", i + 1) if i >= 0 else -1
        if i < 0 or j < 0:
            raise FlowSyntaxError("must specify an action")
        act_text = text[j + 1:]
        text = text[:i]
    mb = MatchBuilder()
    for name, value in split_kv(text):
        if name in PROTOCOLS:
            mb.set_protocol(name)
        elif name == "eth":
            pass
        elif "flags" in allowed and name in FLAG_NAMES:
            spec.flags |= FLAG_NAMES[name]
        elif name in ("no_readonly_table", "allow_hidden_fields"):
            pass
        elif name in ("recirc_id", "dp_hash"):
            # Parsed like any field, then refused by the switch (hidden fields: OFPBRC_EPERM).
            fake = F.Field(name, (), K.PKT_MARK, 32, 4, name == "dp_hash", "hex")
            hv, hm = F.parse_value(fake, value or "0/0", ports)
            if hm:
                spec.hidden += (f"{name}={F.format_value(fake, hv, hm)}",)
            hidden = True
        elif name in F.UNSUPPORTED_FIELDS:
            raise FlowSyntaxError(f"field {name} is not supported by ctswitch")
        elif (f := F.by_name(name)) is not None:
            v, m = F.parse_value(f, value or "0/0", ports)
            mb.set(f, v, m)
        elif "[" in name:
            sf, _ = parse_subfield(name)
            fld = F.by_name(sf.field)
            assert fld is not None
            try:
                val = F.parse_int(value, fld.n_bytes)
            except ValueError:
                raise FlowSyntaxError(f"{name}: cannot parse integer value: {value}") from None
            if val >> sf.n_bits:
                raise FlowSyntaxError(f"{name}: value {F.format_value(fld, val, None)} does not fit into "
                                      f"{sf.n_bits} bits")
            mb.set_subfield(fld, sf.ofs, sf.n_bits, val)
        else:
            if not value:
                raise FlowSyntaxError(f"field {name} missing value")
            if name == "table":
                t = parse_table(value)
                if t is None:
                    raise FlowSyntaxError(f'unknown table "{value}"')
                spec.table = None if t == 255 else t
            elif "out_port" in allowed and name == "out_port":
                p = F.parse_port(value, ports)
                if p is None:
                    raise FlowSyntaxError(f"{value} is not a valid OpenFlow port")
                spec.out_port = None if p == 0xFFFF else p
            elif "out_port" in allowed and name == "out_group":
                g = F.c_uint10(value) if value.lower() not in ("any", "all") else 0xFFFFFFFF
                if g is None:
                    raise FlowSyntaxError(f"{value} is not a valid OpenFlow group")
                spec.out_group = None if g == 0xFFFFFFFF else g
                _need(spec, "OXM,OpenFlow11", 2)
            elif "priority" in allowed and name == "priority":
                spec.priority = _u16(value, name)
            elif "timeout" in allowed and name == "idle_timeout":
                spec.idle_timeout = _u16(value, name)
            elif "timeout" in allowed and name == "hard_timeout":
                spec.hard_timeout = _u16(value, name)
            elif "importance" in allowed and name == "importance":
                spec.importance = _u16(value, name)
            elif name == "cookie":
                vtext, slash, mtext = value.partition("/")
                if slash:
                    if cmd == "add":
                        raise FlowSyntaxError("flow additions cannot use a cookie mask")
                    spec.cookie = _u64(vtext)
                    spec.cookie_mask = _u64(mtext)
                else:
                    if cmd not in ("add", "mod", "mod-strict"):
                        raise FlowSyntaxError(f"cannot set cookie (to match on a cookie, specify a mask, "
                                              f"e.g. cookie={value}/-1)")
                    spec.cookie = _u64(value)
                    spec.cookie_given = True
            elif name in _IGNORED:
                pass
            else:
                raise FlowSyntaxError(f"unknown keyword {name}")
    if spec.flags & FF_RESET_COUNTS:
        _need(spec, "OXM", 3)
    if spec.flags & (FF_NO_PKT_COUNTS | FF_NO_BYT_COUNTS):
        _need(spec, "OXM-OpenFlow13,OXM-OpenFlow14,OXM-OpenFlow15", 4)
    raw = mb.match()
    act_err = None
    if act_text is not None:
        actions = parse_actions(act_text, ports)
        err = check_actions(actions, raw, spec.table)
        if err:
            raise FlowSyntaxError(f"actions are invalid with specified match ({err})")
        spec.actions = actions
        act_err = switch_error(actions)
    if cmd in ("add", "mod", "mod-strict") and spec.table is None:
        spec.table = 0 if cmd == "add" else None
    spec.match = normalize_match(raw)
    # In the order the switch meets them: decoding the match, decoding the actions, the
    # checks of the flow mod (hidden fields, the hidden table 254), the match/actions check.
    err = prereq_error(raw)
    spec.prereq_error = next((e for e in (
        err if err == "OFPBMC_BAD_PREREQ" else None,
        act_err,
        "OFPBRC_EPERM" if hidden or (cmd == "add" and spec.table == 254) else None,
        err) if e), None)
    return spec


def _need(spec: FlowSpec, usable: str, version: int) -> None:
    """Records that the flow needs OpenFlow ``version`` or later (``usable`` formats)."""
    if version > spec.min_version:
        spec.usable, spec.min_version = usable, version


def format_duration(ms: int) -> str:
    """``ofp_print_duration`` for a millisecond duration: ``3.093s``, ``12s``."""
    sec, rem = divmod(max(0, int(ms)), 1000)
    return f"{sec}.{rem:03d}s" if rem else f"{sec}s"


def _flags_int(flags) -> int:
    if isinstance(flags, int):
        return flags
    return sum(FLAG_NAMES.get(str(n), 0) for n in (flags or ()))


def format_flow_stats(rule, ports: PortNames | None, now_ms: int, names: bool = True, stats: bool = True,
                      *, protocol: str = "nxm") -> str:
    """One dump-flows line without the leading space.

    ``rule`` is duck-typed: table_id, priority, match, actions, cookie, idle_timeout,
    hard_timeout, importance, flags (FF_* int or flag names), created_ms, last_used_ms,
    n_packets, n_bytes, and optionally modified_ms (hard_age).  ``protocol`` is the reply
    format: "nxm" (ovs-ofctl's default: ages, no flags/importance), "of13" (flags, no
    ages), "of14" (flags and importance, no ages).
    """
    out: list[str] = []
    cookie = int(getattr(rule, "cookie", 0) or 0)
    if stats or cookie:
        out.append(f"cookie={cookie:#x}, " if cookie else "cookie=0x0, ")
    created = int(rule.created_ms)
    duration_ms = now_ms - created
    if stats:
        out.append(f"duration={format_duration(duration_ms)}, ")
    table = int(rule.table_id)
    if stats or table:
        out.append(f"table={table}, ")
    if stats:
        out.append(f"n_packets={rule.n_packets}, n_bytes={rule.n_bytes}, ")
    if rule.idle_timeout:
        out.append(f"idle_timeout={rule.idle_timeout}, ")
    if rule.hard_timeout:
        out.append(f"hard_timeout={rule.hard_timeout}, ")
    if protocol in ("of13", "of14"):
        flags = _flags_int(getattr(rule, "flags", 0))
        out.append("".join(n + " " for n, b in FLAG_NAMES.items() if flags & b))
    if protocol == "of14" and getattr(rule, "importance", 0):
        out.append(f"importance={rule.importance}, ")
    if stats and protocol == "nxm":
        used = getattr(rule, "last_used_ms", None)
        used = created if used is None else int(used)
        out.append(f"idle_age={max(0, now_ms - used) // 1000}, ")
        modified = getattr(rule, "modified_ms", None)
        if modified is not None:
            hard_age = max(0, now_ms - int(modified)) // 1000
            if hard_age != max(0, duration_ms) // 1000:
                out.append(f"hard_age={hard_age}, ")
    m = format_match(rule.match, rule.priority, ports, names)
    out.append(m + " " if m else "")
    out.append("actions=" + format_actions(rule.actions, ports, names))
    return "".join(out)
