"""Daemon verbs: ``ctswitch start``, ``stop``, ``status``, ``daemon --foreground``.

Theory of operation
-------------------
The daemon of database ``DB`` keeps its files next to it (``client.paths``):
``DB.sock`` (control socket), ``DB.pid`` (pidfile, flock-ed while it runs) and
``DB.log``.  ``start`` spawns ``python -m ctswitch.daemon.main --db DB`` through
a short-lived intermediate process (a double fork: the daemon is re-parented
to init, in its own session, with stdin closed and output in ``DB.log``), and
waits until it answers a ping.  When a lab is up for the database (``DB.lab.json``)
the daemon is started inside the lab's switch namespace.  ``stop`` asks the
daemon to stop over the socket, waits, then falls back to SIGTERM on the pid
of the pidfile (only after checking that the pid is a ctswitch daemon).

These verbs never need the stored switch (the ``switch`` argument is unused)
and must run outside any store transaction: the daemon loads and saves the
store itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

from .client import daemon_request, paths
from .result import Result

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 20.0

_SPAWNER = (
    "import subprocess,sys\n"
    "log=open(sys.argv[1],'ab')\n"
    "p=subprocess.Popen(sys.argv[2:],stdin=subprocess.DEVNULL,stdout=log,stderr=log,"
    "start_new_session=True,close_fds=True,cwd='/')\n"
    "print(p.pid)\n"
)


def db_path(ctx) -> str:
    """The database of this invocation: ``ctx.db`` / ``ctx.db_path``, else $CTSWITCH_DB, else ./ctswitch.db."""
    for attr in ("db", "db_path"):
        v = getattr(ctx, attr, None) if ctx is not None else None
        if v:
            return os.path.abspath(str(v))
    return os.path.abspath(os.environ.get("CTSWITCH_DB") or "ctswitch.db")


def read_pid(db: str) -> int | None:
    try:
        with open(paths(db)["pid"]) as f:
            return int(f.read().strip() or 0) or None
    except (OSError, ValueError):
        return None


def is_daemon_pid(pid: int) -> bool:
    """True when ``pid`` is alive and runs ``ctswitch.daemon.main``."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read()
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return b"ctswitch.daemon.main" in cmd and state != "Z"


def alive(pid: int) -> bool:
    """True when ``pid`` exists and is not a zombie (whatever it runs: e.g. in the middle of exec)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def ping(db: str, timeout: float = 5.0) -> dict | None:
    """The daemon's status dict, or None when no daemon answers."""
    r = daemon_request(db, ["ping"], timeout=timeout)
    if r is None or r.code != 0:
        return None
    try:
        return json.loads(r.out)
    except ValueError:
        return None


def lab_netns(db: str) -> str | None:
    """The switch namespace of the lab recorded for ``db`` when it still exists."""
    try:
        with open(paths(db)["lab"]) as f:
            ns = json.load(f).get("netns", {}).get("sw")
    except (OSError, ValueError, AttributeError):
        return None
    return ns if ns and os.path.exists(f"/run/netns/{ns}") else None


