"""ctswitch replay through the command registry: summary, outputs, logs, errors."""

import json
import shutil
from pathlib import Path

from ctswitch.control import ofctl, replay_tool
from ctswitch.datapath.switch import Switch

SCEN = Path(__file__).resolve().parents[1] / "oracle" / "scenarios" / "snat_port_range"


def _switch():
    meta = json.loads((SCEN / "case.json").read_text())
    sw = Switch()
    br = sw.add_bridge("br0", "secure")
    for name, no in sorted(meta["ports"].items(), key=lambda kv: kv[1]):
        br.add_port(name, ofport_request=no)
    assert ofctl.run(sw, ["add-flows", "br0", str(SCEN / "flows.txt")]).code == 0
    return sw


def test_nat_exhaustion_is_counted_and_logged(tmp_path):
    sw = _switch()
    r = replay_tool.run(sw, ["br0", "--in", f"pf0hpf={SCEN}/in/pf0hpf.pcap", "--in", f"p0={SCEN}/in/p0.pcap",
                             "--out-dir", str(tmp_path / "out")])
    assert r.code == 0, r.err
    assert "replayed 15 packets" in r.out
    assert ("  dropped: 3 (Unable to NAT due to tuple space exhaustion - if DoS attack, use firewalling "
            "and/or zone partitioning.: 3)\n") in r.out
    assert "kernel log (" in r.out and "Unable to NAT due to tuple space exhaustion" in r.out
    assert (tmp_path / "out" / "p0.pcap").exists()
    assert sw.tracker.stats["drop"] >= 3


def test_replay_errors_are_one_line(tmp_path):
    sw = _switch()
    r = replay_tool.run(sw, ["br0", "--in", "nope=x.pcap"])
    assert r.code == 1 and r.err == "ctswitch replay: bridge br0 has no port named nope\n"
    r = replay_tool.run(sw, ["br0", "--in", f"p0={tmp_path}/missing.pcap"])
    assert r.code == 1 and r.err.startswith("ctswitch replay: ") and "missing.pcap" in r.err
    r = replay_tool.run(sw, ["br0"])
    assert r.code == 2 and "--in" in r.err
    r = replay_tool.run(sw, ["nobr", "--in", "p0=x"])
    assert r.code == 1 and r.err == "ctswitch replay: no bridge named nobr\n"


def test_truncated_input_stops_cleanly_and_keeps_state(tmp_path):
    sw = _switch()
    data = (SCEN / "in" / "pf0hpf.pcap").read_bytes()
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(data[:-20])  # cut the last record
    r = replay_tool.run(sw, ["br0", "--in", f"pf0hpf={bad}", "--out-dir", str(tmp_path / "out")])
    assert r.code == 1 and "record" in r.err and "bad.pcap" in r.err
    assert "replayed" in r.out
    # What was processed before the error is kept, and the output pcap is well formed.
    assert sw.tracker.count > 0
    out = tmp_path / "out" / "p0.pcap"
    from ctswitch.io.pcap import PcapReader
    assert len(list(PcapReader(str(out)))) > 0
    shutil.rmtree(tmp_path / "out")
