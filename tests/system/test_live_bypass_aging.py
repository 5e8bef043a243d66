"""Live mode: the RoCEv2 bypass and offload aging, on real veths in the netns lab.

* RoCEv2 (UDP destination port 4791) skips conntrack when the vendor's bypass
  flow ``table=0,udp,tp_dst=4791,action=normal`` is added *before* the
  ``ct_state=-trk`` flow (vendor example 1): the datagrams reach a socket in the
  other namespace, in both directions (each with its own source port, as RoCE
  does), and leave no conntrack entry, while another UDP port does create one.
* Offload aging: ``nf_flowtable_tcp_timeout`` lowered through the running
  daemon; an offloaded TCP connection left idle longer than that goes back to
  ``ESTABLISHED ... [ASSURED]`` (timeout fixed up), ``ctswitch explain`` says
  why, and new traffic on the same connection offloads it again.

Each test builds its own lab and tears it down even on failure (conftest).
"""

from __future__ import annotations

import re
import time

import pytest

pytestmark = pytest.mark.system

FLOWTABLE_TCP = "net.netfilter.nf_flowtable_tcp_timeout"

# Vendor example 1 with the RoCE line where the vendor page puts it: before the -trk line.
EXAMPLE1_WITH_ROCE = [
    "table=0,arp,action=normal",
    "table=0,udp,tp_dst=4791,action=normal",
    "table=0,ip,ct_state=-trk,action=ct(table=1)",
    "table=1,priority=1,ip,ct_state=+trk+new,action=ct(commit),normal",
    "table=1,priority=1,ip,ct_state=+trk+est,action=normal",
]

# Receives datagrams on the given ports; prints "PORT SRC SPORT PAYLOAD" for each.
UDP_RECEIVER = r"""
import selectors, socket, sys
ip, ports = sys.argv[1], [int(p) for p in sys.argv[2:]]
sel = selectors.DefaultSelector()
for p in ports:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((ip, p))
    sel.register(s, selectors.EVENT_READ, p)
print("ready", flush=True)
while True:
    ev = sel.select(15)
    if not ev: break
    for key, _ in ev:
        d, a = key.fileobj.recvfrom(2048)
        print(key.data, a[0], a[1], d.decode(), flush=True)
        if d == b"end": sys.exit(0)
"""

# Sends each "SPORT DST DPORT PAYLOAD" line of stdin as one datagram; prints "sent".
UDP_SENDER = r"""
import socket, sys
src = sys.argv[1]
for line in sys.stdin:
    sport, dst, dport, payload = line.split()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((src, int(sport)))
    s.sendto(payload.encode(), (dst, int(dport))); s.close()
    print("sent", flush=True)
"""

# Echo server: one connection, echoes every line back.
TCP_ECHO = r"""
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("1.1.1.2", 5003)); s.listen(1); print("ready", flush=True)
s.settimeout(30); c, a = s.accept(); c.settimeout(30); f = c.makefile("rwb")
for line in f:
    f.write(b"echo " + line); f.flush()
print("closed", a[0], flush=True)
"""

# Client: each stdin line "N" sends N request lines and checks the N echoes; prints "ok N".
TCP_CLIENT = r"""
import socket, sys
c = socket.create_connection(("1.1.1.2", 5003), timeout=30); f = c.makefile("rwb")
print("port", c.getsockname()[1], flush=True)
for cmd in sys.stdin:
    n = int(cmd)
    if n == 0: break
    ok = 0
    for i in range(n):
        msg = b"msg %d %s\n" % (i, b"x" * 200)
        f.write(msg); f.flush()
        ok += f.readline() == b"echo " + msg
    print("ok", ok, flush=True)
c.close()
"""


def _conns(lab, *filters) -> list[str]:
    r = lab.cmd("conntrack", "-L", *filters)
    assert r.code == 0, r.err
    return [ln for ln in r.out.splitlines() if ln.strip()]


