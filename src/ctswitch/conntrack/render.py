"""Text forms of connections: conntrack -L / -E / -S, /proc, OVS dpctl.

Theory of operation
-------------------
Pure functions from a ``Conn`` (and ``now`` in ms) to one line, following
byte for byte:

* ``conntrack_line``: conntrack-tools' default output (libnetfilter_conntrack
  ``snprintf_default``): ``%-8s %u `` protocol, timeout seconds, TCP state,
  original tuple, counters, ``[UNREPLIED]``, reply tuple, counters, one of
  ``[HW_OFFLOAD]``/``[OFFLOAD]``/``[ASSURED]``, ``mark=``, ``zone=`` (non-zero
  only), ``use=``, ``id=`` with ``-o id``; ``-o extended`` prefixes
  ``ipv4     2 ``.  Offloaded entries print neither timeout nor state (the
  kernel sends neither attribute).  Counters appear when accounting is on.
* ``proc_line``: ``/proc/net/nf_conntrack`` (``zone=`` always, use = 2, IPv6
  addresses in the kernel's uncompressed ``%pI6`` form).
* ``event_line``: ``conntrack -E`` (``%9s `` event tag, no ``use=``; mark and
  zone only when non-zero).
* ``dpctl_line``: ``ovs-appctl dpctl/dump-conntrack [-m] [-s]`` as OVS prints
  it for the *kernel* datapath: the kernel TCP state is duplicated into
  state_orig/state_reply through OVS's mapping (FIN_WAIT -> FIN_WAIT_1,
  CLOSE -> CLOSING, NONE -> CLOSED, SYN_SENT2 -> SYN_SENT); without ``-m``
  SYN_RECV prints as ESTABLISHED and FIN_WAIT_2 as TIME_WAIT (OVS
  ``coalesce_tcp_state``).  ``-m`` shows the kernel id and IPS status names
  (OVS userspace prints ``id=0,status=0``: a documented difference).

``use=``: 1 in netlink dumps and 2 in /proc (the reader's reference), plus one
while the connection sits in the flow table (offloaded).
"""

from __future__ import annotations

import ipaddress

from . import tcp
from .conn import (
    EXT_ACCT,
    EXT_TSTAMP,
    IPS_ASSURED,
    IPS_HW_OFFLOAD,
    IPS_OFFLOAD,
    IPS_SEEN_REPLY,
    STATUS_NAMES,
    Conn,
)

L4_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6", 132: "sctp", 47: "gre",
            136: "udplite", 33: "dccp"}
DPCTL_L4_NAMES = {1: "icmp", 58: "icmpv6", 6: "tcp", 17: "udp", 132: "sctp", 136: "udplite",
                  33: "dccp", 2: "igmp"}
STATS_ORDER = ("found", "invalid", "insert", "insert_failed", "drop", "early_drop", "error",
               "search_restart", "clash_resolve", "chaintoolong")

# OVS ct_dpif_tcp_state names and numbers; kernel state -> ct_dpif state.
DPIF_TCP_STATES = ("CLOSED", "LISTEN", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "CLOSE_WAIT",
                   "FIN_WAIT_1", "CLOSING", "LAST_ACK", "FIN_WAIT_2", "TIME_WAIT")
KERNEL_TO_DPIF = {tcp.NONE: 0, tcp.SYN_SENT: 2, tcp.SYN_SENT2: 2, tcp.SYN_RECV: 3,
                  tcp.ESTABLISHED: 4, tcp.FIN_WAIT: 6, tcp.CLOSE_WAIT: 5, tcp.LAST_ACK: 8,
                  tcp.TIME_WAIT: 10, tcp.CLOSE: 7}
DPIF_COALESCE = {9: 10, 3: 4}
DPIF_TCP_FLAGS = ("WINDOW_SCALE", "SACK_PERM", "CLOSE_INIT", "BE_LIBERAL",
                  "DATA_UNACKNOWLEDGED", "MAXACK_SET")


def addr(ip_ver: int, a: int) -> str:
    """Address as conntrack-tools/OVS print it (inet_ntop)."""
    if ip_ver == 6:
        return str(ipaddress.IPv6Address(a))
    return f"{a >> 24}.{(a >> 16) & 255}.{(a >> 8) & 255}.{a & 255}"


