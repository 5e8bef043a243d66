"""Live benchmark: TCP Gbit/s and 64-byte packets/s through ctswitch in the netns lab,
against Open vSwitch's userspace datapath and a Linux bridge on the same veths.

Theory of operation
-------------------
One lab (``control.lab``, vendor example 2: SNAT to 1.1.1.16, hw-offload on)
is built in a temporary database.  Three switches take turns on the same
``p0``/``pf0hpf`` veth ends in the lab's switch namespace, and for each:

* **TCP**: iperf3 (server in the remote namespace, client in the host one,
  ``-t SECONDS``, one stream; falls back to a Python sender when iperf3 is
  missing) -- Gbit/s received and iperf3's retransmission count, twice: with
  the peers' (host/remote ``eth0``) offloads off as the lab leaves them (1500-byte
  frames, full checksums), then on (TSO: 64 KB super-frames with partial
  checksums; ``peer_offloads``);
* **64 B pps**: a UDP request/reply first (so the connection is established
  and offloaded), then an AF_PACKET blaster in the host namespace sends 60-byte
  frames of that same 5-tuple as fast as it can for SECONDS (``sendmmsg`` of
  256 frames a call, qdisc bypass; ``BLASTER``); offered is what the host's
  kernel accepted, delivered the remote ``eth0`` rx counter delta, both over
  the blaster's own sending time (``pps``).  The same blaster for all three.

The switch-side ends ``p0``/``pf0hpf`` get the offloads the ctswitch daemon
sets (GRO/TSO/checksums on) for ctswitch, the Linux bridge and OVS with
userspace TSO; off for OVS without it (``switch_offloads``).

1. **ctswitch**: the lab's daemon (example 2, SNAT, modelled HW fast path).
2. **OVS userspace** (``OvsUserspace``): the daemon is stopped; a private
   ``ovsdb-server`` + ``ovs-vswitchd --disable-system`` run *inside* the
   switch namespace with OVS_RUNDIR/OVS_DBDIR/OVS_LOGDIR/OVS_SYSCONFDIR in a
   temp dir (nothing system-wide is touched); bridge ``ctBr`` with
   ``datapath_type=netdev`` (dpif-netdev: userspace datapath and userspace
   conntrack/NAT), ``fail_mode=secure``, ports ``p0``/``pf0hpf`` (netdev-linux
   AF_PACKET sockets) and the same vendor example 2 flows, so it does SNAT too.
   The SNAT is checked (``dpctl/dump-conntrack`` must show 1.1.1.16).  For the
   TCP run with the peers' offloads on it is restarted with
   ``other_config:userspace-tso-enable=true`` (without it OVS drops every frame
   longer than the MTU).  It is stopped with ``exit --cleanup``, then only its
   own pids are signalled.
3. **Linux bridge**: ``p0`` and ``pf0hpf`` enslaved to ``br0`` (plain L2, no
   NAT: the remote reaches 2.2.2.1 on-link).

The output also says how many of ctswitch's frames took the batched loop
(``batches``/``batch_frames`` of the daemon's loop stats) and the mean round.

Everything lives in the lab's namespaces and temp dirs, removed at the end.
Needs root.

Run: ``python -m bench.bench_live [--seconds 5] [--no-save] [--no-ovs]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from bench.common import report
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
# The 64 B blaster: one established UDP 5-tuple, the same 60-byte frame sent with sendmmsg
# (libc through ctypes) in calls of 256 messages that all point at one iovec, so the sender costs
# almost no user time per frame (about 0.04 us of its ~1.9 us; the rest is the kernel's packet_snd,
# the veth transmit and the switch port's receive, which the veth runs in the sender's context).
# The plain `send()` loop it replaces offered ~410 kpps per CPU-second against ~525 for this one.
# It prints "ready" once its socket is set up, waits for a line on stdin, sends for SECONDS,
# then prints: frames the kernel accepted, refused calls, seconds.  The mmsghdr array must have
# the C layout (msghdr nested, msg_len after its padding: 64 bytes a message; the blaster takes
# the daemon's ctypes structures): a flat struct of 56 bytes makes the kernel read garbage from
# the second message on and sendmmsg return 1.
BLASTER = r"""
import ctypes, socket, sys, time
secs, frame, batch = float(sys.argv[1]), bytes.fromhex(sys.argv[2]), 256
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("2.2.2.1", 40000)); u.settimeout(5)
u.sendto(b"hi", ("1.1.1.2", 5002)); u.recv(100)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(("eth0", 0))
s.setsockopt(263, 20, 1)  # SOL_PACKET, PACKET_QDISC_BYPASS
from ctswitch.io.afpacket import _IOVec as IOVec, _MMsgHdr as MMsgHdr  # the daemon's C layouts
assert ctypes.sizeof(MMsgHdr) == 64
data = ctypes.create_string_buffer(frame, len(frame))
iov = IOVec(ctypes.addressof(data), len(frame))
msgs = (MMsgHdr * batch)()
for m in msgs:
    m.hdr.iov, m.hdr.iovlen = ctypes.addressof(iov), 1
