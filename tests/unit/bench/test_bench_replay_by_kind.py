"""bench_replay --by-kind: each frame that leaves the batch kernel is counted once under its sender,
TCP flags and effect, so a connection's lifecycle shows as one row per packet of it."""

import contextlib
import io

from bench.bench_replay import by_kind

from ctswitch.gen import cli_main

# The handshake and the close of a connection of the generator's shape: the host's ACK comes before
# the SYN-ACK reaches it, so the host's first data packet is the one that offloads the connection.
LIFECYCLE = [("pf0hpf", "SYN"), ("p0", "SYN-ACK"), ("pf0hpf", "ACK"),
             ("pf0hpf", "PSH-ACK (offloads its connection)"),
             ("pf0hpf", "FIN-ACK (tears its offload down)"), ("p0", "FIN-ACK")]


def test_by_kind_counts_each_lifecycle_packet_once_per_connection(tmp_path):
    with contextlib.redirect_stdout(io.StringIO()):
        cli_main([str(tmp_path), "--perf", "--packets", "4000", "--conns", "20", "--size", "64",
                  "--snat", "1.1.1.16"])
    rows, total, inside = by_kind(str(tmp_path))
    frames = {}
    for row in rows:
        sender, kind, n, us, share = (c.strip() for c in row.strip("|").split("|"))
        assert float(us) > 0 and share.endswith("%")
        frames[(sender, kind)] = int(n.replace(",", ""))
    assert {k: frames.get(k) for k in LIFECYCLE} == dict.fromkeys(LIFECYCLE, 20)
    assert 0 < inside < total
