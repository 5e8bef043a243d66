"""Dispatch: the registry of ``ctswitch`` tools and the call into one of them.

Theory of operation
-------------------
``TOOLS`` maps a tool name (what the user types after ``ctswitch``, or the
first word of a pasted script line) to a ``Tool``: a ``"module:function"``
string, a one-line summary and a usage text.  Handlers are imported lazily,
on first use, so a tool whose module is missing (another developer has not
written it yet) answers "not available yet" instead of breaking every command.

Every handler has the signature ``fn(switch, argv: list[str], ctx) -> Result``;
``ctx`` is a ``Context`` (stdin text or None, cwd, db path, and ``run_line``
for scripts).  ``gen`` is the exception: ``cli_main(argv) -> int`` prints by
itself, and ``adapt_main`` captures its output into a ``Result``.

``dispatch(switch, tool, argv, ctx)`` answers ``TOOL --help`` / ``-h`` from the
registry (tools marked ``own_help`` answer it themselves), resolves the
handler and calls it.  It never catches the handler's own exceptions: the CLI
turns those into one ``internal error`` line and saves nothing.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
from collections.abc import Callable
from dataclasses import dataclass, field

from .result import Result


@dataclass(frozen=True)
class Tool:
    """One registry entry.

    Attributes:
        spec: ``"module:function"`` of the handler.
        summary: one line for ``ctswitch --help``.
        usage: the text of ``ctswitch TOOL --help``.
        adapter: "" (handler signature) or "main" (``fn(argv) -> int`` that prints itself).
        own_help: True when the tool answers ``--help`` itself.
        hidden: True for aliases not listed by ``ctswitch --help``.
        no_store: True for verbs that manage the daemon or the lab: they get ``switch=None``
            and run outside any store transaction (the daemon owns the store).
    """

    spec: str
    summary: str
    usage: str
    adapter: str = ""
    own_help: bool = False
    hidden: bool = False
    no_store: bool = False


_SYSCTL_USAGE = """\
usage: sysctl [-n] [-q] [-e] NAME...
       sysctl [-q] -w NAME=VALUE...
       sysctl -a | -A | -X
       sysctl -p FILE