def _flow_packets(lab, match: str) -> int:
    """n_packets of the one table-0 flow whose match is ``match``."""
    out = lab.ok("ovs-ofctl", "dump-flows", "ctBr", "table=0")
    hits = [ln for ln in out.splitlines() if re.search(rf"\b{re.escape(match)} actions=", ln)]
    assert len(hits) == 1, out
    return int(re.search(r"n_packets=(\d+)", hits[0]).group(1))


def _wait_for(pred, timeout: float = 10.0, step: float = 0.1):
    """Polls ``pred()`` until it returns something truthy (returned) or the deadline passes (None)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v or None
        time.sleep(step)


# ---------------------------------------------------------------------- RoCEv2 bypass
def test_roce_udp_4791_bypasses_conntrack_in_example1(live_lab1):
    lab = live_lab1
    lab.ok("ovs-ofctl", "del-flows", "ctBr")
    for flow in EXAMPLE1_WITH_ROCE:
        lab.ok("ovs-ofctl", "add-flow", "ctBr", flow)
    assert _flow_packets(lab, "udp,tp_dst=4791") == 0

    remote_rx = lab.py("remote", UDP_RECEIVER, "1.1.1.2", "4791", "5002")
    host_rx = lab.py("host", UDP_RECEIVER, "2.2.2.1", "4791")
    assert remote_rx.stdout.readline().strip() == "ready"
    assert host_rx.stdout.readline().strip() == "ready"
    host_tx = lab.py("host", UDP_SENDER, "2.2.2.1")
    remote_tx = lab.py("remote", UDP_SENDER, "1.1.1.2")

    def send(proc, line: str) -> None:
        proc.stdin.write(line + "\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "sent"

    # RoCE-like: host 50001 -> remote 4791, remote 50002 -> host 4791 (a new sport each way).
    for i in range(5):
        send(host_tx, f"50001 1.1.1.2 4791 roce-up-{i}")
        assert remote_rx.stdout.readline().split() == ["4791", "2.2.2.1", "50001", f"roce-up-{i}"]
        send(remote_tx, f"50002 2.2.2.1 4791 roce-down-{i}")
        assert host_rx.stdout.readline().split() == ["4791", "1.1.1.2", "50002", f"roce-down-{i}"]
    # Another UDP port goes through ct() and is committed.
    send(host_tx, "50003 1.1.1.2 5002 other")
    assert remote_rx.stdout.readline().split() == ["5002", "2.2.2.1", "50003", "other"]

    assert _conns(lab, "-p", "udp", "--dport", "4791") == []
    udp = _conns(lab, "-p", "udp")
    assert len(udp) == 1, udp
    assert re.match(r"udp      17 \d+ src=2\.2\.2\.1 dst=1\.1\.1\.2 sport=50003 dport=5002 \[UNREPLIED\] "
                    r"src=1\.1\.1\.2 dst=2\.2\.2\.1 sport=5002 dport=50003 mark=0 use=1$", udp[0]), udp
    assert _flow_packets(lab, "udp,tp_dst=4791") == 10
    assert lab.stats()["drops"] == {}

    for proc, line in ((host_tx, "50001 1.1.1.2 4791 end"), (remote_tx, "50002 2.2.2.1 4791 end")):
        send(proc, line)
        proc.stdin.close()
        assert proc.wait(timeout=10) == 0
    assert remote_rx.communicate(timeout=10)[0].split() == ["4791", "2.2.2.1", "50001", "end"]
    assert host_rx.communicate(timeout=10)[0].split() == ["4791", "1.1.1.2", "50002", "end"]


# ---------------------------------------------------------------------- offload aging
def _sysctl_w(lab, value: str):
    return lab.cmd("sysctl", "-w", f"{FLOWTABLE_TCP}={value}")


def _exchange(cli, n: int) -> None:
    cli.stdin.write(f"{n}\n")
    cli.stdin.flush()
    assert cli.stdout.readline().split() == ["ok", str(n)]


def _tcp_line(lab, sport: str) -> str:
    lines = [ln for ln in _conns(lab, "-p", "tcp", "--dport", "5003") if f"sport={sport} " in ln]
    assert len(lines) == 1, lines
    return lines[0]


def _explain(lab, sport: str) -> str:
    out = lab.ok("explain", "-p", "tcp", "--sport", sport)
    lines = out.splitlines()
    assert len(lines) == 3 and lines[2] == "1 connection: " + lines[2].split(": ", 1)[1], out
    return lines[1].strip()


def test_offload_ages_out_after_lowered_flowtable_timeout_and_reoffloads(live_lab):
    lab = live_lab
    # procps validation through the daemon: 0 is refused (the knob's minimum is 1), 2 is taken.
    r = _sysctl_w(lab, "0")
    assert (r.code, r.err) == (255, f'sysctl: setting key "{FLOWTABLE_TCP}": Invalid argument\n')
    assert lab.ok("sysctl", "-n", FLOWTABLE_TCP) == "30\n"
    r = _sysctl_w(lab, "2")
    assert (r.code, r.out) == (0, f"{FLOWTABLE_TCP} = 2\n"), r.err
    assert lab.ok("sysctl", "-n", FLOWTABLE_TCP) == "2\n"

    srv = lab.py("remote", TCP_ECHO)
    assert srv.stdout.readline().strip() == "ready"
    cli = lab.py("host", TCP_CLIENT)
    port_line = cli.stdout.readline().split()
    assert port_line[0] == "port"
    sport = port_line[1]
    aged_before = lab.stats()["datapath"].get("offload_aged", 0)

    # Exchange data: the connection is established and offloaded.
    _exchange(cli, 5)
    line = _tcp_line(lab, sport)
    assert re.match(rf"tcp      6 src=2\.2\.2\.1 dst=1\.1\.1\.2 sport={sport} dport=5003 "
                    rf"src=1\.1\.1\.2 dst=1\.1\.1\.16 sport=5003 dport={sport} \[HW_OFFLOAD\] ", line), line
    why = _explain(lab, sport)
    assert why.startswith("offloaded to hardware [HW_OFFLOAD] since t=") and why.endswith("(2 s idle timeout)"), why

    # Idle longer than 2 s: the 1 s flow-table GC hands the connection back to conntrack.
    line = _wait_for(lambda: (ln := _tcp_line(lab, sport)) and "OFFLOAD" not in ln and ln, timeout=10)
    assert line is not None, "still offloaded 10 s after the last packet"
    m = re.match(rf"tcp      6 (\d+) ESTABLISHED src=2\.2\.2\.1 dst=1\.1\.1\.2 sport={sport} dport=5003 "
                 rf"src=1\.1\.1\.2 dst=1\.1\.1\.16 sport=5003 dport={sport} \[ASSURED\] mark=0 use=1$", line)
    assert m, line
    # flow_offload_fixup_ct: the ESTABLISHED timeout (432000 s) minus the flowtable timeout (2 s)
    assert 431_900 < int(m.group(1)) <= 432_000 - 2, line
    why = _explain(lab, sport)
    assert re.fullmatch(r"not offloaded: aged out after 2 s idle at t=\d+(\.\d+)?s?", why), why
    assert lab.stats()["datapath"]["offload_aged"] == aged_before + 1

    # New traffic on the same connection: slow path, ct() verdict +est, offloaded again.
    _exchange(cli, 3)
    line = _tcp_line(lab, sport)
    assert "[HW_OFFLOAD]" in line and "ESTABLISHED" not in line, line
    assert _explain(lab, sport).startswith("offloaded to hardware [HW_OFFLOAD] since t=")
    assert lab.stats()["drops"] == {}

    cli.stdin.write("0\n")
    cli.stdin.close()
    assert cli.wait(timeout=10) == 0
    assert srv.communicate(timeout=10)[0].split() == ["closed", "1.1.1.16"]