def addr_proc(ip_ver: int, a: int) -> str:
    """Address as the kernel's %pI4 / %pI6 print it (IPv6 uncompressed)."""
    if ip_ver == 6:
        h = f"{a:032x}"
        return ":".join(h[i:i + 4] for i in range(0, 32, 4))
    return addr(4, a)


def _tuple(conn: Conn, t: tuple, fmt_addr) -> str:
    s = f"src={fmt_addr(conn.ip_ver, t[0])} dst={fmt_addr(conn.ip_ver, t[1])} "
    p = conn.proto
    if p == 1 or p == 58:
        return s + f"type={t[3] >> 8} code={t[3] & 0xFF} id={t[2]} "
    if p in (6, 17, 132, 136, 33):
        return s + f"sport={t[2]} dport={t[3]} "
    return s


def timeout_s(conn: Conn, now: int) -> int:
    """Seconds left before expiry (floor, never negative)."""
    left = conn.expires - now
    return left // 1000 if left > 0 else 0


def _tag(status: int) -> str:
    if status & IPS_HW_OFFLOAD:
        return "[HW_OFFLOAD] "
    if status & IPS_OFFLOAD:
        return "[OFFLOAD] "
    if status & IPS_ASSURED:
        return "[ASSURED] "
    return ""


def _body(conn: Conn, now: int, fmt_addr, counters: bool | None = None, zero_timeout: bool = True) -> str:
    """Protocol, timeout, state, tuples, counters, UNREPLIED and the tag.  ``counters``:
    None = the connection's accounting extension decides; ``zero_timeout``: print a 0 timeout."""
    if counters is None:
        counters = bool(conn.ext & EXT_ACCT)
    name = L4_NAMES.get(conn.proto, "unknown")
    out = [f"{name:<8} {conn.proto} "]
    if not conn.status & IPS_OFFLOAD:
        left = timeout_s(conn, now)
        if left or zero_timeout:
            out.append(f"{left} ")
        if conn.proto == 6:
            out.append(tcp.STATE_NAMES[conn.state] + " ")
    out.append(_tuple(conn, conn.orig, fmt_addr))
    if counters:
        out.append(f"packets={conn.packets[0]} bytes={conn.bytes[0]} ")
    if not conn.status & IPS_SEEN_REPLY:
        out.append("[UNREPLIED] ")
    out.append(_tuple(conn, conn.reply, fmt_addr))
    if counters:
        out.append(f"packets={conn.packets[1]} bytes={conn.bytes[1]} ")
    out.append(_tag(conn.status))
    return "".join(out)


def _l3(conn: Conn) -> str:
    return "ipv4     2 " if conn.ip_ver == 4 else "ipv6     10 "


def _delta_time(conn: Conn, now: int) -> str:
    """``delta-time=`` (seconds since creation) of connections created with timestamps on."""
    return f"delta-time={max(now - conn.created, 0) // 1000} " if conn.ext & EXT_TSTAMP else ""


def conntrack_line(conn: Conn, now: int, fmt: str | set = "") -> str:
    """One ``conntrack -L`` line; ``fmt`` holds -o values (extended, id)."""
    opts = set(fmt.split(",")) if isinstance(fmt, str) else set(fmt)
    s = (_l3(conn) if "extended" in opts else "") + _body(conn, now, addr)
    s += f"mark={conn.mark} "
    if conn.zone:
        s += f"zone={conn.zone} "
    s += _delta_time(conn, now)
    s += f"use={1 + (1 if conn.status & IPS_OFFLOAD else 0)} "
    if "id" in opts:
        s += f"id={conn.id} "
    return s.rstrip(" ")


