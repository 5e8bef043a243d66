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


def _udp_pcap(path, times_s, sport):
    from scapy.all import IP, UDP, Ether

    from ctswitch.io.pcap import PcapWriter
    w = PcapWriter(str(path))
    for i, t in enumerate(times_s):
        fr = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.0.0.1", dst="10.0.0.2")
                   / UDP(sport=sport, dport=7000 + i) / b"x")
        w.write(int(t * 1e9), fr)
    w.close()


def test_timestamps_going_back_replay_in_file_order(tmp_path):
    """A capture whose timestamps go back (merged captures, multi-queue NICs) is replayed in file
    order, each such frame at the latest timestamp before it, by every loop alike; the batched
    loops used to spin forever on it (their window cut-off assumed ordered times)."""
    import signal

    _udp_pcap(tmp_path / "a.pcap", [2, 3, 1, 5, 4, 4.5, 9], 1000)
    _udp_pcap(tmp_path / "b.pcap", [1, 3.5, 3.2, 6], 2000)
    inputs = [("pf0hpf", str(tmp_path / "a.pcap")), ("p0", str(tmp_path / "b.pcap"))]
    got = {}

    def stuck(*_):
        raise TimeoutError("replay did not finish")
    old = signal.signal(signal.SIGALRM, stuck)
    signal.alarm(60)
    try:
        for mode in ("one", "batch", "vector"):
            lab = Lab(arp=False)
            out = tmp_path / mode
            s = replay(lab.sw, "ctBr", inputs, str(out) if mode != "vector" else None, mode=mode,
                       trace_path=str(tmp_path / f"{mode}.tsv") if mode != "vector" else None)
            got[mode] = (s.packets, dict(s.rx), dict(s.tx), s.first_ns, s.last_ns, lab.sw.now,
                         sorted(dump_conntrack(lab.sw, []).out.splitlines()))
            if mode != "vector":
                got[mode] += ((tmp_path / f"{mode}.tsv").read_text(),
                              {p.name: p.read_bytes() for p in sorted(out.iterdir())})
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    ref = got["one"]
    assert got["batch"] == ref
    assert got["vector"] == ref[:7]
    assert ref[0] == 11 and ref[3] == 1_000_000_000 and ref[4] == 9_000_000_000
    # Merged by replay time: a's 1 s frame keeps a's order (after 3 s), b's 3.2 s frame comes at 3.5 s.
    rows = [ln.split("\t") for ln in ref[7].splitlines()[1:]]
    assert [(r[2], int(r[1]) // 10**8) for r in rows] == [
        ("p0", 10), ("pf0hpf", 20), ("pf0hpf", 30), ("pf0hpf", 30), ("p0", 35), ("p0", 35),
        ("pf0hpf", 50), ("pf0hpf", 50), ("pf0hpf", 50), ("p0", 60), ("pf0hpf", 90)]
