"""The ctswitch shell: help, unknown tools, error style, exit codes, --db, saving, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ctswitch.cli import main as cli
from ctswitch.control import dispatch as D
from ctswitch.daemon.store import Store

# The console script of the interpreter running the tests (never a fixed checkout's path).
_BIN = os.path.join(os.path.dirname(sys.executable), "ctswitch")
CTSWITCH = [_BIN] if os.path.exists(_BIN) else [sys.executable, "-m", "ctswitch.cli.main"]


def run(db, *argv, stdin=None):
    res, _ = cli.execute(["--db", str(db), *argv], stdin_loader=lambda: stdin)
    return res


def test_help_lists_every_visible_tool():
    res, _ = cli.execute(["--help"])
    assert res.code == 0 and res.out.startswith("usage: ctswitch [--db PATH] [--debug] TOOL [ARG...]\n")
    listed = [ln.split()[0] for ln in res.out.splitlines() if ln.startswith("  ")]
    assert listed == [n for n, t in D.TOOLS.items() if not t.hidden]
    for must in ("ovs-vsctl", "ovs-ofctl", "ovs-appctl", "conntrack", "sysctl", "devlink", "modparam", "run"):
        assert must in listed


def test_tool_help_is_its_usage(tmp_path):
    res = run(tmp_path / "x.db", "sysctl", "--help")
    assert (res.code, res.out, res.err) == (0, D.TOOLS["sysctl"].usage, "")
    assert not (tmp_path / "x.db").exists()  # help needs no database


def test_unknown_tool(tmp_path):
    res = run(tmp_path / "x.db", "frobnicate", "a")
    assert (res.code, res.out, res.err) == (2, "", "ctswitch: unknown command 'frobnicate' (see ctswitch --help)\n")


def test_no_tool_and_bad_option():
    res, _ = cli.execute([])
    assert res.code == 2 and res.err.startswith("usage: ctswitch")
    res, _ = cli.execute(["--frob", "ovs-vsctl"])
    assert res.code == 2 and res.err.startswith("ctswitch: unknown option '--frob'\n")
    res, _ = cli.execute(["--db"])
    assert res.code == 2 and res.err.startswith("ctswitch: option '--db' requires an argument\n")


def test_state_persists_between_commands(tmp_path):
    db = tmp_path / "x.db"
    assert run(db, "ovs-vsctl", "add-br", "ctBr").code == 0
    assert run(db, "ovs-vsctl", "add-port", "ctBr", "p0").code == 0
    res = run(db, "ovs-vsctl", "list-ports", "ctBr")
    assert (res.code, res.out) == (0, "p0\n")


def test_db_equals_form_and_env(tmp_path, monkeypatch):
    db = tmp_path / "env.db"
    monkeypatch.setenv("CTSWITCH_DB", str(db))
    res, _ = cli.execute(["ovs-vsctl", "add-br", "b1"], stdin_loader=lambda: None)
    assert res.code == 0 and db.exists()
    other = tmp_path / "other.db"
    res, _ = cli.execute([f"--db={other}", "ovs-vsctl", "list-br"], stdin_loader=lambda: None)
    assert (res.code, res.out) == (0, "")  # --db wins over the environment
    res, _ = cli.execute(["ovs-vsctl", "list-br"], stdin_loader=lambda: None)
    assert res.out == "b1\n"


def test_failed_command_saves_nothing(tmp_path):
    db = tmp_path / "x.db"
    run(db, "ovs-vsctl", "add-br", "a")
    res = run(db, "ovs-vsctl", "add-br", "b", "--", "add-br", "a")
    assert (res.code, res.err) == (1, "ovs-vsctl: cannot create a bridge named a because a bridge named a "
                                      "already exists\n")
    assert run(db, "ovs-vsctl", "list-br").out == "a\n"


def test_internal_error_is_one_line_and_saves_nothing(tmp_path, monkeypatch):
    db = tmp_path / "x.db"
    run(db, "ovs-vsctl", "add-br", "a")

    def broken(sw, tool, argv, ctx):
        sw.add_bridge("half-done")
        raise ValueError("something odd\nsecond line")
    monkeypatch.setattr(cli, "dispatch", broken)
    res = run(db, "ovs-vsctl", "show")
    assert (res.code, res.out) == (70, "")
    assert res.err == "ctswitch: internal error: something odd\n"
    res, debug = cli.execute(["--db", str(db), "--debug", "ovs-vsctl", "show"], stdin_loader=lambda: None)
    assert debug and res.code == 70 and "Traceback (most recent call last)" in res.err
    assert res.err.endswith("ctswitch: internal error: something odd\n")
    monkeypatch.undo()
    assert run(db, "ovs-vsctl", "list-br").out == "a\n"


def test_missing_module_is_not_available(tmp_path, monkeypatch):
    monkeypatch.setitem(D.TOOLS, "later", D.Tool("ctswitch.control.no_such_module:run", "x", "usage\n"))
    res = run(tmp_path / "x.db", "later")
    assert res.code == 1
    assert res.err == "ctswitch: later: not available yet (ctswitch.control.no_such_module is not available yet)\n"


def test_bad_database_is_one_line(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("not sqlite\n")
    res = run(p, "ovs-vsctl", "show")
    assert (res.code, res.out, res.err) == (1, "", f"ctswitch: {p}: not a ctswitch database\n")
    assert p.read_text() == "not sqlite\n"


def test_read_only_command_writes_nothing(tmp_path):
    db = tmp_path / "x.db"
    run(db, "ovs-vsctl", "add-br", "a")
    run(db, "ovs-vsctl", "show")  # the first use of the Open_vSwitch row gives it its UUID
    with Store(str(db)) as st:
        before = st.conn.execute("SELECT key, value FROM runtime ORDER BY key").fetchall()
    run(db, "ovs-vsctl", "show")
    with Store(str(db)) as st:
        assert st.conn.execute("SELECT key, value FROM runtime ORDER BY key").fetchall() == before


# ---------------------------------------------------------------------- the real binary
@pytest.fixture()
def env(tmp_path):
    e = dict(os.environ)
    e["CTSWITCH_DB"] = str(tmp_path / "sub.db")
    return e


def sh(env, *argv, stdin=None):
    return subprocess.run([*CTSWITCH, *argv], env=env, input=stdin, capture_output=True, text=True, timeout=120)


def test_binary_end_to_end(env, tmp_path):
    assert sh(env, "ovs-vsctl", "add-br", "ctBr").returncode == 0
    assert sh(env, "ovs-vsctl", "add-port", "ctBr", "p0").returncode == 0
    p = sh(env, "ovs-vsctl", "show")
    assert p.returncode == 0 and p.stderr == ""
    lines = p.stdout.splitlines()
    assert lines[1:] == ["    Bridge ctBr", "        Port ctBr", "            Interface ctBr",
                         "                type: internal", "        Port p0", "            Interface p0",
                         '    ovs_version: "3.1.0"']
    assert stat_mode(tmp_path / "sub.db") == 0o600


def stat_mode(p) -> int:
    return os.stat(p).st_mode & 0o777


def test_binary_errors_have_no_traceback(env, tmp_path):
    p = sh(env, "nope")
    assert (p.returncode, p.stdout, p.stderr) == (2, "", "ctswitch: unknown command 'nope' (see ctswitch --help)\n")
    p = sh(env, "ovs-vsctl", "del-br", "ghost")
    assert (p.returncode, p.stderr) == (1, "ovs-vsctl: no bridge named ghost\n")
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"\x00" * 300)
    p = sh(env, "--db", str(bad), "sysctl", "-a")
    assert (p.returncode, p.stderr) == (1, f"ctswitch: {bad}: not a ctswitch database\n")


def test_binary_run_from_stdin(env):
    p = sh(env, "run", "-", stdin="$ ovs-vsctl add-br ctBr\n$ ovs-vsctl list-br\n")
    assert (p.returncode, p.stdout, p.stderr) == (0, "+ ovs-vsctl add-br ctBr\n+ ovs-vsctl list-br\nctBr\n", "")
    p = sh(env, "run", "-", stdin="ovs-vsctl add-br other\nping 1.1.1.2\n")
    assert p.returncode == 1
    assert p.stderr == "ctswitch run: <stdin>:2: unsupported command 'ping'\n"
    assert sh(env, "ovs-vsctl", "list-br").stdout == "ctBr\n"  # the failed script saved nothing
