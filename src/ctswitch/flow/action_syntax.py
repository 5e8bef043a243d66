"""Action half of the ovs-ofctl flow syntax: parse, check against a match, print.

Theory of operation
-------------------
``split_kv`` is OVS's ``ofputil_parse_key_value``: items separated by commas or
white space, ``key``, ``key=value``, ``key:value`` or ``key(value)`` where values
may hold balanced parentheses (and ``(x)->y`` stays one value).  The same
splitter serves the match, the action list, ``ct(...)`` and ``nat(...)``.

``parse_actions`` maps each key through ``_PARSERS`` (action names are
case-insensitive, as ``strcasecmp`` in OVS); a key that is no action name is
tried as a port (``p0``, ``2``, ``NORMAL``, ``local``...).  It then applies
OVS's verification rules (``drop`` alone, goto_table last, what may nest in
``ct(exec(...))``).  ``check_actions`` is ``ofpacts_check``: it needs the match
(``ct``/``nat`` require ip/ipv6, alg=ftp needs tcp ...) and returns an OpenFlow
error name or None.  ``format_actions`` prints like ``ofpacts_format``.

``wire_actions`` rewrites a list the way a round trip through the switch over
ovs-ofctl's default protocol (OpenFlow 1.0 + Nicira extensions) changes it, so
dump-flows shows what OVS shows: ``set_field:..->eth_src`` comes back as
``mod_dl_src:``, ``set_field:0x1->ct_mark`` as ``load:0x1->NXM_NX_CT_MARK[]``,
``goto_table:N`` as ``resubmit(,N)``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..packet.headers import ETH_TYPE_IP, ETH_TYPE_IPV6
from . import fields as F
from . import key as K
from .actions import (
    OFPP_CONTROLLER,
    OFPP_IN_PORT,
    OFPP_MAX,
    OFPP_NONE,
    RESERVED_NAMES,
    Controller,
    Ct,
    CtClear,
    DecTtl,
    GotoTable,
    Group,
    Load,
    Move,
    Nat,
    Note,
    Output,
    Resubmit,
    SetField,
    Subfield,
)
from .fields import FlowSyntaxError
from .match_syntax import is_ct_valid, prereqs_ok

ALG_PORTS = {"ftp": 21, "tftp": 69}
ALG_NAMES = {21: "ftp", 69: "tftp"}


# ---------------------------------------------------------------------------
# Tokenizer [ofputil_parse_key_value]

def _value_end(s: str, pos: int, delims: str) -> int:
    n = pos
    while n < len(s) and s[n] not in delims:
        if s[n] == "(":
            level = 0
            while True:
                if n >= len(s):
                    return n
                if s[n] == "(":
                    level += 1
                elif s[n] == ")":
                    level -= 1
                n += 1
                if level <= 0:
                    break
        else:
            n += 1
    return n


def split_kv(s: str) -> Iterator[tuple[str, str]]:
    """Yields (key, value) pairs; value is "" when absent."""
    pos, n = 0, len(s)
    while True:
        while pos < n and s[pos] in ", \t\r\n":
            pos += 1
        if pos >= n:
            return
        m = re.compile(r"[^:=(, \t\r\n]*").match(s, pos)
        key_end = m.end()  # type: ignore[union-attr]
        key = s[pos:key_end]
        delim = s[key_end] if key_end < n else ""
        pos = key_end + (1 if delim else 0)
        if delim in (":", "="):
            delims = ", \t\r\n"
        elif delim == "(":
            delims = ")"
        else:
            yield key, ""
            continue
        end = _value_end(s, pos, delims)
        if delim == "(" and s[end:end + 1] == ")" and s[end + 1:end + 3] == "->":
            end = _value_end(s, end, ", \t\r\n")
        value = s[pos:end]
        pos = end + (1 if end < n else 0)
        yield key, value


# ---------------------------------------------------------------------------
# Helpers

def _str_to_u(text: str, name: str, hi: int) -> int:
    v = F.c_int(text)
    if v is None or not 0 <= v <= hi:
        raise FlowSyntaxError(f'invalid {name} "{text}"')
    return v


def parse_table(text: str) -> int | None:
    """``ofputil_table_from_string`` without table names: 0..255 or None."""
    if text.startswith("-"):
        return None
    v = F.c_uint10(text)
    return v if v is not None and v <= 255 else None


def parse_subfield(text: str, *, whole: bool = True) -> tuple[Subfield, str]:
    """``mf_parse_subfield``: ``NAME[]``, ``NAME[a..b]``, ``NAME[n]`` or bare NAME.

    Returns the subfield and the unparsed rest (which must be empty when ``whole``).
    """
    m = re.compile(r"[^\[-]*").match(text)
    name = m.group(0)  # type: ignore[union-attr]
    f = F.by_nxm(name)
    if f is None:
        raise FlowSyntaxError(f"{text}: unknown field `{name}'")
    rest = text[len(name):]
    start, end = 0, f.n_bits - 1
    if rest.startswith("["):
        if rest.startswith("[]"):
            pass
        elif (mm := re.match(r"\[\s*([+-]?\d+)\.\.\s*([+-]?\d+)\]", rest)):
            start, end = int(mm.group(1)), int(mm.group(2))
        elif (mm := re.match(r"\[\s*([+-]?\d+)\]", rest)):
            start = end = int(mm.group(1))
        else:
            raise FlowSyntaxError(f"{text}: syntax error expecting [] or [<bit>] or [<start>..<end>]")
        rest = rest[rest.index("]") + 1:]
    if start > end:
        raise FlowSyntaxError(f"{text}: starting bit {start} is after ending bit {end}")
    if start >= f.n_bits:
        raise FlowSyntaxError(f"{text}: starting bit {start} is not valid because field is only {f.n_bits} bits wide")
    if end >= f.n_bits:
        raise FlowSyntaxError(f"{text}: ending bit {end} is not valid because field is only {f.n_bits} bits wide")
    if whole and rest:
        raise FlowSyntaxError("unexpected input following field syntax")
    return Subfield(f.name, start, end - start + 1), rest


def format_subfield(sf: Subfield) -> str:
    f = F.by_name(sf.field)
    assert f is not None
    s = F.subfield_name(f)
    if sf.ofs == 0 and sf.n_bits == f.n_bits:
        return s + "[]"
    if sf.n_bits == 1:
        return f"{s}[{sf.ofs}]"
    return f"{s}[{sf.ofs}..{sf.ofs + sf.n_bits - 1}]"


# ---------------------------------------------------------------------------
# Per-action parsers: (value, ports) -> list of records

def _p_output(arg: str, ports: F.PortNames) -> list:
    if "port" in arg and "max_len" in arg:
        raise FlowSyntaxError("output(port=...,max_len=...) (output_trunc) is not supported by ctswitch")
    p = F.parse_port(arg, ports)
    if p is not None:
        return [Output(p, 65535 if p == OFPP_CONTROLLER else 0)]
    try:
        parse_subfield(arg)
    except FlowSyntaxError:
        raise FlowSyntaxError(f"{arg}: output to unknown port") from None
    raise FlowSyntaxError(f"output:{arg} (output_reg) is not supported by ctswitch")


_PIN_REASONS = ("no_match", "action", "invalid_ttl", "action_set", "group", "packet_out")


def _p_controller(arg: str, ports: F.PortNames) -> list:
    max_len, reason, other = 65535, "action", False
    if arg and arg.isdigit():
        max_len = _str_to_u(arg, "max_len", 0xFFFF)
    elif arg:
        for k, v in split_kv(arg):
            if k == "reason":
                if v not in _PIN_REASONS:
                    raise FlowSyntaxError(f'unknown reason "{v}"')
                reason = v
            elif k == "max_len":
                max_len = _str_to_u(v, "max_len", 0xFFFF)
            elif k in ("id", "userdata", "pause", "meter_id"):
                other = True
            else:
                raise FlowSyntaxError(f'unknown key "{k}" parsing controller action')
    if other:
        raise FlowSyntaxError("controller(id/userdata/pause/meter_id) is not supported by ctswitch")
    if reason == "action":
        return [Output(OFPP_CONTROLLER, max_len)]
    return [Controller(max_len, reason)]


def _p_resubmit(arg: str, ports: F.PortNames) -> list:
    parts = arg.split(",", 2)
    port_s = parts[0]
    table_s = parts[1] if len(parts) > 1 else ""
    ct_s = parts[2] if len(parts) > 2 else ""
    port: int | None = None
    if port_s:
        port = F.parse_port(port_s, ports)
        if port is None:
            raise FlowSyntaxError(f"{port_s}: resubmit to unknown port")
        if port == OFPP_IN_PORT:
            port = None
    table: int | None = None
    if table_s:
        table = parse_table(table_s)
        if table is None:
            raise FlowSyntaxError(f"{table_s}: resubmit to unknown table")
        if table == 255:
            table = None
    if ct_s and ct_s != "ct":
        raise FlowSyntaxError(f"{ct_s}: unknown parameter")
    if port is None and table is None:
        raise FlowSyntaxError('at least one "in_port" or "table" must be specified on resubmit')
    return [Resubmit(port, table, bool(ct_s))]


def _p_goto_table(arg: str, ports: F.PortNames) -> list:
    t = parse_table(arg)
    if t is None:
        raise FlowSyntaxError(f'unknown table "{arg}"')
    return [GotoTable(t)]


def _split_arrow(arg: str) -> tuple[str, str]:
    i = arg.find("->")
    if i < 0:
        raise FlowSyntaxError(f"{arg}: missing `->'")
    if len(arg) - i <= 2:
        raise FlowSyntaxError(f"{arg}: missing field name following `->'")
    return arg[:i], arg[i + 2:]


def _p_set_field(arg: str, ports: F.PortNames) -> list:
    vtext, name = _split_arrow(arg)
    f = F.by_name(name)
    if f is None and name in F.UNSUPPORTED_FIELDS:
        raise FlowSyntaxError(f"set_field to {name} is not supported by ctswitch")
    if f is None:
        raise FlowSyntaxError(f"{name} is not a valid OXM field name")
    if not f.writable:
        raise FlowSyntaxError(f"{name} is read-only")
    if f.name in ("dl_vlan", "dl_vlan_pcp", "vlan_tci", "in_port"):
        raise FlowSyntaxError(f"set_field to {f.name} is not supported by ctswitch")
    value, mask = F.parse_value(f, vtext, ports)
    full = (1 << (8 * f.n_bytes)) - 1
    if value >> f.n_bits and f.kind not in ("mac", "ipv4", "ipv6"):
        raise FlowSyntaxError(f"{vtext} is not a valid value for field {name}")
    return [SetField(f.name, value, None if mask & full == full else mask)]


def _p_load(arg: str, ports: F.PortNames) -> list:
    vtext, dst_s = _split_arrow(arg)
    dst, _ = parse_subfield(dst_s)
    f = F.by_name(dst.field)
    assert f is not None
    try:
        value = F.parse_int(vtext, f.n_bytes)
    except ValueError:
        raise FlowSyntaxError(f"{arg}: cannot parse integer value") from None
    if value >> dst.n_bits:
        raise FlowSyntaxError(f"{arg}: value {F.format_value(f, value, None)} does not fit into {dst.n_bits} bits")
    return [Load(value, dst)]


def _p_move(arg: str, ports: F.PortNames) -> list:
    src, rest = parse_subfield(arg, whole=False)
    if not rest.startswith("->"):
        raise FlowSyntaxError(f"{arg}: missing `->' following source")
    dst, _ = parse_subfield(rest[2:])
    if src.n_bits != dst.n_bits:
        raise FlowSyntaxError(f"{arg}: source field is {src.n_bits} bits wide but destination is "
                              f"{dst.n_bits} bits wide")
    return [Move(src, dst)]


def _p_mac(name: str, field: str):
    def parse(arg: str, ports: F.PortNames) -> list:
        v = F.parse_mac(arg)
        if v is None:
            raise FlowSyntaxError(f"invalid mac address {arg}")
        return [SetField(field, v, None, name)]
    return parse


def _p_ip(name: str, field: str):
    def parse(arg: str, ports: F.PortNames) -> list:
        v = F.parse_ipv4(arg)
        if v is None:
            raise FlowSyntaxError(f"{arg}: could not convert to IP address")
        return [SetField(field, v, None, name)]
    return parse


def _p_nw_tos(arg: str, ports: F.PortNames) -> list:
    tos = _str_to_u(arg, "TOS", 255)
    if tos & 0x03:
        raise FlowSyntaxError(f"{arg}: not a valid TOS")
    return [SetField("nw_tos", tos, None, "mod_nw_tos")]


def _p_nw_ecn(arg: str, ports: F.PortNames) -> list:
    ecn = _str_to_u(arg, "ECN", 255)
    if ecn & ~0x03:
        raise FlowSyntaxError(f"{arg}: not a valid ECN")
    return [SetField("nw_ecn", ecn, None, "mod_nw_ecn")]


def _p_nw_ttl(arg: str, ports: F.PortNames) -> list:
    return [SetField("nw_ttl", _str_to_u(arg, "TTL", 255), None, "mod_nw_ttl")]


def _p_tp(name: str, field: str, what: str):
    def parse(arg: str, ports: F.PortNames) -> list:
        return [SetField(field, _str_to_u(arg, what, 0xFFFF), None, name)]
    return parse


def _p_dec_ttl(arg: str, ports: F.PortNames) -> list:
    if arg:
        raise FlowSyntaxError("dec_ttl(ids) is not supported by ctswitch")
    return [DecTtl()]


def _p_note(arg: str, ports: F.PortNames) -> list:
    data = bytearray()
    pos = 0
    while True:
        while pos < len(arg) and arg[pos] in " .\t\r\n":
            pos += 1
        pair = arg[pos:pos + 2]
        if len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair):
            data.append(int(pair, 16))
            pos += 2
        else:
            break
    if pos < len(arg):
        raise FlowSyntaxError("bad hex digit in `note' argument")
    return [Note(bytes(data))]


def _p_ct_clear(arg: str, ports: F.PortNames) -> list:
    return [CtClear()]


def _p_nat_outside(arg: str, ports: F.PortNames) -> list:
    parse_nat(arg)
    raise FlowSyntaxError('Cannot have NAT action outside of "ct" action')


_V6_CHARS = re.compile(r"[0-9a-fA-F:.]{1,46}")
_V6_BRACKET = re.compile(r"\[([0-9a-fA-F:.]{1,46})\]")


def _scan_v6(s: str, pos: int) -> tuple[int | None, int] | None:
    """``IPV6_SCAN_FMT`` or ``[IPV6_SCAN_FMT]`` at ``pos``: None when neither scans, else
    ``(address or None when inet_pton refuses the text, end of the scanned text)``."""
    m = _V6_CHARS.match(s, pos)
    text = m.group(0) if m else None
    if m is None:
        m = _V6_BRACKET.match(s, pos)
        text = m.group(1) if m else None
    if m is None:
        return None
    return F.parse_ipv6(text or ""), m.end()


def _nat_range(s: str) -> tuple[int, int, int, int, int]:
    """``str_to_nat_range``: (ip_ver, addr_min, addr_max, port_min, port_max).

    Numbers scan as ``ovs_scan`` does (octets and ports truncated to 8 and 16 bits), and a
    scanned IPv6 text that is no address still counts as consumed (``garbage (oo) after nat
    range "foo" (pos: 1)``)."""
    bad = FlowSyntaxError(f'invalid nat range "{s}"')
    ver, amin, amax, pmin, pmax, n = 0, 0, 0, 0, 0, 0
    r4 = F.scan_ipv4(s, 0)
    if r4 is not None:
        ver, (amin, n) = 4, r4
        amax = amin
        if s[n:n + 1] == "-":
            r = F.scan_ipv4(s, n + 1)
            if r is None or r[0] < amin:
                raise bad
            amax, n = r
    elif (r6 := _scan_v6(s, 0)) is not None:
        n = r6[1]
        if r6[0] is not None:
            ver, amin = 6, r6[0]
            amax = amin
            if s[n:n + 1] == "-":
                r = _scan_v6(s, n + 1)
                if r is None or r[0] is None or r[0] < amin:
                    raise bad
                amax, n = r[0], r[1]
    if ver and s[n:n + 1] == ":":
        r = F.scan_uint(s, n + 1, 16)
        if r is None:
            raise bad
        pmin, n = r
        pmax = pmin
        if s[n:n + 1] == "-":
            r = F.scan_uint(s, n + 1, 16)
            if r is None or r[0] < pmin:
                raise bad
            pmax, n = r
    if n != len(s):
        raise FlowSyntaxError(f'garbage ({s[n:]}) after nat range "{s}" (pos: {n})')
    return ver, amin, amax, pmin, pmax


def parse_nat(arg: str) -> Nat:
    """``parse_NAT``: ``src=RANGE``/``dst=RANGE`` and the flags persistent, hash, random."""
    kinds: list[str] = []
    rng = (0, 0, 0, 0, 0)
    flags = {"persistent": False, "hash": False, "random": False}
    for k, v in split_kv(arg):
        if k in ("src", "dst"):
            kinds.append(k)
            rng = _nat_range(v) if v else (0, 0, 0, 0, 0)
        elif k in flags:
            flags[k] = True
        else:
            raise FlowSyntaxError(f'invalid key "{k}" in "nat" argument')
    if len(set(kinds)) > 1:
        raise FlowSyntaxError('May only specify one of "src" or "dst".')
    if not kinds:
        if any(flags.values()):
            raise FlowSyntaxError('Flags allowed only with "src" or "dst".')
    if flags["hash"] and flags["random"]:
        raise FlowSyntaxError('Both "hash" and "random" are not allowed.')
    ver, amin, amax, pmin, pmax = rng
    return Nat(kinds[0] if kinds else None, ver, amin, amax, pmin, pmax,
               flags["persistent"], flags["hash"], flags["random"])


def _p_ct(arg: str, ports: F.PortNames) -> list:
    commit = force = False
    table: int | None = None
    zone, zone_src, alg = 0, None, 0
    nested: list = []  # OVS keeps nat and exec(...) actions in one list, in order
    for k, v in split_kv(arg):
        if k == "commit":
            commit = True
        elif k == "force":
            force = True
        elif k == "table":
            t = parse_table(v)
            if t is None:
                raise FlowSyntaxError(f"unknown table {v}")
            if t == 255:
                raise FlowSyntaxError("invalid table 0xff")
            table = t
        elif k == "zone":
            z = F.c_int(v)
            if z is not None and 0 <= z <= 0xFFFF:
                zone, zone_src = z, None
            else:
                zone_src, _ = parse_subfield(v)
                zone = 0
        elif k == "alg":
            if v not in ALG_PORTS:
                raise FlowSyntaxError(f'invalid conntrack helper "{v}"')
            alg = ALG_PORTS[v]
        elif k == "nat":
            nested.append(parse_nat(v))
        elif k == "exec":
            nested.extend(parse_actions(v, ports, outer="ct"))
        else:
            raise FlowSyntaxError(f"invalid argument to \"ct\" action: `{k}'")
    if force and not commit:
        raise FlowSyntaxError('"force" flag requires "commit" flag.')
    nat, nat_index = None, 0
    for i, a in enumerate(nested):  # the last nat is the one the translation applies
        if isinstance(a, Nat):
            nat, nat_index = a, i
    exec_ = tuple(a for a in nested if not isinstance(a, Nat))
    return [Ct(commit, force, table, zone, zone_src, nat, exec_, alg, nat_index)]


def _unsupported(name: str):
    def parse(arg: str, ports: F.PortNames) -> list:
        raise FlowSyntaxError(f"the {name} action is not supported by ctswitch")
    return parse


_PARSERS = {
    "output": _p_output, "controller": _p_controller, "resubmit": _p_resubmit,
    "goto_table": _p_goto_table, "set_field": _p_set_field, "load": _p_load, "move": _p_move,
    "mod_dl_src": _p_mac("mod_dl_src", "eth_src"), "mod_dl_dst": _p_mac("mod_dl_dst", "eth_dst"),
    "mod_nw_src": _p_ip("mod_nw_src", "ip_src"), "mod_nw_dst": _p_ip("mod_nw_dst", "ip_dst"),
    "mod_nw_tos": _p_nw_tos, "mod_nw_ecn": _p_nw_ecn, "mod_nw_ttl": _p_nw_ttl, "set_nw_ttl": _p_nw_ttl,
    "mod_tp_src": _p_tp("mod_tp_src", "tcp_src", "source port"),
    "mod_tp_dst": _p_tp("mod_tp_dst", "tcp_dst", "destination port"),
    "dec_ttl": _p_dec_ttl, "note": _p_note, "ct": _p_ct, "ct_clear": _p_ct_clear, "nat": _p_nat_outside,
}


def _p_group(arg: str, ports: F.PortNames) -> list:
    try:
        g = F.c_strtoull(arg) if arg else None
    except ValueError:
        g = None
    if g is None or g >> 32:
        raise FlowSyntaxError(f"invalid numeric format {arg}")
    return [Group(g)]


_PARSERS["group"] = _p_group
for _name in ("enqueue", "output_reg", "bundle", "bundle_load", "set_vlan_vid", "set_vlan_pcp",
              "strip_vlan", "push_vlan", "pop_vlan", "mod_vlan_vid", "mod_vlan_pcp", "push", "pop",
              "set_mpls_label", "set_mpls_tc", "set_mpls_ttl", "dec_mpls_ttl", "push_mpls", "pop_mpls",
              "dec_nsh_ttl", "delete_field", "encap", "decap", "set_tunnel", "set_tunnel64", "set_queue",
              "pop_queue", "fin_timeout", "learn", "conjunction", "multipath", "exit", "sample",
              "unroll_xlate", "output_trunc", "clone", "check_pkt_larger", "debug_recirc", "debug_slow",
              "meter", "clear_actions", "write_actions", "write_metadata"):
    _PARSERS[_name] = _unsupported(_name)

_CT_FIELDS = ("ct_mark", "ct_label")


def _dst_field(a) -> str | None:
    if isinstance(a, SetField):
        return a.field
    if isinstance(a, (Load, Move)):
        return a.dst.field
    return None


def _action_name(a) -> str:
    return {Output: "output", Controller: "controller", Resubmit: "resubmit", GotoTable: "goto_table",
            DecTtl: "dec_ttl", Note: "note", Ct: "ct", CtClear: "ct_clear", Nat: "nat",
            Move: "move", Load: "set_field"}.get(type(a), "set_field")


def parse_actions(text: str, ports: F.PortNames = F.NO_PORTS, *, outer: str | None = None) -> list:
    """Parses an action list (``ofpacts_parse``); ``outer="ct"`` for ``ct(exec(...))``."""
    out: list = []
    drop = False
    for k, v in split_kv(text):
        lk = k.lower()
        if lk == "nat" and outer == "ct":
            out.append(parse_nat(v))
        elif lk in _PARSERS:
            out.extend(_PARSERS[lk](v, ports))
        elif lk == "drop":
            drop = True
        elif lk == "apply_actions":
            raise FlowSyntaxError("apply_actions is the default instruction")
        else:
            p = F.parse_port(k, ports)
            if p is None:
                raise FlowSyntaxError(f"unknown action {k}")
            out.append(Output(p, 65535 if p == OFPP_CONTROLLER else 0))
    if drop and out:
        raise FlowSyntaxError('"drop" must not be accompanied by any other action or instruction')
    seen_goto = False
    for a in out:
        field = _dst_field(a)
        if field in _CT_FIELDS and outer != "ct":
            raise FlowSyntaxError("cannot set CT fields outside of ct action")
        if outer == "ct" and not isinstance(a, Nat):
            if field is None:
                raise FlowSyntaxError(f"ct action doesn't support nested action {_action_name(a)}")
            if field not in _CT_FIELDS:
                raise FlowSyntaxError(f"ct action doesn't support nested modification of {field}")
        if seen_goto:
            if isinstance(a, GotoTable):
                raise FlowSyntaxError("duplicate goto_table instruction not allowed, "
                                      "for OpenFlow 1.1+ compatibility")
            raise FlowSyntaxError("invalid instruction ordering: apply_actions must appear before "
                                  "goto_table, for OpenFlow 1.1+ compatibility")
        if isinstance(a, GotoTable):
            seen_goto = True
    return out


# ---------------------------------------------------------------------------
# Checking against the match [ofpacts_check]

def check_actions(actions: list, match: K.Match, table: int | None = None) -> str | None:
    """The OpenFlow error OVS reports for these actions under this match, or None.

    ``table`` is the flow's table when given explicitly (goto_table must go forward).
    """
    dl = match.values[K.DL_TYPE] if match.mask[K.DL_TYPE] == 0xFFFF else 0
    proto = match.values[K.NW_PROTO] if match.mask[K.NW_PROTO] else 0
    ip_any = dl in (ETH_TYPE_IP, ETH_TYPE_IPV6)
    for a in actions:
        if isinstance(a, Output):
            if a.port == OFPP_NONE or (a.port >= OFPP_MAX and a.port not in RESERVED_NAMES):
                return "OFPBAC_BAD_OUT_PORT"
        elif isinstance(a, GotoTable):
            if table is not None and table != 255 and a.table <= table:
                return "OFPBIC_BAD_TABLE_ID"
        elif isinstance(a, Resubmit):
            if a.with_ct_orig and not is_ct_valid(match):
                return "OFPBAC_MATCH_INCONSISTENT"
        elif isinstance(a, Ct):
            if (not ip_any or (match.values[K.CT_STATE] & K.CS_INV and a.commit)
                    or (a.alg == 21 and proto != 6) or (a.alg == 69 and proto != 17)):
                return "OFPBAC_MATCH_INCONSISTENT"
            if a.zone_src is not None:
                f = F.by_name(a.zone_src.field)
                if f is None or not prereqs_ok(f, match):
                    return "OFPBAC_MATCH_INCONSISTENT"
                continue
            if a.nat is not None:
                if (a.nat.ip_ver == 4 and dl != ETH_TYPE_IP) or (a.nat.ip_ver == 6 and dl != ETH_TYPE_IPV6):
                    return "OFPBAC_MATCH_INCONSISTENT"
            err = check_actions(list(a.exec), match, table)
            if err:
                return err
        elif isinstance(a, SetField) and a.spelling == "set_field":
            f = F.by_name(a.field)
            if f is None or not prereqs_ok(f, match):
                return "OFPBAC_MATCH_INCONSISTENT"
        elif isinstance(a, (Load, Move)):
            for sf, is_dst in ((a.dst, True), (getattr(a, "src", None), False)):
                if sf is None:
                    continue
                f = F.by_name(sf.field)
                if f is None or not prereqs_ok(f, match):
                    return "OFPBAC_MATCH_INCONSISTENT"
                # ovs-ofctl checks a move's destination; a load's is checked by the switch
                # when it decodes NXAST_REG_LOAD (``switch_error``).
                if is_dst and not f.writable and isinstance(a, Move):
                    return "OFPBAC_BAD_SET_ARGUMENT"
    return None


def _nat_wire(n: Nat) -> Nat | None:
    """``nat`` after ``encode_NAT``/``decode_NXAST_RAW_NAT``: None when the switch refuses
    the encoding (OFPBAC_BAD_ARGUMENT), e.g. a port range with address 0.0.0.0."""
    if n.ip_ver == 0 or n.kind is None:
        return n
    has_min, has_max = bool(n.addr_min), bool(n.addr_max)
    if has_max and not has_min:
        return None
    if not has_min:  # no address range on the wire: decoded as a bare nat(src|dst)
        if n.port_min or n.port_max:
            return None
        return Nat(n.kind, 0, 0, 0, 0, 0, n.persistent, n.hash, n.random)
    if n.port_max and not n.port_min:
        return None
    return n


def switch_error(actions: list) -> str | None:
    """The OpenFlow error the switch returns when it decodes these actions (ovs-ofctl's own
    checks passed), or None: ``ct(zone=SUBFIELD)`` not 16 bits wide, nested ct actions
    without ``commit`` other than a bare ``nat``, NAT ranges that do not survive the
    encoding, ``load`` into a read-only field, a group (none exists here)."""
    for a in actions:
        if isinstance(a, Group):
            return "OFPBAC_BAD_OUT_GROUP"
        if isinstance(a, Load):
            f = F.by_name(a.dst.field)
            if f is not None and not f.writable:
                return "OFPBAC_BAD_SET_ARGUMENT"
        if isinstance(a, Ct):
            if a.zone_src is not None and a.zone_src.n_bits != 16:
                return "OFPBAC_BAD_SET_LEN"
            err = switch_error(list(a.exec))
            if err:
                return err
            if a.nat is not None and _nat_wire(a.nat) is None:
                return "OFPBAC_BAD_ARGUMENT"
            if not a.commit and (a.exec or (a.nat is not None and a.nat.kind is not None)):
                return "OFPBAC_BAD_ARGUMENT"
    return None


# ---------------------------------------------------------------------------
# Printing [ofpacts_format]

def format_nat(n: Nat) -> str:
    if n.kind is None:
        return "nat"
    s = f"nat({n.kind}"
    if n.ip_ver:
        s += "="
        if n.ip_ver == 4:
            s += F.format_ipv4(n.addr_min)
            if n.addr_max and n.addr_max != n.addr_min:
                s += "-" + F.format_ipv4(n.addr_max)
        else:
            br = bool(n.port_min)
            lo = F.format_ipv6(n.addr_min)
            s += f"[{lo}]" if br else lo
            if n.addr_max and n.addr_max != n.addr_min:
                hi = F.format_ipv6(n.addr_max)
                s += "-" + (f"[{hi}]" if br else hi)
        if n.port_min:
            s += f":{n.port_min}"
            if n.port_max and n.port_max != n.port_min:
                s += f"-{n.port_max}"
        for flag in ("persistent", "hash", "random"):
            if getattr(n, flag):
                s += "," + flag
    return s + ")"


def _format_ct(a: Ct, ports: F.PortNames | None, names: bool) -> str:
    parts = []
    if a.commit:
        parts.append("commit")
    if a.force:
        parts.append("force")
    if a.table is not None:
        parts.append(f"table={a.table}")
    if a.zone_src is not None:
        parts.append("zone=" + format_subfield(a.zone_src))
    elif a.zone:
        parts.append(f"zone={a.zone}")
    nested = list(a.exec)
    if a.nat is not None:
        if a.nat_index <= 0 or not nested:
            parts.append(format_nat(a.nat))
        else:
            nested.insert(min(a.nat_index, len(nested)), a.nat)
    if nested:
        parts.append("exec(" + format_actions(nested, ports, names) + ")")
    if a.alg:
        parts.append("alg=" + ALG_NAMES.get(a.alg, str(a.alg)))
    return "ct(" + ",".join(parts) + ")"


def _format_load(a: Load) -> str:
    out = []
    ofs, left, value = a.dst.ofs, a.dst.n_bits, a.value
    while left > 0:
        n = min(64, left)
        out.append(f"load:{F.hex_c(value & ((1 << n) - 1))}->" + format_subfield(Subfield(a.dst.field, ofs, n)))
        value >>= n
        ofs += n
        left -= n
    return ",".join(out)


def _format_set_field(a: SetField, ports: F.PortNames | None, names: bool) -> str:
    f = F.by_name(a.field)
    assert f is not None
    sp = a.spelling
    if sp in ("mod_dl_src", "mod_dl_dst"):
        return f"{sp}:{F.format_mac(a.value)}"
    if sp in ("mod_nw_src", "mod_nw_dst"):
        return f"{sp}:{F.format_ipv4(a.value)}"
    if sp in ("mod_nw_tos", "mod_nw_ecn", "mod_nw_ttl", "mod_tp_src", "mod_tp_dst"):
        return f"{sp}:{a.value}"
    return f"set_field:{F.format_value(f, a.value, a.mask, ports, names)}->{f.name}"


def format_action(a, ports: F.PortNames | None = None, names: bool = True) -> str:
    if isinstance(a, Output):
        if a.port == OFPP_CONTROLLER:
            return f"CONTROLLER:{a.max_len}"
        s = F.format_port(a.port, ports, names)
        return s if a.port >= OFPP_MAX else "output:" + s
    if isinstance(a, SetField):
        return _format_set_field(a, ports, names)
    if isinstance(a, Ct):
        return _format_ct(a, ports, names)
    if isinstance(a, Resubmit):
        if a.port is not None and a.table is None:
            return "resubmit:" + F.format_port(a.port, ports, names)
        s = "resubmit(" + ("" if a.port is None else F.format_port(a.port, ports, names)) + ","
        s += "" if a.table is None else str(a.table)
        return s + (",ct" if a.with_ct_orig else "") + ")"
    if isinstance(a, GotoTable):
        return f"goto_table:{a.table}"
    if isinstance(a, Load):
        return _format_load(a)
    if isinstance(a, Move):
        return f"move:{format_subfield(a.src)}->{format_subfield(a.dst)}"
    if isinstance(a, DecTtl):
        return "dec_ttl"
    if isinstance(a, CtClear):
        return "ct_clear"
    if isinstance(a, Nat):
        return format_nat(a)
    if isinstance(a, Group):
        return f"group:{a.group_id}"
    if isinstance(a, Note):
        return "note:" + ".".join(f"{b:02x}" for b in a.data)
    if isinstance(a, Controller):
        parts = []
        if a.reason and a.reason != "action":
            parts.append(f"reason={a.reason}")
        if a.max_len != 65535:
            parts.append(f"max_len={a.max_len}")
        return "controller(" + ",".join(parts) + ")"
    raise TypeError(f"not an action record: {a!r}")


def format_actions(actions, ports: F.PortNames | None = None, names: bool = True) -> str:
    """``ofpacts_format``: comma-joined, ``drop`` for an empty list."""
    if not actions:
        return "drop"
    return ",".join(format_action(a, ports, names) for a in actions)


# ---------------------------------------------------------------------------
# OpenFlow 1.0 (+NX) round trip

_LEGACY = {"eth_src": "mod_dl_src", "eth_dst": "mod_dl_dst", "ip_src": "mod_nw_src", "ip_dst": "mod_nw_dst",
           "tcp_src": "mod_tp_src", "udp_src": "mod_tp_src", "tcp_dst": "mod_tp_dst", "udp_dst": "mod_tp_dst"}


def _set_field_to_loads(field: str, value: int, mask: int | None) -> list:
    f = F.by_name(field)
    assert f is not None
    full = (1 << f.n_bits) - 1
    mask = full if mask is None else mask & full
    out, bit = [], 0
    while bit < f.n_bits:
        if not mask >> bit & 1:
            bit += 1
            continue
        start = bit
        while bit < f.n_bits and mask >> bit & 1 and bit - start < 64:
            bit += 1
        n = bit - start
        out.append(Load((value >> start) & ((1 << n) - 1), Subfield(f.name, start, n)))
    return out


def wire_actions(actions) -> list:
    """What the switch returns for ``actions`` sent with OpenFlow 1.0 + Nicira extensions."""
    out: list = []
    for a in actions:
        if isinstance(a, SetField):
            sp = a.spelling
            if sp == "set_field":
                if a.field in _LEGACY:
                    out.append(SetField(a.field, a.value, None, _LEGACY[a.field]))
                elif a.field == "nw_tos":
                    out.append(SetField("nw_tos", a.value & 0xFC, None, "mod_nw_tos"))
                elif a.field == "ip_dscp":
                    out.append(SetField("nw_tos", (a.value << 2) & 0xFC, None, "mod_nw_tos"))
                else:
                    out.extend(_set_field_to_loads(a.field, a.value, a.mask))
            elif sp in ("mod_nw_ttl", "mod_nw_ecn"):
                out.extend(_set_field_to_loads(a.field, a.value, None))
            else:
                out.append(a)
        elif isinstance(a, GotoTable):
            out.append(Resubmit(None, None if a.table == 255 else a.table))
        elif isinstance(a, Note):
            # NXAST_NOTE is padded to a multiple of 8 bytes (10-byte header, at least 6 bytes
            # of note), and the padding comes back as part of the note.
            n = len(a.data)
            out.append(Note(a.data + bytes((-(10 + n)) % 8 if n >= 6 else 6 - n)))
        elif isinstance(a, Load):
            out.extend(_set_field_to_loads(a.dst.field, a.value << a.dst.ofs,
                                           ((1 << a.dst.n_bits) - 1) << a.dst.ofs))
        elif isinstance(a, Ct) and (a.exec or a.nat is not None):
            nat = _nat_wire(a.nat) if a.nat is not None else None
            cut = a.nat_index if nat is not None else 0
            before, after = wire_actions(a.exec[:cut]), wire_actions(a.exec[cut:])
            out.append(Ct(a.commit, a.force, a.table, a.zone, a.zone_src, nat, tuple(before + after), a.alg,
                          len(before)))
        else:
            out.append(a)
    return out
