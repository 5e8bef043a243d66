"""ovs-appctl dpctl/*: the datapath's view of conntrack and of its flows.

dump-conntrack [-m] [-s] [dp] [zone=N], flush-conntrack [dp] [zone=N] [ct-orig-tuple],
ct-stats-show [-m] [dp] [zone=N], ct-bkts [dp] [gt=N], ct-set-limits [dp] [default=L]
[zone=N,limit=L]..., ct-get-limits [dp] [zone=N1[,N2]...], ct-del-limits [dp] zone=N1[,N2]...,
ct-set-maxconns, ct-get-maxconns, ct-get-nconns, dump-flows [-m] [type=...].

Theory of operation
-------------------
Arguments are taken as OVS 3.1's lib/dpctl.c takes them through ovs-appctl: unixctl checks
the argument count of the command's table entry (``"dpctl/X" command requires at least N
arguments`` / ``takes at most N arguments``), ``dpctl_unixctl_handler`` consumes leading
``-m``/``-s``/``--more``/``--statistics`` (``Unrecognized option -x``), then each command
scans its own arguments (``zone=%SCNu16`` only in the last place, ...) and opens the one
datapath (``system@ovs-system``; ``opt_dpif_open``: an unparsed argument in the last possible
place is "datapath not found").  Errors are ``dpctl_error``'s ``ovs-vswitchd: MSG (strerror)``
followed by ovs-appctl's ``ovs-appctl: ovs-vswitchd: server returned an error``, exit 2.

The datapath is the kernel one (dpif-netlink): ct-bkts answers that it is for the userspace
conntrack only, ct-set-maxconns/ct-get-maxconns/ct-get-nconns are not implemented by it
(Operation not supported; nf_conntrack_max is a sysctl), a tuple flush is one
IPCTNL_MSG_CT_DELETE (either direction's tuple, in zone N or 0; ENOENT when absent), and zone
limits are the openvswitch module's (a zone without its own limit reports the default).
"""

from __future__ import annotations

import ipaddress
import re

from ..conntrack import render
from .result import Result

DATAPATHS = ("system@ovs-system", "ovs-system")
EINVAL = "Invalid argument"
ENOENT = "No such file or directory"
EOPNOTSUPP = "Operation not supported"
APPCTL_TAIL = "ovs-appctl: ovs-vswitchd: server returned an error\n"
# lib/dpctl.c all_commands: (min_args, max_args) as registered with unixctl.
ARG_COUNTS = {"dump-conntrack": (0, 4), "flush-conntrack": (0, 3), "ct-stats-show": (0, 3),
              "ct-bkts": (0, 2), "ct-set-maxconns": (1, 2), "ct-get-maxconns": (0, 1),
              "ct-get-nconns": (0, 1), "ct-set-limits": (1, 1 << 31), "ct-del-limits": (1, 2),
              "ct-get-limits": (0, 2)}


