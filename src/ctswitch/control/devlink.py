"""devlink: the BlueField's one PCI device and its ``ct_max_offloaded_conns`` parameter.

Theory of operation
-------------------
The emulated host has one devlink device, ``pci/0000:03:00.0`` (or
``switch.pci_dev`` when set).  iproute2's grammar is kept: an object
(``dev``, ``resource``), a command, then keyword/value pairs in any order::

    devlink dev show [DEV]
    devlink dev eswitch show DEV
    devlink dev param show [DEV [name NAME]]
    devlink dev param set DEV name NAME value VALUE cmode runtime
    devlink resource show DEV              (offload_tool.devlink_resource_show)

Parameters are ``params`` of domain ``devlink`` (driver-specific, u32, cmode
runtime only); a cmode the parameter lacks answers like the kernel
(``devlink answers: Operation not supported``), an unknown device
``devlink answers: No such device``.  Object and command names may be
abbreviated as iproute2 allows (``devlink dev param sh``).
"""

from __future__ import annotations

import importlib

from .. import params as P
from .result import Result

DEFAULT_DEV = "pci/0000:03:00.0"
CMODES = ("runtime", "driverinit", "permanent")


def device(switch) -> str:
    return getattr(switch, "pci_dev", None) or DEFAULT_DEV


def _err(msg: str, code: int = 1) -> Result:
    return Result(err=msg + "\n", code=code)


def _match(word: str, full: str) -> bool:
    """iproute2's matches(): ``word`` is a prefix of ``full``."""
    return bool(word) and full.startswith(word)


def _check_dev(switch, dev: str) -> Result | None:
    if "/" not in dev or dev.startswith("/") or dev.endswith("/"):
        return _err(f'Devlink identification ("bus_name/dev_name") "{dev}" is invalid')
    if dev != device(switch):
        return _err("devlink answers: No such device")
    return None


def _params() -> list[P.Param]:
    return sorted((p for p in P.PARAMS.values() if p.domain == "devlink"), key=lambda p: p.name)


def _param_block(switch, p: P.Param) -> list[str]:
    v = switch.params.get(p.key)
    return [f"  name {p.name} type driver-specific",
            "    values:",
            f"      cmode runtime value {int(v) if isinstance(v, bool) else v}"]


def _kv(args: list[str], allowed: tuple[str, ...]) -> dict[str, str] | Result:
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        k = args[i]
        if k not in allowed:
            return _err(f'Unknown option "{k}"')
        if i + 1 >= len(args):
            return _err(f'Option "{k}" requires an argument.' if k != "name" else "Parameter name expected.")
        out[k] = args[i + 1]
        i += 2
    return out


def param_show(switch, args: list[str]) -> Result:
    dev = device(switch)
    if args:
        bad = _check_dev(switch, args[0])
        if bad:
            return bad
        kv = _kv(args[1:], ("name",))
        if isinstance(kv, Result):
            return kv
        if "name" in kv:
            p = P.lookup("devlink", kv["name"])
            if p is None:
                return _err("devlink answers: Invalid argument")
            return Result(out="\n".join([f"{dev}:"] + _param_block(switch, p)) + "\n")
    lines = [f"{dev}:"]
    for p in _params():
        lines += _param_block(switch, p)
    return Result(out="\n".join(lines) + "\n")


def param_set(switch, args: list[str]) -> Result:
    if not args:
        return _err("Devlink identification (\"bus_name/dev_name\") expected")
    bad = _check_dev(switch, args[0])
    if bad:
        return bad
    kv = _kv(args[1:], ("name", "value", "cmode"))
    if isinstance(kv, Result):
        return kv
    for k, what in (("name", "Parameter name"), ("value", "Value to set"), ("cmode", "Configuration mode")):
        if k not in kv:
            return _err(f"{what} expected.")
    if kv["cmode"] not in CMODES:
        return _err(f'Unknown configuration mode "{kv["cmode"]}"')
    p = P.lookup("devlink", kv["name"])
    if p is None:
        return _err("devlink answers: Invalid argument")
    if kv["cmode"] != "runtime":
        return _err("devlink answers: Operation not supported")
    text = kv["value"]
    try:
        if not text.isdigit():
            raise ValueError
        v = P.parse_value(p, text)
    except ValueError:
        return _err(f'Value "{text}" is not a number or not within range')
    switch.params.set(p.key, v)
    return Result(changed=True)


def dev_show(switch, args: list[str]) -> Result:
    if args:
        bad = _check_dev(switch, args[0])
        if bad:
            return bad
    return Result(out=f"{device(switch)}\n")


def eswitch_show(switch, args: list[str]) -> Result:
    if not args:
        return _err('Devlink identification ("bus_name/dev_name") expected')
    bad = _check_dev(switch, args[0])
    if bad:
        return bad
    return Result(out=f"{device(switch)}: mode switchdev inline-mode none encap-mode basic\n")


def resource(switch, args: list[str], ctx) -> Result:
    if not args or not _match(args[0], "show"):
        what = args[0] if args else ""
        return _err(f'Command "{what}" not found' if what else "Command \"\" not found")
    try:
        fn = importlib.import_module("ctswitch.control.offload_tool").devlink_resource_show
    except (ImportError, AttributeError):
        return _err("devlink: resource show is not available yet")
    return fn(switch, args[1:], ctx)


def run(switch, argv: list[str], ctx=None) -> Result:
    args = [a for a in argv if a not in ("-n", "--no-nice-names")]
    if not args or args[0] in ("-h", "--help", "help"):
        from .dispatch import TOOLS
        return Result(out=TOOLS["devlink"].usage)
    if args[0] in ("-j", "--json", "-p", "--pretty"):
        return _err("devlink: JSON output is not supported by ctswitch")
    obj, rest = args[0], args[1:]
    if _match(obj, "dev"):
        if not rest or _match(rest[0], "show") or _match(rest[0], "list"):
            return dev_show(switch, rest[1:])
        cmd, rest = rest[0], rest[1:]
        if _match(cmd, "param"):
            if not rest or _match(rest[0], "show") or _match(rest[0], "list"):
                return param_show(switch, rest[1:])
            if _match(rest[0], "set"):
                return param_set(switch, rest[1:])
            return _err(f'Command "{rest[0]}" not found')
        if _match(cmd, "eswitch"):
            if rest and _match(rest[0], "show"):
                return eswitch_show(switch, rest[1:])
            return _err(f'Command "{rest[0] if rest else ""}" not found')
        return _err(f'Command "{cmd}" not found')
    if _match(obj, "resource"):
        return resource(switch, rest, ctx)
    return _err(f'Object "{obj}" not found')
