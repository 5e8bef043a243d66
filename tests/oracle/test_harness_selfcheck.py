"""The OVS oracle harness reproduces the shared reference cases exactly.

Each case in /work/shared/oracle/cases was recorded with real OVS 3.1.0; running
its inputs through our own harness must give the same tx pcaps (byte for byte),
the same sorted conntrack dumps, the same normalised dump-flows, datapath flows
and per-packet trace.  The pure helpers (merge order, normalisers, pcap codec)
are tested without OVS.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SCENARIOS_DIR, SHARED_CASES_DIR, scenario_dirs
from ovs_harness import (
    InputPacket,
    OracleError,
    OvsOracle,
    TraceRow,
    compare_case,
    compare_outputs,
    merge_inputs,
    normalize_dump_flows,
    parse_port_counters,
    run_case,
    sorted_lines,
    trace_text,
)
from pcapfile import pcap_bytes, read_pcap, write_pcap

CASES = sorted(p.parent.name for p in SHARED_CASES_DIR.glob("*/case.json"))
SCENARIOS = [p.name for p in scenario_dirs()]


def _load_make():  # the scenario generator, imported by path (it is a script)
    import importlib.util
    spec = importlib.util.spec_from_file_location("scenario_make", SCENARIOS_DIR / "make.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["scenario_make"] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


# ----------------------------------------------------------------- with the real OVS

@pytest.mark.oracle
@pytest.mark.parametrize("case", CASES or ["(no shared cases)"])
def test_case_matches_recorded_ovs(case: str, tmp_path: Path, ovs: None) -> None:
    if not CASES:
        pytest.skip(f"no reference cases under {SHARED_CASES_DIR}")
    case_dir = SHARED_CASES_DIR / case
    res = run_case(case_dir, tmp_path / "out")
    expected = case_dir / "expected"
    assert compare_outputs(expected, tmp_path / "out") == []
    # the compared set really covers the tx pcaps and the three required texts
    assert {f"{p}.pcap" for p in res.summary["ports"]} <= {p.name for p in expected.glob("*.pcap")}
    assert res.conntrack == (expected / "conntrack.txt").read_text()
    assert res.dump_flows_norm == (expected / "dump-flows.norm.txt").read_text()
    assert len(res.trace) == res.summary["input_packets"] == len(
        (expected / "trace.tsv").read_text().splitlines()) - 1


@pytest.mark.oracle
def test_failure_still_stops_ovs_and_removes_dir(ovs: None) -> None:
    with pytest.raises(OracleError, match="add-flows"), OvsOracle(timeout=30) as oracle:
        pids = [p.pid for p in oracle.procs.values()]
        rundir = oracle.dir
        assert len(pids) == 2 and all(Path(f"/proc/{pid}").exists() for pid in pids)
        oracle.setup_bridge("br0", {"p0": 1})
        oracle.add_flows("table=0,actions=no_such_action\n")
    assert not os.path.exists(rundir)
    for pid in pids:  # reaped children: no /proc entry, or at least not running
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


@pytest.mark.oracle
def test_standalone_mode_keeps_normal(ovs: None, tmp_path: Path) -> None:
    frame = bytes.fromhex("ffffffffffff020000000201" "0806") + bytes(28)
    pcap = tmp_path / "p0.pcap"
    write_pcap(pcap, [(5_000_000_000, frame)])
    from ovs_harness import run_oracle
    res = run_oracle("br0", {"p0": 1, "p1": 2}, "", [("p0", pcap)], tmp_path / "o", fail_mode="standalone")
    assert res.trace[0].outputs == {"br0": 1, "p1": 1}
    assert read_pcap(res.tx_pcaps["p1"]) == [(5_000_000_000, frame)]
    assert "priority=0 actions=NORMAL" in res.dump_flows_norm


@pytest.mark.oracle
@pytest.mark.parametrize("name", SCENARIOS)
def test_stored_scenario_matches_ovs(name: str, tmp_path: Path, ovs: None) -> None:
    case_dir = SCENARIOS_DIR / name
    run_case(case_dir, tmp_path / "out")
    assert compare_case(case_dir, tmp_path / "out") == []


# ----------------------------------------------------------------- stored scenarios, no OVS

def test_scenario_generator_is_deterministic_and_in_sync(tmp_path: Path) -> None:
    pytest.importorskip("scapy")
    make = _load_make()
    assert sorted(sc.name for sc in make.SCENARIOS) == SCENARIOS
    for sc in make.SCENARIOS:
        fresh = make.write_scenario(sc, tmp_path)
        stored = SCENARIOS_DIR / sc.name
        names = sorted(str(p.relative_to(fresh)) for p in fresh.rglob("*") if p.is_file())
        assert names == sorted(str(p.relative_to(stored)) for p in stored.rglob("*")
                               if p.is_file() and "expected" not in p.parts and "kernel" not in p.parts)
        for rel in names:
            assert (fresh / rel).read_bytes() == (stored / rel).read_bytes(), f"{sc.name}/{rel}"


@pytest.mark.parametrize("name", SCENARIOS)
def test_stored_expected_is_complete(name: str) -> None:
    case_dir = SCENARIOS_DIR / name
    case = json.loads((case_dir / "case.json").read_text())
    exp = case_dir / "expected"
    sequence = (case_dir / "in" / "sequence.tsv").read_text().splitlines()[1:]
    trace = (exp / "trace.tsv").read_text().splitlines()[1:]
    assert [line.split("\t")[:4] for line in trace] == [line.split("\t")[:4] for line in sequence]
    for port in case["ports"]:
        assert (exp / f"{port}.pcap").exists()
    for f in ("conntrack.txt", "conntrack-m.txt", "dump-flows.norm.txt"):
        assert (exp / f).exists()
    # every transmitted frame is attributed: per-port totals in trace.tsv == pcap record counts
    totals: dict[str, int] = {}
    for line in trace:
        outs = line.split("\t")[4]
        for item in [] if outs == "-" else outs.split(","):
            port, n = item.split(":")
            totals[port] = totals.get(port, 0) + int(n)
    for pcap in exp.glob("*.pcap"):
        assert len(read_pcap(pcap)) == totals.get(pcap.stem, 0), pcap.name


# ----------------------------------------------------------------- pure helpers

def test_merge_orders_by_time_then_input_order_then_file_order(tmp_path: Path) -> None:
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcap"
    write_pcap(a, [(2000, b"a0"), (1000, b"a1"), (3000, b"a2")])
    write_pcap(b, [(1000, b"b0"), (2000, b"b1")])
    got = merge_inputs([("pb", b), ("pa", a)])
    assert [(p.port, p.frame) for p in got] == [
        ("pb", b"b0"), ("pa", b"a1"), ("pb", b"b1"), ("pa", b"a0"), ("pa", b"a2")]
    assert [p.idx for p in got] == [0, 1, 2, 3, 4]


def test_pcap_roundtrip_and_nanosecond_big_endian(tmp_path: Path) -> None:
    recs = [(1_700_000_000_123_456_000, b"\x01\x02"), (1_700_000_001_000_000_000, b"")]
    assert read_pcap_bytes(tmp_path, pcap_bytes(recs)) == recs
    be_nano = struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1) + \
        struct.pack(">IIII", 7, 5, 1, 1) + b"\xff"
    assert read_pcap_bytes(tmp_path, be_nano) == [(7_000_000_005, b"\xff")]


def read_pcap_bytes(tmp_path: Path, data: bytes) -> list[tuple[int, bytes]]:
    path = tmp_path / "x.pcap"
    path.write_bytes(data)
    return read_pcap(path)


def test_normalisers() -> None:
    raw = ("NXST_FLOW reply (xid=0x4):\n"
           " cookie=0x0, duration=1.038s, table=0, n_packets=2, n_bytes=84, idle_age=1, arp actions=NORMAL\n"
           " cookie=0x0, duration=9.5s, table=1, n_packets=0, n_bytes=0, idle_age=9, hard_age=3, "
           "priority=1 actions=drop\n")
    assert normalize_dump_flows(raw) == (
        "cookie=0x0, table=0, n_packets=2, n_bytes=84, arp actions=NORMAL\n"
        "cookie=0x0, table=1, n_packets=0, n_bytes=0, priority=1 actions=drop\n")
    assert sorted_lines("b\n\na\n") == "a\nb\n"
    assert sorted_lines("") == ""


def test_counters_and_trace_text() -> None:
    show = ("netdev@ovs-netdev:\n  lookups: hit:0 missed:3 lost:0\n"
            "  port 0: br0 (tap)\n    RX packets:0 errors:0\n    TX packets:1 errors:0\n"
            "  port 1: p0 (dummy)\n    RX packets:13 errors:0 dropped:0\n    TX packets:15 errors:0\n")
    assert parse_port_counters(show) == {"br0": (0, 1), "p0": (13, 15)}
    rows = [TraceRow(0, 10, "p0", 42, {"p0": 1, "br0": 1}), TraceRow(1, 11, "p1", 60, {})]
    assert trace_text(rows) == "#idx\tts_ns\tin_port\tlen\toutputs\n0\t10\tp0\t42\tbr0:1,p0:1\n1\t11\tp1\t60\t-\n"
    assert InputPacket(0, 1, "p0", b"").port == "p0"


def test_cli_reports_bad_case_in_one_line(tmp_path: Path) -> None:
    script = Path(__file__).with_name("ovs_harness.py")
    p = subprocess.run([sys.executable, str(script), str(tmp_path / "nope")], capture_output=True, text=True,
                       env={**os.environ, "CTSWITCH_NO_OVS": ""})
    assert p.returncode != 0
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
