"""Real Open vSwitch 3.1 as a reference oracle for ctswitch.

Theory of operation
-------------------
`OvsOracle` runs a private, throw-away OVS: a fresh temp directory holds the
database, sockets, logs and pcaps (OVS_RUNDIR/OVS_DBDIR/OVS_LOGDIR/
OVS_SYSCONFDIR all point there), `ovsdb-server` and
`ovs-vswitchd --enable-dummy=override --disable-system` are started as our own
child processes, and nothing system-wide (no /var/run/openvswitch, no kernel
datapath) is touched.  The bridge uses `datapath_type=netdev`, i.e. the real
userspace datapath with the userspace conntrack, a fixed MAC and dpid, and
`type=dummy` ports that write everything they transmit to `options:tx_pcap`
(the LOCAL port too, since NORMAL floods to it).

Packets are injected with the unixctl command `netdev-dummy/receive PORT HEX`
over one persistent JSON-RPC connection to ovs-vswitchd's control socket.
Ordering across ports is only guaranteed with a barrier: after each packet we
poll `dpctl/show -s` until the port's rx counter has counted it.  Dummy ports
are serviced by the main thread, which also answers unixctl, so once rx is
counted the packet's whole processing (upcall, ct, NAT, output) is finished.
The tx counter deltas seen at that moment attribute every transmitted frame to
the input packet that caused it; that gives the per-packet trace and lets us
rewrite tx timestamps to the causing input's timestamp, so tx pcaps are
byte-for-byte reproducible.

Input order: all input pcaps are merged by timestamp; ties go by the order of
the inputs list, then by position in the file.

After injection, two `revalidator/wait` calls push megaflow statistics into the
OpenFlow rules, then conntrack (`dpctl/dump-conntrack` plain, `-m`, `-s`, all
sorted because the dump is in hash order), `ovs-ofctl dump-flows` (raw and
normalised) and the datapath flows are collected.

Teardown always runs, also on errors and timeouts: `exit --cleanup` through
unixctl, then SIGTERM/SIGKILL of our own Popen children only, then the temp
directory is removed.  Every external call is bounded by a global deadline.

Layout of a case / scenario directory (shared with /work/shared/oracle/cases):
    case.json   {"bridge": "br0", "ports": {"p0": 1, ...}, "fail_mode": "secure",
                 "flows": "flows.txt", "description": "..."}
    flows.txt   one ovs-ofctl flow per line
    in/<port>.pcap   packets arriving on <port>
    expected/   what `write_outputs` stores (see OUTPUT_FILES)

CLI:  python tests/oracle/ovs_harness.py CASE_DIR [--out DIR]   (default CASE_DIR/expected)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from pcapfile import read_pcap, write_pcap  # noqa: E402

OVS_TOOLS = ("ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ovs-appctl")
SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
BRIDGE_MAC = "02:00:00:00:00:fe"
BRIDGE_DPID = "0000000000000001"
DEFAULT_TIMEOUT_S = 120.0
BARRIER_TIMEOUT_S = 10.0

# Files written by write_outputs; the deterministic ones are compared by tests.
STABLE_FILES = ("trace.tsv", "conntrack.txt", "conntrack-m.txt", "dump-flows.norm.txt",
                "dpctl-flows.norm.txt")
VOLATILE_FILES = ("conntrack-s.txt", "dump-flows.txt", "summary.json")


def _accepts(path: str) -> bool:
    """True when a unix socket at ``path`` exists and accepts a connection."""
    if not os.path.exists(path):
        return False
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


class OracleError(RuntimeError):
    """OVS could not be started, configured or driven."""


# --------------------------------------------------------------------------- availability

def ovs_available() -> str | None:
    """None when the real OVS can be used here, else a one-line reason (for pytest.skip)."""
    if os.environ.get("CTSWITCH_NO_OVS"):
        return "CTSWITCH_NO_OVS is set"
    missing = [t for t in OVS_TOOLS if shutil.which(t) is None]
    if missing:
        return f"Open vSwitch not installed (missing {', '.join(missing)}; apt-get install openvswitch-switch)"
    if not os.path.exists(SCHEMA):
        return f"{SCHEMA} not found"
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return "the OVS oracle needs root"
    return None


def ovs_version() -> str:
    out = subprocess.run(["ovs-vswitchd", "--version"], capture_output=True, text=True, timeout=10)
    return out.stdout.splitlines()[0].strip() if out.stdout else "unknown"


# --------------------------------------------------------------------------- normalisers

_DUMP_FLOWS_VOLATILE = re.compile(r"\s*\b(?:duration|idle_age|hard_age)=[^,]*,")
_DPCTL_VOLATILE = re.compile(r"ufid:\S+,? ?|, used:[^,]*|, dp-extra-info:\S+")


def sorted_lines(text: str) -> str:
    lines = sorted(line for line in text.splitlines() if line.strip())
    return "".join(line + "\n" for line in lines)


def normalize_dump_flows(text: str) -> str:
    """`ovs-ofctl dump-flows` without the reply header and the time-dependent fields."""
    lines = [_DUMP_FLOWS_VOLATILE.sub("", line).strip() for line in text.splitlines()
             if line.strip() and not line.startswith(("NXST_FLOW", "OFPST_FLOW"))]
    return "".join(line + "\n" for line in lines)


def normalize_dpctl_flows(text: str) -> str:
    """Datapath flows without ufid/used, sorted (the dump is in hash order)."""
    kept = [_DPCTL_VOLATILE.sub("", line) for line in text.splitlines()
            if not line.startswith("flow-dump")]
    return sorted_lines("\n".join(kept))


# --------------------------------------------------------------------------- helpers

class _Deadline:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds
        self.seconds = seconds

    def left(self, cap: float = 30.0) -> float:
        rem = self.end - time.monotonic()
        if rem <= 0:
            raise OracleError(f"OVS oracle timed out (limit {self.seconds:.0f} s)")
        return min(rem, cap)


class JsonRpcClient:
    """One persistent JSON-RPC connection to a unixctl socket (OVS' control protocol)."""

    def __init__(self, path: str, deadline: _Deadline):
        self.path = path
        self.deadline = deadline
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(deadline.left())
        try:
            self.sock.connect(path)
        except OSError as exc:
            self.sock.close()
            raise OracleError(f"cannot connect to {path}: {exc}") from exc
        self.pending = ""
        self.decoder = json.JSONDecoder()
        self.seq = 0

    def call(self, method: str, *params: str) -> str:
        self.seq += 1
        want = self.seq
        self.sock.sendall(json.dumps({"method": method, "params": list(params), "id": want}).encode())
        while True:
            msg = self._next_message()
            if msg.get("id") != want:
                continue  # a notification or a stale reply
            if msg.get("error") is not None:
                raise OracleError(f"{method}: {str(msg['error']).strip()}")
            return msg.get("result") or ""

    def _next_message(self) -> dict[str, Any]:
        while True:
            text = self.pending.lstrip()
            if text:
                try:
                    obj, end = self.decoder.raw_decode(text)
                except json.JSONDecodeError:
                    pass
                else:
                    self.pending = text[end:]
                    return obj
            self.sock.settimeout(self.deadline.left())
            try:
                chunk = self.sock.recv(1 << 20)
            except TimeoutError as exc:
                raise OracleError(f"no answer from {self.path}") from exc
            if not chunk:
                raise OracleError(f"{self.path}: connection closed by ovs-vswitchd")
            self.pending += chunk.decode()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


_SHOW_PORT = re.compile(r"^\s*port (\d+): (\S+)")
_SHOW_COUNT = re.compile(r"^\s*(RX|TX) packets:(\d+)")


def parse_port_counters(text: str) -> dict[str, tuple[int, int]]:
    """{port: (rx_packets, tx_packets)} from `dpctl/show -s`."""
    out: dict[str, tuple[int, int]] = {}
    port = None
    for line in text.splitlines():
        m = _SHOW_PORT.match(line)
        if m:
            port = m.group(2)
            out[port] = (0, 0)
            continue
        m = _SHOW_COUNT.match(line)
        if m and port is not None:
            rx, tx = out[port]
            out[port] = (int(m.group(2)), tx) if m.group(1) == "RX" else (rx, int(m.group(2)))
    return out


@dataclass(frozen=True)
class InputPacket:
    idx: int
    ts_ns: int
    port: str
    frame: bytes


@dataclass
class TraceRow:
    idx: int
    ts_ns: int
    in_port: str
    length: int
    outputs: dict[str, int]  # port -> frames transmitted because of this packet

    def outputs_text(self) -> str:
        return ",".join(f"{p}:{n}" for p, n in sorted(self.outputs.items())) or "-"


def merge_inputs(inputs: list[tuple[str, str | Path]]) -> list[InputPacket]:
    """Global arrival order: timestamp, then order of `inputs`, then file order."""
    keyed = []
    for order, (port, path) in enumerate(inputs):
        for pos, (ts, frame) in enumerate(read_pcap(path)):
            keyed.append((ts, order, pos, port, frame))
    keyed.sort(key=lambda k: k[:3])
    return [InputPacket(i, ts, port, frame) for i, (ts, _o, _p, port, frame) in enumerate(keyed)]


def trace_text(rows: list[TraceRow]) -> str:
    lines = ["#idx\tts_ns\tin_port\tlen\toutputs"]
    lines += [f"{r.idx}\t{r.ts_ns}\t{r.in_port}\t{r.length}\t{r.outputs_text()}" for r in rows]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- the instance

class OvsOracle:
    """A private ovsdb-server + ovs-vswitchd; use as a context manager.

    with OvsOracle() as ovs:
        ovs.setup_bridge("br0", {"p0": 1, "pf0hpf": 2})
        ovs.add_flows("table=0,actions=drop\\n")
        rows = ovs.inject(merge_inputs([("p0", "a.pcap")]))
        texts = ovs.collect()
        ovs.stop()                      # flushes and closes the tx pcaps
        frames = ovs.tx_frames()
    """

    def __init__(self, timeout: float = DEFAULT_TIMEOUT_S, keep_dir: bool = False):
        self.deadline = _Deadline(timeout)
        self.keep_dir = keep_dir
        self.dir = tempfile.mkdtemp(prefix="ctswitch-ovs-")
        self.env = dict(os.environ)
        for var in ("OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR"):
            self.env[var] = self.dir
        self.env.setdefault("OVS_PKGDATADIR", "/usr/share/openvswitch")
        self.db_sock = os.path.join(self.dir, "db.sock")
        self.vswitchd_ctl = os.path.join(self.dir, "ovs-vswitchd.ctl")
        self.ovsdb_ctl = os.path.join(self.dir, "ovsdb-server.ctl")
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.rpc: JsonRpcClient | None = None
        self.bridge = ""
        self.ports: dict[str, int] = {}
        self.tx_paths: dict[str, str] = {}

    # ---- lifecycle
    def __enter__(self) -> OvsOracle:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        reason = ovs_available()
        if reason:
            raise OracleError(reason)
        db = os.path.join(self.dir, "conf.db")
        self._run(["ovsdb-tool", "create", db, SCHEMA])
        self._spawn("ovsdb-server", [db, f"--remote=punix:{self.db_sock}", f"--unixctl={self.ovsdb_ctl}"],
                    self.db_sock)
        self.vsctl("--no-wait", "init")
        self._spawn("ovs-vswitchd", [f"unix:{self.db_sock}", "--enable-dummy=override", "--disable-system",
                                     f"--unixctl={self.vswitchd_ctl}"], self.vswitchd_ctl)
        self.rpc = JsonRpcClient(self.vswitchd_ctl, self.deadline)

    def _spawn(self, prog: str, args: list[str], wait_for: str) -> None:
        argv = [prog, *args, f"--pidfile={self.dir}/{prog}.pid", f"--log-file={self.dir}/{prog}.log",
                "-vconsole:off"]
        proc = subprocess.Popen(argv, env=self.env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs[prog] = proc
        # Ready means accepting: the socket file appears a moment before the daemon listens
        # on it, so under load a first connect could be refused.
        while not _accepts(wait_for):
            if proc.poll() is not None:
                raise OracleError(f"{prog} exited with status {proc.returncode}: {self.log_tail(prog)}")
            self.deadline.left()
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop our two daemons (idempotent); tx pcaps are complete afterwards."""
        if self.rpc is not None:
            self.rpc.close()
            self.rpc = None
        for prog, ctl, cmd in (("ovs-vswitchd", self.vswitchd_ctl, ["exit", "--cleanup"]),
                               ("ovsdb-server", self.ovsdb_ctl, ["exit"])):
            proc = self.procs.pop(prog, None)
            if proc is None or proc.poll() is not None:
                continue
            try:
                subprocess.run(["ovs-appctl", "-t", ctl, *cmd], env=self.env, timeout=10,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                proc.wait(timeout=10)
            except (subprocess.TimeoutExpired, OSError):
                proc.terminate()  # our own child, by its pid
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def close(self) -> None:
        try:
            self.stop()
        finally:
            if not self.keep_dir:
                shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self, prog: str, lines: int = 5) -> str:
        try:
            text = Path(self.dir, f"{prog}.log").read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:]) or "(empty log)"

    # ---- commands
    def _run(self, argv: list[str]) -> str:
        try:
            p = subprocess.run(argv, env=self.env, capture_output=True, text=True,
                               timeout=self.deadline.left())
        except subprocess.TimeoutExpired as exc:
            raise OracleError(f"{argv[0]} {argv[1] if len(argv) > 1 else ''}: timed out") from exc
        if p.returncode != 0:
            raise OracleError(f"{' '.join(argv)}: {p.stderr.strip() or f'exit status {p.returncode}'}")
        return p.stdout

    def vsctl(self, *args: str) -> str:
        return self._run(["ovs-vsctl", f"--db=unix:{self.db_sock}", "--timeout=20", *args])

    def ofctl(self, *args: str) -> str:
        return self._run(["ovs-ofctl", *args])

    def appctl(self, *args: str) -> str:
        if self.rpc is None:
            raise OracleError("ovs-vswitchd is not running")
        return self.rpc.call(*args)

    # ---- configuration
    def setup_bridge(self, bridge: str, ports: dict[str, int], fail_mode: str = "secure") -> None:
        if fail_mode not in ("secure", "standalone"):
            raise OracleError(f"fail_mode must be secure or standalone, not {fail_mode!r}")
        self.bridge, self.ports = bridge, dict(ports)
        self.vsctl("add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev",
                   f"fail_mode={fail_mode}", f"other_config:hwaddr={BRIDGE_MAC}",
                   f"other_config:datapath-id={BRIDGE_DPID}")
        # One transaction per port, in the given order: the datapath (odp) port numbers
        # follow the order in which ports appear, and dpctl flows show them.
        for name, ofport in ports.items():
            self.tx_paths[name] = os.path.join(self.dir, f"tx-{name}.pcap")
            self.vsctl("add-port", bridge, name, "--", "set", "interface", name, "type=dummy",
                       f"ofport_request={ofport}", f"options:tx_pcap={self.tx_paths[name]}",
                       f"options:ifindex={1000 + ofport}")
        self.tx_paths[bridge] = os.path.join(self.dir, f"tx-{bridge}.pcap")
        self.vsctl("set", "interface", bridge, f"options:tx_pcap={self.tx_paths[bridge]}")
        listing = self.vsctl("--columns=name,ofport", "--format=csv", "--no-headings", "list", "interface")
        got = {}
        for line in listing.splitlines():
            name, ofport = line.rsplit(",", 1)
            got[name.strip('"')] = int(ofport)
        for name, ofport in ports.items():
            if got.get(name) != ofport:
                raise OracleError(f"port {name} got ofport {got.get(name)}, wanted {ofport}")
        if fail_mode == "secure":
            self.ofctl("del-flows", bridge)

    def add_flows(self, flows_text: str) -> None:
        path = os.path.join(self.dir, "flows.txt")
        Path(path).write_text(flows_text)
        self.ofctl("add-flows", self.bridge, path)

    # ---- traffic
    def counters(self) -> dict[str, tuple[int, int]]:
        return parse_port_counters(self.appctl("dpctl/show", "-s"))

    def inject(self, packets: list[InputPacket]) -> list[TraceRow]:
        """Inject one packet at a time with the rx barrier; return who transmitted what."""
        watched = [*self.ports, self.bridge]
        before = self.counters()
        rx_want = {p: before.get(p, (0, 0))[0] for p in self.ports}
        tx_seen = {p: before.get(p, (0, 0))[1] for p in watched}
        rows = []
        for pkt in packets:
            if pkt.port not in self.ports:
                raise OracleError(f"input packet {pkt.idx} is for unknown port {pkt.port}")
            self.appctl("netdev-dummy/receive", pkt.port, pkt.frame.hex())
            rx_want[pkt.port] += 1
            limit = time.monotonic() + BARRIER_TIMEOUT_S
            while True:
                now = self.counters()
                if now.get(pkt.port, (0, 0))[0] >= rx_want[pkt.port]:
                    break
                if time.monotonic() > limit:
                    raise OracleError(f"packet {pkt.idx} on {pkt.port} was never received")
                self.deadline.left()
            outputs = {}
            for p in watched:
                tx = now.get(p, (0, 0))[1]
                if tx != tx_seen[p]:
                    outputs[p] = tx - tx_seen[p]
                    tx_seen[p] = tx
            rows.append(TraceRow(pkt.idx, pkt.ts_ns, pkt.port, len(pkt.frame), outputs))
        return rows

    def collect(self) -> dict[str, str]:
        """Texts of the final state, keyed by output file name."""
        self.appctl("revalidator/wait")
        self.appctl("revalidator/wait")
        dump = self.ofctl("dump-flows", self.bridge)
        return {
            "conntrack.txt": sorted_lines(self.appctl("dpctl/dump-conntrack")),
            "conntrack-m.txt": sorted_lines(self.appctl("dpctl/dump-conntrack", "-m")),
            "conntrack-s.txt": sorted_lines(self.appctl("dpctl/dump-conntrack", "-s")),
            "dump-flows.txt": dump,
            "dump-flows.norm.txt": normalize_dump_flows(dump),
            "dpctl-flows.norm.txt": normalize_dpctl_flows(self.appctl("dpctl/dump-flows")),
        }

    def tx_frames(self) -> dict[str, list[bytes]]:
        """Frames each port transmitted, in order (call after stop())."""
        return {p: [f for _ts, f in read_pcap(path)] if os.path.exists(path) else []
                for p, path in self.tx_paths.items()}


# --------------------------------------------------------------------------- one-shot run

@dataclass
class OracleResult:
    out_dir: Path
    tx_pcaps: dict[str, Path]  # port -> rewritten tx pcap
    tx_frames: dict[str, list[tuple[int, bytes]]]
    trace: list[TraceRow]
    texts: dict[str, str] = field(default_factory=dict)  # file name -> content
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def conntrack(self) -> str:
        return self.texts["conntrack.txt"]

    @property
    def conntrack_m(self) -> str:
        return self.texts["conntrack-m.txt"]

    @property
    def dump_flows_norm(self) -> str:
        return self.texts["dump-flows.norm.txt"]


def run_oracle(bridge: str, ports: dict[str, int], flows_text: str,
               inputs: list[tuple[str, str | Path]], out_dir: str | Path,
               fail_mode: str = "secure", timeout: float = DEFAULT_TIMEOUT_S) -> OracleResult:
    """Run the inputs through a fresh OVS and write every output file into out_dir."""
    for port, _path in inputs:
        if port not in ports:
            raise OracleError(f"input for unknown port {port}")
    packets = merge_inputs(inputs)
    started = time.monotonic()
    with OvsOracle(timeout=timeout) as ovs:
        ovs.setup_bridge(bridge, ports, fail_mode)
        ovs.add_flows(flows_text)
        try:
            rows = ovs.inject(packets)
            texts = ovs.collect()
        except OracleError as exc:
            raise OracleError(f"{exc} (ovs-vswitchd log: {ovs.log_tail('ovs-vswitchd')})") from exc
        ovs.stop()
        frames = ovs.tx_frames()
    # attribute transmitted frames, in order, to the input that caused them
    stamped: dict[str, list[tuple[int, bytes]]] = {p: [] for p in frames}
    cursor = dict.fromkeys(frames, 0)
    for row in rows:
        for p, n in row.outputs.items():
            got = frames.get(p, [])[cursor[p]:cursor[p] + n]
            stamped[p].extend((row.ts_ns, f) for f in got)
            cursor[p] += len(got)
    last_ts = packets[-1].ts_ns if packets else 0
    for p, fl in frames.items():
        stamped[p].extend((last_ts, f) for f in fl[cursor[p]:])  # unattributed (should not happen)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tx_pcaps = {}
    for p, recs in stamped.items():
        if recs or p in ports:
            tx_pcaps[p] = out / f"{p}.pcap"
            write_pcap(tx_pcaps[p], recs)
    texts["trace.tsv"] = trace_text(rows)
    summary = {
        "bridge": bridge, "ports": dict(ports), "fail_mode": fail_mode,
        "input_packets": len(packets),
        "tx": {p: len(recs) for p, recs in sorted(stamped.items()) if recs or p in ports},
        "ovs_version": ovs_version(),
        "wall_s": round(time.monotonic() - started, 3),
    }
    for name, text in texts.items():
        (out / name).write_text(text)
    (out / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    return OracleResult(out, tx_pcaps, stamped, rows, texts, summary)


def load_case(case_dir: str | Path) -> dict[str, Any]:
    """case.json plus the resolved flows text and the inputs list (ports order)."""
    case_dir = Path(case_dir)
    try:
        case = json.loads((case_dir / "case.json").read_text())
    except (OSError, ValueError) as exc:
        raise OracleError(f"{case_dir}: cannot read case.json ({exc})") from exc
    ports = {str(k): int(v) for k, v in case["ports"].items()}
    inputs = [(p, case_dir / "in" / f"{p}.pcap") for p in ports if (case_dir / "in" / f"{p}.pcap").exists()]
    return {
        "bridge": case.get("bridge", "br0"),
        "ports": ports,
        "fail_mode": case.get("fail_mode", "secure"),
        "flows_text": (case_dir / case.get("flows", "flows.txt")).read_text(),
        "inputs": inputs,
    }


def run_case(case_dir: str | Path, out_dir: str | Path | None = None,
             timeout: float = DEFAULT_TIMEOUT_S) -> OracleResult:
    case = load_case(case_dir)
    out = Path(out_dir) if out_dir is not None else Path(case_dir) / "expected"
    return run_oracle(case["bridge"], case["ports"], case["flows_text"], case["inputs"], out,
                      case["fail_mode"], timeout)


def compare_outputs(expected_dir: str | Path, actual_dir: str | Path,
                    files: tuple[str, ...] | None = None) -> list[str]:
    """Names of the deterministic output files that differ (or are missing) between two dirs.

    Compared: every `*.pcap` present in either directory (byte for byte) plus
    STABLE_FILES (or `files` when given) that exist in expected_dir.
    """
    exp, act = Path(expected_dir), Path(actual_dir)
    names = set(files if files is not None else STABLE_FILES)
    names = {n for n in names if (exp / n).exists()}
    names |= {p.name for p in exp.glob("*.pcap")} | {p.name for p in act.glob("*.pcap")}
    diffs = []
    for name in sorted(names):
        a, b = exp / name, act / name
        if not a.exists() or not b.exists() or a.read_bytes() != b.read_bytes():
            diffs.append(name)
    return diffs


def case_stable_files(case_dir: str | Path) -> tuple[str, ...] | None:
    """The expected files of a case that are reproducible, or None for "all deterministic ones".

    A case whose OVS behaviour is partly random (e.g. NAT port choice within a
    range) lists the files that stay stable under "stable_files" in case.json.
    """
    case = json.loads((Path(case_dir) / "case.json").read_text())
    files = case.get("stable_files")
    return tuple(files) if files is not None else None


def compare_case(case_dir: str | Path, actual_dir: str | Path) -> list[str]:
    """compare_outputs(CASE/expected, actual_dir) restricted to the case's stable files."""
    exp = Path(case_dir) / "expected"
    files = case_stable_files(case_dir)
    if files is None:
        return compare_outputs(exp, actual_dir)
    return [n for n in files if not (exp / n).exists() or not (Path(actual_dir) / n).exists()
            or (exp / n).read_bytes() != (Path(actual_dir) / n).read_bytes()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Run a case directory through the real OVS oracle.")
    ap.add_argument("cases", nargs="+", help="case directories (case.json, flows.txt, in/)")
    ap.add_argument("--out", help="output directory (one case only; default CASE/expected)")
    args = ap.parse_args(argv)
    if args.out and len(args.cases) > 1:
        ap.error("--out takes one case")
    reason = ovs_available()
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    for case in args.cases:
        try:
            res = run_case(case, args.out)
        except (OracleError, OSError, KeyError) as exc:
            print(f"error: {case}: {exc}", file=sys.stderr)
            return 1
        print(f"{case}: {res.summary['input_packets']} packets, tx {res.summary['tx']}, "
              f"{res.summary['wall_s']} s -> {res.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