class _Fail(Exception):
    """An error reply: ``text`` is what ovs-vswitchd sends back."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _reply_error(text: str) -> Result:
    return Result(err=text + "\n" + APPCTL_TAIL, code=2)


def _err(msg: str, errno: str | None = EINVAL) -> Result:
    """``dpctl_error(dpctl_p, errno, msg)`` as ovs-appctl shows it."""
    return _reply_error(f"ovs-vswitchd: {msg}" + (f" ({errno})" if errno else ""))


def _dpctl_error(msg: str, errno: str | None = EINVAL) -> _Fail:
    return _Fail(f"ovs-vswitchd: {msg}" + (f" ({errno})" if errno else ""))


def _command(name: str, argv: list[str]) -> tuple[int, bool, list[str]]:
    """unixctl's argument count check, then dpctl_unixctl_handler's options: (verbosity,
    statistics, the arguments left)."""
    lo, hi = ARG_COUNTS[name]
    if len(argv) < lo:
        raise _Fail(f'"dpctl/{name}" command requires at least {lo} arguments')
    if len(argv) > hi:
        raise _Fail(f'"dpctl/{name}" command takes at most {hi} arguments')
    verbosity, stats, i = 0, False, 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("--"):
            if a == "--statistics":
                stats = True
            elif a == "--more":
                verbosity += 1
            elif a not in ("--clear", "--may-create", "--names", "--no-names"):
                raise _Fail(f"Unrecognized option {a}")
        elif a.startswith("-") and len(a) > 1:
            for ch in a[1:]:
                if ch == "m":
                    verbosity += 1
                elif ch == "s":
                    stats = True
                else:
                    raise _Fail(f"Unrecognized option -{ch}")
        else:
            break
        i += 1
    return verbosity, stats, argv[i:]


def _dp_arg(args: list[str]) -> bool:
    return bool(args) and args[0] in DATAPATHS


def _open(args: list[str], max_args: int) -> None:
    """opt_dpif_open: argc counts the command name; the datapath may be named first, else the
    only one is used, unless the arguments fill every place (then the first should have been
    the datapath)."""
    if not _dp_arg(args) and len(args) + 1 == max_args:
        raise _dpctl_error("datapath not found")


def _scan_uint(text: str, bits: int) -> int | None:
    """ovs_scan ``%SCNu16``/``%SCNu32``: leading digits (the rest is ignored)."""
    m = re.match(r"\s*\+?(\d+)", text)
    if not m or int(m.group(1)) >= 1 << bits:
        return None
    return int(m.group(1))


def _scan_zone(text: str) -> int | None:
    return _scan_uint(text[5:], 16) if text.startswith("zone=") else None


def _run(name: str, fn, argv: list[str]) -> Result:
    try:
        return fn(*_command(name, argv))
    except _Fail as e:
        return _reply_error(e.text)


def _conns(switch, zone):
    """The connections of ``zone`` (None: all) to read: the tracker's snapshot thaws nothing."""
    return [c for c in switch.tracker.snapshot() if zone is None or c.zone == zone]


def dump_conntrack(switch, argv, ctx=None) -> Result:
    def go(verbosity, stats, args):
        zone = _scan_zone(args[-1]) if args else None
        if zone is not None:
            args = args[:-1]
        _open(args, 2)
        lines = [render.dpctl_line(c, verbose=verbosity > 0, stats=stats, now=switch.now)
                 for c in _conns(switch, zone)]
        return Result(out="".join(line + "\n" for line in lines))
    return _run("dump-conntrack", go, argv)


def _str_to_uint(value: str, bits: int) -> int | None:
    """str_to_u8/u16/u32: the whole value, decimal or 0x hex, in range."""
    try:
        v = int(value, 16) if value.lower().startswith("0x") else int(value, 10)
    except ValueError:
        return None
    return v if 0 <= v < 1 << bits else None


def _key_values(text: str) -> list[tuple[str, str]]:
    """ofputil_parse_key_value over a comma-separated list (``key=value``, ``key:value``)."""
    out = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        m = re.match(r"([^=:]*)[=:]?(.*)", item)
        out.append((m.group(1), m.group(2)))
    return out


