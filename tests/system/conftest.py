"""Fixtures for the live-mode tests: a netns lab per test, torn down even on failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from ctswitch.control import client, daemon_tool, lab


def _lab_unavailable() -> str | None:
    return lab.available()


def _make_lab(tmp_path, example: int):
    why = _lab_unavailable()
    if why:
        pytest.skip(f"system test needs root and ip netns: {why}")
    db = str(tmp_path / "lab.db")
    try:
        state = lab.lab_up(db, example)
        yield Lab(db, state)
    finally:
        lab.lab_down(db)
        st = lab.load_state(db)
        assert st is None


@pytest.fixture
def live_lab(tmp_path):
    """A lab with vendor example 2 (SNAT to 1.1.1.16) and its daemon."""
    yield from _make_lab(tmp_path, 2)


@pytest.fixture
def live_lab1(tmp_path):
    """A lab with vendor example 1 (no NAT) and its daemon."""
    yield from _make_lab(tmp_path, 1)


class Lab:
    """Handle on a running lab: commands through the daemon, programs in the namespaces."""

    def __init__(self, db: str, state: dict) -> None:
        self.db = db
        self.state = state
        self.ns = state["netns"]
        self.procs: list[subprocess.Popen] = []

    def cmd(self, tool: str, *argv: str, stdin: str | None = None):
        r = client.request(client.paths(self.db)["sock"], tool, list(argv), stdin, os.getcwd())
        return r

    def ok(self, tool: str, *argv: str) -> str:
        r = self.cmd(tool, *argv)
        assert r.code == 0, r.err
        return r.out

    def stats(self) -> dict:
        r = client.daemon_request(self.db, ["stats"])
        assert r is not None and r.code == 0
        return json.loads(r.out)

    def py(self, role: str, code: str, *args: str) -> subprocess.Popen:
        """Starts ``python -c code args`` in a lab namespace (pipes on stdin/stdout)."""
        p = subprocess.Popen(["ip", "netns", "exec", self.ns[role], sys.executable, "-c",
                              textwrap.dedent(code), *args],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        return p

    def ping(self, count: int = 3, timeout: float = 1.0) -> int:
        """Echo replies received for ``count`` ICMP echo requests host -> remote."""
        p = self.py("host", PINGER, "1.1.1.2", str(count), str(timeout))
        out, err = p.communicate(timeout=30 + count * timeout)
        assert p.returncode == 0, err
        return int(out.split()[0])

    def wait_gone(self, pid: int, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not daemon_tool.alive(pid):  # gone or a zombie: its files are closed
                return True
            time.sleep(0.05)
        return False


# An ICMP echo client (the lab image may have no ping binary).
PINGER = r"""
import os, socket, struct, sys, time
dst, count, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
ident = os.getpid() & 0xFFFF
def csum(b):
    if len(b) % 2: b += b"\0"
    v = sum(struct.unpack("!%dH" % (len(b) // 2), b)); v = (v >> 16) + (v & 0xFFFF); v += v >> 16
    return ~v & 0xFFFF
got = 0
for seq in range(1, count + 1):
    body = struct.pack("!HH", ident, seq) + b"ctswitch-ping-payload"
    hdr = struct.pack("!BBH", 8, 0, csum(struct.pack("!BBH", 8, 0, 0) + body))
    s.sendto(hdr + body, (dst, 0))
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0: break
        s.settimeout(left)
        try: data, addr = s.recvfrom(2048)
        except socket.timeout: break
        ihl = (data[0] & 15) * 4
        t, c, _, i, q = struct.unpack("!BBHHH", data[ihl:ihl + 8])
        if t == 0 and i == ident and q == seq and addr[0] == dst:
            got += 1; break
print(got)
"""
