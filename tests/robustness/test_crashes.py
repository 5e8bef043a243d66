"""Crashes, concurrency and damaged stores: what survives, what is refused, what is reported.

* 24 ``ctswitch`` processes writing at once (flows, ports, sysctls; distinct changes), on the
  store (SQLite locking) and through a running daemon: each applies (exit 0, present afterwards)
  or fails with one ``ctswitch...`` line (no traceback); ``PRAGMA integrity_check`` is ``ok``.
* ``kill -9`` of the daemon while it replays a pcap and a burst of writers waits behind it, and
  ``kill -9`` of a CLI replay holding the store transaction: every acknowledged change survives,
  the store passes integrity_check, the daemon serves again.
* damaged databases through the CLI and ``ctswitch start`` (``tests/unit/store`` covers the Store
  class itself): one clear line, the file never written to.
* Ctrl-C in a ``ctswitch replay --out-dir`` of a 3,000,000-packet pcap: exit 130 with one line,
  output pcaps readable to the last record (ctswitch and scapy), a saved state whose counters and
  connections match the packets replayed.

No root needed: the daemons here have no Linux ports (everything is virtual).  Every process
started is killed by its pid; pytest's tmp_path is removed by pytest.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from ctswitch.cli.main import execute
from ctswitch.control import daemon_tool
from ctswitch.control.lab import EXAMPLES
from ctswitch.daemon.store import SCHEMA_VERSION, Store
from ctswitch.io.pcap import PcapReader
from ctswitch.params import PARAMS

_BIN = os.path.join(os.path.dirname(sys.executable), "ctswitch")
CTSWITCH = [_BIN] if os.path.exists(_BIN) else [sys.executable, "-m", "ctswitch.cli.main"]

NF = "net.netfilter."
# Knobs the writers set: the conntrack timeouts, as ctswitch declares them.
KNOBS = [p.name[len(NF):] for p in PARAMS.values() if p.domain == "sysctl" and "_timeout" in p.name
         and p.name.startswith(NF + "nf_conntrack_")]


# ---------------------------------------------------------------------- helpers
def cli(db: str, *argv: str) -> tuple[int, str, str]:
    """One command in this process (forwarded to the daemon when one serves ``db``)."""
    res, _ = execute(["--db", db, *argv], stdin_loader=lambda: None)
    return res.code, res.out, res.err


def ok(db: str, *argv: str) -> str:
    code, out, err = cli(db, *argv)
    assert code == 0, err
    return out


def spawn(db: str, *argv: str) -> subprocess.Popen:
    return subprocess.Popen([*CTSWITCH, "--db", db, *argv], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class Procs:
    """Processes of one test; whatever still runs at the end is killed by its pid."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def add(self, p: subprocess.Popen) -> subprocess.Popen:
        self.procs.append(p)
        return p

    def kill_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=10)


@pytest.fixture
def procs():
    ps = Procs()
    try:
        yield ps
    finally:
        ps.kill_all()


@pytest.fixture
def daemons():
    """Databases whose daemons the test started; each is stopped, then killed by its pid."""
    dbs: list[str] = []
    try:
        yield dbs
    finally:
        for db in dbs:
            pid = daemon_tool.read_pid(db)
            daemon_tool.stop_daemon(db, timeout=10)
            if pid and daemon_tool.is_daemon_pid(pid):
                os.kill(pid, signal.SIGKILL)


def start(db: str, daemons: list[str]) -> int:
    daemons.append(db)
    r = daemon_tool.start_daemon(db, netns="")
    assert r.code == 0, r.err
    return daemon_tool.read_pid(db)


def integrity(db: str) -> list:
    c = sqlite3.connect(db)
    try:
        return c.execute("PRAGMA integrity_check").fetchall()
    finally:
        c.close()


def one_line_error(stderr: str) -> bool:
    return (stderr.count("\n") == 1 and stderr.endswith("\n") and stderr.startswith("ctswitch")
            and "Traceback" not in stderr)


def writers(prefix: str, n: int = 24) -> list[tuple[str, tuple[str, ...]]]:
    """``n`` distinct changes: (kind, argv); a third flows, a third ports, a third sysctls."""
    out = []
    for i in range(n):
        k = i % 3
        j = i // 3
        if k == 0:
            out.append(("flow", ("ovs-ofctl", "add-flow", "br0",
                                 f"table=5,priority={100 + i},tcp,tp_dst={prefix}{i},actions=drop")))
        elif k == 1:
            out.append(("port", ("ovs-vsctl", "add-port", "br0", f"v{prefix}{i}")))
        else:
            knob = KNOBS[(j + 4 * int(prefix)) % len(KNOBS)]  # bursts 1 and 2 set different knobs
            out.append(("sysctl", ("sysctl", "-w", f"{NF}{knob}={int(prefix) * 100 + 1000 + i}")))
    return out


