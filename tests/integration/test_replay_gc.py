"""A replay makes no reference cycles per packet or per connection: those objects are freed by
reference counting, so memory stays bounded whatever the GC thresholds (io/gcpolicy.py)."""

import collections
import contextlib
import gc
import io

import pytest
from pipeline import Lab

from ctswitch.gen import cli_main
from ctswitch.io.replay import replay


@pytest.fixture(scope="module")
def traffic(tmp_path_factory):
    """(small, large): the same scenario with 50 and with 200 connections."""
    dirs = []
    for packets, conns in ((2000, 50), (6000, 200)):
        d = tmp_path_factory.mktemp("gc")
        with contextlib.redirect_stdout(io.StringIO()):
            assert cli_main([str(d), "--perf", "--packets", str(packets), "--conns", str(conns), "--size", "64",
                             "--snat", "1.1.1.16", "--lag", "64"]) == 0
        dirs.append(d)
    return dirs


def _lab():
    lab = Lab(arp=False)
    lab.br.fail_mode = "secure"
    return lab


def _replay(d, lab, mode, out_dir=None):
    return replay(lab.sw, "ctBr", [("pf0hpf", str(d / "pf0hpf.pcap")), ("p0", str(d / "p0.pcap"))],
                  str(out_dir) if out_dir else None, mode=mode)


def _cyclic_garbage(d, mode, out_dir):
    """The types of the objects a replay of ``d`` on a new switch leaves in reference cycles."""
    lab = _lab()  # alive throughout: its switch and connections are not garbage
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        s = _replay(d, lab, mode, out_dir)
        gc.collect()
        garbage = collections.Counter(type(o).__qualname__ for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert s.packets > 0 and lab.sw.tracker.created > 0
    return garbage, lab.sw.tracker.created


@pytest.mark.parametrize("mode", ["one", "batch", "vector"])
def test_replay_cycles_do_not_grow_with_traffic(traffic, tmp_path, mode):
    small, large = traffic
    _replay(small, _lab(), mode)  # first use: imports and kernels loaded (their garbage is not the replay's)
    g_small, n_small = _cyclic_garbage(small, mode, tmp_path / "s" if mode == "batch" else None)
    g_large, n_large = _cyclic_garbage(large, mode, tmp_path / "l" if mode == "batch" else None)
    assert n_large >= 3 * n_small
    # Compiled, Timeouts.__init__'s closure is a 2-object cycle once per parameter change; no
    # other cycle, and none per packet or per connection.
    assert g_large == g_small
    assert sum(g_small.values()) <= 2
