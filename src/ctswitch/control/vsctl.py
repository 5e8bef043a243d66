"""ovs-vsctl: bridges, ports, fail modes and other_config, with the real tool's syntax and words.

Theory of operation
-------------------
The command line is global options, then commands separated by ``--``; each
command is its own options (``--may-exist``, ``--if-exists``), a name and
arguments (``COMMANDS`` gives the argument counts).  Like ovs-vsctl, the
commands form one transaction: they run in order, each recording an undo
step, and the first error undoes the ones before it (nothing changes) and
prints ``ovs-vsctl: MESSAGE`` with exit status 1.

The Open_vSwitch row's ``other_config`` keys that ``params`` declares
(``hw-offload``, ``tc-policy``, ``max-idle``...) are validated and stored as
knobs; other keys are kept as strings, as OVS does, in ``switch.ovs_row``
(which also holds the row's UUID shown by ``show``; the store keeps it).

Changing a bridge's fail mode without a controller flushes its flows, and in
standalone mode the ``priority=0 actions=NORMAL`` flow comes back (OVS's
``connmgr_set_fail_mode``).  ``show`` lists bridges and ports in creation
order (OVS orders them by row UUID, i.e. arbitrarily).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from .. import params as P
from ..flow.actions import OFPP_LOCAL
from ..ofproto.bridge import BridgeError, Port
from .result import Result

OVS_VERSION = "3.1.0"
DB_SCHEMA = "8.3.1"

# name -> (min args, max args, allowed options)
COMMANDS: dict[str, tuple[int, int, frozenset[str]]] = {
    "init": (0, 0, frozenset()),
    "show": (0, 0, frozenset()),
    "comment": (0, 1 << 30, frozenset()),
    "add-br": (1, 3, frozenset({"--may-exist"})),
    "del-br": (1, 1, frozenset({"--if-exists"})),
    "list-br": (0, 0, frozenset({"--real", "--fake"})),
    "br-exists": (1, 1, frozenset()),
    "br-to-vlan": (1, 1, frozenset()),
    "br-to-parent": (1, 1, frozenset()),
    "add-port": (2, 1 << 30, frozenset({"--may-exist"})),
    "del-port": (1, 2, frozenset({"--if-exists", "--with-iface"})),
    "list-ports": (1, 1, frozenset()),
    "list-ifaces": (1, 1, frozenset()),
    "port-to-br": (1, 1, frozenset()),
    "iface-to-br": (1, 1, frozenset()),
    "set-fail-mode": (2, 2, frozenset()),
    "get-fail-mode": (1, 1, frozenset()),
    "del-fail-mode": (1, 1, frozenset()),
    "set": (3, 1 << 30, frozenset({"--if-exists"})),
    "get": (2, 1 << 30, frozenset({"--if-exists"})),
    "remove": (4, 1 << 30, frozenset({"--if-exists"})),
    "clear": (3, 1 << 30, frozenset({"--if-exists"})),
}

GLOBAL_FLAGS = frozenset({"--no-wait", "--wait", "-v", "--verbose", "--oneline", "--dry-run", "--no-syslog",
                          "--retry", "--no-leader-only", "--leader-only"})
GLOBAL_WITH_ARG = frozenset({"-t", "--timeout", "--db", "--format", "--columns"})

FAIL_MODES = ("standalone", "secure")


class VsctlError(Exception):
    """A command failed; the message is printed as ``ovs-vsctl: MESSAGE``."""


# ---------------------------------------------------------------------- OVSDB value syntax
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")


def quote(s: str) -> str:
    """An OVSDB string as ``ovs-vsctl`` prints it: bare when it is a plain identifier."""
    if _IDENT.match(s) and s not in ("true", "false"):
        return s
    out = ['"']
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def unquote(s: str) -> str:
    """A value as typed on the command line (``"true"`` or true) -> the string."""
    if len(s) >= 2 and s[0] == s[-1] == '"':
        return s[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return s


def format_map(m: dict[str, str]) -> str:
    return "{" + ", ".join(f"{quote(k)}={quote(v)}" for k, v in sorted(m.items())) + "}"


def _value_text(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


# ---------------------------------------------------------------------- the Open_vSwitch row
def ovs_row(switch) -> dict:
    """The Open_vSwitch row kept on the switch: uuid, unknown other_config keys, explicit fail modes."""
    row = getattr(switch, "ovs_row", None)
    if not isinstance(row, dict):
        row = {}
        switch.ovs_row = row
    row.setdefault("uuid", str(uuid.uuid4()))
    row.setdefault("other_config", {})
    row.setdefault("fail_mode", {})  # bridge -> explicitly set fail_mode
    return row


def other_config(switch) -> dict[str, str]:
    """The Open_vSwitch other_config map as OVS shows it (only keys that were set)."""
    out = dict(ovs_row(switch)["other_config"])
    for key, v in switch.params.values.items():
        if key.startswith("other_config:"):
            out[key.split(":", 1)[1]] = _value_text(v)
    return out


# ---------------------------------------------------------------------- context
class _Txn:
    def __init__(self, switch) -> None:
        self.sw = switch
        self.undo: list[Callable[[], None]] = []
        self.out: list[str] = []
        self.changed = False
        self.created: set[str] = set()

    def do(self, undo: Callable[[], None]) -> None:
        self.undo.append(undo)
        self.changed = True

    def rollback(self) -> None:
        for fn in reversed(self.undo):
            fn()

    def bridge(self, name: str):
        br = self.sw.bridges.get(name)
        if br is None:
            raise VsctlError(f"no bridge named {name}")
        return br


def _restore_dict(d: dict, items: list) -> Callable[[], None]:
    def undo() -> None:
        d.clear()
        d.update(items)
    return undo


# ---------------------------------------------------------------------- bridges
def _add_br(t: _Txn, opts: set[str], args: list[str]) -> None:
    name = args[0]
    if len(args) > 1:
        raise VsctlError("fake bridges (add-br BR PARENT VLAN) are not supported by ctswitch")
    if name in t.sw.bridges:
        if "--may-exist" in opts:
            return
        raise VsctlError(f"cannot create a bridge named {name} because a bridge named {name} already exists")
    found = t.sw.find_port(name)
    if found is not None:
        raise VsctlError(f"cannot create a bridge named {name} because a port named {name} already exists "
                         f"on bridge {found[0].name}")
    try:
        t.sw.add_bridge(name, "standalone")
    except BridgeError as e:
        raise VsctlError(str(e)) from None
    t.created.add(name)
    t.do(lambda: (t.sw.bridges.pop(name, None), t.created.discard(name)))


def _del_br(t: _Txn, opts: set[str], args: list[str]) -> None:
    name = args[0]
    if name not in t.sw.bridges:
        if "--if-exists" in opts:
            return
        raise VsctlError(f"no bridge named {name}")
    before = list(t.sw.bridges.items())
    fm = ovs_row(t.sw)["fail_mode"]
    fm_before = list(fm.items())
    t.sw.del_bridge(name)
    fm.pop(name, None)
    t.do(lambda: (_restore_dict(t.sw.bridges, before)(), _restore_dict(fm, fm_before)()))


def _list_br(t: _Txn, opts: set[str], args: list[str]) -> None:
    t.out.extend(f"{n}\n" for n in sorted(t.sw.bridges))


def _br_exists(t: _Txn, opts: set[str], args: list[str]) -> None:
    if args[0] not in t.sw.bridges:
        raise _Exit(2)


def _br_to_vlan(t: _Txn, opts: set[str], args: list[str]) -> None:
    t.bridge(args[0])
    t.out.append("0\n")


def _br_to_parent(t: _Txn, opts: set[str], args: list[str]) -> None:
    t.bridge(args[0])
    t.out.append(f"{args[0]}\n")


class _Exit(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


# ---------------------------------------------------------------------- ports
def _add_port(t: _Txn, opts: set[str], args: list[str]) -> None:
    brname, name, settings = args[0], args[1], args[2:]
    br = t.bridge(brname)
    found = t.sw.find_port(name)
    if found is not None:
        obr, _p = found
        if "--may-exist" in opts:
            if obr.name != brname:
                raise VsctlError(f'"--may-exist add-port {brname} {name}" but {name} is actually attached '
                                 f"to bridge {obr.name}")
            return
        if name in t.sw.bridges:  # OVS's check_conflicts() looks at bridges first
            raise VsctlError(f"cannot create a port named {name} because a bridge named {name} already exists")
        raise VsctlError(f"cannot create a port named {name} because a port named {name} already exists "
                         f"on bridge {obr.name}")
    br.add_port(name)
    t.do(lambda: br.del_port(name) if name in br.ports else None)
    for s in settings:  # add-port BR PORT [COLUMN[:KEY]=VALUE]... sets the Port row
        _set_column(t, "Port", name, s)


def _find_port(t: _Txn, name: str, brname: str | None = None):
    found = t.sw.find_port(name)
    if found is None:
        return None
    br, p = found
    if brname is not None and br.name != brname:
        t.bridge(brname)
        raise VsctlError(f"bridge {brname} does not have a port {name}")
    return br, p


def _del_port(t: _Txn, opts: set[str], args: list[str]) -> None:
    brname, name = (args[0], args[1]) if len(args) == 2 else (None, args[0])
    if brname is not None:
        t.bridge(brname)
    found = _find_port(t, name, brname)
    if found is None:
        if "--if-exists" in opts:
            return
        raise VsctlError(f"no port named {name}")
    br, p = found
    if p.ofport == OFPP_LOCAL:
        raise VsctlError(f"cannot delete port {name} because it is the local port for bridge {br.name} "
                         "(deleting this port requires deleting the entire bridge)")
    ports_before, byno_before, mac_before = list(br.ports.items()), list(br.by_no.items()), list(br.mac.items())
    br.del_port(name)

    def undo() -> None:
        _restore_dict(br.ports, ports_before)()
        _restore_dict(br.by_no, byno_before)()
        _restore_dict(br.mac, mac_before)()
        br.generation += 1
    t.do(undo)


def _user_ports(br) -> list[str]:
    return sorted(p.name for p in br.ports.values() if p.ofport != OFPP_LOCAL)


def _list_ports(t: _Txn, opts: set[str], args: list[str]) -> None:
    t.out.extend(f"{n}\n" for n in _user_ports(t.bridge(args[0])))


def _port_to_br(t: _Txn, opts: set[str], args: list[str]) -> None:
    found = t.sw.find_port(args[0])
    if found is None:
        raise VsctlError(f"no port named {args[0]}")
    t.out.append(f"{found[0].name}\n")


def _iface_to_br(t: _Txn, opts: set[str], args: list[str]) -> None:
    found = t.sw.find_port(args[0])
    if found is None:
        raise VsctlError(f"no interface named {args[0]}")
    t.out.append(f"{found[0].name}\n")


# ---------------------------------------------------------------------- fail mode
def set_fail_mode(t: _Txn, brname: str, mode: str | None) -> None:
    """Sets (or with None clears) the fail mode; a change flushes the flows like OVS."""
    br = t.bridge(brname)
    fm = ovs_row(t.sw)["fail_mode"]
    old_explicit = fm.get(brname)
    old_mode = br.fail_mode
    new_mode = mode or "standalone"
    if mode is None:
        fm.pop(brname, None)
    else:
        fm[brname] = mode
    saved_rules = None
    if new_mode != old_mode:
        saved_rules = list(br.iter_rules())
        seq, n_rules = br._seq, br.n_rules
        br.fail_mode = new_mode
        br.remove_rules(saved_rules, t.sw.now)  # standalone: the NORMAL flow comes back

    def undo() -> None:
        if old_explicit is None:
            fm.pop(brname, None)
        else:
            fm[brname] = old_explicit
        if saved_rules is not None:
            br.fail_mode = old_mode
            for r in list(br.iter_rules()):
                br.tables[r.table_id].remove(r)
            for r in saved_rules:
                br.table(r.table_id).insert(r, r.seq)
            br._seq, br.n_rules = seq, n_rules
            br.generation += 1
    t.do(undo)


def _set_fail_mode(t: _Txn, opts: set[str], args: list[str]) -> None:
    t.bridge(args[0])
    if args[1] not in FAIL_MODES:
        raise VsctlError('fail-mode must be "standalone" or "secure"')
    set_fail_mode(t, args[0], args[1])


def _get_fail_mode(t: _Txn, opts: set[str], args: list[str]) -> None:
    t.bridge(args[0])
    mode = ovs_row(t.sw)["fail_mode"].get(args[0])
    if mode:
        t.out.append(f"{mode}\n")


def _del_fail_mode(t: _Txn, opts: set[str], args: list[str]) -> None:
    set_fail_mode(t, args[0], None)


# ---------------------------------------------------------------------- database commands
TABLE_ALIASES = {"open_vswitch": "Open_vSwitch", "bridge": "Bridge", "port": "Port", "interface": "Interface"}


def _table(name: str) -> str:
    t = TABLE_ALIASES.get(name.lower())
    if t is None:
        raise VsctlError(f"unknown table \"{name}\"")
    return t


def _record(t: _Txn, table: str, rec: str, if_exists: bool = False):
    """The object of TABLE RECORD, or None (with --if-exists)."""
    if table == "Open_vSwitch":
        if rec != ".":
            raise VsctlError(f'no row "{rec}" in table Open_vSwitch')
        return "."
    if table == "Bridge":
        br = t.sw.bridges.get(rec)
        if br is None and not if_exists:
            raise VsctlError(f'no row "{rec}" in table Bridge')
        return br
    found = t.sw.find_port(rec)
    if found is None:
        if if_exists:
            return None
        raise VsctlError(f'no row "{rec}" in table {table}')
    return found


def _split_setting(s: str) -> tuple[str, str | None, str]:
    """``column[:key]=value`` -> (column, key or None, value)."""
    lhs, eq, value = s.partition("=")
    if not eq:
        raise VsctlError(f'"{s}": argument does not end in "=" followed by a value.')
    col, colon, key = lhs.partition(":")
    return col, (unquote(key) if colon else None), unquote(value)


def _set_other_config(t: _Txn, key: str, value: str) -> None:
    p = P.lookup("other_config", key)
    row = ovs_row(t.sw)
    if p is None:
        oc = row["other_config"]
        before = list(oc.items())
        oc[key] = value
        t.do(_restore_dict(oc, before))
        return
    try:
        v = P.parse_value(p, value)
    except ValueError as e:
        raise VsctlError(f"other_config:{key}={value}: {e}") from None
    _set_param(t, p.key, v)


def _set_param(t: _Txn, key: str, value) -> None:
    params = t.sw.params
    had = key in params.values
    old = params.values.get(key)
    params.set(key, value)

    def undo() -> None:
        if had:
            params.set(key, old)
        else:
            unset_param(params, key)
    t.do(undo)


def unset_param(params, key: str) -> None:
    """Returns a knob to its default (``Params.unset`` when present)."""
    if hasattr(params, "unset"):
        params.unset(key)
        return
    if key in params.values:
        del params.values[key]
        params.version += 1
        for fn in params.listeners:
            fn(key, P.PARAMS[key].default)


def _bridge_other(t: _Txn, br, column: str, key: str | None, value: str | None) -> None:
    """Sets (None: removes) ``column:key`` of the Bridge row, or the plain ``column`` when key is None."""
    before = list(br.other.items())
    k = column if key is None else f"{column}:{key}"
    if value is None:
        br.other.pop(k, None)
    else:
        br.other[k] = value
    t.do(_restore_dict(br.other, before))


# Columns of the Port row (the rest of ``set port``/``add-port`` settings belong to the
# Interface row and are refused there, as OVS does).  They are kept in ``Port.options``
# under ``port:COLUMN`` so that they persist; the datapath does not act on them.
PORT_COLUMNS = ("tag", "trunks", "vlan_mode")
VLAN_MODES = ("access", "dot1q-tunnel", "native-tagged", "native-untagged", "trunk")
# Interface columns kept under ``iface:COLUMN`` (the request, distinct from the ofport).
OFPORT_REQUEST = "iface:ofport_request"


def _vlan(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise VsctlError(f'"{value}" is not a valid integer') from None
    if not 0 <= n <= 4095:
        raise VsctlError(f"constraint violation: {n} is not in the valid range 0 to 4095 (inclusive)")
    return n


def _set_port_row(t: _Txn, port: Port, col: str, key: str | None, value: str) -> None:
    if col == "tag" and key is None:
        text = str(_vlan(value))
    elif col == "trunks" and key is None:
        items = [x for x in value.strip("[]").replace(",", " ").split() if x]
        text = "[" + ", ".join(str(n) for n in sorted({_vlan(x) for x in items})) + "]"
    elif col == "vlan_mode" and key is None:
        if value not in VLAN_MODES:
            raise VsctlError(f"constraint violation: {value} is not one of the allowed values "
                             f"([{', '.join(VLAN_MODES)}])")
        text = value
    elif col in ("external_ids", "other_config") and key is not None:
        col, text = f"{col}:{key}", value
    else:
        raise VsctlError(f'Port does not contain a column whose name matches "{col}"')
    before = list(port.options.items())
    port.options[f"port:{col}"] = text
    t.do(_restore_dict(port.options, before))


def _set_port_attr(t: _Txn, port: Port, br, col: str, key: str | None, value: str) -> None:
    if col == "ofport_request" and key is None:
        try:
            n = int(value)
        except ValueError:
            raise VsctlError(f'"{value}" is not a valid integer') from None
        if not 1 <= n < 0xFF00:
            raise VsctlError(f"constraint violation: {n} is not in the valid range 1 to 65279 (inclusive)")
        before = list(port.options.items())
        port.options[OFPORT_REQUEST] = str(n)
        t.do(_restore_dict(port.options, before))
        old = port.ofport
        if n == old or n in br.by_no:
            return  # OVS keeps the current number when the requested one is taken
        del br.by_no[old]
        port.ofport = n
        br.by_no[n] = port
        br.generation += 1

        def undo() -> None:
            del br.by_no[port.ofport]
            port.ofport = old
            br.by_no[old] = port
            br.generation += 1
        t.do(undo)
    elif col == "type" and key is None:
        old_type = port.type
        port.type = value
        t.do(lambda: setattr(port, "type", old_type))
    elif col == "options" and key is not None:
        before = list(port.options.items())
        port.options[key] = value
        t.do(_restore_dict(port.options, before))
    elif col in ("external_ids", "other_config") and key is not None:
        before = list(port.options.items())
        port.options[f"{col}:{key}"] = value
        t.do(_restore_dict(port.options, before))
    else:
        raise VsctlError(f'Interface does not contain a column whose name matches "{col}"')


def _set_column(t: _Txn, table: str, rec: str, setting: str) -> None:
    col, key, value = _split_setting(setting)
    if table == "Open_vSwitch":
        if col == "other_config" and key is not None:
            _set_other_config(t, key, value)
        elif col == "external_ids" and key is not None:
            oc = ovs_row(t.sw).setdefault("external_ids", {})
            before = list(oc.items())
            oc[key] = value
            t.do(_restore_dict(oc, before))
        else:
            raise VsctlError(f'Open_vSwitch does not contain a column whose name matches "{col}"')
    elif table == "Bridge":
        br = t.sw.bridges[rec]
        if col == "fail_mode" and key is None:
            if value not in FAIL_MODES:
                raise VsctlError(f'constraint violation: {value} is not one of the allowed values ([secure, standalone])')
            set_fail_mode(t, rec, value)
        elif col in ("other_config", "external_ids") and key is not None:
            _bridge_other(t, br, col, key, value)
        elif col == "datapath_type" and key is None:
            _bridge_other(t, br, col, None, value)
        else:
            raise VsctlError(f'Bridge does not contain a column whose name matches "{col}"')
    elif table == "Port":
        _set_port_row(t, t.sw.find_port(rec)[1], col, key, value)
    else:  # Interface: one interface per port here
        br, p = t.sw.find_port(rec)
        _set_port_attr(t, p, br, col, key, value)


def _db_set(t: _Txn, opts: set[str], args: list[str]) -> None:
    table = _table(args[0])
    rec = _record(t, table, args[1], "--if-exists" in opts)
    if rec is None:
        return
    for s in args[2:]:
        _set_column(t, table, args[1], s)


def _get_value(t: _Txn, table: str, rec: str, col: str, key: str | None, if_exists: bool) -> str | None:
    if table == "Open_vSwitch":
        if col == "other_config":
            m = other_config(t.sw)
        elif col == "external_ids":
            m = dict(ovs_row(t.sw).get("external_ids", {}))
        elif col == "ovs_version" and key is None:
            return quote(OVS_VERSION)
        elif col == "_uuid" and key is None:
            return ovs_row(t.sw)["uuid"]
        elif col == "bridges" and key is None:
            return "[" + ", ".join(quote(b) for b in t.sw.bridges) + "]"
        else:
            raise VsctlError(f'Open_vSwitch does not contain a column whose name matches "{col}"')
    elif table == "Bridge":
        br = t.sw.bridges[rec]
        if col == "fail_mode" and key is None:
            mode = ovs_row(t.sw)["fail_mode"].get(rec)
            return mode if mode else "[]"
        if col == "name" and key is None:
            return quote(br.name)
        if col == "ports" and key is None:
            return "[" + ", ".join(quote(p) for p in sorted(br.ports)) + "]"
        if col == "datapath_type" and key is None:
            return quote(br.other.get("datapath_type", "")) if br.other.get("datapath_type") else '""'
        if col not in ("other_config", "external_ids"):
            raise VsctlError(f'Bridge does not contain a column whose name matches "{col}"')
        m = {k.split(":", 1)[1]: v for k, v in br.other.items() if k.startswith(col + ":")}
    else:
        br, p = t.sw.find_port(rec)
        if key is None and col == "name":
            return quote(p.name)
        if key is None and col == "ofport":
            return str(p.ofport if p.ofport != OFPP_LOCAL else 65534)
        if key is None and col == "ofport_request":
            return p.options.get(OFPORT_REQUEST, "[]")
        if table == "Port" and key is None and col in PORT_COLUMNS:
            return p.options.get(f"port:{col}", '""' if col == "vlan_mode" else "[]")
        if key is None and col == "type":
            return quote(p.type) if p.type else '""'
        if col == "options":
            m = {k: v for k, v in p.options.items() if ":" not in k}
        elif col in ("external_ids", "other_config"):
            pre = f"port:{col}:" if table == "Port" else col + ":"
            m = {k[len(pre):]: v for k, v in p.options.items() if k.startswith(pre)}
        else:
            raise VsctlError(f'{table} does not contain a column whose name matches "{col}"')
    if key is None:
        return format_map(m)
    if key not in m:
        if if_exists:
            return ""  # ovs-vsctl prints an empty line for the missing key
        raise VsctlError(f'no key "{key}" in {table} record "{rec}" column {col}')
    return quote(m[key])


def _db_get(t: _Txn, opts: set[str], args: list[str]) -> None:
    table = _table(args[0])
    rec = _record(t, table, args[1], "--if-exists" in opts)
    if rec is None:
        return
    for spec in args[2:]:
        col, colon, key = spec.partition(":")
        v = _get_value(t, table, args[1], col, unquote(key) if colon else None, "--if-exists" in opts)
        if v is not None:
            t.out.append(v + "\n")


def _db_remove(t: _Txn, opts: set[str], args: list[str]) -> None:
    table = _table(args[0])
    rec = _record(t, table, args[1], "--if-exists" in opts)
    if rec is None:
        return
    col = args[2]
    for item in args[3:]:
        k, eq, v = item.partition("=")
        k, v = unquote(k), (unquote(v) if eq else None)
        _remove_key(t, table, args[1], col, k, v)


def _remove_key(t: _Txn, table: str, rec: str, col: str, key: str, value: str | None) -> None:
    if table == "Open_vSwitch" and col == "other_config":
        p = P.lookup("other_config", key)
        if p is not None:
            if p.key in t.sw.params.values and (value is None or _value_text(t.sw.params.values[p.key]) == value):
                old = t.sw.params.values[p.key]
                unset_param(t.sw.params, p.key)
                t.do(lambda: t.sw.params.set(p.key, old))
            return
        m = ovs_row(t.sw)["other_config"]
    elif table == "Open_vSwitch" and col == "external_ids":
        m = ovs_row(t.sw).setdefault("external_ids", {})
    elif table == "Bridge" and col in ("other_config", "external_ids"):
        br = t.sw.bridges[rec]
        if f"{col}:{key}" in br.other and (value is None or br.other[f"{col}:{key}"] == value):
            _bridge_other(t, br, col, key, None)
        return
    elif table in ("Port", "Interface") and col == "options":
        m = t.sw.find_port(rec)[1].options
    else:
        raise VsctlError(f'{table} does not contain a column whose name matches "{col}"')
    if key in m and (value is None or m[key] == value):
        before = list(m.items())
        del m[key]
        t.do(_restore_dict(m, before))


def _db_clear(t: _Txn, opts: set[str], args: list[str]) -> None:
    table = _table(args[0])
    rec = _record(t, table, args[1], "--if-exists" in opts)
    if rec is None:
        return
    for col in args[2:]:
        if table == "Open_vSwitch" and col == "other_config":
            for k in list(other_config(t.sw)):
                _remove_key(t, table, args[1], col, k, None)
        elif table == "Bridge" and col in ("other_config", "external_ids"):
            br = t.sw.bridges[args[1]]
            for k in [k for k in br.other if k.startswith(col + ":")]:
                _bridge_other(t, br, col, k.split(":", 1)[1], None)
        elif table == "Bridge" and col == "fail_mode":
            set_fail_mode(t, args[1], None)
        elif table in ("Port", "Interface") and col == "options":
            p = t.sw.find_port(args[1])[1]
            before = list(p.options.items())
            for k in [k for k in p.options if ":" not in k]:
                del p.options[k]
            t.do(_restore_dict(p.options, before))
        else:
            raise VsctlError(f'{table} does not contain a column whose name matches "{col}"')


# ---------------------------------------------------------------------- show
def show(switch) -> str:
    """``ovs-vsctl show`` (OVS's layout: 4 spaces per level, non-default columns only)."""
    row = ovs_row(switch)
    lines = [row["uuid"]]
    for br in switch.bridges.values():
        lines.append(f"    Bridge {quote(br.name)}")
        mode = row["fail_mode"].get(br.name)
        if mode:
            lines.append(f"        fail_mode: {mode}")
        if br.other.get("datapath_type"):
            lines.append(f"        datapath_type: {quote(br.other['datapath_type'])}")
        for p in br.ports.values():
            lines.append(f"        Port {quote(p.name)}")
            for col in PORT_COLUMNS:
                if f"port:{col}" in p.options:
                    lines.append(f"            {col}: {p.options[f'port:{col}']}")
            lines.append(f"            Interface {quote(p.name)}")
            if p.type:
                lines.append(f"                type: {quote(p.type)}")
            opts = {k: v for k, v in p.options.items() if ":" not in k}
            if opts:
                lines.append(f"                options: {format_map(opts)}")
    lines.append(f'    ovs_version: "{OVS_VERSION}"')
    return "\n".join(lines) + "\n"


def _show(t: _Txn, opts: set[str], args: list[str]) -> None:
    t.out.append(show(t.sw))


def _noop(t: _Txn, opts: set[str], args: list[str]) -> None:
    pass


HANDLERS: dict[str, Callable[[_Txn, set[str], list[str]], None]] = {
    "init": _noop, "comment": _noop, "show": _show,
    "add-br": _add_br, "del-br": _del_br, "list-br": _list_br, "br-exists": _br_exists,
    "br-to-vlan": _br_to_vlan, "br-to-parent": _br_to_parent,
    "add-port": _add_port, "del-port": _del_port, "list-ports": _list_ports, "list-ifaces": _list_ports,
    "port-to-br": _port_to_br, "iface-to-br": _iface_to_br,
    "set-fail-mode": _set_fail_mode, "get-fail-mode": _get_fail_mode, "del-fail-mode": _del_fail_mode,
    "set": _db_set, "get": _db_get, "remove": _db_remove, "clear": _db_clear,
}


# ---------------------------------------------------------------------- parsing and running
def parse(argv: list[str]) -> list[tuple[set[str], str, list[str]]] | Result:
    """argv -> [(options, command, args)], or a Result for --help/--version/usage errors."""
    i = 0
    # Global options come first (before the first command or "--").
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "--":
        a = argv[i]
        name = a.split("=", 1)[0]
        if a in ("-h", "--help"):
            from .dispatch import TOOLS
            return Result(out=TOOLS["ovs-vsctl"].usage)
        if a in ("-V", "--version"):
            return Result(out=f"ovs-vsctl (Open vSwitch) {OVS_VERSION}\nDB Schema {DB_SCHEMA}\n")
        if a in GLOBAL_FLAGS or name in GLOBAL_FLAGS:
            i += 1
            continue
        if name in GLOBAL_WITH_ARG:
            i += 1 if "=" in a else 2
            continue
        if a.startswith("-t") and a[2:].isdigit():
            i += 1
            continue
        if name in ("--may-exist", "--if-exists", "--with-iface", "--real", "--fake"):
            break  # the first command's own options
        return Result(err=f"ovs-vsctl: unrecognized option '{a}'\n"
                          "ovs-vsctl: Use --help for help\n", code=1)
    cmds = []
    segment: list[str] = []
    for a in argv[i:] + ["--"]:
        if a != "--":
            segment.append(a)
            continue
        if segment:
            opts = set()
            while segment and segment[0].startswith("--"):
                opts.add(segment.pop(0).split("=", 1)[0])
            if not segment:
                return Result(err="ovs-vsctl: missing command name (use --help for help)\n", code=1)
            name, args = segment[0], segment[1:]
            spec = COMMANDS.get(name)
            if spec is None:
                return Result(err=f"ovs-vsctl: unknown command '{name}'; use --help for help\n", code=1)
            lo, hi, allowed = spec
            bad = opts - allowed
            if bad:
                return Result(err=f"ovs-vsctl: '{name}' command has no '{sorted(bad)[0]}' option\n", code=1)
            if len(args) < lo:
                return Result(err=f"ovs-vsctl: '{name}' command requires at least {lo} arguments\n", code=1)
            if len(args) > hi:
                return Result(err=f"ovs-vsctl: '{name}' command takes at most {hi} arguments\n", code=1)
            cmds.append((opts, name, args))
        segment = []
    if not cmds:
        return Result(err="ovs-vsctl: missing command name (use --help for help)\n", code=1)
    return cmds


def run(switch, argv: list[str], ctx=None) -> Result:
    """``ovs-vsctl ARGV`` on ``switch``: all commands or none."""
    cmds = parse(argv)
    if isinstance(cmds, Result):
        return cmds
    t = _Txn(switch)
    try:
        for opts, name, args in cmds:
            HANDLERS[name](t, opts, args)
    except VsctlError as e:
        t.rollback()
        return Result(err=f"ovs-vsctl: {e}\n", code=1)
    except BridgeError as e:
        t.rollback()
        return Result(err=f"ovs-vsctl: {e}\n", code=1)
    except _Exit as e:
        t.rollback()
        return Result(out="".join(t.out), code=e.code)
    return Result(out="".join(t.out), changed=t.changed)
