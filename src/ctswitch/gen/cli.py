"""``ctswitch gen``: argparse front end of the traffic generator.

Theory of operation
-------------------
``cli_main(argv)`` parses its own options, applies a preset (its values are
defaults: explicit options win), and calls ``scenario.write`` or
``perf.generate``.  Errors are one line on stderr (``ctswitch gen: ...``) and
exit code 2; success prints one summary line per port and returns 0.
"""

from __future__ import annotations

import argparse
import sys

from . import perf, scenario

PRESETS: dict[str, dict] = {
    # Vendor example 1: ct only; ARP first, iperf-like TCP to 5001, UDP, ping, RoCE.
    "vendor1": dict(arp=True, tcp=4, tcp_dport=5001, data=8, size=1514, close="fin", udp=2, udp_dport=53,
                    udp_requests=2, icmp=1, icmp_count=3, roce=1, roce_packets=2, snat=None),
    # Vendor example 2: the same traffic, replies addressed to the SNAT address.
    "vendor2": dict(arp=True, tcp=4, tcp_dport=5001, data=8, size=1514, close="fin", udp=2, udp_dport=53,
                    udp_requests=2, icmp=1, icmp_count=3, roce=1, roce_packets=2, snat="1.1.1.16"),
}

_EPILOG = """\
Host traffic is written to OUT_DIR/<host-port>.pcap, remote traffic to OUT_DIR/<remote-port>.pcap;
timestamps give the global order. Presets: vendor1 (host 2.2.2.1 behind pf0hpf, remote 1.1.1.2
behind p0, ARP, 4 TCP conns to 5001 with 8 x 1514 B each way, 2 UDP/53 flows, 3 pings, RoCE),
vendor2 (the same, replies to --snat 1.1.1.16). --perf writes the OVS oracle's throughput shape.
Examples:
  ctswitch gen out --preset vendor2
  ctswitch gen out --tcp 1000 --src 2.2.2.1-2.2.2.10 --data 2 --close rst --rate 5000
  ctswitch gen out --perf --packets 10000000 --conns 10000 --size 64 --snat 1.1.1.16
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise scenario.GenError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="ctswitch gen", description="Write per-port pcaps of synthetic traffic.",
                epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out_dir", help="output directory (created)")
    p.add_argument("--preset", choices=sorted(PRESETS), help="vendor scenario defaults (options override)")
    g = p.add_argument_group("topology")
    g.add_argument("--host-port", default="pf0hpf", help="port of the host side (default pf0hpf)")
    g.add_argument("--remote-port", default="p0", help="port of the remote side (default p0)")
    g.add_argument("--host-mac", default="02:00:00:00:02:01", help="host MAC (default 02:00:00:00:02:01)")
    g.add_argument("--remote-mac", default="02:00:00:00:01:02", help="remote MAC (default 02:00:00:00:01:02)")
    g.add_argument("--src", default="2.2.2.1", help="host address, A-B range or CIDR (default 2.2.2.1)")
    g.add_argument("--dst", default="1.1.1.2", help="remote address, A-B range or CIDR (default 1.1.1.2)")
    g.add_argument("--snat", default=None, help="replies go to this address (SNAT); default: the source")
    g.add_argument("--no-arp", dest="arp", action="store_false", default=None, help="omit the ARP exchange")
    t = p.add_argument_group("TCP connections")
    t.add_argument("--tcp", type=int, default=None, metavar="N", help="number of TCP connections")
    t.add_argument("--tcp-dport", type=int, default=None, help="TCP destination port (default 5001)")
    t.add_argument("--tcp-sport", type=int, default=None, help="first TCP source port (default 40001)")
    t.add_argument("--data", type=int, default=None, metavar="D", help="data packets each way (default 4)")
    t.add_argument("--size", type=int, default=None, metavar="S",
                   help="frame bytes of data packets, 60..9018 (default 128; --perf: 64, 55..1514)")
    t.add_argument("--close", choices=scenario.CLOSES, default=None, help="fin (default), rst or open")
    u = p.add_argument_group("UDP, ICMP, RoCE")
    u.add_argument("--udp", type=int, default=None, metavar="N", help="UDP request/reply flows")
    u.add_argument("--udp-dport", type=int, default=None, help="UDP destination port (default 53)")
    u.add_argument("--udp-requests", type=int, default=None, metavar="K", help="requests per flow, each answered (default 1)")
    u.add_argument("--udp-oneway", type=int, default=None, metavar="N", help="one-way UDP streams (to --oneway-dport 9999)")
    u.add_argument("--oneway-dport", type=int, default=None, help="destination port of one-way streams (default 9999)")
    u.add_argument("--oneway-packets", type=int, default=None, metavar="K", help="packets per one-way stream (default 10)")
    u.add_argument("--icmp", type=int, default=None, metavar="N", help="ping sessions (one echo id each)")
    u.add_argument("--icmp-count", type=int, default=None, metavar="K", help="echo request/reply pairs per session (default 3)")
    u.add_argument("--roce", type=int, default=None, metavar="N", help="RoCEv2 udp/4791 streams (another sport back)")
    u.add_argument("--roce-packets", type=int, default=None, metavar="K", help="packets each way per RoCE stream (default 2)")
    s = p.add_argument_group("timing")
    s.add_argument("--rate", type=float, default=None, help="new flows per second (default 1000)")
    s.add_argument("--gap-us", type=float, default=None, help="µs between packets of one flow (default 10)")
    s.add_argument("--no-interleave", dest="interleave", action="store_false", default=None,
                   help="run flows one after the other instead of overlapping")
    s.add_argument("--start-ns", type=int, default=None, help="first timestamp, ns since the epoch")
    s.add_argument("--ns", action="store_true", help="nanosecond pcap timestamps")
    f = p.add_argument_group("throughput shape (--perf)")
    f.add_argument("--perf", action="store_true", help="the OVS oracle's bulk TCP shape (NumPy, millions of packets)")
    f.add_argument("--packets", type=int, default=1_000_000, help="approximate packet count (default 1000000)")
    f.add_argument("--conns", type=int, default=10_000, help="connections (default 10000)")
    f.add_argument("--lag", type=int, default=1024, help="filler frames at the start of the remote pcap (default 1024)")
    return p


def cli_main(argv: list[str]) -> int:
    """Runs ``ctswitch gen ARGV``; returns the exit code."""
    try:
        a = _parser().parse_args(argv)
        if a.perf:
            meta = perf.generate(a.out_dir, a.packets, a.conns, 64 if a.size is None else a.size,
                                 snat=a.snat, lag=a.lag, host_port=a.host_port, remote_port=a.remote_port,
                                 host_mac=a.host_mac, remote_mac=a.remote_mac,
                                 host_ip=scenario.parse_range(a.src)[0], remote_ip=scenario.parse_range(a.dst)[0])
            counts = meta["per_port"]
        else:
            sc = build_scenario(a)
            counts = scenario.write(sc, a.out_dir)
    except (scenario.GenError, ValueError) as e:
        print(f"ctswitch gen: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"ctswitch gen: {e.filename or a.out_dir}: {e.strerror}", file=sys.stderr)
        return 1
    for port, n in counts.items():
        print(f"{a.out_dir}/{port}.pcap: {n} packets")
    return 0


def build_scenario(a: argparse.Namespace) -> scenario.Scenario:
    """The Scenario for parsed options (preset values first, explicit options on top)."""
    sc = scenario.Scenario(host_port=a.host_port, remote_port=a.remote_port, host_mac=a.host_mac,
                           remote_mac=a.remote_mac, src=scenario.parse_range(a.src),
                           dst=scenario.parse_range(a.dst), nanosecond=a.ns)
    if a.preset:
        for k, v in PRESETS[a.preset].items():
            setattr(sc, k, v)
    explicit = {
        "snat": a.snat, "arp": a.arp, "tcp": a.tcp, "tcp_dport": a.tcp_dport, "tcp_sport": a.tcp_sport,
        "data": a.data, "size": a.size, "close": a.close, "udp": a.udp, "udp_dport": a.udp_dport,
        "udp_requests": a.udp_requests, "oneway": a.udp_oneway, "oneway_dport": a.oneway_dport,
        "oneway_packets": a.oneway_packets, "icmp": a.icmp, "icmp_count": a.icmp_count, "roce": a.roce,
        "roce_packets": a.roce_packets, "rate": a.rate, "interleave": a.interleave, "start_ns": a.start_ns,
    }
    for k, v in explicit.items():
        if v is not None:
            setattr(sc, k, v)
    if a.gap_us is not None:
        sc.gap_ns = int(a.gap_us * 1000)
    if sc.snat is not None:
        scenario.parse_range(sc.snat)
    for name in ("tcp_dport", "tcp_sport", "udp_dport", "oneway_dport"):
        if not 0 <= getattr(sc, name) <= 65535:
            raise scenario.GenError(f"--{name.replace('_', '-')} must be 0..65535")
    if not (sc.tcp or sc.udp or sc.oneway or sc.icmp or sc.roce or sc.arp):
        raise scenario.GenError("nothing to generate: give --preset, --tcp, --udp, --udp-oneway, --icmp or --roce")
    return sc
