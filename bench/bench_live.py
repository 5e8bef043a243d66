"""Live benchmark: TCP Gbit/s and 64-byte packets/s through ctswitch in the netns lab,
against a Linux bridge on the same veths.

Theory of operation
-------------------
One lab (``control.lab``, vendor example 2: SNAT to 1.1.1.16, hw-offload on)
is built in a temporary database.  For each path:

* **TCP**: iperf3 (server in the remote namespace, client in the host one,
  ``-t SECONDS``, one stream; falls back to a Python sender when iperf3 is
  missing) — Gbit/s received;
* **64 B pps**: a UDP request/reply first (so the connection is established
  and offloaded), then an AF_PACKET blaster in the host namespace sends 60-byte
  frames of that same 5-tuple as fast as it can for SECONDS; the figure is the
  remote ``eth0`` rx counter delta divided by the time (what was delivered).

The Linux bridge run stops the daemon, enslaves ``p0`` and ``pf0hpf`` to a
bridge ``br0`` in the switch namespace (plain L2, no NAT: the remote reaches
2.2.2.1 on-link), and repeats both measurements.  Everything lives in the
lab's namespaces and is removed at the end.  Needs root.

Run: ``python -m bench.bench_live [--seconds 5] [--no-save]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time

from bench.common import append_result, command_line
from ctswitch.control import lab as labmod
from ctswitch.control.client import daemon_request
from ctswitch.control.daemon_tool import stop_daemon

SENDER = r"""
import socket, sys, time
secs = float(sys.argv[1]); data = b"x" * 65536
c = socket.create_connection(("1.1.1.2", 5201), timeout=30); n = 0; t = time.monotonic()
while time.monotonic() - t < secs:
    c.sendall(data); n += len(data)
c.close(); print(n * 8 / (time.monotonic() - t) / 1e9)
"""
SINK = r"""
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("1.1.1.2", 5201))
s.listen(1); print("ready", flush=True); c, _ = s.accept()
while c.recv(1 << 20): pass
"""
UDP_ECHO = r"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("1.1.1.2", 5002)); print("ready", flush=True)
d, a = s.recvfrom(2048); s.sendto(d, a)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
import time; time.sleep(3600)
"""
BLASTER = r"""
import socket, struct, sys, time
secs = float(sys.argv[1])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("2.2.2.1", 40000)); u.settimeout(5)
u.sendto(b"hi", ("1.1.1.2", 5002)); u.recv(100)
frame = bytes.fromhex(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(("eth0", 0))
s.setsockopt(263, 20, 1)
n = 0; t = time.monotonic(); send = s.send
while time.monotonic() - t < secs:
    for _ in range(256):
        try: send(frame)
        except OSError: pass
    n += 256
print(n / (time.monotonic() - t))
"""


def _udp_frame() -> bytes:
    from ctswitch.packet import build
    f = build.ipv4_udp("2.2.2.1", "1.1.1.2", 40000, 5002, b"\0" * 18,
                       src_mac=labmod.HOST_MAC, dst_mac=labmod.REMOTE_MAC)
    return bytes(f)


def _nsrun(ns: str, *cmd: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, **kw)


def _rx(ns: str) -> int:
    return int(_nsrun(ns, "cat", "/sys/class/net/eth0/statistics/rx_packets").stdout)


def tcp_gbps(st: dict, secs: float) -> tuple[float, str]:
    host, remote = st["netns"]["host"], st["netns"]["remote"]
    if shutil.which("iperf3"):
        srv = subprocess.Popen(["ip", "netns", "exec", remote, "iperf3", "-s", "-1", "-B", "1.1.1.2"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        try:
            r = _nsrun(host, "iperf3", "-c", "1.1.1.2", "-t", str(int(secs)), "-J", timeout=secs + 30)
            j = json.loads(r.stdout)
            return j["end"]["sum_received"]["bits_per_second"] / 1e9, "iperf3"
        finally:
            srv.wait(timeout=30)
    sink = subprocess.Popen(["ip", "netns", "exec", remote, sys.executable, "-c", SINK], stdout=subprocess.PIPE,
                            text=True)
    sink.stdout.readline()
    r = _nsrun(host, sys.executable, "-c", SENDER, str(secs), timeout=secs + 30)
    sink.wait(timeout=30)
    return float(r.stdout), "python sender"


def pps(st: dict, secs: float) -> tuple[float, float]:
    host, remote = st["netns"]["host"], st["netns"]["remote"]
    echo = subprocess.Popen(["ip", "netns", "exec", remote, sys.executable, "-c", UDP_ECHO],
                            stdout=subprocess.PIPE, text=True)
    try:
        echo.stdout.readline()
        before = _rx(remote)
        t = time.monotonic()
        r = subprocess.run(["ip", "netns", "exec", host, sys.executable, "-c", BLASTER, str(secs),
                            _udp_frame().hex()], capture_output=True, text=True, timeout=secs + 30)
        dt = time.monotonic() - t
        delivered = (_rx(remote) - before) / max(dt - 0.05, secs)
        return float(r.stdout or 0), delivered
    finally:
        echo.kill()  # our own child, by its Popen handle
        echo.wait()


def main(argv: list[str] | None = None) -> list[str]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args(argv)
    why = labmod.available()
    if why:
        print(f"bench_live: skipped: {why}")
        return []
    tmp = tempfile.mkdtemp(prefix="ctsw-bench-")
    db = f"{tmp}/bench.db"
    lines = []
    try:
        st = labmod.lab_up(db, 2)
        g, tool = tcp_gbps(st, a.seconds)
        stats = json.loads(daemon_request(db, ["stats"]).out)["datapath"]
        hw = stats.get("fast_hw", 0) / max(1, stats.get("rx_packets", 1))
        sent, got = pps(st, a.seconds)
        lines.append("| Path | TCP Gbit/s (1 stream) | 64 B delivered kpps | offered kpps |")
        lines.append("|---|---|---|---|")
        lines.append(f"| ctswitch daemon, example 2 (SNAT, HW fast path {hw:.0%} of TCP packets) "
                     f"| {g:.2f} | {got / 1e3:.0f} | {sent / 1e3:.0f} |")
        stop_daemon(db)
        sw = st["netns"]["sw"]
        for cmd in (["ip", "link", "add", "br0", "type", "bridge"], ["ip", "link", "set", "p0", "master", "br0"],
                    ["ip", "link", "set", "pf0hpf", "master", "br0"], ["ip", "link", "set", "br0", "up"]):
            _nsrun(sw, *cmd, check=True)
        g2, _ = tcp_gbps(st, a.seconds)
        sent2, got2 = pps(st, a.seconds)
        lines.append(f"| Linux bridge on the same veths (no NAT) | {g2:.2f} | {got2 / 1e3:.0f} | {sent2 / 1e3:.0f} |")
        lines.append("")
        lines.append(f"TCP measured with {tool}, {a.seconds:g} s; 64 B: AF_PACKET blaster in the host "
                     "namespace (one offloaded UDP 5-tuple), delivered = remote eth0 rx counter; veth "
                     "offloads off on every end; 2 vCPUs shared by sender, switch and receiver.")
    finally:
        labmod.lab_down(db)
        shutil.rmtree(tmp, ignore_errors=True)
    for ln in lines:
        print(ln)
    if lines and not a.no_save:
        append_result("Live mode: ctswitch daemon vs Linux bridge on veth", command_line(), lines)
    return lines


if __name__ == "__main__":
    main()
