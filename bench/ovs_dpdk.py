"""Real Open vSwitch 3.1 userspace, DPDK pcap ports, one PMD core: the reference of bench_replay.

Theory of operation
-------------------
``OvsDpdk`` is ``bench_live.OvsUserspace`` (private ``ovsdb-server`` and
``ovs-vswitchd`` with OVS_RUNDIR/OVS_DBDIR/OVS_LOGDIR/OVS_SYSCONFDIR in a temp
dir, stopped with ``exit --cleanup`` and then by their own Popen handles) with
another vswitchd: ``ovs-vswitchd-dpdk`` (Debian package
``openvswitch-switch-dpdk``; it is not the ``ovs-vswitchd`` alternative, so the
oracle tests keep the plain binary), started as

    taskset -c 0 unshare --net ovs-vswitchd-dpdk unix:DB ...

``taskset`` keeps vswitchd's non-PMD threads on core 0 (the PMD thread pins
itself to its core), ``unshare --net`` gives it a network namespace of its own,
so the bridge's LOCAL tap device is created there and vanishes with it; both
exec, so the Popen pid is the daemon's.  DPDK runs without hugepages
(``dpdk-extra="--no-huge --legacy-mem -m 1024 --no-pci --no-telemetry"``;
without ``--legacy-mem`` OVS adds ``--in-memory``, which refuses ``--no-huge``)
and with a ``--file-prefix`` of its own whose runtime directory
(``/var/run/dpdk/PREFIX``) is removed at the end.

``run`` is the oracle's timing method (shared/oracle §2), on the pcaps that
``ctswitch gen --perf`` wrote for the replay:

1. ``pmd-cpu-mask=0x0`` before vswitchd starts: no PMD thread, nothing polls;
2. bridge ``ctBr`` (``datapath_type=netdev``, ``fail_mode=secure``), then the
   flows with the port names rewritten to their OpenFlow numbers (the ports do
   not exist yet; a net_pcap port is read from the moment it is polled);
3. ports ``pf0hpf`` and ``p0``: ``type=dpdk``,
   ``dpdk-devargs=net_pcapK,rx_pcap=IN.pcap,tx_pcap=/dev/null`` (the replay
   benchmark does not write its output either), rx checked still 0;
4. this thread moves to core 0, ``pmd-cpu-mask=0x2`` starts one PMD on core 1,
   which reads both pcaps in lockstep, 32-frame bursts;
5. ``dpctl/show -s`` is polled every 1 ms over one unixctl connection: the
   window is the wall clock from the first poll that sees rx > 0 to the one
   that sees every packet of both pcaps (rx-window pps = packets / window);
6. OVS' own accounting: ``dpif-netdev/pmd-stats-show`` processing cycles over
   packets received (TSC rate from /proc/cpuinfo for µs/packet);
7. checks, else ``DpdkError``: rx = the pcaps' packet count, tx (p0 + pf0hpf)
   = rx - the filler frames (every TCP packet and the ARP pair forwarded), and
   ``dpctl/ct-get-nconns`` = the number of connections.

Run alone: ``python -m bench.ovs_dpdk PCAP_DIR`` (a ``ctswitch gen --perf`` directory).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

from bench.bench_live import OVS_SCHEMA, OvsUserspace, ovs_missing
from ctswitch.control.vendor import EXAMPLE2

DPDK_VSWITCHD = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk"
PACKAGE = "openvswitch-switch-dpdk"
BRIDGE = "ctBr"
PORTS = {"pf0hpf": 1, "p0": 2}  # name -> ofport_request
MAIN_CORE, PMD_CORE = 0, 1
DPDK_MEM_MB = 1024
DPDK_RUNDIR = "/var/run/dpdk"


class DpdkError(RuntimeError):
    """OVS DPDK could not be run, or its run failed a check."""


def dpdk_missing() -> str | None:
    """None when OVS with DPDK can be run here, else why not (one line)."""
    why = ovs_missing()
    if why:
        return why
    if not os.access(DPDK_VSWITCHD, os.X_OK):
        return f"{DPDK_VSWITCHD} not installed (apt-get install {PACKAGE})"
    if os.geteuid() != 0:
        return "OVS DPDK needs root"
    for tool in ("taskset", "unshare"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    if not {MAIN_CORE, PMD_CORE} <= os.sched_getaffinity(0):
        return f"cores {MAIN_CORE} and {PMD_CORE} are not both available"
    return None


def tsc_hz() -> float:
    """The TSC rate pmd-stats-show counts in (``cpu MHz`` of /proc/cpuinfo; 0 when unknown)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    return float(line.split(":", 1)[1]) * 1e6
    except (OSError, ValueError):
        pass
    return 0.0


def numbered(flows: tuple[str, ...] | list[str], ports: dict[str, int] = PORTS) -> list[str]:
    """``flows`` with every port name (a whole token: after ``=``, ``,``, ``:`` or a space) as its number."""
    pat = re.compile(r"(?<=[=,: ])(" + "|".join(map(re.escape, ports)) + r")(?=$|[,\s)])")
    return [pat.sub(lambda m: str(ports[m.group(1)]), f) for f in flows]


