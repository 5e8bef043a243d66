"""Property-based differential test of the three replay loops (``ctswitch.io.replay``).

hypothesis makes small random sets of 1-3 input pcaps for the vendor lab (ctBr with p0 and
pf0hpf, EXAMPLE2's SNAT flows, hw-offload on, so the batched loops really take the Numba fast
path): TCP handshakes, data both ways, FIN and RST closes, UDP requests and replies, ICMP echoes,
ARP, and frames made malformed or odd (cut short, bad IHL, bad IP version or total length,
Ethernet padding, TTL <= 1, fragments, VLAN tags, TCP data offsets and flags, UDP lengths).
Timestamps are random: equal ones (within an input and across inputs), ones going back and
jumps of seconds to minutes, so the datapath's 1 s timer windows, the 30 s offload aging, MAC
aging and the conntrack timeouts are crossed.  Inputs are classic pcap (us or ns) or pcapng, and
the reader's chunks are made small (``pcap.CHUNK`` for classic pcap, ``max_records`` for pcapng)
so that inputs span several chunks and the batched loops' window cut-offs fall everywhere.

Each example is replayed by the three loops ("one", the reference; "batch"; "vector"), each on a
fresh switch, under ``signal.alarm`` (a loop that spins fails the test instead of blocking the
suite), and everything visible must be the same: the summary, the output pcaps and the trace
(one vs batch: vector writes neither), ``conntrack -L`` and ``dpctl/dump-conntrack -s``,
dump-flows, the port counters, the datapath's stats (but the fast/slow split) and drops, the
offload counters and the switch clock.

``CTSWITCH_REPLAY_PROPERTY_EXAMPLES=N`` runs N examples instead of the suite's few.
The regression tests at the end are minimised disagreements the property found, all fixed: the
window's order at a chunk boundary (io/replay.py), and three in how the batched loops credited
kernel hits later, in bulk: MAC learning applied after a later slow-path MAC move (now: pending
hits are credited before a move, ``OFBridge.learn``), a software-offloaded connection's hardware
insert retry run after a later teardown, and the retry's 1 s rate limit measured from the last
hit of a bulk instead of each hit (now: only hardware-offloaded connections' decisions go to the
batch table, ``Datapath._cache``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
from unittest import mock

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pipeline import EXAMPLE2, HOST_MAC, REMOTE_MAC, Lab

from ctswitch.control import conntrack_tool, ofctl
from ctswitch.control.dpctl import dump_conntrack
from ctswitch.io import pcap
from ctswitch.io.pcap import PcapNgWriter, PcapReader, PcapWriter
from ctswitch.io.replay import replay
from ctswitch.packet import build

MODES = ("one", "batch", "vector")
# Per replay: a few dozen frames take milliseconds; the first replay may compile Numba kernels.
ALARM_FIRST_S, ALARM_S = 30, 5
_alarm_s = [ALARM_FIRST_S]
EXAMPLES = int(os.environ.get("CTSWITCH_REPLAY_PROPERTY_EXAMPLES", "60"))

HOST, REMOTE, SNAT = "2.2.2.1", "1.1.1.2", "1.1.1.16"
PORT_OF = {"h": "pf0hpf", "r": "p0"}  # where a direction's frames arrive
MS = 1_000_000
S = 1_000_000_000
# Time steps between successive frames (ns): equal times, sub-ms, ms, a fraction of the 1 s timer;
# now and then (JUMPS, at a rate drawn per example) one across the 1 s timer, the 30 s
# offload/UDP/ICMP timeouts, the 60 s MAC aging (see CONFIGS), 120 s SYN_SENT/TIME_WAIT, or back.
STEPS = [0, 0, 0, 1, 1_000, 999_000, MS, MS, 7 * MS, 7 * MS, 120 * MS, 500 * MS]
JUMPS = [999_999_999, S, 2 * S, 29 * S, 31 * S, 61 * S, 125 * S, -1, -MS, -2 * S, -40 * S]
CONFIGS = [
    {},
    {"sysctl:net.netfilter.nf_conntrack_acct": 1, "other_config:mac-aging-time": 60},
    {"other_config:tc-policy": "skip_hw"},
    {"devlink:ct_max_offloaded_conns": 1},
]
SIZES = [0, 1, 100, 1400]


# ------------------------------------------------------------------------------- traffic
@st.composite
def conversation(draw, i: int) -> list[tuple[str, bytes]]:
    """One conversation's frames, in causal order: (direction "h" host->remote / "r" back, frame)."""
    kind = draw(st.sampled_from(["tcp", "tcp", "tcp", "udp", "udp", "icmp", "arp"]))
    sport = draw(st.sampled_from([34541, 34542, 40000 + i]))  # some tuples are reused
    dport = draw(st.sampled_from([5001, 80]))
    out = []

    def h(fr):
        out.append(("h", fr))

    def r(fr):
        out.append(("r", fr))

    if kind == "tcp":
        hs, rs = 1000, 5000

        def ht(flags, payload=b""):
            h(build.ipv4_tcp(HOST, REMOTE, sport, dport, flags, hs, rs, payload,
                             src_mac=HOST_MAC, dst_mac=REMOTE_MAC))

        def rt(flags, payload=b""):
            r(build.ipv4_tcp(REMOTE, SNAT, dport, sport, flags, rs, hs, payload,
                             src_mac=REMOTE_MAC, dst_mac=HOST_MAC))

        ht("S")
        hs += 1
        if draw(st.integers(0, 5)):  # now and then a handshake the remote never answers
            rt("SA")
            rs += 1
            ht("A")
        for to_remote, size in draw(st.lists(st.tuples(st.booleans(), st.sampled_from(SIZES)), min_size=1, max_size=12)):
            data = bytes(size)
            if to_remote:
                ht("PA", data)
                hs += size
            else:
                rt("PA", data)
                rs += size
        close = draw(st.sampled_from(["none", "fin", "fin_r", "rst", "rst_r"]))
        if close == "fin":
            ht("FA")
            hs += 1
            rt("FA")
            rs += 1
            ht("A")
        elif close == "fin_r":
            rt("FA")
            rs += 1
            ht("FA")
            hs += 1
            rt("A")
        elif close == "rst":
            ht("R")
        elif close == "rst_r":
            rt("RA")
        for _ in range(draw(st.integers(0, 2))):  # after the close: a stray segment
            ht("PA", b"late")
    elif kind == "udp":
        for _ in range(draw(st.integers(1, 6))):
            h(build.ipv4_udp(HOST, REMOTE, sport, dport, b"q" * draw(st.sampled_from(SIZES)),
                             src_mac=HOST_MAC, dst_mac=REMOTE_MAC))
            if draw(st.booleans()):
                r(build.ipv4_udp(REMOTE, SNAT, dport, sport, b"a" * draw(st.sampled_from(SIZES)),
                                 src_mac=REMOTE_MAC, dst_mac=HOST_MAC))
    elif kind == "icmp":
        for seq in range(draw(st.integers(1, 3))):
            h(build.ipv4_icmp_echo(HOST, REMOTE, sport, seq, b"ping", src_mac=HOST_MAC, dst_mac=REMOTE_MAC))
            if draw(st.booleans()):
                r(build.ipv4_icmp_echo(REMOTE, SNAT, sport, seq, b"ping", reply=True,
                                       src_mac=REMOTE_MAC, dst_mac=HOST_MAC))
    else:
        h(build.arp(1, HOST_MAC, HOST, "00:00:00:00:00:00", REMOTE))
        if draw(st.booleans()):
            r(build.arp(2, REMOTE_MAC, REMOTE, HOST_MAC, HOST))
    return out