The emulated kernel's net.netfilter.* knobs (see `ctswitch sysctl -a`).
"""

TOOLS: dict[str, Tool] = {
    "ovs-vsctl": Tool(
        "ctswitch.control.vsctl:run", "configure bridges, ports and other_config (Open vSwitch)",
        "usage: ovs-vsctl [--no-wait] [-t SECS] COMMAND [ARG...] [-- COMMAND [ARG...]]...\n"
        "Bridge commands: add-br BR, del-br BR, list-br, br-exists BR,\n"
        "  set-fail-mode BR standalone|secure, get-fail-mode BR, del-fail-mode BR\n"
        "Port commands: add-port BR PORT [COLUMN[:KEY]=VALUE]..., del-port [BR] PORT,\n"
        "  list-ports BR, list-ifaces BR, port-to-br PORT, iface-to-br IFACE\n"
        "Database commands: set TABLE RECORD COLUMN[:KEY]=VALUE..., get TABLE RECORD COLUMN[:KEY]...,\n"
        "  remove TABLE RECORD COLUMN KEY..., clear TABLE RECORD COLUMN...\n"
        "  (tables: Open_vSwitch ., Bridge BR, Interface IF, Port P)\n"
        "Other: show, init, comment, --version. Options per command: --may-exist, --if-exists.\n"
        "Not modelled: Port tag/trunks/vlan_mode are stored and shown, but NORMAL treats every\n"
        "port as a trunk (no VLAN access ports).\n"),
    "ovs-ofctl": Tool(
        "ctswitch.control.ofctl:run", "add, dump and delete OpenFlow rules (Open vSwitch)",
        "usage: ovs-ofctl [OPTIONS] COMMAND BRIDGE [ARG...]\n"
        "Commands: add-flow, add-flows, mod-flows, del-flows, dump-flows, show, dump-ports,\n"
        "  dump-tables, dump-desc\n", own_help=True),
    "ovs-appctl": Tool(
        "ctswitch.control.appctl:run", "ovs-vswitchd runtime commands (trace, dpctl/*, fdb/*)",
        "usage: ovs-appctl COMMAND [ARG...]\n(`ctswitch ovs-appctl list-commands` lists them)\n",
        own_help=True),
    "conntrack": Tool(
        "ctswitch.control.conntrack_tool:run", "list, delete and count tracked connections (conntrack-tools)",
        "usage: conntrack -L|-D|-F|-C|-S|-G|-E [FILTERS] [-o extended|id|...] [-z ZONE]\n", own_help=True),
    "sysctl": Tool("ctswitch.control.sysctl:run", "read and write net.netfilter.* kernel knobs", _SYSCTL_USAGE),
    "/sbin/sysctl": Tool("ctswitch.control.sysctl:run", "sysctl", _SYSCTL_USAGE, hidden=True),
    "/usr/sbin/sysctl": Tool("ctswitch.control.sysctl:run", "sysctl", _SYSCTL_USAGE, hidden=True),
    "devlink": Tool(
        "ctswitch.control.devlink:run", "NIC parameters: ct_max_offloaded_conns, resources (devlink)",
        "usage: devlink dev show [DEV]\n"
        "       devlink dev param show [DEV [name PARAMETER]]\n"
        "       devlink dev param set DEV name PARAMETER value VALUE cmode runtime\n"
        "       devlink resource show DEV\n"
        "DEV is pci/0000:03:00.0\n"),
    "modparam": Tool(
        "ctswitch.control.modparam:run", "kernel module parameters (mlx5_core num_of_groups, model knobs)",
        "usage: ctswitch modparam                       (list every module parameter)\n"
        "       ctswitch modparam MODULE PARAM [VALUE]  (show or set, e.g. mlx5_core num_of_groups 8)\n"
        "       ctswitch modparam MODULE.PARAM [VALUE]\n"
        "num_of_groups takes effect at once only when the FDB is empty; else it is pending.\n"),
    "cat": Tool(
        "ctswitch.control.modparam:cat", "read an emulated /proc or /sys file",
        "usage: cat FILE...\nFILE: /proc/net/nf_conntrack, /proc/net/snmp (its Ip: lines; only the\n"
        "      IPv4 reassembly/fragmentation counters of ct() are modelled), /proc/sys/net/netfilter/NAME,\n"
        "      /proc/sys/net/ipv4/ipfrag_time, /proc/sys/net/ipv4/ipfrag_high_thresh,\n"
        "      /sys/module/mlx5_core/parameters/num_of_groups\n"),
    "echo": Tool(
        "ctswitch.control.modparam:echo", "write an emulated /proc or /sys file (echo N '>' FILE)",
        "usage: echo VALUE '>' FILE   (quote the '>' on a shell command line)\n"
        "FILE: /sys/module/mlx5_core/parameters/num_of_groups, /proc/sys/net/netfilter/NAME\n"),
    "run": Tool(
        "ctswitch.control.script:run", "run a pasted vendor script (ovs-vsctl, ovs-ofctl, sysctl... lines)",
        "usage: ctswitch run FILE|-\n"
        "Runs each command line of FILE (or stdin) against one switch; `$ ` and `# ` prompts,\n"
        "sudo, VAR=value and ${VAR}, line continuations and comments are understood.\n"
        "The switch is saved only when every line succeeded.\n"),
    "explain": Tool(
        "ctswitch.control.offload_tool:explain", "why each connection is (not) offloaded",
        "usage: ctswitch explain [-p PROTO] [-s SRC] [-d DST] [--sport P] [--dport P] [-w ZONE]\n"),
    "replay": Tool(
        "ctswitch.control.replay_tool:run", "send a pcap through the switch on its clock",
        "usage: ctswitch replay [OPTIONS] PORT=FILE.pcap...\n", own_help=True),
    "gen": Tool(
        "ctswitch.gen:cli_main", "generate traffic pcaps and scenarios",
        "usage: ctswitch gen ...\n", adapter="main", own_help=True),
    "time": Tool(
        "ctswitch.control.appctl:time_cmd", "show or move the switch clock",
        "usage: ctswitch time warp SECONDS | ctswitch time show\n"),
    "start": Tool("ctswitch.control.daemon_tool:start", "start the daemon of the database (live mode)",
                  "usage: ctswitch start\n", no_store=True),
    "stop": Tool("ctswitch.control.daemon_tool:stop", "stop the daemon of the database",
                 "usage: ctswitch stop\n", no_store=True),
    "status": Tool("ctswitch.control.daemon_tool:status", "is a daemon running for the database?",
                   "usage: ctswitch status\n", no_store=True),
    "daemon": Tool("ctswitch.control.daemon_tool:daemon", "run the daemon in the foreground",
                   "usage: ctswitch daemon --foreground [--lab-example N] [--keep-offloads] [--debug]\n",
                   no_store=True),
    "lab": Tool("ctswitch.control.lab:run", "network-namespace lab of the vendor topology",
                "usage: ctswitch lab up|down|status|exec ...\n", own_help=True, no_store=True),
    "demo": Tool(
        "ctswitch.control.demo:run", "build the vendor's example and run traffic through it",
        "usage: ctswitch demo [...]\n", own_help=True),
}


@dataclass
class Context:
    """What a handler may need beyond the switch.

    ``stdin`` is read lazily (only a tool that reads ``-`` touches it), so a
    command run from a terminal never blocks on its input.
    """

    cwd: str = field(default_factory=os.getcwd)
    db_path: str = ""
    run_line: Callable[[str], Result] | None = None
    stdin_loader: Callable[[], str | None] | None = None
    _stdin: str | None = None
    _stdin_read: bool = False

    @property
    def stdin(self) -> str | None:
        if not self._stdin_read:
            self._stdin_read = True
            if self.stdin_loader is not None:
                self._stdin = self.stdin_loader()
        return self._stdin

    @stdin.setter
    def stdin(self, text: str | None) -> None:
        self._stdin = text
        self._stdin_read = True


class NotAvailable(Exception):
    """The handler's module does not exist (yet)."""


