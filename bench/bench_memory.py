"""Memory per offloaded connection: Tracker + OffloadManager at 100k and 1M connections, then
the whole switch (``switch_child``: datapath caches and batch table included).

Each size runs in a fresh subprocess: RSS after building the switch, then
after filling it (both directions indexed by the tracker, every connection
offloaded: SYN with ct(commit,nat(src=1.1.1.16)), SYN-ACK, ACK, then
``OffloadManager.consider``), delta divided by the connection count.  The fill
is driven at the tracker level (codec.parse, flow key, ``Tracker.process``
with the vendor flows' ct() actions), frames built in untimed chunks; the fill
time is that of parse + conntrack + offload only (the offload manager freezes
idle offloaded connections into the compact tier as it goes, see
``conntrack/cold.py``; the time includes that).  Connections arrive over switch
time at the fill's own pace, one every 40 us (25k conn/s), not all at one
instant: the manager freezes only connections idle for ``COLD_IDLE_MS``, as a
switch under such a load would (no GC tick runs, so none ages out).  The batched fast-path table for
the same connections (``FastTable``, both directions) is measured apart.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import time

from bench.common import check_flags, report, rss_bytes

CHUNK = 1_000
PACE = 25  # connections per ms of switch time


FLAGS = {  # the command line (common.check_flags; run_all passes each module only its own)
    "--quick": "a short pass (smaller sizes, fewer runs)",
    "--no-save": "print only, do not append to docs/benchmarks.md",
}

def child(n: int) -> dict:
    from bench.switchbench import handshake, make_switch
    from ctswitch.flow.actions import Ct
    from ctswitch.flow.key import extract
    from ctswitch.packet import codec

    sw, br = make_switch(True, max_offloaded=n)
    sw.params.set("sysctl:net.netfilter.nf_conntrack_max", max(2 * n, 262144))
    cts = [a for r in br.iter_rules() for a in r.actions if isinstance(a, Ct)]
    ct_lookup = next(a for a in cts if not a.commit)
    ct_commit = next(a for a in cts if a.commit)
    tr, off = sw.tracker, sw.offload
    gc.collect()
    base = rss_bytes()
    fill = 0.0
    for start in range(0, n, CHUNK):
        pkts = [[(port, codec.parse(fr)) for port, fr in handshake(c)] for c in range(start, min(n, start + CHUNK))]
        t0 = time.perf_counter()
        for i, ((p1, syn), (p2, sa), (p3, ack)) in enumerate(pkts, start):
            now = 1000 + i // PACE
            k = extract(syn, p1)
            tr.process(syn, k, 0, ct_lookup, now)
            tr.process(syn, k, 0, ct_commit, now)
            tr.process(sa, extract(sa, p2), 0, ct_lookup, now)
            v = tr.process(ack, extract(ack, p3), 0, ct_lookup, now)
            off.consider(v.conn, now, pkt=ack)
        fill += time.perf_counter() - t0
        del pkts
    gc.collect()
    after = rss_bytes()
    conns = len(tr)
    offl = off.counters()["offloaded"]
    frozen = tr._ncold
    cold_bytes = tr._cold.nbytes() if tr._cold is not None else 0
    row = tr._cold.size if tr._cold is not None else 0
    # The batched fast-path table for the same connections, measured apart.
    from bench.traffic import fill_table
    fill_table(10)  # imports numba and loads the compiled kernels before measuring
    gc.collect()
    b2 = rss_bytes()
    t0 = time.perf_counter()
    ft = fill_table(n)
    ft_fill = time.perf_counter() - t0
    ft_rss = rss_bytes() - b2
    return {"n": n, "conns": conns, "offloaded": offl, "frozen": frozen, "cold_bytes": cold_bytes, "row": row,
            "delta": after - base, "fill_s": fill,
            "ft_bytes": ft.nbytes, "ft_rss": ft_rss, "ft_fill_s": ft_fill}


def switch_child(n: int) -> dict:
    """The same connections in a whole switch: every frame through ``Datapath.receive`` with the
    batch table on (as the replay and the daemon run it), both directions cached (handshake plus
    one reply), over switch time at PACE; the RSS delta covers the tracker, the offload
    manager, the datapath's caches and the batch table (the modelled eSwitch FDB)."""
    from bench.switchbench import data, handshake, make_switch

    sw, br = make_switch(True, max_offloaded=n)
    sw.params.set("sysctl:net.netfilter.nf_conntrack_max", max(2 * n, 262144))
    dp = sw.datapath
    dp.enable_batch(capacity=max(1 << 18, 2 * n + 1024))
    for port, fr in handshake(n + 1) + [data(n + 1, True)]:  # loads the compiled kernels outside the window
        dp.receive(br, port, fr, 999)
    recv = dp.receive
    gc.collect()
    base = rss_bytes()
    fill = 0.0
    for start in range(0, n, CHUNK):
        pkts = [handshake(c) + [data(c, True)] for c in range(start, min(n, start + CHUNK))]
        t0 = time.perf_counter()
        for i, conn in enumerate(pkts, start):
            now = 1000 + i // PACE
            for port, fr in conn:
                recv(br, port, fr, now)
        fill += time.perf_counter() - t0
        del pkts
    gc.collect()
    tr = sw.tracker
    return {"n": n, "conns": len(tr), "offloaded": sw.offload.counters()["offloaded"], "frozen": tr._ncold,
            "cached": dp.n_cached(), "delta": rss_bytes() - base, "fill_s": fill}


