"""Live mode with GSO super-frames and partial checksums (``PACKET_VNET_HDR`` ports).

The lab's peers normally have their offloads off; here the host's ``eth0`` has
TSO and checksum offload on, so the host's TCP stack hands the daemon 64 KB
super-frames whose TCP checksum is only the pseudo-header part
(``CHECKSUM_PARTIAL``), and SNAT must fix that partial value.

* With the daemon's ports as it sets them (TSO on): 50 MB intact (sha256),
  the server sees 1.1.1.16, the super-frames went through the HW fast path.
* With ``p0`` *without* TSO and tx checksum (the daemon restarted with
  ``--keep-offloads``): the kernel cuts our super-frames into 1500-byte segments
  and completes each checksum from the partial value we wrote; the remote stack
  then verifies every checksum in software (its ``eth0`` has rx checksum off).
  A wrong partial value would show as ``InCsumErrors`` and a stalled transfer.
  Then 200 small request/response segments (one in flight: read from the ring
  slots themselves, not the side area) are checked the same way.
"""

from __future__ import annotations

import sys

import pytest

from ctswitch.control import daemon_tool

from .test_live import SIZE, TCP_CLIENT, TCP_SERVER, finish_transfer

pytestmark = pytest.mark.system


def _ns(lab, role: str, *cmd: str) -> str:
    import subprocess

    r = subprocess.run(["ip", "netns", "exec", lab.ns[role], *cmd], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def _offloads(lab, role: str, what: str, ifname: str) -> None:
    _ns(lab, role, sys.executable, "-m", "ctswitch.io.afpacket", what, ifname)


ECHO_SERVER = r"""
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("1.1.1.2", 5003)); s.listen(1); print("ready", flush=True)
s.settimeout(60)
c, a = s.accept()
while True:
    d = c.recv(4096)
    if not d: break
    c.sendall(d)
"""

ECHO_CLIENT = r"""
import socket
c = socket.create_connection(("1.1.1.2", 5003), timeout=30)
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
ok = 0
for i in range(200):   # one small segment in flight at a time: GRO has nothing to merge
    m = (b"%05d" % i) * 20
    c.sendall(m)
    got = b""
    while len(got) < len(m):
        got += c.recv(4096)
    ok += got == m
c.close()
print("ok", ok, flush=True)
"""


def _snmp_tcp(lab, role: str) -> dict[str, int]:
    lines = [ln.split() for ln in _ns(lab, role, "cat", "/proc/net/snmp").splitlines() if ln.startswith("Tcp:")]
    return {k: int(v) for k, v in zip(lines[0][1:], lines[1][1:], strict=True)}


def _transfer(lab, size: int) -> None:
    srv = lab.py("remote", TCP_SERVER)
    assert srv.stdout.readline().strip() == "ready"
    cli = lab.py("host", TCP_CLIENT, str(size))
    digest = cli.stdout.readline().strip()
    line = cli.stdout.readline()
    assert line.startswith("half"), f"transfer stalled: {line!r} {cli.communicate(timeout=60)[1][-500:]}"
    finish_transfer(cli, srv, size, digest)


def test_tcp_super_frames_partial_checksums_snat(live_lab):
    _offloads(live_lab, "host", "offloads-on", "eth0")
    _offloads(live_lab, "remote", "offloads-on", "eth0")
    _transfer(live_lab, SIZE)
    st = live_lab.stats()
    dp, ports = st["datapath"], st["ports"]
    assert ports["pf0hpf"]["rx_gso"] > 0, ports
    assert dp["fast_hw"] > 0.9 * dp["rx_packets"], dp
    assert ports["p0"]["tx_errors"] == 0 and ports["pf0hpf"]["tx_errors"] == 0, ports
    assert st["drops"] == {}


def test_partial_checksums_completed_by_the_kernel_verify(live_lab):
    db = live_lab.db
    assert daemon_tool.stop_daemon(db).code == 0
    _offloads(live_lab, "sw", "offloads-on", "pf0hpf")
    _offloads(live_lab, "sw", "offloads-off", "p0")   # no TSO, no tx checksum: the kernel does both
    _offloads(live_lab, "host", "offloads-on", "eth0")
    r = daemon_tool.start_daemon(db, netns=live_lab.ns["sw"], extra=["--keep-offloads"])
    assert r.code == 0, r.err
    before = _snmp_tcp(live_lab, "remote")
    _transfer(live_lab, SIZE // 5)
    # small segments with partial checksums: read from the ring slots themselves, not the side area
    srv = live_lab.py("remote", ECHO_SERVER)
    assert srv.stdout.readline().strip() == "ready"
    cli = live_lab.py("host", ECHO_CLIENT)
    out, err = cli.communicate(timeout=120)
    assert out.split() == ["ok", "200"], err[-500:]
    srv.communicate(timeout=30)
    after = _snmp_tcp(live_lab, "remote")
    assert after["InCsumErrors"] == before["InCsumErrors"]
    assert after["InErrs"] == before["InErrs"]
    assert after["InSegs"] - before["InSegs"] >= SIZE // 5 // 1500  # segments: the kernel cut the super-frames
    st = live_lab.stats()
    assert st["ports"]["pf0hpf"]["rx_gso"] > 0, st["ports"]
    assert st["ports"]["p0"]["tx_errors"] == 0, st["ports"]
    assert st["drops"] == {}
