"""kill -9 of the lab's daemon in the middle of live traffic and a burst of CLI writes.

A TCP stream host -> remote runs through the daemon (vendor example 2, SNAT) while 24
``ctswitch`` processes (flows, ports, sysctls) are forwarded to it; the daemon is killed with
SIGKILL once some of them were acknowledged.  Then: every writer either exited 0 (and its change
is there after the restart) or printed one ``ctswitch: ...`` line; the store passes
``PRAGMA integrity_check``; the restarted daemon (same netns) switches traffic again (ping, a
fresh TCP transfer SNATed and intact) and answers ``conntrack -L``.  Root only (skipped with the
reason otherwise); the lab and every process are removed by their pid/name even on failure.
"""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from ctswitch.cli.main import execute
from ctswitch.control import daemon_tool
from ctswitch.params import PARAMS

pytestmark = pytest.mark.system

_BIN = os.path.join(os.path.dirname(sys.executable), "ctswitch")
CTSWITCH = [_BIN] if os.path.exists(_BIN) else [sys.executable, "-m", "ctswitch.cli.main"]
NF = "net.netfilter."
# Knobs the writers set: the conntrack timeouts, as ctswitch declares them.
KNOBS = [p.name[len(NF):] for p in PARAMS.values() if p.domain == "sysctl" and "_timeout" in p.name
         and p.name.startswith(NF + "nf_conntrack_")]

STREAM_SERVER = r"""
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("1.1.1.2", 5001)); s.listen(8); print("ready", flush=True)
def serve(c):
    import hashlib
    h = hashlib.sha256(); n = 0
    while True:
        try:
            d = c.recv(1 << 16)
        except OSError:
            break
        if not d:
            break
        h.update(d); n += len(d)
    print(c.getpeername()[0], n, h.hexdigest(), flush=True)
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

STREAMER = r"""
import socket, sys
c = socket.create_connection(("1.1.1.2", 5001), timeout=5)
print("connected", flush=True)
n = 0
try:
    while True:
        c.sendall(b"s" * 8192); n += 8192
except OSError:
    pass
"""

SENDER = r"""
import hashlib, random, socket, sys
data = random.Random(int(sys.argv[1])).randbytes(int(sys.argv[2]))
c = socket.create_connection(("1.1.1.2", 5001), timeout=20)
c.sendall(data); c.close()
print(hashlib.sha256(data).hexdigest(), flush=True)
"""


def _cli(db: str, *argv: str) -> str:
    res, _ = execute(["--db", db, *argv], stdin_loader=lambda: None)
    assert res.code == 0, res.err
    return res.out


def _writers() -> list[tuple[str, tuple[str, ...]]]:
    out = []
    for i in range(24):
        k, j = i % 3, i // 3
        if k == 0:
            out.append(("flow", ("ovs-ofctl", "add-flow", "ctBr", f"table=5,priority={100 + i},tcp,tp_dst={i},actions=drop")))
        elif k == 1:
            out.append(("port", ("ovs-vsctl", "add-port", "ctBr", f"v{i}")))
        else:
            out.append(("sysctl", ("sysctl", "-w", f"{NF}{KNOBS[j]}={1000 + i}")))
    return out


def _applied(db: str, kind: str, argv: tuple[str, ...]) -> bool:
    if kind == "flow":
        match = argv[3].rsplit(",actions", 1)[0].replace("table=5,", "")
        return any(match in ln for ln in _cli(db, "ovs-ofctl", "dump-flows", "ctBr", "--no-stats").splitlines())
    if kind == "port":
        return argv[3] in _cli(db, "ovs-vsctl", "list-ports", "ctBr").split()
    key, value = argv[2].split("=")
    return _cli(db, "sysctl", "-n", key).strip() == value


def _integrity(db: str) -> list:
    c = sqlite3.connect(db)
    try:
        return c.execute("PRAGMA integrity_check").fetchall()
    finally:
        c.close()


def test_kill9_mid_traffic_and_write_burst(live_lab):
    lab, db = live_lab, live_lab.db
    writers: list[tuple[str, tuple[str, ...], subprocess.Popen]] = []
    try:
        srv = lab.py("remote", STREAM_SERVER)
        assert srv.stdout.readline().strip() == "ready"
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in srv.stdout], daemon=True).start()
        streamer = lab.py("host", STREAMER)
        assert streamer.stdout.readline().strip() == "connected"
        pid = daemon_tool.read_pid(db)
        assert pid and daemon_tool.is_daemon_pid(pid)
        before = lab.stats()["datapath"]["rx_packets"]
        for kind, argv in _writers():
            p = subprocess.Popen([*CTSWITCH, "--db", db, *argv], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            writers.append((kind, argv, p))
            time.sleep(0.03)
            if sum(w[2].poll() == 0 for w in writers) >= 6:
                break  # some acknowledged, others on their way: now
        assert lab.stats()["datapath"]["rx_packets"] > before  # the stream is flowing through it
        os.kill(pid, signal.SIGKILL)
        assert lab.wait_gone(pid)
        codes: dict[int, int] = {}
        for _kind, _argv, p in writers:
            _out, err = p.communicate(timeout=120)
            codes[p.returncode] = codes.get(p.returncode, 0) + 1
            if p.returncode != 0:
                assert err.count("\n") == 1 and err.startswith("ctswitch") and "Traceback" not in err, err
        print("writers by exit code:", codes)
        assert codes.get(0, 0) >= 6
        assert _integrity(db) == [("ok",)]

        r = daemon_tool.start_daemon(db)  # back in the lab's switch namespace
        assert r.code == 0, r.err
        assert lab.stats()["netns"] == lab.ns["sw"] and daemon_tool.read_pid(db) != pid
        for kind, argv, p in writers:
            if p.returncode == 0:
                assert _applied(db, kind, argv), argv
        assert lab.ping(3) == 3
        snd = lab.py("host", SENDER, "11", "2000000")
        digest = snd.stdout.readline().strip()
        assert snd.wait(timeout=60) == 0
        got = None
        while got is None:
            ln = lines.get(timeout=30).split()  # queue.Empty after 30 s: the transfer never ended
            if len(ln) == 3 and ln[1] == "2000000":
                got = ln
        assert got == ["1.1.1.16", "2000000", digest]
        listing = _cli(db, "conntrack", "-L", "-p", "tcp", "--dport", "5001")
        assert "dst=1.1.1.16" in listing
        assert _integrity(db) == [("ok",)]
    finally:
        for _, _, p in writers:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
        for p in lab.procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=10)
