"""Replay: drive a Switch from per-port pcap files on a simulated clock.

Theory of operation
-------------------
Each input pcap is the traffic arriving on one bridge port.  The inputs are
merged by timestamp (ties: the order the inputs were given, then file order)
with a lazy k-way merge, so memory stays constant however long the files are.

The switch clock follows the pcap clock: the first frame maps to the switch's
current time (``base``) and every later frame to ``base + (ts - first_ts)``,
so conntrack timeouts, flow timeouts, MAC aging and offload aging all run on
packet time, deterministically.  Successive replays continue the clock.

Every frame a port transmits is written to ``<out_dir>/<port>.pcap`` (LOCAL is
written under the bridge's name) with the timestamp of the input frame that
caused it.  The optional per-packet trace has the oracle's ``trace.tsv`` columns.
"""

from __future__ import annotations

import heapq
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ..flow.actions import OFPP_LOCAL
from .pcap import PcapReader, PcapWriter


class ReplayError(Exception):
    """A replay that cannot start (unknown bridge or port, unreadable file)."""


@dataclass
class ReplaySummary:
    """What a replay did (printed at its end)."""

    packets: int = 0
    first_ns: int | None = None
    last_ns: int | None = None
    rx: Counter = field(default_factory=Counter)  # port name -> frames received
    tx: Counter = field(default_factory=Counter)  # port name -> frames transmitted
    outputs: dict = field(default_factory=dict)  # port name -> output pcap path
    error: str | None = None  # the input error that stopped the replay early
    interrupted: bool = False
    wall_s: float = 0.0


def _frames(reader: PcapReader, order: int, port_no: int) -> Iterator[tuple[int, int, int, int, bytes]]:
    for seq, (ts, frame) in enumerate(reader):
        yield ts, order, seq, port_no, frame


def replay(switch, bridge_name: str, inputs: list[tuple[str, str]], out_dir: str | None = None, *,
           realtime: bool = False, trace_path: str | None = None,
           progress: Callable[[int], None] | None = None) -> ReplaySummary:
    """Replays ``inputs`` ((port name, pcap path) pairs) into bridge ``bridge_name``.

    Returns a ReplaySummary; input errors met mid-way stop the replay, are recorded in
    ``summary.error`` and leave well-formed outputs and a consistent switch.

    Raises:
        ReplayError: unknown bridge/port or an input that cannot be opened.
    """
    br = switch.bridges.get(bridge_name)
    if br is None:
        raise ReplayError(f"no bridge named {bridge_name}")
    readers = []
    streams = []
    for order, (port_name, path) in enumerate(inputs):
        port = br.ports.get(port_name)
        if port is None:
            raise ReplayError(f"bridge {bridge_name} has no port named {port_name}")
        try:
            rd = PcapReader(path)
        except OSError as e:
            raise ReplayError(f"{path}: {e.strerror or e}") from None
        except Exception as e:  # PcapError: a bad header
            raise ReplayError(str(e)) from None
        readers.append(rd)
        streams.append(_frames(rd, order, port.ofport))
    summary = ReplaySummary()
    writers: dict[int, PcapWriter] = {}
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    trace = open(trace_path, "w") if trace_path else None
    if trace:
        trace.write("#idx\tts_ns\tin_port\tlen\toutputs\n")
    names = {p.ofport: (br.name if p.ofport == OFPP_LOCAL else p.name) for p in br.ports.values()}
    dp = switch.datapath
    base = switch.now
    first = None
    t0 = time.perf_counter()
    wall0 = time.monotonic()
    idx = 0
    try:
        for ts, _order, _seq, in_port, frame in heapq.merge(*streams):
            if first is None:
                first = ts
                summary.first_ns = ts
            now = base + (ts - first) // 1_000_000
            if realtime:
                delay = (ts - first) / 1e9 - (time.monotonic() - wall0)
                if delay > 0:
                    time.sleep(delay)
            if now > switch.now:
                switch.now = now
            dp.tick(switch.now)
            out = dp.receive(br, in_port, frame, switch.now)
            summary.rx[names.get(in_port, str(in_port))] += 1
            outs = []
            for ofport, data in out:
                name = names.get(ofport, str(ofport))
                summary.tx[name] += 1
                outs.append(name)
                if out_dir:
                    w = writers.get(ofport)
                    if w is None:
                        path = os.path.join(out_dir, f"{name}.pcap")
                        # snaplen 65535, as OVS writes its tx_pcap files: outputs compare byte for byte.
                        w = writers[ofport] = PcapWriter(path, snaplen=65535)
                        summary.outputs[name] = path
                    w.write(ts, data)
            if trace:
                counts = Counter(outs)
                col = ",".join(f"{n}:{c}" for n, c in sorted(counts.items())) or "-"
                trace.write(f"{idx}\t{ts}\t{names.get(in_port, in_port)}\t{len(frame)}\t{col}\n")
            idx += 1
            summary.last_ns = ts
            if progress is not None and idx % 65536 == 0:
                progress(idx)
    except KeyboardInterrupt:
        summary.interrupted = True
    except Exception as e:  # PcapError from a reader: keep what was done
        if type(e).__name__ != "PcapError":
            raise
        summary.error = str(e)
    finally:
        for w in writers.values():
            w.close()
        for rd in readers:
            close = getattr(rd, "close", None)
            if close:
                close()
        if trace:
            trace.close()
    summary.packets = idx
    summary.wall_s = time.perf_counter() - t0
    return summary
