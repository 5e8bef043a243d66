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

Ctrl-C (SIGINT) stops a replay at a packet boundary: while the loops run, a
SIGINT only raises a flag (when the process has Python's default handler, as
the CLI does; a daemon keeps its own) that the loops check between frames and
between fast-path batches.  Every frame the switch processed is then in the
summary, in the output pcaps and in the counters, and nothing after it.
"""

from __future__ import annotations

import heapq
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from ..flow.actions import OFPP_LOCAL
from .gcpolicy import packet_gc
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


class _SigintFlag:
    """SIGINT as a flag while a replay runs (see module docstring); ``hit`` is checked by the loops."""

    def __init__(self) -> None:
        self.hit = False
        self._old = None

    def _handler(self, signum, frame) -> None:
        self.hit = True

    def __enter__(self) -> _SigintFlag:
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._old = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None


def _frames(reader: PcapReader, order: int, port_no: int) -> Iterator[tuple[int, int, int, int, bytes]]:
    """One input's frames, each with the time it is replayed at: its timestamp, or the latest one
    before it when the capture's timestamps go back (merged captures, multi-queue NICs).  So an
    input is always replayed in file order, and the clock and the output pcaps never go back."""
    hi = None
    for seq, (ts, frame) in enumerate(reader):
        if hi is None or ts > hi:
            hi = ts
        yield hi, order, seq, port_no, frame


class _State:
    """Where a replay writes: output pcaps, the trace, the summary, the progress callback."""

    def __init__(self, summary, writers, out_dir, trace, names, progress):
        self.summary = summary
        self.writers = writers
        self.out_dir = out_dir
        self.trace = trace
        self.names = names
        self.progress = progress
        self.idx = 0
        self.first: int | None = None
        self.sigint = _SigintFlag()

    def deliver(self, ts: int, in_port: int, frame_len: int, out) -> None:
        """Records one input frame's outputs ((ofport, bytes) pairs)."""
        s = self.summary
        names = self.names
        s.rx[names.get(in_port, str(in_port))] += 1
        outs = []
        for ofport, data in out:
            name = names.get(ofport, str(ofport))
            s.tx[name] += 1
            outs.append(name)
            if self.out_dir:
                w = self.writers.get(ofport)
                if w is None:
                    path = os.path.join(self.out_dir, f"{name}.pcap")
                    # snaplen 65535, as OVS writes its tx_pcap files: outputs compare byte for byte.
                    w = self.writers[ofport] = PcapWriter(path, snaplen=65535)
                    s.outputs[name] = path
                w.write(ts, data)
        if self.trace:
            counts = Counter(outs)
            col = ",".join(f"{n}:{c}" for n, c in sorted(counts.items())) or "-"
            self.trace.write(f"{self.idx}\t{ts}\t{names.get(in_port, in_port)}\t{frame_len}\t{col}\n")
        self.idx += 1
        s.last_ns = ts
        if self.progress is not None and self.idx % 65536 == 0:
            self.progress(self.idx)


def _clock(switch, state: _State, base: int, ts: int) -> int:
    if state.first is None:
        state.first = ts
        state.summary.first_ns = ts
    return base + (ts - state.first) // 1_000_000


def _run_one_by_one(switch, br, streams, base: int, realtime: bool, state: _State) -> None:
    """The reference loop: one frame at a time through Datapath.receive."""
    dp = switch.datapath
    wall0 = time.monotonic()
    sigint = state.sigint
    for ts, _order, _seq, in_port, frame in heapq.merge(*streams):
        if sigint.hit:
            raise KeyboardInterrupt
        now = _clock(switch, state, base, ts)
        if realtime:
            delay = (ts - state.first) / 1e9 - (time.monotonic() - wall0)
            if delay > 0:
                time.sleep(delay)
        if now > switch.now:
            switch.now = now
        dp.tick(switch.now)
        state.deliver(ts, in_port, len(frame), dp.receive(br, in_port, frame, switch.now))