sendmmsg = ctypes.CDLL(None, use_errno=True).sendmmsg
sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
fd, ptr, now = s.fileno(), ctypes.addressof(msgs), time.monotonic
print("ready", flush=True)
sys.stdin.readline()
n = refused = 0; t = now(); end = t + secs
while now() < end:
    r = sendmmsg(fd, ptr, batch, 0)
    if r > 0: n += r
    else: refused += 1  # ENOBUFS: the veth peer's queue was full
print(n, refused, now() - t, flush=True)
"""


FLAGS = {  # the options run_all may pass (without values); the module parses its own with argparse
    "--no-save": "print only",
    "--no-ovs": "skip the Open vSwitch userspace run",
}

def _udp_frame() -> bytes:
    from ctswitch.packet import build
    f = build.ipv4_udp("2.2.2.1", "1.1.1.2", 40000, 5002, b"\0" * 18,
                       src_mac=labmod.HOST_MAC, dst_mac=labmod.REMOTE_MAC)
    return bytes(f)


def _nsrun(ns: str, *cmd: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, **kw)


def _rx(ns: str) -> int:
    return int(_nsrun(ns, "cat", "/sys/class/net/eth0/statistics/rx_packets").stdout)


def tcp_gbps(st: dict, secs: float) -> tuple[float, str, int | None]:
    """(Gbit/s received, tool, TCP retransmissions or None) of one host -> remote stream."""
    host, remote = st["netns"]["host"], st["netns"]["remote"]
    if shutil.which("iperf3"):
        srv = subprocess.Popen(["ip", "netns", "exec", remote, "iperf3", "-s", "-1", "-B", "1.1.1.2"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        try:
            r = _nsrun(host, "iperf3", "-c", "1.1.1.2", "-t", str(int(secs)), "-J", timeout=secs + 30)
            j = json.loads(r.stdout)
            return (j["end"]["sum_received"]["bits_per_second"] / 1e9, "iperf3",
                    j["end"].get("sum_sent", {}).get("retransmits"))
        finally:
            srv.wait(timeout=30)
    sink = subprocess.Popen(["ip", "netns", "exec", remote, sys.executable, "-c", SINK], stdout=subprocess.PIPE,
                            text=True)
    sink.stdout.readline()
    r = _nsrun(host, sys.executable, "-c", SENDER, str(secs), timeout=secs + 30)
    sink.wait(timeout=30)
    return float(r.stdout), "python sender", None


def peer_offloads(st: dict, on: bool) -> None:
    """Turns the NIC offloads of the lab's peer ends (host and remote ``eth0``) on or off."""
    for ns in (st["netns"]["host"], st["netns"]["remote"]):
        _nsrun(ns, sys.executable, "-m", "ctswitch.io.afpacket", "offloads-on" if on else "offloads-off", "eth0",
               check=True)


