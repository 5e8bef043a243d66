"""Module parameters, and the few emulated /sys and /proc files (``cat``, ``echo N > FILE``).

Theory of operation
-------------------
Module parameters are ``params`` of domain ``modparam``, named
``MODULE.PARAM`` (``mlx5_core.num_of_groups``; ``ctswitch.*`` are the
model's own knobs).  ``ctswitch modparam`` lists them, ``modparam MODULE
PARAM`` (or ``MODULE.PARAM``) shows one, a trailing VALUE sets it.

``mlx5_core.num_of_groups`` is read by the driver only when the FDB tables
are created: a change applies at once when the FDB is empty, else it waits
until the last offloaded flow leaves (the offload model keeps it pending) and
a note says so on stderr.  The value shown is the one written, as sysfs shows.

``FILES`` maps the emulated paths to readers/writers::

    /sys/module/mlx5_core/parameters/num_of_groups   read/write (modparam)
    /proc/sys/net/netfilter/NAME                     read/write (sysctl)
    /proc/net/nf_conntrack                           read (conntrack_tool.proc_nf_conntrack)
    /proc/net/snmp                                   read (the Ip: reassembly/fragment counters)

``echo VALUE > FILE`` (argv ``VALUE > FILE`` or ``VALUE >FILE``) writes;
``cat FILE...`` reads; other paths are refused with one line.
"""

from __future__ import annotations

import importlib

from .. import params as P
from . import sysctl
from .result import Result

SYS_MODULE = "/sys/module/"
PROC_SYS = "/proc/sys/"
PROC_CONNTRACK = "/proc/net/nf_conntrack"
PROC_SNMP = "/proc/net/snmp"
# /proc/net/snmp's "Ip:" columns (Linux 5.15, the BlueField kernels).  Only the reassembly and
# fragmentation ones are modelled (ct() defrag); the emulated host sends and receives nothing
# itself, and does not forward IP (Forwarding 2, ip_forward=0).
_SNMP_IP = ("Forwarding", "DefaultTTL", "InReceives", "InHdrErrors", "InAddrErrors", "ForwDatagrams",
            "InUnknownProtos", "InDiscards", "InDelivers", "OutRequests", "OutDiscards", "OutNoRoutes",
            "ReasmTimeout", "ReasmReqds", "ReasmOKs", "ReasmFails", "FragOKs", "FragFails", "FragCreates")


def proc_snmp(switch) -> str:
    """The "Ip:" lines of ``/proc/net/snmp``."""
    mib = {"Forwarding": 2, "DefaultTTL": 64, **switch.tracker.defrag.stats}
    return ("Ip: " + " ".join(_SNMP_IP) + "\nIp: " + " ".join(str(mib.get(k, 0)) for k in _SNMP_IP) + "\n")
NUM_GROUPS = "modparam:mlx5_core.num_of_groups"


def _decls() -> list[P.Param]:
    return [p for p in P.PARAMS.values() if p.domain == "modparam"]


def _text(v) -> str:
    return str(int(v)) if isinstance(v, bool) else str(v)


def set_modparam(switch, p: P.Param, text: str) -> tuple[str | None, str]:
    """Validates and sets module parameter ``p``; returns (error or None, note)."""
    try:
        v = P.parse_value(p, text.strip())
    except ValueError as e:
        return str(e), ""
    switch.params.set(p.key, v)
    m = getattr(switch, "offload", None)
    if m is None:
        return None, ""
    if p.key == NUM_GROUPS and hasattr(m, "set_num_of_groups"):
        m.set_num_of_groups(v, switch.now)
    elif hasattr(m, "sync"):
        m.sync()  # the offload model reads the knobs (num_of_groups, fdb_capacity)
    fdb = getattr(m, "fdb", None)
    if fdb is not None and getattr(fdb, "pending", False) and p.key in (NUM_GROUPS, "modparam:ctswitch.fdb_capacity"):
        used = getattr(fdb, "used", "some")
        return None, (f"note: {p.name} {v} is pending: the FDB holds {used} entries; it takes effect "
                      "when all offloaded flows have aged out\n")
    return None, ""


def _find(module: str, name: str | None) -> P.Param | None:
    full = module if name is None else f"{module}.{name}"
    return P.lookup("modparam", full)