def _xml_dir(conn: Conn, direction: str, t: tuple, pk: int, by: int) -> str:
    l3 = '<layer3 protonum="2" protoname="ipv4">' if conn.ip_ver == 4 else '<layer3 protonum="10" protoname="ipv6">'
    s = (f'<meta direction="{direction}">{l3}<src>{addr(conn.ip_ver, t[0])}</src>'
         f'<dst>{addr(conn.ip_ver, t[1])}</dst></layer3>'
         f'<layer4 protonum="{conn.proto}" protoname="{L4_NAMES.get(conn.proto, "unknown")}">')
    if conn.proto in (6, 17, 132, 136, 33):
        s += f"<sport>{t[2]}</sport><dport>{t[3]}</dport>"
    s += "</layer4>"
    if conn.ext & EXT_ACCT:
        s += f"<counters><packets>{pk}</packets><bytes>{by}</bytes></counters>"
    return s + "</meta>"


def xml_flow(conn: Conn, now: int) -> str:
    """One ``<flow>`` of ``conntrack -L -o xml`` (libnetfilter_conntrack's snprintf_xml): ICMP
    layer4 elements are empty, as the real tool prints them; offloaded entries have no
    state nor timeout, as the kernel sends none."""
    s = ("<flow>" + _xml_dir(conn, "original", conn.orig, conn.pk0, conn.by0)
         + _xml_dir(conn, "reply", conn.reply, conn.pk1, conn.by1) + '<meta direction="independent">')
    if not conn.status & IPS_OFFLOAD:
        if conn.proto == 6:
            s += f"<state>{tcp.STATE_NAMES[conn.state]}</state>"
        s += f"<timeout>{timeout_s(conn, now)}</timeout>"
    s += f"<mark>{conn.mark}</mark>"
    if conn.zone:
        s += f"<zone>{conn.zone}</zone>"
    if conn.ext & EXT_TSTAMP:
        s += f"<deltatime>{max(now - conn.created, 0) // 1000}</deltatime>"
    s += f"<use>{1 + (1 if conn.status & IPS_OFFLOAD else 0)}</use><id>{conn.id}</id>"
    if not conn.status & IPS_SEEN_REPLY:
        s += "<unreplied/>"
    if conn.status & IPS_ASSURED:
        s += "<assured/>"
    return s + "</meta></flow>"


XML_HEAD = '<?xml version="1.0" encoding="utf-8"?>\n<conntrack>\n'
XML_TAIL = "</conntrack>\n"


def proc_line(conn: Conn, now: int) -> str:
    """One ``/proc/net/nf_conntrack`` line (without the newline)."""
    s = _l3(conn) + _body(conn, now, addr_proc)
    use = 2 + (1 if conn.status & IPS_OFFLOAD else 0)
    return s + f"mark={conn.mark} zone={conn.zone} {_delta_time(conn, now)}use={use}"


def event_line(conn: Conn, now: int, kind: str) -> str:
    """One ``conntrack -E`` line for event ``kind`` (NEW, UPDATE, DESTROY): the ``%9s `` tag
    (libnetfilter_conntrack ``__snprintf_msg_type``), then what the kernel's
    ``ctnetlink_conntrack_event`` put in the message: the timeout (on DESTROY only when
    non-zero), the TCP state, the tuples, ``[UNREPLIED]`` and the tag; the counters
    (nf_conntrack_acct) only in DESTROY events; mark and zone only when non-zero; never
    ``use=``.  Offloaded entries keep neither timeout nor state, as in listings."""
    destroy = kind == "DESTROY"
    out = [f"{'[' + kind + ']':>9} ",
           _body(conn, now, addr, counters=destroy and bool(conn.ext & EXT_ACCT), zero_timeout=not destroy)]
    if conn.mark:
        out.append(f"mark={conn.mark} ")
    if conn.zone:
        out.append(f"zone={conn.zone} ")
    return "".join(out).rstrip(" ")


def stats_lines(stats: dict, cpus: int = 1) -> str:
    """``conntrack -S`` (all counters on cpu 0, the others zero)."""
    lines = []
    for cpu in range(cpus):
        vals = " ".join(f"{k}={stats.get(k, 0) if cpu == 0 else 0}" for k in STATS_ORDER)
        lines.append(f"cpu={cpu:<4}\t{vals} ")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- OVS dpctl
def _dp_tuple(conn: Conn, t: tuple) -> str:
    s = f"src={addr(conn.ip_ver, t[0])},dst={addr(conn.ip_ver, t[1])}"
    if conn.proto in (1, 58):
        return s + f",id={t[2]},type={t[3] >> 8},code={t[3] & 0xFF}"
    return s + f",sport={t[2]},dport={t[3]}"


