"""Offload commands: ``devlink resource show``, ``dpctl/offload-stats-show``, ``ctswitch explain``.

Each ``run_*`` takes the switch (duck-typed: ``switch.offload``, ``switch.tracker``,
``switch.params``, ``switch.now``) and the argv after the command words, and
returns a ``Result``; the text comes from ``ctswitch.offload.render``.

``explain`` takes conntrack-style filters (``-p``, ``-s``, ``-d``, ``--sport``,
``--dport``, ``-z`` and their long forms), matched against the original tuple,
and prints one block per connection (ordered by connection id) plus a summary.
"""

from __future__ import annotations

import ipaddress

from ..offload import render
from ..packet.headers import IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP
from .result import Result

DEV = render.DEFAULT_DEV

PROTO_BY_NAME = {"tcp": IPPROTO_TCP, "udp": IPPROTO_UDP, "icmp": IPPROTO_ICMP,
                 "icmpv6": IPPROTO_ICMPV6, "sctp": IPPROTO_SCTP, "gre": 47}

# option -> filter field
FILTER_OPTS: dict[str, str] = {
    "-p": "proto", "--proto": "proto", "--protonum": "proto",
    "-s": "src", "--src": "src", "--orig-src": "src",
    "-d": "dst", "--dst": "dst", "--orig-dst": "dst",
    "--sport": "sport", "--orig-port-src": "sport",
    "--dport": "dport", "--orig-port-dst": "dport",
    "-w": "zone", "-z": "zone", "--zone": "zone",  # conntrack spells it -w; -z kept for old habits
}


def _device(switch) -> str:
    return getattr(switch, "pci_dev", None) or DEV


def _no_offload(tool: str) -> Result:
    return Result(err=f"{tool}: the offload model is not available\n", code=1)


def run_devlink_resource_show(switch, argv: list[str], ctx=None) -> Result:
    """``devlink resource show [DEV]`` (the leading ``resource show`` words are optional)."""
    args = list(argv)
    for word in ("resource", "show"):
        if args and args[0] == word:
            args.pop(0)
    m = getattr(switch, "offload", None)
    if m is None:
        return _no_offload("devlink")
    dev = _device(switch)
    if len(args) > 1:
        return Result(err="Command line is not complete. Try again.\n", code=1)
    if args and args[0] != dev:
        if not args[0].startswith("pci/") and "/" not in args[0]:
            return Result(err="Bus name and device name are expected.\n", code=1)
        return Result(err="devlink answers: No such device\n", code=1)
    return Result(out=render.resource_show(m, dev))


def run_offload_stats_show(switch, argv: list[str], ctx=None) -> Result:
    """``ovs-appctl dpctl/offload-stats-show [DP]``."""
    m = getattr(switch, "offload", None)
    if m is None:
        return _no_offload("dpctl/offload-stats-show")
    if len(argv) > 1:
        return Result(err="'dpctl/offload-stats-show' command takes at most 1 arguments\n"
                      "ovs-appctl: ovs-vswitchd: server returned an error\n", code=2)
    return Result(out=render.offload_stats(m))


def parse_filters(argv: list[str]) -> tuple[dict, str | None]:
    """Conntrack-style filters -> ({field: value}, error or None)."""
    out: dict = {}
    i = 0
    while i < len(argv):
        opt = argv[i]
        name, eq, val = opt.partition("=")
        if eq and name.startswith("--"):
            opt = name
        field = FILTER_OPTS.get(opt)
        if field is None:
            return {}, f"unknown option `{argv[i]}'"
        if not eq:
            if i + 1 >= len(argv):
                return {}, f"option `{opt}' requires an argument"
            i += 1
            val = argv[i]
        i += 1
        try:
            if field == "proto":
                out[field] = PROTO_BY_NAME[val.lower()] if val.lower() in PROTO_BY_NAME else int(val, 0)
            elif field in ("src", "dst"):
                a = ipaddress.ip_address(val)
                out[field] = (a.version, int(a))
            else:
                v = int(val, 0)
                if not 0 <= v <= 65535:
                    raise ValueError
                out[field] = v
        except (ValueError, KeyError):
            return {}, f"bad parameter `{val}' for option `{opt}'"
    return out, None


def matches(conn, flt: dict) -> bool:
    """True when ``conn``'s original tuple satisfies every filter."""
    src, dst, sport, dport = conn.orig
    for field, v in flt.items():
        if field == "proto" and conn.proto != v:
            return False
        if field == "zone" and conn.zone != v:
            return False
        if field == "src" and (conn.ip_ver, src) != v:
            return False
        if field == "dst" and (conn.ip_ver, dst) != v:
            return False
        if field == "sport" and sport != v:
            return False
        if field == "dport" and dport != v:
            return False
    return True


def run_explain(switch, argv: list[str], ctx=None) -> Result:
    """``ctswitch explain [filters]``: why each connection is (not) offloaded."""
    m = getattr(switch, "offload", None)
    tracker = getattr(switch, "tracker", None)
    if m is None or tracker is None:
        return _no_offload("explain")
    flt, err = parse_filters(list(argv))
    if err is not None:
        return Result(err=f"ctswitch explain: {err}\n", code=2)
    conns = sorted((c for c in tracker.iter_conns() if matches(c, flt)), key=lambda c: c.id)
    text = "".join(render.explain_block(m, c) for c in conns)
    return Result(out=text + render.explain_summary(m, conns))


# Names the dispatchers use.
devlink_resource_show = run_devlink_resource_show
offload_stats_show = run_offload_stats_show
explain = run_explain
