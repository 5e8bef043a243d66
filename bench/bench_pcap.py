"""Benchmark: pcap/pcapng reading, writing and codec.parse (packets per second).

    .venv/bin/python bench/bench_pcap.py [--packets 1000000] [--size 64] [--no-save]

Builds a synthetic file of TCP frames in a temp directory (one template frame,
the record headers stamped in bulk), then times each stage (median of 3 runs):
``PcapReader.chunks()`` is the replay's bulk path (NumPy arrays, the record scan
compiled by Numba), iteration yields one ``(ts_ns, bytes)`` per frame.  Prints the
figures and appends them to docs/benchmarks.md (not with ``--no-save``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

from bench.common import report
from ctswitch.io.pcap import PcapNgWriter, PcapReader, PcapWriter
from ctswitch.packet import build, codec

FLAGS = {  # the options run_all may pass (without values); the module parses its own with argparse
    "--no-save": "print only",
}

def _median(fn, runs: int = 3) -> float:
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main(argv: list[str] | None = None) -> list[str]:
    argv = sys.argv[1:] if argv is None else list(argv)
    lines: list[str] = []
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=64, help="frame length (>= 54)")
    ap.add_argument("--no-save", action="store_true", help="print only")
    a, _ = ap.parse_known_args(argv)
    n = a.packets
    frame = build.ipv4_tcp("2.2.2.1", "1.1.1.2", 40001, 80, "PA", 1, 1, payload=bytes(max(0, a.size - 54)))
    frames = [build.ipv4_tcp("2.2.2.1", "1.1.1.2", 10000 + i, 80, "A", i, 1, payload=bytes(max(0, a.size - 54)))
              for i in range(1000)]
    with tempfile.TemporaryDirectory() as d:
        p1 = os.path.join(d, "a.pcap")
        p2 = os.path.join(d, "a.pcapng")

        def write_pcap() -> None:
            with PcapWriter(p1) as w:
                for i in range(n):
                    w.write(1_700_000_000_000_000_000 + i * 1000, frame)

        t = _median(write_pcap, 1)
        lines.append(f"PcapWriter.write           {n / t / 1e6:6.2f} Mpps")
        with PcapNgWriter(p2) as w:
            for i in range(n):
                w.write(1_700_000_000_000_000_000 + i * 1000, frame)

        def read(path: str) -> None:
            c = 0
            for _ts, _fr in PcapReader(path):
                c += 1
            assert c == n, c

        def bulk(path: str) -> None:
            c = 0
            with PcapReader(path) as r:
                for ts, _data, _offs, _lens in r.chunks():
                    c += len(ts)
            assert c == n, c

        bulk(p1)  # loads the compiled record scan (once per process)
        t = _median(lambda: bulk(p1))
        lines.append(f"PcapReader.chunks classic  {n / t / 1e6:6.2f} Mpps  ({os.path.getsize(p1) / t / 1e9:.2f} GB/s)")
        t = _median(lambda: read(p1))
        lines.append(f"PcapReader classic         {n / t / 1e6:6.2f} Mpps  ({os.path.getsize(p1) / t / 1e9:.2f} GB/s)")
        t = _median(lambda: bulk(p2))
        lines.append(f"PcapReader.chunks pcapng   {n / t / 1e6:6.2f} Mpps")
        t = _median(lambda: read(p2))
        lines.append(f"PcapReader pcapng          {n / t / 1e6:6.2f} Mpps")
    m = min(n, 200_000)
    sample = (frames * (m // len(frames) + 1))[:m]

    def parse_all() -> None:
        parse = codec.parse
        for fr in sample:
            parse(fr)

    t = _median(parse_all)
    lines.append(f"codec.parse TCP            {m / t / 1e6:6.2f} Mpps  ({t / m * 1e6:.2f} us/pkt)")
    udp = [build.ipv4_udp("2.2.2.1", "1.1.1.2", 5000, 53, b"x" * 10)] * m

    def parse_list(frs: list[bytes]) -> None:
        parse = codec.parse
        for fr in frs:
            parse(fr)

    t = _median(lambda: parse_list(udp))
    lines.append(f"codec.parse UDP            {m / t / 1e6:6.2f} Mpps  ({t / m * 1e6:.2f} us/pkt)")
    err = [build.ipv4_icmp_error("1.1.1.2", "2.2.2.1", 3, 3, udp[0])] * (m // 4)
    t = _median(lambda: parse_list(err))
    lines.append(f"codec.parse ICMP error     {len(err) / t / 1e6:6.2f} Mpps  ({t / len(err) * 1e6:.2f} us/pkt)")
    body = ["```", *lines, "```"]
    report(f"pcap I/O and codec.parse, {n:,} frames of {a.size} B", "bench.bench_pcap", argv, body,
           save=not a.no_save)
    return body


if __name__ == "__main__":
    main()