def _flags(names: tuple, bits: int) -> str:
    if not bits:
        return "0"
    out = [n for i, n in enumerate(names) if bits & (1 << i)]
    bad = bits & ~((1 << len(names)) - 1)
    if bad:
        out.append(f"0x{bad:x}")
    return "|".join(out)


def dpctl_line(conn: Conn, verbose: bool = False, stats: bool = False, now: int = 0) -> str:
    """One ``ovs-appctl dpctl/dump-conntrack`` line (kernel datapath).  Counters (``-s``) only
    for connections created with accounting on (nf_conntrack_acct): the kernel sends none
    for the others, and OVS prints only non-zero ones."""
    p = conn.proto
    out = [DPCTL_L4_NAMES.get(p, str(p)), ",orig=(", _dp_tuple(conn, conn.orig)]
    counters = stats and conn.ext & EXT_ACCT
    if counters and (conn.packets[0] or conn.bytes[0]):
        out.append(f",packets={conn.packets[0]},bytes={conn.bytes[0]}")
    out.append("),reply=(")
    out.append(_dp_tuple(conn, conn.reply))
    if counters and (conn.packets[1] or conn.bytes[1]):
        out.append(f",packets={conn.packets[1]},bytes={conn.bytes[1]}")
    out.append(")")
    if verbose:
        out.append(f",id={conn.id}")
    if conn.zone:
        out.append(f",zone={conn.zone}")
    if verbose:
        out.append(",status=" + _flags(STATUS_NAMES, conn.status & 0x1FFF))
    if stats:
        out.append(f",timeout={0 if conn.status & IPS_OFFLOAD else timeout_s(conn, now)}")
    if conn.mark:
        out.append(f",mark={conn.mark}")
    if conn.label:
        out.append(f",labels=0x{conn.label:x}")
    if p == 6 and not conn.status & IPS_OFFLOAD:
        st = KERNEL_TO_DPIF[conn.state]
        if verbose:
            name = DPIF_TCP_STATES[st]
            out.append(f",protoinfo=(state_orig={name},state_reply={name}")
            so, sr = conn.tcp.seen
            if so.td_scale or sr.td_scale:
                out.append(f",wscale_orig={so.td_scale},wscale_reply={sr.td_scale}")
            out.append(",flags_orig=" + _flags(DPIF_TCP_FLAGS, so.flags & 0x3F))
            out.append(",flags_reply=" + _flags(DPIF_TCP_FLAGS, sr.flags & 0x3F) + ")")
        else:
            out.append(f",protoinfo=(state={DPIF_TCP_STATES[DPIF_COALESCE.get(st, st)]})")
    return "".join(out)


def ct_stats_show(conns, verbose: bool = False) -> str:
    """``ovs-appctl dpctl/ct-stats-show [-m]``."""
    counts: dict[str, int] = {}
    per_state = [0] * len(DPIF_TCP_STATES)
    total = 0
    for c in conns:
        total += 1
        name = {6: "TCP", 17: "UDP", 1: "ICMP", 58: "ICMPV6", 132: "SCTP", 136: "UDPLITE",
                33: "DCCP", 2: "IGMP"}.get(c.proto, "Other")
        counts[name] = counts.get(name, 0) + 1
        if c.proto == 6:
            if c.status & IPS_OFFLOAD:
                # No protoinfo for offloaded entries: OVS's zeroed entry counts as state 0.
                per_state[0] += 1
            else:
                st = KERNEL_TO_DPIF[c.state]
                per_state[DPIF_COALESCE.get(st, st)] += 1
    lines = ["Connections Stats:", f"    Total: {total}"]
    for name in ("TCP", "UDP", "UDPLITE", "SCTP", "ICMP", "DCCP", "IGMP", "Other"):
        if counts.get(name):
            lines.append(f"  {name}: {counts[name]}")
            if name == "TCP" and verbose:
                lines.append("    Conn per TCP states:")
                for i, n in enumerate(per_state):
                    if n:
                        lines.append(f"\t  [{DPIF_TCP_STATES[i]}]={n}")
    return "\n".join(lines) + "\n"