MUTATIONS = ["cut", "ihl", "version", "total_length", "pad", "ttl", "frag", "vlan", "tcp_doff",
             "tcp_flags", "udp_len"]


def mutate(draw, frame: bytes) -> bytes:
    """``frame`` made malformed or odd (checksums are left as they are)."""
    how = draw(st.sampled_from(MUTATIONS))
    b = bytearray(frame)
    n = len(b)
    if not n:
        return frame
    if how == "cut":
        return bytes(b[:draw(st.integers(0, n - 1))])
    if how == "pad":  # an Ethernet trailer: the IP total length ends before the frame
        return bytes(b) + bytes(draw(st.integers(1, 40)))
    if how == "vlan":
        return bytes(b[:12]) + bytes([0x81, 0, 0, draw(st.integers(0, 5))]) + bytes(b[12:])
    if n < 54:
        return bytes(b[:draw(st.integers(0, n - 1))])
    if how == "ihl":
        b[14] = 0x40 | draw(st.sampled_from([0, 1, 4, 6, 7, 15]))
    elif how == "version":
        b[14] = draw(st.sampled_from([0x05, 0x65, 0x35]))
    elif how == "total_length":
        tl = draw(st.sampled_from([0, 19, 20, 27, 39, 40, n - 14 - 1, n - 14 + 1, 0xFFFF]))
        b[16:18] = max(tl, 0).to_bytes(2, "big")
    elif how == "ttl":
        b[22] = draw(st.sampled_from([0, 1, 2]))
    elif how == "frag":
        b[20:22] = draw(st.sampled_from([0x2000, 0x0001, 0x4000, 0x8000, 0x2003])).to_bytes(2, "big")
    elif how == "tcp_doff":
        b[46] = draw(st.sampled_from([0, 4, 6, 15])) << 4
    elif how == "tcp_flags":
        b[47] = draw(st.sampled_from([0x02, 0x01, 0x04, 0x11, 0x00, 0xFF]))
    elif how == "udp_len":
        b[38:40] = draw(st.sampled_from([0, 7, 8, 0xFFFF])).to_bytes(2, "big")
    return bytes(b)