def switch_offloads(st: dict, on: bool) -> None:
    """The NIC offloads of the switch-side ends (``p0``, ``pf0hpf``) on or off."""
    _nsrun(st["netns"]["sw"], sys.executable, "-m", "ctswitch.io.afpacket", "offloads-on" if on else "offloads-off",
           "p0", "pf0hpf", check=True)


def tcp_both(st: dict, secs: float) -> tuple[float, float, str, str]:
    """TCP with the peers' offloads off (1500-byte frames), then on (TSO super-frames); peers left off.

    Returns (Gbit/s off, Gbit/s on, tool, retransmissions note).
    """
    g_off, tool, r_off = tcp_gbps(st, secs)
    peer_offloads(st, True)
    try:
        g_on, _, r_on = tcp_gbps(st, secs)
    finally:
        peer_offloads(st, False)
    return g_off, g_on, tool, f"{r_off}/{r_on}"


def pps(st: dict, secs: float) -> tuple[float, float]:
    """(offered, delivered) frames/s of the 64 B blaster over the same window.

    Offered: frames the host's kernel accepted (sendmmsg's count) over the
    blaster's own sending time; delivered: the remote ``eth0`` rx counter
    read just before the blaster starts and after it stopped (plus 50 ms for
    frames still in queues), over the same time.  Interpreter start-up and
    the UDP handshake are outside the window (the blaster waits for "go").
    """
    host, remote = st["netns"]["host"], st["netns"]["remote"]
    echo = subprocess.Popen(["ip", "netns", "exec", remote, sys.executable, "-c", UDP_ECHO],
                            stdout=subprocess.PIPE, text=True)
    blaster = None
    try:
        echo.stdout.readline()
        blaster = subprocess.Popen(["ip", "netns", "exec", host, sys.executable, "-c", BLASTER, str(secs),
                                    _udp_frame().hex()], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if blaster.stdout.readline().strip() != "ready":
            raise RuntimeError("the 64 B blaster did not start")
        before = _rx(remote)
        blaster.stdin.write("go\n")
        blaster.stdin.flush()
        sent, _refused, dt = blaster.stdout.readline().split()
        blaster.wait(timeout=30)
        time.sleep(0.05)
        dt = float(dt)
        return int(sent) / dt, (_rx(remote) - before) / dt
    finally:
        for p in (blaster, echo):  # our own children, by their Popen handles
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()


OVS_SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
OVS_TOOLS = ("ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ovs-appctl")


def ovs_missing() -> str | None:
    """None when Open vSwitch can be run here, else why not."""
    missing = [t for t in OVS_TOOLS if shutil.which(t) is None]
    if missing:
        return f"Open vSwitch not installed (missing {', '.join(missing)})"
    if not os.path.exists(OVS_SCHEMA):
        return f"{OVS_SCHEMA} not found"
    return None


class OvsUserspace:
    """A private OVS with a ``datapath_type=netdev`` bridge in network namespace ``ns``.

    Both daemons are our own children, started with ``ip netns exec`` (which
    execs: the Popen pid is the daemon's), their files in a temp dir.
    """

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self.dir = tempfile.mkdtemp(prefix="ctsw-ovs-")
        self.env = dict(os.environ)
        for var in ("OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR"):
            self.env[var] = self.dir
        self.db_sock = f"{self.dir}/db.sock"
        self.ctl = {"ovsdb-server": f"{self.dir}/ovsdb-server.ctl", "ovs-vswitchd": f"{self.dir}/ovs-vswitchd.ctl"}
        self.procs: dict[str, subprocess.Popen] = {}

    def _run(self, *cmd: str) -> str:
        r = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: {(r.stderr or r.stdout).strip()}")
        return r.stdout

    def _spawn(self, prog: str, *args: str) -> None:
        argv = ["ip", "netns", "exec", self.ns, prog, *args, f"--unixctl={self.ctl[prog]}",
                f"--pidfile={self.dir}/{prog}.pid", f"--log-file={self.dir}/{prog}.log", "-vconsole:off"]
        p = subprocess.Popen(argv, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        self.procs[prog] = p
        deadline = time.monotonic() + 20
        while not os.path.exists(self.ctl[prog]):
            if p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{prog} did not start (status {p.poll()}): {self.log_tail(prog)}")
            time.sleep(0.02)

    def log_tail(self, prog: str) -> str:
        try:
            with open(f"{self.dir}/{prog}.log") as f:
                return " | ".join(f.read().splitlines()[-3:])
        except OSError:
            return "(no log)"

    def vsctl(self, *args: str) -> str:
        return self._run("ovs-vsctl", f"--db=unix:{self.db_sock}", "--timeout=20", *args)

    def appctl(self, *args: str) -> str:
        return self._run("ovs-appctl", "-t", self.ctl["ovs-vswitchd"], *args)

    def start(self, flows: list[str], tso: bool = False) -> None:
        """Starts both daemons and the bridge; ``tso``: ``other_config:userspace-tso-enable=true``."""
        db = f"{self.dir}/conf.db"
        self._run("ovsdb-tool", "create", db, OVS_SCHEMA)
        self._spawn("ovsdb-server", db, f"--remote=punix:{self.db_sock}")
        self.vsctl("--no-wait", "init")
        if tso:
            self.vsctl("--no-wait", "set", "Open_vSwitch", ".", "other_config:userspace-tso-enable=true")
        self._spawn("ovs-vswitchd", f"unix:{self.db_sock}", "--disable-system")
        br = labmod.BRIDGE
        self.vsctl("add-br", br, "--", "set", "bridge", br, "datapath_type=netdev", "fail_mode=secure")
        for port in ("pf0hpf", "p0"):
            self.vsctl("add-port", br, port)
        self._run("ovs-ofctl", "del-flows", br)
        path = f"{self.dir}/flows.txt"
        with open(path, "w") as f:
            f.write("".join(fl + "\n" for fl in flows))
        self._run("ovs-ofctl", "add-flows", br, path)

    def tso_note(self) -> str:
        """What ovs-vswitchd logged about userspace TSO (empty when nothing)."""
        try:
            with open(f"{self.dir}/ovs-vswitchd.log") as f:
                lines = [ln for ln in f.read().splitlines() if "Segmentation Offloading" in ln]
        except OSError:
            return ""
        return lines[-1].split("|")[-1].strip() if lines else ""

    def conntrack(self) -> str:
        return self.appctl("dpctl/dump-conntrack")

    def cache_stats(self) -> dict[str, int]:
        """Packets received, EMC/SMC/megaflow hits and upcalls summed over OVS's threads."""
        out: dict[str, int] = {}
        for line in self.appctl("dpif-netdev/pmd-stats-show").splitlines():
            key, _, val = line.strip().partition(":")
            if key in ("packets received", "emc hits", "smc hits", "megaflow hits", "miss with success upcall"):
                out[key] = out.get(key, 0) + int(val.split()[0])
        return out

    def stop(self) -> None:
        """``exit --cleanup`` (vswitchd) / ``exit`` (ovsdb), then our own pids only; removes the dir."""
        try:
            for prog, cmd in (("ovs-vswitchd", ["exit", "--cleanup"]), ("ovsdb-server", ["exit"])):
                p = self.procs.pop(prog, None)
                if p is None or p.poll() is not None:
                    continue
                subprocess.run(["ovs-appctl", "-t", self.ctl[prog], *cmd], env=self.env, timeout=10,
                               capture_output=True)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.terminate()  # our own child, by its Popen pid
                    try:
                        p.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _row(name: str, g: float, g_on: float, got: float, sent: float, retrans: str) -> str:
    return f"| {name} | {g:.2f} | {g_on:.2f} | {got / 1e3:.0f} | {sent / 1e3:.0f} | {retrans} |"


def main(argv: list[str] | None = None) -> list[str]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--no-save", action="store_true")
    ap.add_argument("--no-ovs", action="store_true", help="skip the Open vSwitch userspace run")
    a = ap.parse_args(argv)
    why = labmod.available()
    if why:
        print(f"bench_live: skipped: {why}")
        return []
    no_ovs = "--no-ovs given" if a.no_ovs else ovs_missing()
    load0 = os.getloadavg()[0]
    tmp = tempfile.mkdtemp(prefix="ctsw-bench-")
    db = f"{tmp}/bench.db"
    lines: list[str] = []
    res: dict[str, tuple] = {}
    ovs = None
    try:
        st = labmod.lab_up(db, 2)
        sw = st["netns"]["sw"]
        # 1. ctswitch
        g, g_on, tool, rt = tcp_both(st, a.seconds)
        full = json.loads(daemon_request(db, ["stats"]).out)
        stats = full["datapath"]
        hw = stats.get("fast_hw", 0) / max(1, stats.get("rx_packets", 1))
        gso = sum(p.get("rx_gso", 0) for p in full.get("ports", {}).values())
        sent, got = pps(st, a.seconds)
        after = json.loads(daemon_request(db, ["stats"]).out)
        loop = after["loop"]
        kdrop = sum(p.get("rx_dropped", 0) for p in after.get("ports", {}).values()) \
            - sum(p.get("rx_dropped", 0) for p in full.get("ports", {}).values())
        batch_note = (f"ctswitch loop: {loop.get('batch_frames', 0):,} of {loop.get('rx', 0):,} frames in "
                      f"{loop.get('batches', 0):,} batched rounds "
                      f"({loop.get('batch_frames', 0) / max(1, loop.get('batches', 0)):.0f} frames per round); "
                      f"{gso:,} GSO super-frames received during the TCP runs; {kdrop:,} frames dropped by the "
                      "kernel at its receive ring during the 64 B run (`rx_dropped`: the daemon was too slow).")
        res["ctswitch"] = (g, g_on, got, sent, rt)
        stop_daemon(db)
        # 2. OVS userspace datapath, same flows, same veths
        ovs_version = ovs_note = tso_note = ""
        load = os.getloadavg()[0]
        if no_ovs is None:
            # OVS without userspace TSO cannot take super-frames (it drops frames longer than the MTU):
            # its ports get the offloads off, as the daemon set them before it used PACKET_VNET_HDR.
            switch_offloads(st, False)
            ovs = OvsUserspace(sw)
            ovs.start(labmod.EXAMPLES[2])
            ovs_version = subprocess.run(["ovs-vswitchd", "--version"], capture_output=True,
                                         text=True).stdout.split("\n")[0].strip()
            g2, _, r2 = tcp_gbps(st, a.seconds)
            if "dst=1.1.1.16" not in ovs.conntrack():
                raise RuntimeError("OVS userspace did not SNAT the iperf3 connection")
            cs = ovs.cache_stats()
            ovs_note = (f"OVS during the TCP run: {cs.get('packets received', 0):,} packets, "
                        f"{cs.get('emc hits', 0) + cs.get('smc hits', 0) + cs.get('megaflow hits', 0):,} "
                        f"flow-cache hits, {cs.get('miss with success upcall', 0)} upcalls "
                        "(each packet is counted once per pass; every packet passes ct(table=1,nat) "
                        "in the userspace conntrack and recirculates once).")
            sent2, got2 = pps(st, a.seconds)
            ovs.stop()
            # the peers' offloads on: OVS with its own answer to super-frames (userspace-tso-enable)
            switch_offloads(st, True)  # the ports as the ctswitch daemon sets them (GRO, TSO, checksums)
            ovs = OvsUserspace(sw)
            ovs.start(labmod.EXAMPLES[2], tso=True)
            tso_note = ovs.tso_note()
            peer_offloads(st, True)
            try:
                g2_on, _, r2_on = tcp_gbps(st, a.seconds)
            finally:
                peer_offloads(st, False)
            if "dst=1.1.1.16" not in ovs.conntrack():
                raise RuntimeError("OVS userspace (userspace-tso-enable) did not SNAT the iperf3 connection")
            res["ovs"] = (g2, g2_on, got2, sent2, f"{r2}/{r2_on}")
            ovs.stop()
            ovs = None
        # 3. Linux bridge, its ports as the ctswitch daemon sets them (GRO, TSO, checksums on)
        switch_offloads(st, True)
        for cmd in (["ip", "link", "add", "br0", "type", "bridge"], ["ip", "link", "set", "p0", "master", "br0"],
                    ["ip", "link", "set", "pf0hpf", "master", "br0"], ["ip", "link", "set", "br0", "up"]):
            _nsrun(sw, *cmd, check=True)
        g3, g3_on, _, r3 = tcp_both(st, a.seconds)
        sent3, got3 = pps(st, a.seconds)
        res["bridge"] = (g3, g3_on, got3, sent3, r3)

        c = res["ctswitch"]
        lines.append("| Path | TCP Gbit/s, peers' offloads off (1500 B frames) | TCP Gbit/s, peers' offloads on "
                     "(TSO super-frames) | 64 B delivered kpps | offered kpps | TCP retransmits (off/on) |")
        lines.append("|---|---|---|---|---|---|")
        lines.append(_row("Linux bridge on the same veths (no NAT)", *res["bridge"]))
        if "ovs" in res:
            lines.append(_row(f"OVS userspace datapath ({ovs_version}, `datapath_type=netdev`), "
                              "example 2 (SNAT)", *res["ovs"]))
        else:
            lines.append(f"| OVS userspace datapath: not run ({no_ovs}) | | | | | |")
        lines.append(_row(f"ctswitch daemon, example 2 (SNAT, HW fast path {hw:.0%} of packets)", *c))
        lines.append("")
        ratios = []
        for key, name in (("ovs", "OVS userspace"), ("bridge", "Linux bridge")):
            if key in res:
                r = res[key]
                ratios.append(f"ctswitch / {name}: TCP {c[0] / max(r[0], 1e-9):.1f}x (offloads off), "
                              f"{max(c[0], c[1]) / max(r[0], r[1], 1e-9):.1f}x (best of each), "
                              f"64 B {c[2] / max(r[2], 1e-9):.1f}x")
        lines.append("Ratios: " + "; ".join(ratios) + ".")
        lines.append("")
        lines.append(f"TCP measured with {tool}, {a.seconds:g} s; 64 B: AF_PACKET blaster in the host "
                     "namespace (one established UDP 5-tuple, sendmmsg of 256 frames a call, qdisc bypass; "
                     "the same for the three), offered = frames the host kernel accepted, delivered = remote "
                     "eth0 rx counter, both over the blaster's sending time; "
                     "the lab's peers (host/remote eth0) have their offloads off except in the 'on' TCP "
                     "column (TSO/GSO/checksum offload on: 64 KB super-frames with partial checksums); "
                     "switch-side ends p0/pf0hpf: GRO/TSO/checksum offloads on (as the ctswitch daemon sets "
                     "them) for ctswitch, the Linux bridge and OVS with userspace TSO, off for OVS without it; "
                     "2 vCPUs shared by sender, switch and receiver. "
                     "OVS: ovs-vswitchd inside the switch namespace, ports p0/pf0hpf as netdev-linux "
                     "(AF_PACKET) ports, flows of vendor example 2; for the 'on' column it is restarted with "
                     f"other_config:userspace-tso-enable=true ({tso_note or 'no log line about it'}). "
                     f"Load average (1 min) before the bench: {load0:.2f}, after the ctswitch runs: {load:.2f}.")
        lines.append("")
        lines.append(batch_note)
        if ovs_note:
            lines.append("")
            lines.append(ovs_note)
    finally:
        if ovs is not None:
            ovs.stop()
        labmod.lab_down(db)
        shutil.rmtree(tmp, ignore_errors=True)
    if lines:
        report("Live mode: ctswitch vs OVS userspace (netdev) vs Linux bridge on veth", "bench.bench_live",
               sys.argv[1:] if argv is None else list(argv), lines, save=not a.no_save)
    return lines


if __name__ == "__main__":
    main()