def _parse_tuple(text: str):
    """OVS 3.1 ct_dpif_parse_tuple: (ip_ver, proto, (src, dst, sport|id, dport|type<<8|code))
    or an error message."""
    ver = 0
    src = dst = proto = sport = dport = itype = icode = iid = 0
    for key, value in _key_values(text):
        if not value:
            return f"field {key} missing value"
        if key in ("ct_nw_src", "ct_nw_dst", "ct_ipv6_src", "ct_ipv6_dst"):
            want = 4 if key.startswith("ct_nw") else 6
            try:
                a = ipaddress.ip_address(value)
            except ValueError:
                return f"failed to parse field {key}"
            if a.version != want:
                return f"failed to parse field {key}"
            if ver and ver != want:
                return "L3 type set multiple times"
            ver = want
            if key.endswith("src"):
                src = int(a)
            else:
                dst = int(a)
        elif key == "ct_nw_proto":
            v = _str_to_uint(value, 8)
            if v is None:
                return f"failed to parse field {key}"
            proto = v
        elif key in ("ct_tp_src", "ct_tp_dst", "icmp_id"):
            v = _str_to_uint(value, 16)
            if v is None:
                return f"failed to parse field {key}"
            if key == "ct_tp_src":
                sport = v
            elif key == "ct_tp_dst":
                dport = v
            else:
                iid = v
        elif key in ("icmp_type", "icmp_code"):
            v = _str_to_uint(value, 8)
            if v is None:
                return f"failed to parse field {key}"
            if key == "icmp_type":
                itype = v
            else:
                icode = v
        else:
            return f"invalid conntrack tuple field: {key}"
    icmp = proto in (1, 58)
    if (not src or not dst or not proto) and not icmp and (not sport or not dport):
        return "at least one of the conntrack 5-tuple fields is missing."
    tup = (src, dst, iid, itype << 8 | icode) if icmp else (src, dst, sport, dport)
    return ver or 4, proto, tup


def flush_conntrack(switch, argv, ctx=None) -> Result:
    def go(verbosity, stats, args):
        n = len(args)
        msg = ""
        tup = None
        if n:
            parsed = _parse_tuple(args[n - 1])
            if isinstance(parsed, tuple):
                tup = parsed
                n -= 1
            else:
                msg = parsed  # kept, as OVS keeps it in its ds, for a later error
        zone = _scan_zone(args[n - 1]) if n else None
        if zone is not None:
            n -= 1
        if n > 1:
            raise _dpctl_error(msg + "invalid arguments")
        # Like OVS, one argument that is neither a tuple nor zone=N is ignored (flush all).
        _open(args, 4)
        if tup is not None:
            ver, proto, t = tup
            conn = switch.tracker.find(zone or 0, ver, proto, t)
            if conn is None:
                raise _dpctl_error("failed to flush conntrack", ENOENT)
            switch.tracker.delete(conn, switch.now)
        else:
            if switch.offload is not None:
                switch.offload.flush(switch.now, zone)
            switch.tracker.flush(zone, switch.now)
        if switch.datapath is not None:
            switch.datapath.flush_cache()
        return Result(changed=True)
    return _run("flush-conntrack", go, argv)


def ct_stats_show(switch, argv, ctx=None) -> Result:
    def go(verbosity, stats, args):
        verbose = verbosity > 0
        zone = None
        last = None
        while args and last != len(args):
            last = len(args)
            a = args[-1]
            if a.startswith("verbose"):
                verbose = True
                args = args[:-1]
            elif a.startswith("zone=") and _scan_zone(a) is not None:
                zone = _scan_zone(a)
                args = args[:-1]
        _open(args, 2)
        return Result(out=render.ct_stats_show(_conns(switch, zone), verbose=verbose))
    return _run("ct-stats-show", go, argv)


def ct_bkts(switch, argv, ctx=None) -> Result:
    """The kernel datapath has no buckets to show (dpif-netlink's dump gives tot_bkts -1)."""
    def go(verbosity, stats, args):
        if args and args[-1].startswith("gt=") and _scan_uint(args[-1][3:], 16) is not None:
            args = args[:-1]
        _open(args, 2)
        return Result(out="Command is available for UserSpace ConnTracker only.\n")
    return _run("ct-bkts", go, argv)


def _zone_limit(text: str) -> tuple[int, int]:
    """ct_dpif_parse_zone_limit_tuple."""
    zone = limit = None
    for key, value in _key_values(text):
        if not value:
            raise _dpctl_error(f"field {key} missing value")
        if key == "zone":
            zone = _str_to_uint(value, 16)
            if zone is None:
                raise _dpctl_error(f"failed to parse field {key}")
        elif key == "limit":
            limit = _str_to_uint(value, 32)
            if limit is None:
                raise _dpctl_error(f"failed to parse field {key}")
        else:
            raise _dpctl_error(f"invalid zone limit field: {key}")
    if zone is None or limit is None:
        raise _dpctl_error("failed to parse zone limit")
    return zone, limit