def run(switch, argv: list[str], ctx=None) -> Result:
    """``ctswitch modparam [MODULE PARAM [VALUE] | MODULE.PARAM [VALUE]]``."""
    if argv and argv[0] in ("-h", "--help"):
        from .dispatch import TOOLS
        return Result(out=TOOLS["modparam"].usage)
    if not argv:
        return Result(out="".join(f"{p.name} = {_text(switch.params.get(p.key))}\n"
                                  for p in sorted(_decls(), key=lambda p: p.name)))
    if "." in argv[0]:
        p, rest = _find(argv[0], None), argv[1:]
        label = argv[0]
    else:
        if len(argv) < 2:
            return Result(err=f"ctswitch modparam: {argv[0]}: give a parameter name (MODULE PARAM [VALUE])\n",
                          code=2)
        p, rest = _find(argv[0], argv[1]), argv[2:]
        label = f"{argv[0]}.{argv[1]}"
    if p is None:
        return Result(err=f"ctswitch modparam: {label}: no such module parameter "
                          f"(known: {', '.join(sorted(d.name for d in _decls()))})\n", code=1)
    if not rest:
        return Result(out=_text(switch.params.get(p.key)) + "\n")
    if len(rest) > 1:
        return Result(err="ctswitch modparam: too many arguments\n", code=2)
    err, note = set_modparam(switch, p, rest[0])
    if err is not None:
        return Result(err=f"ctswitch modparam: {p.name}: {err}\n", code=1)
    return Result(err=note, changed=True)


# ---------------------------------------------------------------------- files
def _modparam_of_path(path: str) -> P.Param | None:
    if not path.startswith(SYS_MODULE):
        return None
    parts = path[len(SYS_MODULE):].split("/")
    if len(parts) != 3 or parts[1] != "parameters":
        return None
    return P.lookup("modparam", f"{parts[0]}.{parts[2]}")


def read_file(switch, path: str) -> str | None:
    """The contents of an emulated file, or None when it is not emulated."""
    p = _modparam_of_path(path)
    if p is not None:
        return _text(switch.params.get(p.key)) + "\n"
    if path.startswith(PROC_SYS):
        name = path[len(PROC_SYS):].replace("/", ".")
        if P.lookup("sysctl", name) is not None:
            return sysctl.value_of(switch, name) + "\n"
        return None
    if path == PROC_CONNTRACK:
        fn = importlib.import_module("ctswitch.control.conntrack_tool").proc_nf_conntrack
        return fn(switch)
    if path == PROC_SNMP:
        return proc_snmp(switch)
    return None


def write_file(switch, path: str, text: str) -> tuple[Result | None, str]:
    """Writes an emulated file like ``echo`` does: (error Result or None, note)."""
    p = _modparam_of_path(path)
    if p is not None:
        err, note = set_modparam(switch, p, text)
        if err is not None:
            return Result(err="echo: write error: Invalid argument\n", code=1), ""
        return None, note
    if path.startswith(PROC_SYS):
        name = path[len(PROC_SYS):].replace("/", ".")
        msg = sysctl.write(switch, name, text)
        if msg is None:
            return None, ""
        if msg.startswith("cannot stat"):
            return Result(err=f"ctswitch echo: {path}: No such file or directory\n", code=1), ""
        if msg.startswith("permission"):
            return Result(err=f"ctswitch echo: {path}: Permission denied\n", code=1), ""
        return Result(err="echo: write error: Invalid argument\n", code=1), ""
    return Result(err=f"ctswitch echo: {path}: not an emulated file (writable: "
                      f"{SYS_MODULE}mlx5_core/parameters/num_of_groups, {PROC_SYS}net/netfilter/*)\n",
                  code=1), ""


def cat(switch, argv: list[str], ctx=None) -> Result:
    """``cat FILE...`` over the emulated files."""
    if not argv:
        return Result(err="ctswitch cat: give a file (reading stdin is not emulated)\n", code=1)
    out, err, code = [], [], 0
    for path in argv:
        text = read_file(switch, path)
        if text is None:
            err.append(f"ctswitch cat: {path}: not an emulated file (readable: {PROC_CONNTRACK}, {PROC_SNMP}, "
                       f"{PROC_SYS}net/netfilter/*, {SYS_MODULE}mlx5_core/parameters/num_of_groups)\n")
            code = 1
            continue
        out.append(text)
    # Reading /proc/net/nf_conntrack expires old entries, as the kernel's GC would have.
    return Result(out="".join(out), err="".join(err), code=code, changed=PROC_CONNTRACK in argv)


def echo(switch, argv: list[str], ctx=None) -> Result:
    """``echo VALUE > FILE`` (the ``>`` quoted on a shell line); plain ``echo`` prints its words."""
    args = list(argv)
    newline = True
    while args and args[0] in ("-n", "-e", "-E"):
        if args[0] == "-n":
            newline = False
        args.pop(0)
    target = None
    words: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a in (">", ">>"):
            if i + 1 >= len(args):
                return Result(err="ctswitch echo: syntax error near unexpected token `newline'\n", code=2)
            target = args[i + 1]
            i += 2
            continue
        if a.startswith(">") and len(a) > 1:
            target = a.lstrip(">")
            i += 1
            continue
        words.append(a)
        i += 1
    text = " ".join(words)
    if target is None:
        return Result(out=text + ("\n" if newline else ""))
    res, note = write_file(switch, target, text)
    if res is not None:
        return res
    return Result(err=note, changed=True)
