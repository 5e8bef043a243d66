"""The control client against a daemon whose accept queue is full (a burst of CLI
commands): it waits for the daemon instead of failing with EAGAIN."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from ctswitch.control import client, protocol


def _busy_listener(path: str) -> tuple[socket.socket, list[socket.socket]]:
    """A listening socket whose backlog is already full of connections nobody accepts."""
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(0)
    fillers = []
    for _ in range(8):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.setblocking(False)
        try:
            c.connect(path)
        except BlockingIOError:
            c.close()
            break
        fillers.append(c)
    return srv, fillers


def test_full_accept_queue_makes_the_client_wait_not_fail(tmp_path):
    path = str(tmp_path / "d.sock")
    srv, fillers = _busy_listener(path)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(5)
    with pytest.raises(BlockingIOError):  # the condition the CI run met
        probe.connect(path)
    probe.close()

    srv.settimeout(5)  # the test fails, never hangs, when the client gives up

    def serve_later():
        time.sleep(0.3)
        while True:
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                return
            conn.settimeout(5)
            data = conn.recv(65536)
            if data:
                req = protocol.decode_request(data.split(b"\n")[0])
                conn.sendall(protocol.encode_reply(out=" ".join(req["argv"]) + "\n"))
                conn.close()
                return
            conn.close()

    t = threading.Thread(target=serve_later)
    t.start()
    for f in fillers:
        f.close()  # accepted later as empty connections
    try:
        r = client.request(path, "ovs-ofctl", ["dump-flows", "br0"], timeout=5)
    finally:
        t.join()
    srv.close()
    assert (r.out, r.code) == ("dump-flows br0\n", 0)


def test_full_accept_queue_past_the_timeout_is_a_clear_error(tmp_path):
    path = str(tmp_path / "d.sock")
    srv, fillers = _busy_listener(path)
    with pytest.raises(client.DaemonError, match=r"did not accept the connection within 0.2 s"):
        client.request(path, "ovs-ofctl", ["show", "br0"], timeout=0.2)
    for f in fillers:
        f.close()
    srv.close()