def ct_set_limits(switch, argv, ctx=None) -> Result:
    def go(verbosity, stats, args):
        i = 1 if _dp_arg(args) else 0
        default = None
        if i < len(args) and args[i].startswith("default="):
            default = _scan_uint(args[i][8:], 32)
            if default is None:
                raise _dpctl_error("invalid default limit")
            i += 1
        zones = [_zone_limit(a) for a in args[i:]]
        tr = switch.tracker
        if default is not None:
            tr.set_zone_limit(None, default)
        for z, lim in zones:
            tr.set_zone_limit(z, lim)
        return Result(changed=True)
    return _run("ct-set-limits", go, argv)


def _limit_zones(text: str | None) -> list[int]:
    """parse_ct_limit_zones: ``zone=N1[,N2]...``."""
    if text is None or not text.startswith("zone="):
        raise _dpctl_error(f"invalid argument {text}")
    zones = []
    for tok in [t for t in text[5:].split(",") if t] or [""]:
        z = _scan_uint(tok, 16)
        if z is None:
            raise _dpctl_error("invalid zone")
        zones.append(z)
    return zones


def ct_get_limits(switch, argv, ctx=None) -> Result:
    def go(verbosity, stats, args):
        i = 1 if _dp_arg(args) else 0
        _open(args, 3)
        lim = switch.tracker.limits
        # Queried zones in the order asked (a zone without its own limit has the default);
        # else every zone with its own limit (the module's hash order: by zone).
        zones = _limit_zones(args[i]) if len(args) > i else sorted(lim.zones)
        out = [f"default limit={lim.default}"]
        out += [f"zone={z},limit={lim.limit(z)},count={switch.tracker.zone_count(z)}" for z in zones]
        return Result(out="\n".join(out) + "\n")
    return _run("ct-get-limits", go, argv)


def ct_del_limits(switch, argv, ctx=None) -> Result:
    def go(verbosity, stats, args):
        i = 1 if _dp_arg(args) else 0
        _open(args, 3)
        for z in _limit_zones(args[i] if len(args) > i else None):
            switch.tracker.limits.delete(z)
        return Result(changed=True)
    return _run("ct-del-limits", go, argv)


def ct_set_maxconns(switch, argv, ctx=None) -> Result:
    """Not implemented by the kernel datapath (nf_conntrack_max is the sysctl)."""
    def go(verbosity, stats, args):
        _open(args, 3)
        if not args or _scan_uint(args[-1], 32) is None:
            raise _dpctl_error("maxconns missing or malformed")
        raise _dpctl_error("ct set maxconns failed", EOPNOTSUPP)
    return _run("ct-set-maxconns", go, argv)


def ct_get_maxconns(switch, argv, ctx=None) -> Result:
    def go(verbosity, stats, args):
        _open(args, 2)
        raise _dpctl_error("maxconns could not be retrieved", EOPNOTSUPP)
    return _run("ct-get-maxconns", go, argv)


def ct_get_nconns(switch, argv, ctx=None) -> Result:
    def go(verbosity, stats, args):
        _open(args, 2)
        raise _dpctl_error("nconns could not be retrieved", EOPNOTSUPP)
    return _run("ct-get-nconns", go, argv)


def dump_flows(switch, argv, ctx=None) -> Result:
    """Datapath flows: the fast-path decisions cached for offloaded connections."""
    from ..datapath.dpflows import format_dp_flows
    verbose = "-m" in argv or "--more" in argv
    typ = "all"
    for a in argv:
        if a.startswith("type="):
            typ = a[5:]
            if typ not in ("all", "ovs", "tc", "offloaded", "non-offloaded", "partially-offloaded", "dpdk"):
                return _err(f"Failed to parse type ({typ})")
    return Result(out=format_dp_flows(switch, typ, verbose))