def applied(db: str, kind: str, argv: tuple[str, ...]) -> bool:
    """Is the change of ``argv`` in the switch (through the daemon when one runs)?"""
    if kind == "flow":
        match = argv[3].rsplit(",actions", 1)[0].replace("table=5,", "")
        dump = ok(db, "ovs-ofctl", "dump-flows", "br0", "--no-stats")
        return any(match in ln for ln in dump.splitlines())
    if kind == "port":
        return argv[3] in ok(db, "ovs-vsctl", "list-ports", "br0").split()
    key, value = argv[2].split("=")
    return ok(db, "sysctl", "-n", key).strip() == value


def check_burst(db: str, ran: list[tuple[str, tuple[str, ...], subprocess.Popen]]) -> dict:
    """The contract for each finished writer; returns exit-code counts."""
    codes: dict[int, int] = {}
    sysctl_last: dict[str, str] = {}
    for kind, argv, p in ran:
        out, err = p.communicate(timeout=120)
        codes[p.returncode] = codes.get(p.returncode, 0) + 1
        if p.returncode == 0:
            assert err == "" and "Traceback" not in out, (argv, err)
            if kind == "sysctl":
                key, value = argv[2].split("=")
                assert out == f"{key} = {value}\n"
                sysctl_last.setdefault(key, value)
            else:
                assert applied(db, kind, argv), argv
        else:
            assert one_line_error(err), (argv, p.returncode, err)
    return codes


def base_db(tmp_path, name: str = "c.db") -> str:
    db = str(tmp_path / name)
    ok(db, "ovs-vsctl", "add-br", "br0")
    return db


# ---------------------------------------------------------------------- 1. concurrent writers
def test_24_concurrent_cli_writers_on_the_store(tmp_path, procs):
    db = base_db(tmp_path)
    todo = writers("7")
    ran = [(k, a, procs.add(spawn(db, *a))) for k, a in todo]
    codes = check_burst(db, ran)
    # the store's 30 s busy timeout serialises them all: nothing is refused on a quiet run
    assert codes == {0: 24}, codes
    # each sysctl knob was written by exactly one writer here: all values are there
    for kind, argv, _ in ran:
        assert applied(db, kind, argv), argv
    assert integrity(db) == [("ok",)]
    flows = ok(db, "ovs-ofctl", "dump-flows", "br0", "table=5", "--no-stats")
    assert len(flows.splitlines()) == 8
    assert len(ok(db, "ovs-vsctl", "list-ports", "br0").split()) == 8


def test_24_concurrent_writers_on_a_new_database(tmp_path, procs):
    """No database yet: 24 processes create, migrate and write it at once."""
    db = str(tmp_path / "fresh" / "n.db")
    ran = [(i, procs.add(spawn(db, "ovs-vsctl", "--may-exist", "add-br", f"b{i}"))) for i in range(24)]
    for i, p in ran:
        out, err = p.communicate(timeout=120)
        assert (p.returncode, err) == (0, ""), (i, err)
    assert sorted(ok(db, "ovs-vsctl", "list-br").split()) == sorted(f"b{i}" for i in range(24))
    assert integrity(db) == [("ok",)]
    with Store(db) as st:
        assert st.schema_version == SCHEMA_VERSION


def test_24_concurrent_cli_writers_through_the_daemon(tmp_path, procs, daemons):
    db = base_db(tmp_path)
    start(db, daemons)
    ran = [(k, a, procs.add(spawn(db, *a))) for k, a in writers("8")]
    codes = check_burst(db, ran)
    assert codes == {0: 24}, codes
    st = daemon_tool.ping(db)
    assert st["requests"] >= 24 and st["saves"] >= 24
    assert integrity(db) == [("ok",)]
    # and in the store once the daemon is gone
    assert daemon_tool.stop_daemon(db).code == 0
    for kind, argv, _ in ran:
        assert applied(db, kind, argv), argv