def resolve(name: str) -> Callable:
    """The handler of tool ``name`` (imported now); raises KeyError or NotAvailable."""
    tool = TOOLS[name]
    mod_name, _, fn_name = tool.spec.partition(":")
    try:
        mod = importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        # Only the tool's own module (or a parent package) missing means "not written yet";
        # anything else missing inside it is a real error.
        if e.name and (mod_name == e.name or mod_name.startswith(e.name + ".")):
            raise NotAvailable(f"{mod_name} is not available yet") from None
        raise
    fn = getattr(mod, fn_name, None)
    if fn is None:
        raise NotAvailable(f"{mod_name}.{fn_name} is not available yet")
    return fn


def adapt_main(fn: Callable[[list[str]], int], argv: list[str]) -> Result:
    """Runs a ``main(argv) -> int`` that prints, and returns what it printed as a Result."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = fn(list(argv))
        except SystemExit as e:  # argparse exits
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
            if isinstance(e.code, str):
                err.write(e.code + "\n")
    return Result(out=out.getvalue(), err=err.getvalue(), code=int(code or 0))


def dispatch(switch, tool: str, argv: list[str], ctx: Context | None = None) -> Result:
    """Runs ``tool`` with ``argv`` on ``switch``; unknown or missing tools give an error Result."""
    entry = TOOLS.get(tool)
    if entry is None:
        return Result(err=f"ctswitch: unknown command '{tool}' (see ctswitch --help)\n", code=2)
    if not entry.own_help and len(argv) == 1 and argv[0] in ("--help", "-h"):
        return Result(out=entry.usage)
    try:
        fn = resolve(tool)
    except NotAvailable as e:
        return Result(err=f"ctswitch: {tool}: not available yet ({e})\n", code=1)
    if ctx is None:
        ctx = Context()
    if entry.adapter == "main":
        return adapt_main(fn, argv)
    res = fn(switch, list(argv), ctx)
    if not isinstance(res, Result):  # a handler returning text or None
        res = Result(out=str(res) if res is not None else "")
    return res


def help_text() -> str:
    """``ctswitch --help``."""
    lines = [
        "usage: ctswitch [--db PATH] [--debug] TOOL [ARG...]",
        "",
        "An emulated Open vSwitch host with conntrack and BlueField-style CT offload.",
        "State lives in an SQLite file: --db PATH, else $CTSWITCH_DB, else",
        "~/.local/state/ctswitch/ctswitch.db.",
        "",
        "Tools (ctswitch TOOL --help for each):",
    ]
    width = max(len(n) for n, t in TOOLS.items() if not t.hidden)
    for name, t in TOOLS.items():
        if not t.hidden:
            lines.append(f"  {name:<{width}}  {t.summary}")
    return "\n".join(lines) + "\n"