class _Source:
    """One input's frames, a chunk at a time, as NumPy arrays (the vectorized loop)."""

    def __init__(self, reader, order: int, port: int) -> None:
        self.it = reader.chunks()
        self.order = order
        self.port = port
        self.done = False
        self.pos = 0
        self.ts = None
        self.hi: int | None = None  # the latest timestamp so far
        self.error: BaseException | None = None

    def fill(self, np) -> None:
        if self.done or (self.ts is not None and self.pos < len(self.ts)):
            return
        try:
            ts, data, offs, lens = next(self.it)
        except StopIteration:
            self.done = True
            return
        except Exception as e:  # PcapError: this input ends here
            self.done = True
            self.error = e
            return
        # PcapReader.chunks() gives NumPy arrays already (int64 ts/offsets/lengths, uint8 data).
        # A timestamp that goes back takes the latest one before it, as in _frames (the window
        # cut-offs below also need each input's times in order).
        if len(ts):
            # (Most captures are in order: the checks cost less than the accumulate.)
            if self.hi is not None and int(ts[0]) < self.hi:
                ts = np.maximum(ts, self.hi)
            if len(ts) > 1 and not (ts[1:] >= ts[:-1]).all():
                ts = np.maximum.accumulate(ts)
            self.hi = int(ts[-1])
        self.ts, self.data, self.offs, self.lens = ts, data, offs, lens
        self.pos = 0


def _run_vectorized(switch, br, readers, ports, base: int, state: _State, per_frame: bool) -> None:
    """The batched loop: frames stay in NumPy arrays from the pcap reader to the Numba kernel;
    only frames that miss the fast path become Python objects.  With ``per_frame`` (output
    files or a trace) every frame's outputs are recorded one by one; else only counted.
    Inputs are merged by (timestamp, input order, file order) with a stable sort per window,
    so the order, and therefore every result, is the same as the one-by-one loop's."""
    import numpy as np
    dp = switch.datapath
    srcs = [_Source(r, i, p) for i, (r, p) in enumerate(zip(readers, ports))]
    summary = state.summary
    names = state.names
    # Ports of the frames received and of the fast-path hits sent, counted in bulk (np.unique)
    # whenever a million have gathered and at the end.
    rx: list = []
    tx_hits: list = []
    pending_n = 0

    def fold(arrays: list, counter) -> None:
        if arrays:
            a = np.concatenate(arrays)
            arrays.clear()
            if not len(a):
                return
            counts = np.bincount(a)  # OpenFlow port numbers (0..0xFFFF): a count per number, no sort
            ports = np.flatnonzero(counts)
            counts = counts[ports]
            for port, count in zip(ports.tolist(), counts.tolist()):
                counter[names.get(port, str(port))] += count
    error = None
    first = None
    # The window's frames, copied into one writable buffer (hits are rewritten in place) that is
    # reused from window to window: nothing keeps a view of it (slow-path frames and recorded
    # outputs are bytes copies).
    win = np.empty(0, dtype=np.uint8)
    sent: list = []  # the slow-path outputs' ports of one receive_batch (not per_frame: only counted)
    while True:
        for src in srcs:
            src.fill(np)
            if src.error is not None and error is None:
                error = src.error
        live = [src for src in srcs if src.ts is not None and src.pos < len(src.ts)]
        if not live:
            break
        pending = [src for src in live if not src.done]
        # The window: every frame that sorts before the next chunk of each input still being
        # read, by (time, input order): that chunk's frames come at its input's latest time
        # (T, O) or later.  At time T itself only inputs up to order O may go on, so an input
        # given earlier keeps its frames at T ahead of a later one's across a chunk boundary.
        # The input at (T, O) is always emptied: it is refilled next round.
        cutoff = min((int(src.ts[-1]), src.order) for src in pending) if pending else None
        parts = []
        base_off = 0
        for src in live:
            stop = len(src.ts) if cutoff is None else int(np.searchsorted(
                src.ts, cutoff[0], side="right" if src.order <= cutoff[1] else "left"))
            if stop <= src.pos:
                continue
            sl = slice(src.pos, stop)
            lo = int(src.offs[src.pos])
            hi = int(src.offs[stop - 1] + src.lens[stop - 1])
            parts.append((src.ts[sl], src.offs[sl] - lo + base_off, src.lens[sl], src.data[lo:hi], src.port))
            base_off += hi - lo
            src.pos = stop
        if not parts:
            continue
        ts = np.concatenate([p[0] for p in parts])
        offs = np.concatenate([p[1] for p in parts])
        lens = np.concatenate([p[2] for p in parts])
        inp = np.concatenate([np.full(len(p[0]), p[4], dtype=np.int64) for p in parts])
        if len(win) < base_off:
            win = np.empty(max(base_off, 2 * len(win)), dtype=np.uint8)
        buf = win[:base_off]
        np.concatenate([p[3] for p in parts], out=buf)
        # The order (time, input order, file order): the parts are in input order and each in file
        # order with its times non-decreasing, so a stable sort by time alone gives it (and merges
        # the sorted runs in linear time).
        perm = np.argsort(ts, kind="stable")
        ts, offs, lens, inp = ts[perm], offs[perm], lens[perm], inp[perm]
        if first is None:
            first = int(ts[0])
            summary.first_ns = first
            state.first = first
        nows = base + (ts - first) // 1_000_000  # non-decreasing: ts is sorted (each input's times are)
        np.maximum(nows, switch.now, out=nows)
        n = len(ts)
        a = 0
        while a < n and not state.sigint.hit:
            now0 = int(nows[a])
            if now0 > switch.now:
                switch.now = now0
            dp.tick(switch.now)
            b = int(np.searchsorted(nows, dp.next_tick, side="left"))
            b = max(b, a + 1)
            out_ports, slow = dp.batch.receive_batch(br, buf, offs[a:b], lens[a:b], inp[a:b], nows[a:b],
                                                     None if per_frame else sent)
            if per_frame:
                for i, op in enumerate(out_ports.tolist()):
                    k = a + i
                    outs = slow.get(i)
                    if outs is None:
                        o, ln = int(offs[k]), int(lens[k])
                        outs = [(op, buf[o:o + ln].tobytes())] if op >= 0 else []
                    state.deliver(int(ts[k]), int(inp[k]), int(lens[k]), outs)
            else:
                # The hits' ports (out_ports is -1 for the slow-path frames), then the slow path's
                # output ports, which receive_batch appended to sent: counted in bulk.
                hits = out_ports[out_ports >= 0]
                tx_hits.append(hits)
                pending_n += len(hits)
                if sent:
                    tx_hits.append(np.array(sent, dtype=np.int64))
                    pending_n += len(sent)
                    sent.clear()
            switch.now = max(switch.now, int(nows[b - 1]))
            a = b
        if not per_frame:  # deliver() counted them one by one
            rx.append(inp[:a])  # a < n only when interrupted: the rest was not processed
            pending_n += a
            if pending_n >= 1 << 20:
                fold(rx, summary.rx)
                fold(tx_hits, summary.tx)
                pending_n = 0
            state.idx += a
            if a:
                summary.last_ns = int(ts[a - 1])
            if state.progress is not None:
                state.progress(state.idx)
        if error is not None or state.sigint.hit:
            break
    dp.sync_counters()
    fold(rx, summary.rx)
    fold(tx_hits, summary.tx)
    if error is not None:
        raise error
    if state.sigint.hit:
        raise KeyboardInterrupt




