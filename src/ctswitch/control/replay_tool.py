"""``ctswitch replay``: pcap replay into a bridge on the simulated clock, with a summary.

    ctswitch [--db DB] replay BR --in PORT=FILE [--in PORT=FILE ...] [--out-dir DIR]
                               [--trace FILE] [--realtime|--fast] [--quiet]
"""

from __future__ import annotations

import argparse
import os
import sys

from .result import Result


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one clear line, no usage dump
        raise ValueError(message)


def _parser() -> _Parser:
    p = _Parser(prog="ctswitch replay", add_help=False,
                description="Replay per-port pcaps into a bridge on the switch's simulated clock.")
    p.add_argument("bridge")
    p.add_argument("--in", dest="inputs", action="append", default=[], metavar="PORT=FILE",
                   help="frames arriving on PORT (repeat for each ingress port)")
    p.add_argument("--out-dir", help="write one pcap per transmitting port here")
    p.add_argument("--trace", help="write a per-packet trace (idx, ts, in_port, len, outputs)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--realtime", action="store_true", help="pace frames at their pcap timestamps")
    g.add_argument("--fast", action="store_true", help="as fast as possible (default)")
    p.add_argument("--quiet", "-q", action="store_true", help="no summary")
    p.add_argument("-h", "--help", action="store_true")
    return p


def run(switch, argv: list[str], ctx=None) -> Result:
    from ..io.replay import ReplayError, replay
    p = _parser()
    try:
        a = p.parse_args(argv)
    except ValueError as e:
        return Result(err=f"ctswitch replay: {e}\n", code=2)
    if a.help:
        return Result(out=p.format_help())
    if not a.inputs:
        return Result(err="ctswitch replay: at least one --in PORT=FILE is required\n", code=2)
    cwd = getattr(ctx, "cwd", None) or os.getcwd()
    inputs = []
    for item in a.inputs:
        port, eq, path = item.partition("=")
        if not eq or not port or not path:
            return Result(err=f"ctswitch replay: --in {item}: expected PORT=FILE\n", code=2)
        inputs.append((port, path if os.path.isabs(path) else os.path.join(cwd, path)))
    out_dir = a.out_dir and (a.out_dir if os.path.isabs(a.out_dir) else os.path.join(cwd, a.out_dir))
    trace = a.trace and (a.trace if os.path.isabs(a.trace) else os.path.join(cwd, a.trace))
    before = _counters(switch)
    progress = None
    bar = None
    if sys.stderr.isatty() and not a.quiet:
        try:
            from rich.progress import Progress, SpinnerColumn, TextColumn
            bar = Progress(SpinnerColumn(), TextColumn("replaying: {task.completed:,} packets"),
                           transient=True)
            task = bar.add_task("replay", total=None)
            bar.start()
            progress = lambda n: bar.update(task, completed=n)  # noqa: E731
        except ImportError:
            bar = None
    try:
        s = replay(switch, a.bridge, inputs, out_dir, realtime=a.realtime, trace_path=trace,
                   progress=progress)
    except ReplayError as e:
        return Result(err=f"ctswitch replay: {e}\n", code=1)
    finally:
        if bar is not None:
            bar.stop()
    text = "" if a.quiet else summary_text(switch, s, before)
    if s.error:
        return Result(out=text, err=f"ctswitch replay: {s.error} (replay stopped; state saved)\n",
                      code=1, changed=True)
    if s.interrupted:
        return Result(out=text, err="ctswitch replay: interrupted (state saved)\n", code=130, changed=True)
    return Result(out=text, changed=True)


def _counters(switch) -> dict:
    dp = switch.datapath
    c = dict(dp.stats) if dp is not None else {}
    c["_drops"] = dict(dp.drops) if dp is not None else {}
    c["_ct_insert"] = getattr(switch.tracker, "created", 0)
    c["_log_total"] = getattr(switch.tracker, "log_total", 0)
    off = switch.offload
    oc = getattr(off, "counters", None)
    c["_off"] = dict(oc()) if callable(oc) else {}
    return c


def summary_text(switch, s, before: dict) -> str:
    after = _counters(switch)

    def d(k):
        return after.get(k, 0) - before.get(k, 0)

    dur = ((s.last_ns or 0) - (s.first_ns or 0)) / 1e9
    rate = s.packets / s.wall_s if s.wall_s > 0 else 0.0
    lines = [f"replayed {s.packets:,} packets ({dur:.3f} s of traffic) in {s.wall_s:.2f} s "
             f"({rate:,.0f} packets/s); switch time {switch.now / 1000:.3f} s"]
    names = sorted(set(s.rx) | set(s.tx))
    if names:
        w = max(6, *(len(n) for n in names))
        lines.append(f"  {'port':<{w}} {'rx':>10} {'tx':>10}")
        for n in names:
            lines.append(f"  {n:<{w}} {s.rx.get(n, 0):>10,} {s.tx.get(n, 0):>10,}")
    drops = {k: v - before["_drops"].get(k, 0) for k, v in after["_drops"].items()
             if v - before["_drops"].get(k, 0)}
    total = sum(drops.values())
    lines.append(f"  dropped: {total:,}" + (" (" + ", ".join(f"{k}: {v:,}" for k, v in
                                                           sorted(drops.items(), key=lambda kv: -kv[1])) + ")" if drops else ""))
    fast = d("fast_hw") + d("fast_sw")
    share = 100.0 * fast / s.packets if s.packets else 0.0
    lines.append(f"  connections created: {after['_ct_insert'] - before['_ct_insert']:,}; "
                 f"expired: {d('ct_expired'):,}; offload aged out: {d('offload_aged'):,}")
    off_now = _offloaded_now(switch)
    if off_now is not None:
        lines.append(f"  offloaded now: {off_now[0]:,} [HW_OFFLOAD], {off_now[1]:,} [OFFLOAD] (software only)")
    lines.append(f"  fast path: {fast:,} packets ({share:.1f}%): {d('fast_hw'):,} in hardware, "
                 f"{d('fast_sw'):,} in the software flowtable; slow path: {d('slow_path'):,}")
    for _name, path in sorted(s.outputs.items()):
        lines.append(f"  wrote {path}")
    new_logs = after["_log_total"] - before["_log_total"]
    if new_logs and switch.tracker is not None:
        shown = switch.tracker.log[-min(new_logs, 20):]
        lines.append(f"  kernel log ({new_logs} new line{'s' if new_logs != 1 else ''}"
                     f"{', the last 20' if new_logs > 20 else ''}):")
        lines.extend(f"    {m}" for m in shown)
    return "\n".join(lines) + "\n"


def _offloaded_now(switch):
    tr = switch.tracker
    if tr is None or not hasattr(tr, "snapshot"):
        return None
    from ..datapath.datapath import IPS_HW_OFFLOAD, IPS_OFFLOAD
    hw = sw = 0
    for c in tr.snapshot():  # reads only: thaws nothing
        if c.status & IPS_HW_OFFLOAD:
            hw += 1
        elif c.status & IPS_OFFLOAD:
            sw += 1
    return hw, sw
