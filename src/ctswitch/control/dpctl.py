"""ovs-appctl dpctl/*: the datapath's view of conntrack and of its flows.

dump-conntrack [-m] [-s] [zone=N], flush-conntrack [zone=N], ct-stats-show [-m],
ct-set-limits [default=N] [zone=Z,limit=L]..., ct-get-limits [zone=Z[,Z]...],
ct-del-limits zone=Z[,Z]..., ct-set-maxconns N, ct-get-maxconns, ct-get-nconns,
dump-flows [-m] [type=offloaded|non-offloaded|ovs|tc|all].

Error replies follow ovs-appctl: the message, then
"ovs-appctl: ovs-vswitchd: server returned an error", exit 2.
"""

from __future__ import annotations

from ..conntrack import render
from .result import Result

MAXCONNS = "sysctl:net.netfilter.nf_conntrack_max"


def _err(msg: str) -> Result:
    return Result(err=f"{msg}\novs-appctl: ovs-vswitchd: server returned an error\n", code=2)


def _zone_arg(argv: list[str]) -> tuple[int | None, list[str], str | None]:
    zone = None
    rest = []
    for a in argv:
        if a.startswith("zone="):
            try:
                zone = int(a[5:], 0)
            except ValueError:
                return None, [], f"failed to parse zone ({a})"
            if not 0 <= zone <= 0xFFFF:
                return None, [], f"failed to parse zone ({a})"
        else:
            rest.append(a)
    return zone, rest, None


def _sorted_conns(switch, zone):
    conns = [c for c in switch.tracker.iter_conns() if zone is None or c.zone == zone]
    return conns


def dump_conntrack(switch, argv, ctx=None) -> Result:
    zone, rest, err = _zone_arg(argv)
    if err:
        return _err(err)
    verbose = "-m" in rest or "--more" in rest
    stats = "-s" in rest or "--statistics" in rest
    for a in rest:
        if a not in ("-m", "--more", "-s", "--statistics") and not a.startswith("system@") and a != "netdev@ovs-netdev":
            return _err(f"invalid argument: {a}")
    lines = [render.dpctl_line(c, verbose=verbose, stats=stats, now=switch.now)
             for c in _sorted_conns(switch, zone)]
    return Result(out="".join(line + "\n" for line in lines))


def flush_conntrack(switch, argv, ctx=None) -> Result:
    zone, rest, err = _zone_arg(argv)
    if err:
        return _err(err)
    if rest:
        return _err("flushing by tuple is not supported; use `ctswitch conntrack -D` with filters")
    off = switch.offload
    if off is not None:
        off.flush(switch.now, zone)
    switch.tracker.flush(zone, switch.now)
    if switch.datapath is not None:
        switch.datapath.flush_cache()
    return Result(changed=True)


def ct_stats_show(switch, argv, ctx=None) -> Result:
    zone, rest, err = _zone_arg(argv)
    if err:
        return _err(err)
    verbose = "-m" in rest or "--more" in rest
    return Result(out=render.ct_stats_show(_sorted_conns(switch, zone), verbose=verbose))


def ct_set_limits(switch, argv, ctx=None) -> Result:
    tr = switch.tracker
    for a in argv:
        if a.startswith("default="):
            try:
                tr.set_zone_limit(None, int(a[8:]))
            except ValueError:
                return _err(f"invalid default limit: {a}")
        elif a.startswith("zone="):
            parts = dict(p.split("=", 1) for p in a.split(",") if "=" in p)
            try:
                tr.set_zone_limit(int(parts["zone"]), int(parts["limit"]))
            except (KeyError, ValueError):
                return _err(f"failed to parse zone limit ({a})")
        else:
            return _err(f"invalid argument: {a}")
    return Result(changed=True)


def _limits(tr):
    lim = tr.limits
    return getattr(lim, "default", 0), dict(getattr(lim, "zones", {}) or {})


def ct_get_limits(switch, argv, ctx=None) -> Result:
    tr = switch.tracker
    default, zones = _limits(tr)
    want = None
    for a in argv:
        if a.startswith("zone="):
            try:
                want = [int(z) for z in a[5:].split(",") if z]
            except ValueError:
                return _err(f"failed to parse zone ({a})")
    out = [f"default limit={default}"]
    for z in sorted(want if want is not None else zones):
        lim = zones.get(z, default)
        out.append(f"zone={z},limit={lim},count={tr.zone_count(z)}")
    return Result(out="\n".join(out) + "\n")


def ct_del_limits(switch, argv, ctx=None) -> Result:
    tr = switch.tracker
    _default, zones = _limits(tr)
    for a in argv:
        if not a.startswith("zone="):
            return _err(f"invalid argument: {a}")
        for z in a[5:].split(","):
            try:
                zi = int(z)
            except ValueError:
                return _err(f"failed to parse zone ({a})")
            if hasattr(tr.limits, "delete"):
                tr.limits.delete(zi)
            else:
                tr.set_zone_limit(zi, 0)
    return Result(changed=True)


def ct_set_maxconns(switch, argv, ctx=None) -> Result:
    if len(argv) != 1 or not argv[0].isdigit():
        return _err("maxconns missing or malformed")
    switch.params.set(MAXCONNS, int(argv[0]))
    return Result(changed=True)


def ct_get_maxconns(switch, argv, ctx=None) -> Result:
    return Result(out=f"{switch.params.get(MAXCONNS)}\n")


def ct_get_nconns(switch, argv, ctx=None) -> Result:
    return Result(out=f"{switch.tracker.count()}\n")


def dump_flows(switch, argv, ctx=None) -> Result:
    """Datapath flows: the fast-path decisions cached for offloaded connections."""
    from ..datapath.dpflows import format_dp_flows
    verbose = "-m" in argv or "--more" in argv
    typ = "all"
    for a in argv:
        if a.startswith("type="):
            typ = a[5:]
            if typ not in ("all", "ovs", "tc", "offloaded", "non-offloaded", "partially-offloaded", "dpdk"):
                return _err(f"invalid dump type: {typ}")
    return Result(out=format_dp_flows(switch, typ, verbose))