# ---------------------------------------------------------------------- 2. kill -9
SETUP = ["ovs-vsctl add-br ctBr", "ovs-vsctl add-port ctBr p0", "ovs-vsctl add-port ctBr pf0hpf",
         "ovs-vsctl set Open_vSwitch . other_config:hw-offload=true", "ovs-vsctl add-br br0",
         *(f'ovs-ofctl add-flow ctBr "{f}"' for f in EXAMPLES[2])]


def example2_db(tmp_path, name: str = "k.db") -> str:
    db = str(tmp_path / name)
    script = tmp_path / "setup.txt"
    script.write_text("\n".join(SETUP) + "\n")
    ok(db, "run", str(script))
    return db


@pytest.fixture(scope="module")
def big_pcaps(tmp_path_factory):
    """``ctswitch gen --perf``: 3,000,000 packets of 10,000 SNATed TCP connections (about 1.5 s)."""
    d = tmp_path_factory.mktemp("gen") / "perf"
    r = subprocess.run([*CTSWITCH, "gen", str(d), "--perf", "--packets", "3000000", "--snat", "1.1.1.16"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return d


def _replay_args(pcaps, out_dir) -> list[str]:
    return ["replay", "ctBr", "--in", f"pf0hpf={pcaps}/pf0hpf.pcap", "--in", f"p0={pcaps}/p0.pcap",
            "--out-dir", str(out_dir)]


def _wait_for(pred, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


def _growing(path) -> bool:
    return os.path.exists(path) and os.path.getsize(path) > 24


def test_kill9_daemon_mid_replay_and_write_burst(tmp_path, procs, daemons, big_pcaps):
    db = example2_db(tmp_path)
    pid = start(db, daemons)
    ct_flows = ok(db, "ovs-ofctl", "dump-flows", "ctBr", "--no-stats")
    first = [(k, a, procs.add(spawn(db, *a))) for k, a in writers("1", 12)]
    assert check_burst(db, first) == {0: 12}
    out_dir = tmp_path / "out"
    rp = procs.add(spawn(db, *_replay_args(big_pcaps, out_dir)))
    assert _wait_for(lambda: _growing(out_dir / "p0.pcap")), "the replay did not start in the daemon"
    second = [(k, a, procs.add(spawn(db, *a))) for k, a in writers("2", 12)]
    time.sleep(0.3)  # the writers connect and queue behind the replay
    assert rp.poll() is None, "the replay ended before the kill: make the pcap bigger"
    os.kill(pid, signal.SIGKILL)
    assert _wait_for(lambda: not daemon_tool.alive(pid), 10)
    out, err = rp.communicate(timeout=60)
    assert rp.returncode == 1 and one_line_error(err), err
    codes = check_burst(db, second)  # queued ones fail with one line; later ones use the store
    assert sum(codes.values()) == 12
    # restart: everything acknowledged is there, the store is sound, the daemon serves
    assert integrity(db) == [("ok",)]
    pid2 = start(db, daemons)
    assert pid2 != pid
    for kind, argv, p in first + second:
        if p.returncode == 0:
            assert applied(db, kind, argv), argv
    assert ok(db, "ovs-ofctl", "dump-flows", "ctBr", "--no-stats") == ct_flows
    assert ok(db, "conntrack", "-C") == "0\n"  # the replay was never acknowledged nor saved
    ok(db, "ovs-ofctl", "add-flow", "br0", "table=9,actions=drop")
    assert "table=9" in ok(db, "ovs-ofctl", "dump-flows", "br0")
    assert integrity(db) == [("ok",)]


def test_kill9_cli_replay_holding_the_store_rolls_back(tmp_path, procs, big_pcaps):
    db = example2_db(tmp_path)
    before = ok(db, "ovs-ofctl", "dump-flows", "ctBr")
    out_dir = tmp_path / "out"
    rp = procs.add(spawn(db, *_replay_args(big_pcaps, out_dir)))
    assert _wait_for(lambda: _growing(out_dir / "p0.pcap"))
    # a writer waits for the store lock meanwhile
    w = procs.add(spawn(db, "ovs-ofctl", "add-flow", "br0", "table=4,actions=drop"))
    time.sleep(0.3)
    assert rp.poll() is None and w.poll() is None
    os.kill(rp.pid, signal.SIGKILL)
    rp.wait(timeout=10)
    _, err = w.communicate(timeout=60)
    assert (w.returncode, err) == (0, "")  # it gets the lock as soon as the replay is gone
    assert integrity(db) == [("ok",)]
    assert ok(db, "conntrack", "-C") == "0\n"  # the replay's transaction was rolled back
    assert ok(db, "ovs-ofctl", "dump-flows", "ctBr") == before
    assert "table=4" in ok(db, "ovs-ofctl", "dump-flows", "br0")


# ---------------------------------------------------------------------- 3. damaged databases
def _bigger_db(path: str) -> None:
    ok(path, "ovs-vsctl", "add-br", "br0")
    script = os.path.join(os.path.dirname(path), "flows.txt")
    with open(script, "w") as f:
        f.writelines(f"ovs-ofctl add-flow br0 table=3,priority={i},tcp,tp_dst={i},actions=drop\n"
                     for i in range(400))
    ok(path, "run", script)
    c = sqlite3.connect(path)
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()


def _damage(tmp_path, how: str) -> tuple[str, str]:
    """A damaged database and the start of the expected message after ``ctswitch: PATH: ``."""
    p = str(tmp_path / f"{how}.db")
    if how == "text":
        with open(p, "w") as f:
            f.write("ovs-vsctl add-br br0\n" * 50)
        return p, "not a ctswitch database"
    if how == "foreign":
        c = sqlite3.connect(p)
        c.execute("CREATE TABLE photos (id INTEGER, data BLOB)")
        c.commit()
        c.close()
        return p, "not a ctswitch database"
    if how == "newer":
        ok(p, "ovs-vsctl", "add-br", "br0")
        c = sqlite3.connect(p)
        c.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        c.commit()
        c.close()
        return p, f"written by a newer ctswitch (schema {SCHEMA_VERSION + 1}"
    _bigger_db(p)
    data = open(p, "rb").read()
    if how == "header":
        data = data[:40]
        msg = "is corrupt (truncated header)"
    elif how == "truncated":
        data = data[: len(data) // 2]
        msg = "is corrupt ("
    elif how == "garbage":
        data = data[:4096] + b"\xa5" * (len(data) - 4096)
        msg = "is corrupt ("
    elif how == "badrow":  # valid SQLite, valid JSON, wrong shape
        c = sqlite3.connect(p)
        c.execute("UPDATE runtime SET value = '[1, 2]' WHERE key = 'tracker'")
        c.commit()
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        c.close()
        return p, "is corrupt (bad row: "
    elif how == "badactions":
        c = sqlite3.connect(p)
        c.execute("UPDATE flows SET actions = '\"drop\"' WHERE seq = 5")
        c.commit()
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        c.close()
        return p, "is corrupt (bad row: flow 5: actions are not action records)"
    with open(p, "wb") as f:
        f.write(data)
    return p, msg


DAMAGE = ["text", "foreign", "newer", "header", "truncated", "garbage", "badrow", "badactions"]


def _snapshot(p: str) -> tuple:
    return open(p, "rb").read(), os.stat(p).st_mtime_ns, sorted(os.listdir(os.path.dirname(p)))


@pytest.mark.parametrize("how", DAMAGE)
def test_damaged_database_through_the_cli_and_daemon_start(tmp_path, how, daemons):
    p, why = _damage(tmp_path, how)
    snap = _snapshot(p)
    for argv in (("ovs-ofctl", "dump-flows", "br0"), ("ovs-vsctl", "add-br", "fresh"),
                 ("conntrack", "-L"), ("sysctl", "-w", f"{NF}nf_conntrack_max=7")):
        code, out, err = cli(p, *argv)
        assert (code, out) == (1, ""), (argv, err)
        assert err.startswith(f"ctswitch: {p}: {why}") and one_line_error(err), err
    # the binary too (no traceback on stderr)
    r = subprocess.run([*CTSWITCH, "--db", p, "ovs-vsctl", "add-br", "x"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1 and r.stderr.startswith(f"ctswitch: {p}: {why}") and one_line_error(r.stderr)
    # the daemon refuses to start, says why, and leaves no socket or pidfile behind
    daemons.append(p)
    res = daemon_tool.start_daemon(p, netns="")
    assert res.code == 1 and res.out == ""
    first, *rest = res.err.splitlines()
    assert first == f"ctswitch: the daemon exited at start; see {p}.log:"
    assert len(rest) == 1 and f"ERROR cannot use the database: {p}: {why}" in rest[0], res.err
    assert daemon_tool.ping(p, timeout=1) is None
    assert not os.path.exists(p + ".sock") and not os.path.exists(p + ".pid")
    os.unlink(p + ".log")
    assert _snapshot(p) == snap  # never written to, never replaced


# ---------------------------------------------------------------------- 4. Ctrl-C in a replay
def test_ctrl_c_in_a_replay_saves_a_consistent_state(tmp_path, procs, big_pcaps):
    db = example2_db(tmp_path)
    out_dir = tmp_path / "out"
    rp = procs.add(spawn(db, *_replay_args(big_pcaps, out_dir)))
    assert _wait_for(lambda: _growing(out_dir / "p0.pcap"))
    # Ctrl-C as soon as frames come out: the replay of 3M frames takes ~2 s, and a SIGINT that
    # lands while the finished replay saves its state is (rightly) no interruption
    assert rp.poll() is None, "the replay ended before Ctrl-C"
    rp.send_signal(signal.SIGINT)
    out, err = rp.communicate(timeout=60)
    assert (rp.returncode, err) == (130, "ctswitch replay: interrupted (state saved)\n")
    m = re.match(r"replayed ([\d,]+) packets", out)
    assert m, out
    n = int(m.group(1).replace(",", ""))
    assert 0 < n < 2_991_026  # stopped in the middle (the pcaps hold 2,991,026)
    rows = {ln.split()[0]: [int(x.replace(",", "")) for x in ln.split()[1:]]
            for ln in out.splitlines()[2:5]}
    assert set(rows) == {"ctBr", "p0", "pf0hpf"}
    assert sum(r[0] for r in rows.values()) == n  # rx per input port adds up to the packets replayed

    # the output pcaps: complete records to the last one, as many as the summary says
    for name, (_rx, tx) in rows.items():
        path = out_dir / f"{name}.pcap"
        with PcapReader(str(path)) as rd:
            recs = sum(1 for _ in rd)
        assert recs == tx, (name, recs, tx)
    from scapy.utils import RawPcapReader
    for name in ("ctBr", "pf0hpf"):
        with RawPcapReader(str(out_dir / f"{name}.pcap")) as rd:
            assert sum(1 for _ in rd) == rows[name][1]

    # the saved state: counters and connections match what was replayed
    with Store(db) as st:
        sw = st.load()
    br = sw.bridges["ctBr"]
    for name in ("p0", "pf0hpf"):
        assert (br.ports[name].rx_packets, br.ports[name].tx_packets) == tuple(rows[name]), name
    dp = sw.datapath.stats
    assert dp["rx_packets"] == n
    assert dp.get("slow_path", 0) + dp.get("fast_hw", 0) + dp.get("fast_sw", 0) == n
    listing = ok(db, "conntrack", "-L")
    conns = [ln for ln in listing.splitlines() if ln.startswith("tcp ")]
    m = re.search(r"connections created: ([\d,]+)", out)
    assert len(conns) == int(m.group(1).replace(",", "")) == int(ok(db, "conntrack", "-C"))
    assert all("dst=1.1.1.16" in ln for ln in conns)
    assert integrity(db) == [("ok",)]


# ---------------------------------------------------------------------- 5. soak finding (fixed)
def test_batch_fast_path_forgets_expired_connections(tmp_path):
    # The soak found it: BatchFastPath kept two cache keys per offloaded connection forever
    # (~700 B per connection); the datapath's own per-connection index is the only one now.
    """Churn through the batched fast path, then let every connection expire: nothing may remain."""
    from ctswitch.control.lab import configure_switch
    from ctswitch.datapath.switch import Switch
    from ctswitch.io.replay import replay

    d = tmp_path / "churn"
    r = subprocess.run([*CTSWITCH, "gen", str(d), "--preset", "vendor2", "--tcp", "300", "--udp", "0", "--icmp", "0",
                        "--roce", "0", "--data", "2", "--close", "fin", "--no-arp"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    sw = Switch()
    configure_switch(sw, 2)
    s = replay(sw, "ctBr", [("pf0hpf", str(d / "pf0hpf.pcap")), ("p0", str(d / "p0.pcap"))], mode="batch")
    assert s.packets > 0 and sw.datapath.stats["fast_hw"] > 0  # the batched fast path was used
    sw.now += 300_000  # past every TCP close timeout (TIME_WAIT 120 s)
    sw.datapath.tick(sw.now)
    assert sum(1 for _ in sw.tracker.iter_conns()) == 0
    b = sw.datapath.batch
    assert (list(sw.datapath.cached_items()), sw.datapath.by_conn, len(b), len(b.conns)) == ([], {}, 0, 0)