def start_daemon(db: str, *, netns: str | None = None, extra: list[str] | None = None,
                 timeout: float = START_TIMEOUT_S) -> Result:
    """Starts the daemon of ``db`` in the background (in ``netns`` when given)."""
    p = paths(db)
    st = ping(db, timeout=2.0)
    if st is not None:
        return Result(out=f"ctswitch: daemon already running (pid {st['pid']})\n")
    if netns is None:
        netns = lab_netns(db)
    cmd = [sys.executable, "-m", "ctswitch.daemon.main", "--db", p["db"], *(extra or [])]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    env = dict(os.environ)
    src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    try:
        sp = subprocess.run([sys.executable, "-c", _SPAWNER, p["log"], *cmd], capture_output=True,
                            text=True, env=env, timeout=30)
        pid = int(sp.stdout.strip())
    except (OSError, ValueError, subprocess.SubprocessError) as e:
        return Result(err=f"ctswitch: cannot start the daemon: {e}\n", code=1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = ping(db, timeout=1.0)
        if st is not None:
            where = f" in netns {st['netns']}" if st.get("netns") else ""
            return Result(out=f"ctswitch: daemon started (pid {st['pid']}{where}), socket {p['sock']}\n")
        if not alive(pid):
            return Result(err=f"ctswitch: the daemon exited at start; see {p['log']}:\n{_log_tail(p['log'])}",
                          code=1)
        time.sleep(0.05)
    if alive(pid):  # the process we just spawned: do not leave it behind
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    return Result(err=f"ctswitch: daemon (pid {pid}) did not answer within {timeout:g} s and was "
                  f"stopped; see {p['log']}:\n{_log_tail(p['log'])}", code=1)


def _log_tail(path: str, n: int = 5) -> str:
    try:
        with open(path, errors="replace") as f:
            lines = f.readlines()[-n:]
    except OSError:
        return ""
    return "".join("  " + ln for ln in lines)


def stop_daemon(db: str, timeout: float = STOP_TIMEOUT_S) -> Result:
    """Stops the daemon of ``db`` (saving its state) and waits for it to exit."""
    pid = read_pid(db)
    answered = daemon_request(db, ["stop"], timeout=5.0) is not None
    if not answered and (pid is None or not is_daemon_pid(pid)):
        return Result(err=f"ctswitch: no daemon running for {db}\n", code=1)
    deadline = time.monotonic() + timeout
    sent_term = False
    while time.monotonic() < deadline:
        if pid is None or not alive(pid):
            return Result(out=f"ctswitch: daemon stopped{f' (pid {pid})' if pid else ''}\n")
        if not sent_term and (not answered or time.monotonic() > deadline - timeout / 2) and is_daemon_pid(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            sent_term = True
        time.sleep(0.05)
    return Result(err=f"ctswitch: daemon (pid {pid}) did not stop within {timeout:g} s\n", code=1)


def status_text(db: str) -> tuple[str, int]:
    st = ping(db)
    if st is None:
        pid = read_pid(db)
        stale = f" (stale pidfile: pid {pid})" if pid and not is_daemon_pid(pid) else ""
        return f"ctswitch: no daemon running for {db}{stale}\n", 3
    dp = st.get("datapath", {})
    lines = [f"ctswitch: daemon running (pid {st['pid']}{', netns ' + st['netns'] if st.get('netns') else ''})",
             f"  database: {st['db']}",
             f"  uptime: {st['uptime_s']} s, requests: {st['requests']}, saves: {st['saves']}"]
    for br, ports in st["bridges"].items():
        lines.append(f"  bridge {br}: {' '.join(ports)}")
    lines.append(f"  bound ports: {' '.join(st['bound']) or '(none)'}")
    for name, why in sorted(st.get("unbound", {}).items()):
        lines.append(f"  port {name}: not bound: {why}")
    for name, c in sorted(st.get("ports", {}).items()):
        lines.append(f"  {name}: rx {c['rx']} tx {c['tx']} tx_errors {c['tx_errors']}")
    lines.append("  datapath: " + ", ".join(f"{k} {dp.get(k, 0)}" for k in
                                           ("rx_packets", "slow_path", "fast_hw", "fast_sw", "tx_packets")))
    return "\n".join(lines) + "\n", 0


# ---------------------------------------------------------------------- verbs
def start(switch, argv: list[str], ctx=None) -> Result:
    """``ctswitch start``"""
    if argv:
        return Result(err=f"ctswitch start: unexpected argument '{argv[0]}'\n", code=2)
    return start_daemon(db_path(ctx))


def stop(switch, argv: list[str], ctx=None) -> Result:
    """``ctswitch stop``"""
    if argv:
        return Result(err=f"ctswitch stop: unexpected argument '{argv[0]}'\n", code=2)
    return stop_daemon(db_path(ctx))


def status(switch, argv: list[str], ctx=None) -> Result:
    """``ctswitch status`` (exit 3 when no daemon runs, as LSB status does)."""
    if argv:
        return Result(err=f"ctswitch status: unexpected argument '{argv[0]}'\n", code=2)
    text, code = status_text(db_path(ctx))
    return Result(out=text, code=code)


def daemon(switch, argv: list[str], ctx=None) -> Result:
    """``ctswitch daemon --foreground [--lab-example N] [--keep-offloads] [--debug]``: runs here until stopped."""
    if "--foreground" not in argv:
        return Result(err="ctswitch daemon: only --foreground is supported (use 'ctswitch start')\n", code=2)
    # A child process rather than an import: control does not import the daemon package.
    try:
        code = subprocess.call([sys.executable, "-m", "ctswitch.daemon.main", "--db", db_path(ctx), *argv])
    except KeyboardInterrupt:
        code = 0
    return Result(code=code)