# Mostly both directions (connections get established, offloaded and hit); several inputs on one
# port; traffic on LOCAL.
PORT_SETS = [
    ["pf0hpf"], ["p0"], ["pf0hpf", "p0"], ["pf0hpf", "p0"], ["p0", "pf0hpf"], ["p0", "pf0hpf"],
    ["pf0hpf", "p0", "pf0hpf"], ["p0", "pf0hpf", "p0"], ["pf0hpf", "p0", "ctBr"],
]


@st.composite
def scenario(draw):
    """(input ports, per input: (format, [(ts_ns, frame)]), classic chunk bytes, pcapng max_records,
    switch config, whether the lab starts with its ARP exchange)."""
    convs = [draw(conversation(i)) for i in range(draw(st.integers(1, 5)))]
    picks = draw(st.permutations([c for c, frames in enumerate(convs) for _ in frames]))
    pos = [0] * len(convs)
    frames = []  # merged causal order
    for c in picks:
        frames.append(convs[c][pos[c]])
        pos[c] += 1
    for k in draw(st.lists(st.integers(0, len(frames) - 1), max_size=3)):  # malformed copies
        d, fr = frames[k]
        frames.insert(k + 1, (d, mutate(draw, fr)))
    ports = draw(st.sampled_from(PORT_SETS))
    inputs = [[] for _ in ports]
    t = draw(st.sampled_from([0, 5 * S, 1_700_000_000 * S]))
    jump_rate = draw(st.sampled_from([2, 6, 30]))  # one step in jump_rate is a jump
    for d, fr in frames:
        jump = draw(st.integers(0, jump_rate - 1)) == jump_rate - 1
        t = max(0, t + draw(st.sampled_from(JUMPS if jump else STEPS)))
        mine = [k for k, p in enumerate(ports) if p == PORT_OF[d]]
        if not mine or draw(st.integers(0, 9)) == 0:  # now and then on another port
            mine = list(range(len(ports)))
        k = mine[draw(st.integers(0, len(mine) - 1))]
        inputs[k].append((t, fr))
    fmts = [draw(st.sampled_from(["us", "ns", "ng"])) for _ in ports]
    chunk = draw(st.sampled_from([None, 60, 150, 400]))
    max_records = draw(st.sampled_from([None, 1, 2, 5]))
    config = draw(st.integers(0, len(CONFIGS) - 1))
    arp = draw(st.booleans())
    return ports, list(zip(fmts, inputs)), chunk, max_records, config, arp


