"""Control client: forward one command to the running daemon of a database.

Theory of operation
-------------------
The daemon of database ``DB`` listens on ``DB.sock`` (see ``paths``).  The CLI
calls ``try_daemon(db, tool, argv, stdin, cwd)`` before anything else: it
returns the daemon's ``Result`` when a daemon serves that database, or
``None`` (no socket, or a stale socket nobody listens on) so the CLI runs the
command on the stored switch itself.  The verbs that manage the daemon and the
lab (``LOCAL_TOOLS``) are never forwarded.  A forwarded Result has
``changed=False``: the daemon already saved its switch, the CLI must not.
"""

from __future__ import annotations

import os
import socket
import time

from . import protocol
from .result import Result

LOCAL_TOOLS = frozenset({"start", "stop", "status", "daemon", "lab"})
# Internal tool the daemon answers itself (ping, stats, stop).
DAEMON_TOOL = "ctswitch-daemon"
DEFAULT_TIMEOUT = 120.0


def paths(db_path: str) -> dict[str, str]:
    """The daemon's files next to the database: sock, pid, log, lab state."""
    db = os.path.abspath(db_path)
    return {"db": db, "sock": db + ".sock", "pid": db + ".pid", "log": db + ".log", "lab": db + ".lab.json"}


class DaemonError(OSError):
    """The daemon could not be reached or answered something unreadable."""


def _connect(s: socket.socket, sock_path: str, timeout: float) -> None:
    """Connects, waiting while the daemon's accept queue is full: a Unix socket with a
    timeout answers EAGAIN then (not EINPROGRESS), which is "busy", not "gone"."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            s.connect(sock_path)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise DaemonError(f"daemon did not accept the connection within {timeout:g} s") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def request(sock_path: str, tool: str, argv: list[str], stdin: str | None = None,
            cwd: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> Result:
    """Sends one request and returns the reply; raises DaemonError (or ConnectionError,
    FileNotFoundError when nobody listens)."""
    try:
        data = protocol.encode_request(tool, argv, stdin, cwd)
    except protocol.ProtocolError as e:
        return Result(err=f"ctswitch: {e}\n", code=1)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        _connect(s, sock_path, timeout)
        s.sendall(data)
        buf = protocol.LineBuffer()
        while True:
            try:
                chunk = s.recv(262144)
            except TimeoutError:
                raise DaemonError(f"daemon did not answer within {timeout:g} s") from None
            if not chunk:
                raise DaemonError("daemon closed the connection without answering")
            lines = buf.feed(chunk)
            if buf.overflow:
                raise DaemonError("daemon reply too long")
            if lines:
                break
    finally:
        s.close()
    try:
        rep = protocol.decode_reply(lines[0])
    except protocol.ProtocolError as e:
        raise DaemonError(f"unreadable reply from the daemon: {e}") from None
    return Result(out=rep["out"], err=rep["err"], code=rep["code"], changed=False)


def stream_events(sock: str, argv: list[str], interval: float = 0.2, max_s: float | None = None) -> Result:
    """``conntrack -E`` against a running daemon: prints NEW/UPDATE/DESTROY lines as they
    happen until interrupted (Ctrl-C), like the real tool following the kernel."""
    import sys
    r = request(sock, "conntrack", [*argv, "--ctswitch-since", "0"])
    if r.code:
        return r
    seq = int(r.err.strip() or 0)  # start from now: only new events are shown
    shown = 0
    t0 = time.monotonic()
    try:
        while max_s is None or time.monotonic() - t0 < max_s:
            time.sleep(interval)
            r = request(sock, "conntrack", [*argv, "--ctswitch-since", str(seq)])
            if r.code:
                return r
            seq = int(r.err.strip() or seq)
            if r.out:
                sys.stdout.write(r.out)
                sys.stdout.flush()
                shown += r.out.count("\n")
    except KeyboardInterrupt:
        pass
    return Result(err=f"conntrack v1.4.7 (conntrack-tools): {shown} flow events have been shown.\n")


def daemon_request(db_path: str, argv: list[str], timeout: float = DEFAULT_TIMEOUT) -> Result | None:
    """An internal request (``ping``, ``stats``, ``stop``) to the daemon of ``db_path``, or None."""
    try:
        return request(paths(db_path)["sock"], DAEMON_TOOL, argv, timeout=timeout)
    except (ConnectionError, FileNotFoundError, DaemonError, OSError):
        return None


def try_daemon(db_path: str, tool: str, argv: list[str], stdin: str | None = None,
               cwd: str | None = None) -> Result | None:
    """The daemon's Result for this command, or None when no daemon runs for ``db_path``."""
    if tool in LOCAL_TOOLS:
        return None
    sock = paths(db_path)["sock"]
    if not os.path.exists(sock):
        return None
    try:
        if tool == "conntrack" and argv and argv[0] in ("-E", "--event"):
            return stream_events(sock, argv)
        return request(sock, tool, argv, stdin, cwd)
    except (ConnectionRefusedError, FileNotFoundError):
        return None  # a stale socket: the daemon died (kill -9); the CLI works on the store
    except (DaemonError, OSError) as e:
        return Result(err=f"ctswitch: {e}\n", code=1)
