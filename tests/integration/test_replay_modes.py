"""The three replay loops (reference one-by-one, batched, vectorized) give identical results."""

import contextlib
import io

import pytest
from pipeline import Lab

from ctswitch.control import ofctl
from ctswitch.control.dpctl import dump_conntrack
from ctswitch.gen import cli_main
from ctswitch.io.replay import replay


@pytest.fixture(scope="module")
def traffic(tmp_path_factory):
    d = tmp_path_factory.mktemp("perf")
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli_main([str(d), "--perf", "--packets", "30000", "--conns", "400", "--size", "64",
                         "--snat", "1.1.1.16", "--lag", "64"]) == 0
    return d


def _run(traffic, mode):
    lab = Lab(arp=False)
    lab.br.fail_mode = "secure"
    s = replay(lab.sw, "ctBr", [("pf0hpf", str(traffic / "pf0hpf.pcap")), ("p0", str(traffic / "p0.pcap"))],
               mode=mode)
    sw = lab.sw
    return {
        "summary": (s.packets, dict(s.rx), dict(s.tx), s.first_ns, s.last_ns),
        "conntrack": sorted(dump_conntrack(sw, ["-s"]).out.splitlines()),
        "flows": ofctl.run(sw, ["dump-flows", "ctBr"]).out,
        "ports": [(p.name, p.rx_packets, p.rx_bytes, p.tx_packets, p.tx_bytes) for p in lab.br.ports.values()],
        "stats": {k: v for k, v in sw.datapath.stats.items() if k not in ("fast_hw", "fast_sw", "slow_path")},
        "fast": sw.datapath.stats["fast_hw"] + sw.datapath.stats["fast_sw"] + sw.datapath.stats["slow_path"],
        "now": sw.now,
        "offload": sw.offload.counters(),
    }


def test_all_replay_loops_agree(traffic):
    ref = _run(traffic, "one")
    assert ref["summary"][0] > 29000
    for mode in ("batch", "vector"):
        got = _run(traffic, mode)
        for k in ref:
            assert got[k] == ref[k], (mode, k)


def test_replay_restores_the_gc_threshold(traffic, tmp_path):
    """replay() raises the young-generation GC threshold while it runs and puts it back, also
    when an input fails half-way."""
    import gc

    from ctswitch.io import replay as replay_mod
    from ctswitch.io.gcpolicy import PACKET_GC_GEN0

    before = gc.get_threshold()
    seen = []
    real = replay_mod._run_vectorized

    def spy(*a, **k):
        seen.append(gc.get_threshold()[0])
        return real(*a, **k)

    replay_mod._run_vectorized = spy
    try:
        _run(traffic, "vector")
    finally:
        replay_mod._run_vectorized = real
    assert seen == [max(before[0], PACKET_GC_GEN0)] and gc.get_threshold() == before
    bad = tmp_path / "cut.pcap"
    bad.write_bytes((traffic / "p0.pcap").read_bytes()[:5000])  # a record cut short: a PcapError mid-way
    lab = Lab(arp=False)
    s = replay(lab.sw, "ctBr", [("p0", str(bad))])
    assert s.error and gc.get_threshold() == before