_PORT = re.compile(r"^\s*port \d+: (\S+)")
_COUNT = re.compile(r"^\s*(RX|TX) packets:(\d+)")


def port_counters(show: str) -> dict[str, list[int]]:
    """{port: [rx, tx]} from ``dpctl/show -s``."""
    out: dict[str, list[int]] = {}
    cur = None
    for line in show.splitlines():
        m = _PORT.match(line)
        if m:
            cur = out.setdefault(m.group(1), [0, 0])
            continue
        m = _COUNT.match(line)
        if m and cur is not None:
            cur[0 if m.group(1) == "RX" else 1] = int(m.group(2))
    return out


@dataclass
class DpdkRun:
    packets: int  # rx counted on both ports
    window_s: float  # first rx seen -> every packet seen
    cycles: int  # PMD processing cycles
    tx: int
    conns: int
    hz: float

    @property
    def pps(self) -> float:
        return self.packets / self.window_s

    @property
    def cycles_per_pkt(self) -> float:
        return self.cycles / self.packets

    @property
    def us_per_pkt(self) -> float:
        return self.cycles_per_pkt / self.hz * 1e6 if self.hz else 0.0


class OvsDpdk(OvsUserspace):
    """A private ovs-vswitchd-dpdk on core 0 with one PMD on core 1; ``with OvsDpdk() as o: o.run(...)``."""

    def __init__(self) -> None:
        super().__init__(ns="")
        self.prefix = f"ctsw-{os.getpid()}-{os.path.basename(self.dir)}"
        self.rpc = None

    def __enter__(self) -> OvsDpdk:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, prog: str, *args: str) -> None:
        binary = DPDK_VSWITCHD if prog == "ovs-vswitchd" else prog
        netns = ["unshare", "--net"] if prog == "ovs-vswitchd" else []
        argv = ["taskset", "-c", str(MAIN_CORE), *netns, binary, *args, f"--unixctl={self.ctl[prog]}",
                f"--pidfile={self.dir}/{prog}.pid", f"--log-file={self.dir}/{prog}.log", "-vconsole:off"]
        self.procs[prog] = p = subprocess.Popen(argv, env=self.env, stdin=subprocess.DEVNULL,
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.ctl[prog]):
            if p.poll() is not None or time.monotonic() > deadline:
                raise DpdkError(f"{prog} did not start (status {p.poll()}): {self.log_tail(prog)}")
            time.sleep(0.02)

    def _connect(self):
        """A persistent unixctl connection to vswitchd (the ovs Python package), None without it."""
        try:
            from ovs.unixctl.client import UnixctlClient
        except ImportError:
            return None
        err, client = UnixctlClient.create(self.ctl["ovs-vswitchd"])
        if err:
            raise DpdkError(f"cannot connect to {self.ctl['ovs-vswitchd']}: {os.strerror(err)}")
        return client

    def _call(self, cmd: str, *args: str) -> str:
        if self.rpc is None:
            return self.appctl(cmd, *args)
        err, fail, out = self.rpc.transact(cmd, list(args))
        if err or fail:
            raise DpdkError(f"{cmd}: {os.strerror(err) if err else fail.strip()}")
        return out

    def counters(self) -> dict[str, list[int]]:
        return port_counters(self._call("dpctl/show", "-s"))

    def start(self, flows: tuple[str, ...] | list[str]) -> None:
        """Both daemons, DPDK initialised with no PMD thread, bridge ctBr and the flows (ports by number)."""
        db = f"{self.dir}/conf.db"
        self._run("ovsdb-tool", "create", db, OVS_SCHEMA)
        self._spawn("ovsdb-server", db, f"--remote=punix:{self.db_sock}")
        self.vsctl("--no-wait", "init")
        extra = (f"--no-huge --legacy-mem -m {DPDK_MEM_MB} --no-pci --no-telemetry "
                 f"--file-prefix={self.prefix}")
        self.vsctl("--no-wait", "set", "Open_vSwitch", ".", "other_config:dpdk-init=true",
                   f'other_config:dpdk-extra="{extra}"', "other_config:pmd-cpu-mask=0x0")
        self._spawn("ovs-vswitchd", f"unix:{self.db_sock}")
        self.vsctl("add-br", BRIDGE, "--", "set", "bridge", BRIDGE, "datapath_type=netdev", "fail_mode=secure")
        if self.vsctl("get", "Open_vSwitch", ".", "dpdk_initialized").strip() != "true":
            raise DpdkError(f"DPDK did not initialise: {self.log_tail('ovs-vswitchd')}")
        self._run("ovs-ofctl", "del-flows", BRIDGE)
        path = f"{self.dir}/flows.txt"
        with open(path, "w") as f:
            f.write("".join(fl + "\n" for fl in numbered(flows)))
        self._run("ovs-ofctl", "add-flows", BRIDGE, path)
        self.rpc = self._connect()

    def run(self, pcap_dir: str, flows: tuple[str, ...] | list[str] = EXAMPLE2, timeout: float = 120.0) -> DpdkRun:
        """Starts OVS, reads ``pcap_dir/{pf0hpf,p0}.pcap`` through it once, times it and checks it."""
        with open(f"{pcap_dir}/meta.json") as f:
            meta = json.load(f)
        expect = sum(meta["per_port"][p] for p in PORTS)
        self.start(flows)
        add: list[str] = []
        for k, (name, ofport) in enumerate(PORTS.items()):
            dev = f"net_pcap{k},rx_pcap={os.path.abspath(f'{pcap_dir}/{name}.pcap')},tx_pcap=/dev/null"
            add += ["--", "add-port", BRIDGE, name, "--", "set", "interface", name, "type=dpdk",
                    f"ofport_request={ofport}", f"options:dpdk-devargs={dev}"]
        self.vsctl(*add[1:])
        c = self.counters()
        missing = [p for p in PORTS if p not in c]
        if missing:
            errors = [f"{p}: {self.vsctl('get', 'interface', p, 'error').strip()}" for p in missing]
            raise DpdkError("DPDK ports not created: " + "; ".join(errors))
        if any(c[p][0] for p in PORTS):
            raise DpdkError(f"ports polled before the PMD started: {c}")
        affinity = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {MAIN_CORE})
        try:
            self.vsctl("--no-wait", "set", "Open_vSwitch", ".", f"other_config:pmd-cpu-mask={1 << PMD_CORE:#x}")
            first = None
            last, moved = -1, time.monotonic()
            end = moved + timeout
            while True:
                c = self.counters()
                now = time.perf_counter()
                got = sum(c[p][0] for p in PORTS)
                if got and first is None:
                    first = now
                if got >= expect:
                    break
                mono = time.monotonic()
                if got != last:
                    last, moved = got, mono
                if mono - moved > 10 or mono > end:
                    raise DpdkError(f"rx stalled at {got:,} of {expect:,} packets: {c}")
                time.sleep(0.001)
        finally:
            os.sched_setaffinity(0, affinity)
        window = now - first
        time.sleep(0.2)  # the last burst's tx
        pmd = self._call("dpif-netdev/pmd-stats-show")
        cycles = sum(int(x) for x in re.findall(r"processing cycles:\s*(\d+)", pmd))
        received = sum(int(x) for x in re.findall(r"packets received:\s*(\d+)", pmd))
        nconns = self._call("dpctl/ct-get-nconns").strip()
        c = self.counters()
        rx, tx = sum(c[p][0] for p in PORTS), sum(c[p][1] for p in PORTS)
        fillers = meta.get("filler_frames_in_p0", 0)
        problems = []
        if rx != expect or received != expect:
            problems.append(f"rx {rx:,} (PMD {received:,}), pcaps hold {expect:,}")
        if tx != rx - fillers:
            problems.append(f"tx {tx:,} != rx {rx:,} - {fillers} fillers")
        if nconns != str(meta["conns"]):
            problems.append(f"conntrack holds {nconns} connections, not {meta['conns']:,}")
        if problems:
            raise DpdkError("OVS DPDK run failed its checks: " + "; ".join(problems))
        return DpdkRun(rx, window, cycles, tx, int(nconns), tsc_hz())

    def stop(self) -> None:
        """Closes the unixctl connection, stops both daemons (our Popen handles), removes DPDK's runtime dir."""
        try:
            if self.rpc is not None:
                self.rpc.close()
                self.rpc = None
            super().stop()
        finally:
            shutil.rmtree(f"{DPDK_RUNDIR}/{self.prefix}", ignore_errors=True)
            with contextlib.suppress(OSError):
                os.rmdir(DPDK_RUNDIR)  # only when empty, i.e. nobody else uses DPDK here


def measure(pcap_dir: str, flows: tuple[str, ...] | list[str] = EXAMPLE2) -> DpdkRun:
    """One OVS DPDK run on a fresh private instance."""
    with OvsDpdk() as ovs:
        return ovs.run(pcap_dir, flows)


def version() -> str:
    r = subprocess.run([DPDK_VSWITCHD, "--version"], capture_output=True, text=True, timeout=10)
    head = r.stdout.splitlines()[:2]
    return "; ".join(s.strip() for s in head) if head else "unknown"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bench.ovs_dpdk PCAP_DIR", file=sys.stderr)
        return 2
    why = dpdk_missing()
    if why:
        print(f"ovs_dpdk: {why}", file=sys.stderr)
        return 1
    r = measure(argv[0])
    print(f"{r.packets:,} packets in {r.window_s:.3f} s: {r.pps / 1e6:.3f} Mpps (rx window), "
          f"{r.cycles_per_pkt:.0f} cycles/pkt ({r.us_per_pkt:.3f} us), tx {r.tx:,}, {r.conns:,} connections")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