def sample_sizes(n: int = 2000) -> list[str]:
    """What one connection is made of (sys.getsizeof of its parts, shallow)."""
    from bench.switchbench import make_switch

    sw, br = make_switch(True, max_offloaded=n)
    from bench.switchbench import establish
    establish(sw, br, 10)
    c = next(iter(sw.tracker.iter_conns()))
    parts = {"Conn": sys.getsizeof(c)}
    for name in ("orig", "reply", "okey", "rkey", "packets", "bytes", "tcp", "offload"):
        v = getattr(c, name, None)
        if v is not None:
            parts[name] = sys.getsizeof(v)
    if c.tcp is not None:
        for name in getattr(type(c.tcp), "__slots__", ()):
            v = getattr(c.tcp, name)
            if isinstance(v, tuple | list):
                parts[f"tcp.{name}"] = sys.getsizeof(v) + sum(sys.getsizeof(x) for x in v)
    return [f"{k} {v} B" for k, v in parts.items()]


def main(argv: list[str]) -> list[str]:
    if argv and argv[0] == "--child":
        print(json.dumps(child(int(argv[1]))))
        return []
    if argv and argv[0] == "--switch-child":
        print(json.dumps(switch_child(int(argv[1]))))
        return []
    check_flags(argv, FLAGS, "bench_memory")
    quick = "--quick" in argv
    sizes = (20_000,) if quick else (100_000, 1_000_000)
    lines = ["| conns | offloaded | frozen (compact tier) | RSS delta | B/conn (target <= 256) | compact tier "
             "rows + index B/conn | fill time | fill rate | FastTable arrays B/conn | FastTable fill |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for n in sizes:
        p = subprocess.run([sys.executable, "-m", "bench.bench_memory", "--child", str(n)], capture_output=True,
                           text=True, timeout=3600)
        if p.returncode != 0:
            lines.append(f"| {n:,} | failed: {p.stderr.strip().splitlines()[-1] if p.stderr else p.returncode} |")
            continue
        r = json.loads(p.stdout.strip().splitlines()[-1])
        lines.append(f"| {n:,} | {r['offloaded']:,} | {r['frozen']:,} | {r['delta'] / 2**20:.0f} MiB | "
                     f"**{r['delta'] / n:.0f}** | {r['cold_bytes'] / n:.0f} (row {r['row']} B) | "
                     f"{r['fill_s']:.1f} s | {n / r['fill_s']:,.0f} conn/s | {r['ft_bytes'] / n:.0f} "
                     f"(RSS {r['ft_rss'] / n:.0f}) | {r['ft_fill_s']:.1f} s |")
        print(lines[-1])
    lines += ["", "The whole switch (every frame through `Datapath.receive`, batch table on, both directions "
              "cached): tracker, offload manager, the datapath's caches and the batch table (the modelled "
              "eSwitch FDB) together.", "",
              "| conns | offloaded | frozen | cached directions | RSS delta | B/conn | fill rate |",
              "|---|---|---|---|---|---|---|"]
    for n in sizes:
        p = subprocess.run([sys.executable, "-m", "bench.bench_memory", "--switch-child", str(n)],
                           capture_output=True, text=True, timeout=3600)
        if p.returncode != 0:
            lines.append(f"| {n:,} | failed: {p.stderr.strip().splitlines()[-1] if p.stderr else p.returncode} |")
            continue
        r = json.loads(p.stdout.strip().splitlines()[-1])
        lines.append(f"| {n:,} | {r['offloaded']:,} | {r['frozen']:,} | {r['cached']:,} | "
                     f"{r['delta'] / 2**20:.0f} MiB | **{r['delta'] / n:.0f}** | {n / r['fill_s']:,.0f} conn/s |")
        print(lines[-1])
    lines.append("")
    lines.append("Shallow sizes of one offloaded TCP connection's objects while it is not frozen (offloaded "
                 "or used in the last 200 ms, or referenced elsewhere): " + ", ".join(sample_sizes()))
    return report("Memory per offloaded connection", "bench.bench_memory", argv, lines)


if __name__ == "__main__":
    main(sys.argv[1:])