# ------------------------------------------------------------------------------- running
def write_inputs(d: str, ports, inputs) -> list[tuple[str, str]]:
    out = []
    for k, (port, (fmt, recs)) in enumerate(zip(ports, inputs)):
        path = os.path.join(d, f"in{k}.{'pcapng' if fmt == 'ng' else 'pcap'}")
        w = PcapNgWriter(path) if fmt == "ng" else PcapWriter(path, nanosecond=fmt == "ns")
        with w:
            for ts, fr in recs:
                w.write(ts, fr)
        out.append((port, path))
    return out


@contextlib.contextmanager
def small_chunks(chunk: int | None, max_records: int | None):
    """The pcap reader's chunks made small: ``chunk`` bytes (classic), ``max_records`` (pcapng)."""
    with contextlib.ExitStack() as stack:
        if chunk is not None:
            stack.enter_context(mock.patch.object(pcap, "CHUNK", chunk))
        if max_records is not None:
            real = PcapReader.chunks

            def chunks(self, max_records_=max_records):
                return real(self, max_records_)
            stack.enter_context(mock.patch.object(PcapReader, "chunks", chunks))
        yield


@contextlib.contextmanager
def alarm(seconds: int):
    """A replay that does not end within ``seconds`` raises TimeoutError (instead of hanging)."""
    def stuck(*_):
        _alarm_s[0] = 1  # shrinking a hang: 1 s is plenty for the smaller examples
        raise TimeoutError(f"replay did not finish within {seconds} s")
    old = signal.signal(signal.SIGALRM, stuck)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def run_mode(d: str, files, mode: str, config: dict, arp: bool) -> dict:
    """Replays ``files`` with loop ``mode`` into a fresh lab; everything visible afterwards."""
    lab = Lab(flows=EXAMPLE2, arp=arp, **config)
    sw = lab.sw
    per_frame = mode != "vector"
    out = os.path.join(d, mode)
    trace = os.path.join(d, f"{mode}.tsv")
    with alarm(_alarm_s[0]):
        s = replay(sw, "ctBr", files, out if per_frame else None, trace_path=trace if per_frame else None,
                   mode=mode)
    _alarm_s[0] = min(_alarm_s[0], ALARM_S)
    stats = sw.datapath.stats
    got = {
        "summary": (s.packets, dict(s.rx), dict(s.tx), s.first_ns, s.last_ns, s.error, s.interrupted),
        "conntrack -L": sorted(conntrack_tool.run(sw, ["-L"]).out.splitlines()),
        "dump-conntrack": sorted(dump_conntrack(sw, ["-s"]).out.splitlines()),
        "flows": ofctl.run(sw, ["dump-flows", "ctBr"]).out,
        "ports": [(p.name, p.rx_packets, p.rx_bytes, p.rx_dropped, p.tx_packets, p.tx_bytes, p.tx_dropped)
                  for p in lab.br.ports.values()],
        "stats": {k: v for k, v in stats.items() if k not in ("fast_hw", "fast_sw", "slow_path") and v},
        "processed": stats["fast_hw"] + stats["fast_sw"] + stats["slow_path"],
        "drops": {k: v for k, v in sw.datapath.drops.items() if v},
        "offload": sw.offload.counters(),
        "now": sw.now,
    }
    if per_frame:
        got["trace"] = open(trace).read()
        got["outputs"] = ({n: open(os.path.join(out, n), "rb").read() for n in sorted(os.listdir(out))}
                          if os.path.isdir(out) else {})
    got["_hits"] = stats["fast_hw"] + stats["fast_sw"]  # not compared: where frames went
    return got