def replay(switch, bridge_name: str, inputs: list[tuple[str, str]], out_dir: str | None = None, *,
           realtime: bool = False, trace_path: str | None = None,
           progress: Callable[[int], None] | None = None, mode: str = "auto") -> ReplaySummary:
    """Replays ``inputs`` ((port name, pcap path) pairs) into bridge ``bridge_name``.

    Returns a ReplaySummary; input errors met mid-way stop the replay, are recorded in
    ``summary.error`` and leave well-formed outputs and a consistent switch.

    ``mode`` picks the loop: "one" (the reference, one frame at a time), "batch" (frames in
    NumPy arrays through the Numba fast path, outputs recorded frame by frame, as with output
    files or a trace), "vector" (the same, outputs only counted), or "auto" (the fastest that
    applies).  All give the same results.

    Raises:
        ReplayError: unknown bridge/port or an input that cannot be opened.
    """
    br = switch.bridges.get(bridge_name)
    if br is None:
        raise ReplayError(f"no bridge named {bridge_name}")
    readers = []
    streams = []
    port_nos = []
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
        port_nos.append(port.ofport)
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
    state = _State(summary, writers, out_dir, trace, names, progress)
    if mode not in ("auto", "one", "batch", "vector"):
        raise ReplayError(f"unknown replay mode {mode!r}")
    batch = mode != "one" and not realtime and dp.enable_batch()
    per_frame = bool(out_dir or trace) or mode == "batch"
    t0 = time.perf_counter()
    try:
        state.sigint.__enter__()
        with packet_gc():  # fewer young-generation collections while packets flow (io/gcpolicy.py)
            if batch:
                _run_vectorized(switch, br, readers, port_nos, base, state, per_frame)
            else:
                _run_one_by_one(switch, br, streams, base, realtime, state)
    except KeyboardInterrupt:
        summary.interrupted = True
    except Exception as e:  # PcapError from a reader: keep what was done
        if type(e).__name__ != "PcapError":
            raise
        summary.error = str(e)
    finally:
        state.sigint.__exit__(None, None, None)
        for w in writers.values():
            w.close()
        for rd in readers:
            close = getattr(rd, "close", None)
            if close:
                close()
        if trace:
            trace.close()
    idx = state.idx
    summary.packets = idx
    summary.wall_s = time.perf_counter() - t0
    return summary
