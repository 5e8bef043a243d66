"""sysctl: the emulated kernel's ``net.netfilter.*`` knobs, with procps-ng's syntax and messages.

Theory of operation
-------------------
Names are ``params`` of domain ``sysctl`` (``/`` works as a separator too, and
output always uses dots).  Reading prints ``NAME = VALUE`` (``-n``: the value
alone); writing (``-w NAME=VALUE``, or any argument containing ``=``)
validates through ``params.parse_value`` and echoes ``NAME = VALUE`` unless
``-q``.  ``nf_conntrack_count`` is read-only and computed from the tracker.
``-a`` lists every knob in name order.  ``-p FILE`` applies ``NAME = VALUE``
lines of a file (relative to the caller's directory).

Errors are procps-ng's: ``sysctl: cannot stat /proc/sys/PATH: No such file
or directory`` and ``sysctl: setting key "NAME": Invalid argument``; the exit
status is 255 (procps returns -1) and the other arguments are still processed.
"""

from __future__ import annotations

import os

from .. import params as P
from .result import Result

COUNT = P.NF + "nf_conntrack_count"


def _names() -> list[str]:
    return sorted(p.name for p in P.PARAMS.values() if p.domain == "sysctl")


def _norm(name: str) -> str:
    return name.strip().replace("/", ".")


def value_of(switch, name: str) -> str:
    """The value of sysctl ``name`` as /proc/sys shows it (name must be declared)."""
    if name == COUNT:
        tr = switch.tracker
        if tr is None:
            return "0"
        n = getattr(tr, "count", None)
        if isinstance(n, int):
            return str(n)
        return str(sum(1 for _ in tr.iter_conns()))
    v = switch.params.get(f"sysctl:{name}")
    return str(int(v)) if isinstance(v, bool) else str(v)


def write(switch, name: str, text: str) -> str | None:
    """Sets sysctl ``name``; returns an error message (procps wording, no prefix) or None."""
    p = P.lookup("sysctl", name)
    if p is None:
        return f"cannot stat /proc/sys/{name.replace('.', '/')}: No such file or directory"
    if p.readonly:
        return f'permission denied on key "{name}"'
    try:
        v = P.parse_value(p, text.strip())
    except ValueError:
        return f'setting key "{name}": Invalid argument'
    switch.params.set(p.key, v)
    return None


def run(switch, argv: list[str], ctx=None) -> Result:
    quiet = names_only = write_mode = ignore = False
    out: list[str] = []
    err: list[str] = []
    code = 0
    changed = False
    targets: list[str] = []
    files: list[str] = []
    show_all = False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("-") and len(a) > 1 and not a.startswith("--"):
            for j, ch in enumerate(a[1:]):
                if ch == "n":
                    names_only = True
                elif ch == "q":
                    quiet = True
                elif ch == "w":
                    write_mode = True
                elif ch == "e":
                    ignore = True
                elif ch in "aAX":
                    show_all = True
                elif ch == "N":
                    pass
                elif ch == "p":
                    rest = a[2 + j:]
                    if rest:
                        files.append(rest)
                    elif i + 1 < len(argv) and not argv[i + 1].startswith("-"):
                        i += 1
                        files.append(argv[i])
                    else:
                        files.append("/etc/sysctl.conf")
                    break
                else:
                    return Result(err=f"sysctl: invalid option -- '{ch}'\n"
                                      "Usage:\n sysctl [options] [variable[=value] ...]\n", code=1)
        elif a in ("--all",):
            show_all = True
        elif a in ("--values",):
            names_only = True
        elif a in ("--quiet",):
            quiet = True
        elif a in ("--write",):
            write_mode = True
        elif a in ("--ignore",):
            ignore = True
        elif a == "--load" or a.startswith("--load="):
            if "=" in a:
                files.append(a.split("=", 1)[1])
            else:
                i += 1
                files.append(argv[i] if i < len(argv) else "/etc/sysctl.conf")
        elif a in ("-h", "--help"):
            from .dispatch import TOOLS
            return Result(out=TOOLS["sysctl"].usage)
        elif a.startswith("--"):
            return Result(err=f"sysctl: unrecognized option '{a}'\n", code=1)
        else:
            targets.append(a)
        i += 1

    def do_write(spec: str) -> None:
        nonlocal code, changed
        name, eq, value = spec.partition("=")
        name = _norm(name)
        if not eq:
            err.append(f'sysctl: "{spec}" must be of the form name=value\n')
            code = 255
            return
        msg = write(switch, name, value)
        if msg is not None:
            if ignore and msg.startswith("cannot stat"):
                return
            err.append(f"sysctl: {msg}\n")
            code = 255
            return
        changed = True
        if not quiet:
            out.append(value_of(switch, name) + "\n" if names_only else f"{name} = {value_of(switch, name)}\n")

    def do_read(name: str) -> None:
        nonlocal code
        name = _norm(name)
        if P.lookup("sysctl", name) is None:
            if not ignore:
                err.append(f"sysctl: cannot stat /proc/sys/{name.replace('.', '/')}: No such file or directory\n")
                code = 255
            return
        out.append(value_of(switch, name) + "\n" if names_only else f"{name} = {value_of(switch, name)}\n")

    if show_all:
        for name in _names():
            if not targets or any(name.startswith(_norm(t)) for t in targets):
                out.append(value_of(switch, name) + "\n" if names_only else f"{name} = {value_of(switch, name)}\n")
        return Result(out="".join(out))
    for f in files:
        path = f if os.path.isabs(f) or ctx is None else os.path.join(getattr(ctx, "cwd", "") or "", f)
        try:
            with open(path, encoding="utf-8") as fh:
                lines = fh.read().splitlines()
        except OSError as e:
            err.append(f"sysctl: cannot open \"{f}\": {e.strerror}\n")
            code = 255
            continue
        for line in lines:
            s = line.strip()
            if not s or s[0] in "#;":
                continue
            if s.startswith("-"):  # "-name = value": ignore failures of this one
                s = s[1:]
            name, eq, value = s.partition("=")
            do_write(f"{name.strip()}={value.strip()}" if eq else s)
    if not targets and not files:
        return Result(err="sysctl: no variables specified\n"
                          "Try `sysctl --help' for more information.\n", code=1)
    for tgt in targets:
        if write_mode or "=" in tgt:
            do_write(tgt)
        else:
            do_read(tgt)
    return Result(out="".join(out), err="".join(err), code=code, changed=changed)