def check(ports, inputs, chunk=None, max_records=None, config=0, arp=True) -> dict:
    """Replays the inputs with every loop; asserts they agree; returns the reference's view."""
    with tempfile.TemporaryDirectory() as d:
        files = write_inputs(d, ports, inputs)
        got = {}
        with small_chunks(chunk, max_records):
            for mode in MODES:
                got[mode] = run_mode(d, files, mode, CONFIGS[config], arp)
    ref = got["one"]
    for mode in ("batch", "vector"):
        for k, v in got[mode].items():
            if k != "_hits":
                assert v == ref[k], (mode, k)
    ref["_batch_hits"] = got["batch"]["_hits"]
    return ref


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenario())
def test_replay_loops_agree_on_random_inputs(sc):
    ports, inputs, chunk, max_records, config, arp = sc
    ref = check(ports, inputs, chunk, max_records, config, arp)
    # What the examples exercised (pytest --hypothesis-show-statistics).
    event(f"batch fast-path hits: {min(ref['_batch_hits'], 3)}{'+' if ref['_batch_hits'] >= 3 else ''}")
    event(f"frames: {ref['summary'][0] // 10 * 10}+")
    event(f"offloaded: {bool(ref['offload'].get('offloaded_hw') or ref['offload'].get('offloaded_sw'))}")
    event(f"flows expired/aged: {bool(ref['stats'].get('ct_expired') or ref['stats'].get('offload_aged'))}")
    event(f"malformed drops: {bool(ref['drops'])}")


# ------------------------------------------------------------------------------- regressions
def _tcp(d: str, flags: str, seq: int, ack: int, payload: bytes = b"", sport: int = 40001) -> tuple[str, bytes]:
    if d == "h":
        return d, build.ipv4_tcp(HOST, REMOTE, sport, 5001, flags, seq, ack, payload,
                                 src_mac=HOST_MAC, dst_mac=REMOTE_MAC)
    return d, build.ipv4_tcp(REMOTE, SNAT, 5001, sport, flags, seq, ack, payload,
                             src_mac=REMOTE_MAC, dst_mac=HOST_MAC)


def _udp(d: str, payload: bytes = b"u", sport: int = 34542) -> tuple[str, bytes]:
    if d == "h":
        return d, build.ipv4_udp(HOST, REMOTE, sport, 80, payload, src_mac=HOST_MAC, dst_mac=REMOTE_MAC)
    return d, build.ipv4_udp(REMOTE, SNAT, 80, sport, payload, src_mac=REMOTE_MAC, dst_mac=HOST_MAC)


def _inputs(timeline) -> tuple[list[str], list]:
    """(ports, inputs) of pf0hpf and p0 from ``timeline``: (time ms, (direction, frame)) or
    (time ms, (direction, frame), port) to have the frame arrive on another port."""
    ports = ["pf0hpf", "p0"]
    inputs = [("us", []), ("us", [])]
    for ms, (d, fr), *port in timeline:
        inputs[ports.index(port[0] if port else PORT_OF[d])][1].append((S + ms * MS, fr))
    return ports, inputs


def _established(t0: int = 0):
    """A TCP connection from the host, established and offloaded (data both ways), from ``t0`` ms."""
    return [(t0, _tcp("h", "S", 1000, 0)), (t0 + 1, _tcp("r", "SA", 5000, 1001)),
            (t0 + 2, _tcp("h", "A", 1001, 5001)), (t0 + 3, _tcp("h", "PA", 1001, 5001, b"x")),
            (t0 + 4, _tcp("r", "PA", 5001, 1002, b"y")), (t0 + 5, _tcp("h", "PA", 1002, 5002, b"x"))]


def test_equal_times_across_a_chunk_boundary_keep_the_input_order():
    """Found by the property: frames of several inputs at one time are merged by input order,
    also when an input's frames at that time are split across reader chunks.  The batched loops'
    window took every input's frames up to the cut-off time *inclusive*, so a later input's
    frames at that time went ahead of the earlier input's frames in its next chunk."""
    ports, inputs = _inputs([(0, _udp("h", sport=1000 + i)) for i in range(4)]
                            + [(0, _udp("r", sport=2000 + i)) for i in range(2)])
    ref = check(ports, inputs, chunk=100)  # 100 bytes: one 60-byte record per chunk
    rows = [ln.split("\t") for ln in ref["trace"].splitlines()[1:]]
    assert [r[2] for r in rows] == ["pf0hpf"] * 4 + ["p0"] * 2


