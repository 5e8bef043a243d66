"""``ctswitch``: the command shell.

Theory of operation
-------------------
``ctswitch [--db PATH] [--debug] TOOL ARGS...``

1. The database is ``--db PATH``, else ``$CTSWITCH_DB``, else
   ``~/.local/state/ctswitch/ctswitch.db``.
2. When a daemon serves that database (``control.client.try_daemon``), the
   command is forwarded to it and its answer printed.
3. Otherwise one store transaction: load the switch, ``control.dispatch``
   the tool, save when the command succeeded (exit 0) or says it changed
   something, print stdout then stderr, exit with the tool's code.

Errors: unknown tool, exit 2; unusable database, one ``ctswitch: PATH: ...``
line, exit 1; any unexpected exception, one ``ctswitch: internal error: MSG``
line (the traceback only with ``--debug``), exit 70, nothing saved.
"""

from __future__ import annotations

import os
import sys
import traceback

from ..control.dispatch import TOOLS, Context, dispatch, help_text
from ..control.result import Result

EX_USAGE = 2
EX_SOFTWARE = 70
DEFAULT_DB = "~/.local/state/ctswitch/ctswitch.db"

_GLOBAL_USAGE = "usage: ctswitch [--db PATH] [--debug] TOOL [ARG...] (see ctswitch --help)\n"


def default_db() -> str:
    return os.environ.get("CTSWITCH_DB") or os.path.expanduser(DEFAULT_DB)


def _read_stdin() -> str | None:
    try:
        if sys.stdin is None or sys.stdin.isatty():
            return None
        return sys.stdin.read()
    except (OSError, ValueError):
        return None


def _once(loader):
    """``loader`` called at most once (stdin may be wanted for the daemon and then locally)."""
    memo: list = []

    def load():
        if not memo:
            memo.append(loader())
        return memo[0]
    return load


def parse_global(argv: list[str]) -> tuple[dict, list[str]] | Result:
    """Global options before the tool name -> (options, [tool, args...]) or an error/help Result."""
    opts = {"db": None, "debug": False}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-h", "--help"):
            return Result(out=help_text())
        if a == "--debug":
            opts["debug"] = True
        elif a == "--db":
            if i + 1 >= len(argv):
                return Result(err="ctswitch: option '--db' requires an argument\n" + _GLOBAL_USAGE, code=EX_USAGE)
            i += 1
            opts["db"] = argv[i]
        elif a.startswith("--db="):
            opts["db"] = a[5:]
        elif a == "--":
            i += 1
            break
        elif a.startswith("-") and a != "-":
            return Result(err=f"ctswitch: unknown option '{a}'\n" + _GLOBAL_USAGE, code=EX_USAGE)
        else:
            break
        i += 1
    rest = argv[i:]
    if not rest:
        return Result(err=_GLOBAL_USAGE, code=EX_USAGE)
    return opts, rest


def execute(argv: list[str], *, stdin_loader=_read_stdin, cwd: str | None = None) -> tuple[Result, bool]:
    """Runs one command line; returns (result, debug).  Never raises."""
    parsed = parse_global(argv)
    if isinstance(parsed, Result):
        return parsed, False
    opts, (tool, *args) = parsed
    debug = opts["debug"]
    if tool not in TOOLS:
        return Result(err=f"ctswitch: unknown command '{tool}' (see ctswitch --help)\n", code=EX_USAGE), debug
    entry = TOOLS[tool]
    if not entry.own_help and args in (["--help"], ["-h"]):
        return Result(out=entry.usage), debug
    db = opts["db"] or default_db()
    cwd = cwd or os.getcwd()
    stdin_loader = _once(stdin_loader)
    try:
        return _run(db, tool, args, stdin_loader, cwd), debug
    except Exception as e:  # the one place where any failure becomes one line
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        err = f"ctswitch: internal error: {msg}\n"
        if debug:
            err = traceback.format_exc() + err
        return Result(err=err, code=EX_SOFTWARE), debug


def _run(db: str, tool: str, args: list[str], stdin_loader, cwd: str) -> Result:
    from ..daemon.store import Store, StoreError

    if TOOLS[tool].no_store:  # daemon and lab verbs: no switch, no transaction
        return dispatch(None, tool, args, Context(cwd=cwd, db_path=db, stdin_loader=stdin_loader))

    try:
        from ..control.client import try_daemon
    except ImportError:
        try_daemon = None
    if try_daemon is not None:
        stdin = stdin_loader() if "-" in args else None
        res = try_daemon(db, tool, args, stdin, cwd)
        if res is not None:
            return res
    try:
        store = Store(db)
    except StoreError as e:
        return Result(err=f"ctswitch: {e}\n", code=1)
    try:
        with store.transaction() as tx:
            sw = tx.load()
            ctx = Context(cwd=cwd, db_path=db, stdin_loader=stdin_loader)
            ctx.run_line = _line_runner(sw, ctx)
            res = dispatch(sw, tool, args, ctx)
            if res.code == 0 or res.changed:
                tx.save(sw)
        return res
    except StoreError as e:
        return Result(err=f"ctswitch: {e}\n", code=1)
    finally:
        store.close()


def _line_runner(sw, ctx: Context):
    """``ctx.run_line``: one shell-style line (``ovs-ofctl add-flow ...``) on the same switch."""
    def run_line(line: str) -> Result:
        from ..control import script
        return script.run_text(sw, line, "<line>", ctx, echo=False)
    return run_line


def _write(stream, text: str) -> None:
    if not text:
        return
    try:
        stream.write(text)
        stream.flush()
    except BrokenPipeError:
        # The reader went away (ctswitch ... | head): stop quietly like a shell tool.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
        except (OSError, ValueError):
            pass


def main(argv: list[str] | None = None) -> int:
    """Console entry point; exits with the command's code."""
    res, _debug = execute(list(sys.argv[1:] if argv is None else argv))
    _write(sys.stdout, res.out)
    _write(sys.stderr, res.err)
    if argv is None:
        sys.exit(res.code)
    return res.code


if __name__ == "__main__":
    main()
