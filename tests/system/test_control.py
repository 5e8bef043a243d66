"""The control protocol and the daemon's socket (no root needed: a daemon without ports)."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import time

import pytest

from ctswitch.control import client, daemon_tool, protocol


# ---------------------------------------------------------------------- protocol (pure)
def test_request_round_trip():
    line = protocol.encode_request("conntrack", ["-L", "-p", "tcp"], "x\n", "/tmp")
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert protocol.decode_request(line[:-1]) == {"tool": "conntrack", "argv": ["-L", "-p", "tcp"],
                                                   "stdin": "x\n", "cwd": "/tmp"}


@pytest.mark.parametrize("line,why", [
    (b"{", "malformed JSON"),
    (b"[1]", "expected a JSON object"),
    (b'{"argv": []}', "missing field 'tool'"),
    (b'{"tool": "x", "argv": "-L"}', "field 'argv' has the wrong type"),
    (b'{"tool": "x", "argv": [1]}', "argv must be a list of strings"),
    (b'{"tool": "", "argv": []}', "empty tool name"),
    (b'{"tool": "x", "argv": [], "evil": 1}', "unknown field 'evil'"),
    (b"\xff\xfe", "malformed JSON"),
])
def test_bad_requests_are_refused_with_a_reason(line, why):
    with pytest.raises(protocol.ProtocolError) as e:
        protocol.decode_request(line)
    assert str(e.value).startswith(why)


def test_reply_round_trip_and_validation():
    assert protocol.decode_reply(protocol.encode_reply("a\n", "b\n", 3)) == {"out": "a\n", "err": "b\n", "code": 3}
    with pytest.raises(protocol.ProtocolError):
        protocol.decode_reply(b'{"out": "", "err": "", "code": true}')


def test_line_buffer_frames_and_limits():
    b = protocol.LineBuffer(limit=10)
    assert b.feed(b"ab") == []
    assert b.feed(b"c\nde\nf") == [b"abc", b"de"]
    assert b.feed(b"0123456789X") == [] and b.overflow
    assert b.feed(b"\n") == []


def test_encode_refuses_oversized_requests():
    with pytest.raises(protocol.ProtocolError):
        protocol.encode_request("x", [], "a" * (protocol.MAX_LINE + 1))


# ---------------------------------------------------------------------- a live daemon without ports
@pytest.fixture
def daemon(tmp_path):
    db = str(tmp_path / "d.db")
    r = daemon_tool.start_daemon(db, netns="")
    assert r.code == 0, r.err
    try:
        yield db
    finally:
        pid = daemon_tool.read_pid(db)
        daemon_tool.stop_daemon(db)
        if pid and daemon_tool.is_daemon_pid(pid):  # only our own daemon, by pid
            os.kill(pid, 9)


def _raw(db: str, data: bytes) -> bytes:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(client.paths(db)["sock"])
    s.sendall(data)
    out = b""
    while not out.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    return out


def test_socket_is_root_only_and_daemon_answers(daemon):
    mode = stat.S_IMODE(os.stat(client.paths(daemon)["sock"]).st_mode)
    assert mode == 0o600
    st = daemon_tool.ping(daemon)
    assert st["pid"] == daemon_tool.read_pid(daemon) and st["bound"] == []
    r = client.try_daemon(daemon, "conntrack", ["-L"])
    assert (r.out, r.err, r.code, r.changed) == (
        "", "conntrack v1.4.7 (conntrack-tools): 0 flow entries have been shown.\n", 0, False)
    assert client.try_daemon(daemon, "status", []) is None  # daemon verbs are never forwarded


def test_bad_requests_get_error_replies_and_the_daemon_survives(daemon):
    rep = json.loads(_raw(daemon, b"this is not json\n"))
    assert rep["code"] == 1 and rep["err"].startswith("ctswitch: bad request: malformed JSON")
    rep = json.loads(_raw(daemon, b'{"tool": "x"}\n'))
    assert rep["err"] == "ctswitch: bad request: missing field 'argv'\n"
    rep = json.loads(_raw(daemon, b"x" * (protocol.MAX_LINE + 10)))
    assert "longer than" in rep["err"]
    rep = json.loads(_raw(daemon, protocol.encode_request("no-such-tool", [])))
    assert rep["code"] != 0 and "no-such-tool" in rep["err"]
    assert daemon_tool.ping(daemon) is not None


def test_a_stalled_client_does_not_block_others(daemon):
    stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stalled.connect(client.paths(daemon)["sock"])
    stalled.sendall(b'{"tool": "conntrack", "argv": ["-L"')  # half a request, then silence
    try:
        for _ in range(3):
            assert client.try_daemon(daemon, "conntrack", ["-C"]).out == "0\n"
    finally:
        stalled.close()


def test_second_daemon_for_same_db_refuses(daemon):
    r = subprocess.run([sys.executable, "-m", "ctswitch.daemon.main", "--db", daemon],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "a daemon already runs" in r.stderr
    assert daemon_tool.ping(daemon) is not None


def test_kill9_leaves_a_stale_socket_that_clients_and_start_handle(daemon):
    pid = daemon_tool.read_pid(daemon)
    os.kill(pid, 9)
    # Wait until the process is really gone (or a zombie): while it exits, its cmdline is
    # already empty but its listening socket is still open (a connect is then reset).
    for _ in range(200):
        if not daemon_tool.alive(pid):
            break
        time.sleep(0.05)
    assert client.try_daemon(daemon, "conntrack", ["-L"]) is None  # stale socket: CLI falls back
    r = daemon_tool.start_daemon(daemon, netns="")
    assert r.code == 0, r.err
    assert daemon_tool.ping(daemon)["pid"] != pid


def test_status_and_stop_without_daemon(tmp_path):
    db = str(tmp_path / "none.db")
    text, code = daemon_tool.status_text(db)
    assert (text, code) == (f"ctswitch: no daemon running for {db}\n", 3)
    r = daemon_tool.stop_daemon(db)
    assert (r.err, r.code) == (f"ctswitch: no daemon running for {db}\n", 1)