def test_a_mac_move_after_a_kernel_hit_in_the_same_tick():
    """Found by the property (minimised).  The remote's frames reach pf0hpf too, so REMOTE_MAC
    moves between p0 and pf0hpf.  At 1 s the SYN-ACK on p0 hits the remote's cached decision
    (its hits refresh MAC learning: REMOTE_MAC on p0); at 1.001 s, in the same 1 s timer window,
    a frame from REMOTE_MAC on pf0hpf (the slow path moves REMOTE_MAC to pf0hpf), then the
    host's ACK to REMOTE_MAC: one frame at a time, NORMAL sends it to its input port, i.e. drops
    it.  The batched loops credit the kernel hit, and its MAC refresh "REMOTE_MAC on p0", only
    at the next sync, after the move: the MAC goes back to p0 and the ACK is sent to p0."""
    timeline = [
        (0, _tcp("h", "A", 1001, 5001)),  # picked up mid-stream: committed, SNAT, to p0
        (0, _tcp("r", "PA", 5001, 1001), "pf0hpf"),  # REMOTE_MAC on pf0hpf
        (0, _tcp("h", "S", 1000, 0)),
        (0, _tcp("r", "PA", 5001, 1001)),  # REMOTE_MAC on p0; the connection is offloaded
        (1000, _tcp("r", "SA", 5000, 1001)),  # a hit (a kernel hit in the batched loops)
        (1001, _tcp("r", "PA", 5001, 1001), "pf0hpf"),  # REMOTE_MAC moves to pf0hpf
        (1001, _tcp("h", "A", 1001, 5001)),  # to REMOTE_MAC: on its input port now
    ]
    ref = check(*_inputs(timeline))
    assert ref["trace"].splitlines()[-1].endswith("\t-")


def test_a_hardware_slot_freed_after_a_kernel_hit_in_the_same_tick():
    """Found by the property.  With ct_max_offloaded_conns=1 a TCP connection holds the one
    hardware slot and a UDP connection is offloaded in software only (refused).  In one 1 s
    timer window: a hit of the UDP connection (it retries the hardware insert: refused again),
    then the TCP connection's FIN (the slow path tears its offload down: the slot is free).
    The batched loops credit the UDP hit, and run its retry, only after the FIN: the UDP
    connection gets the slot ([HW_OFFLOAD] instead of [OFFLOAD], refused counted once less)."""
    timeline = _established() + [
        (100, _udp("h")), (101, _udp("r")), (102, _udp("h")),  # UDP offloaded, hardware refused
        (1500, _udp("r")),  # a kernel hit (batched loops): the retry is refused (slot taken)
        (1501, _tcp("r", "FA", 5002, 1003)),  # TCP offload torn down: the slot is free
    ]
    ref = check(*_inputs(timeline), config=3)
    assert any("udp" in ln and "[OFFLOAD]" in ln for ln in ref["conntrack -L"]), ref["conntrack -L"]


def test_hardware_retries_of_software_hits_in_bulk():
    """Found by the property (minimised).  A connection offloaded in software only (tc-policy
    skip_hw) retries the hardware insert at a hit when the last try is more than 1 s old
    (``OffloadManager._retry``).  Hits at 3 s and 3.007 s, then at 4.007 s: one frame at a
    time the retries are at 3 s and 4.007 s (1.007 s apart).  The batched loops credit the
    first two hits in bulk, the retry at the last one (3.007 s): at 4.007 s the last try is
    exactly 1 s old, no retry: one retry fewer (here only a counter; where the hardware has
    room, a connection that stays in software longer)."""
    timeline = _established() + [
        (3000, _tcp("h", "PA", 1002, 5002, b"x")), (3007, _tcp("h", "PA", 1003, 5002, b"x")),
        (4007, _tcp("h", "PA", 1004, 5002, b"x")),
    ]
    check(*_inputs(timeline), config=2)
