"""Text views of the offload model: devlink resources, offload stats, "why not offloaded".

Theory of operation
-------------------
Pure functions from an ``OffloadManager`` (and connections) to text; the
control layer parses argv and wraps the text in a ``Result``.

* ``resource_show``: a ``devlink resource show`` styled tree of the FDB (each
  flow group's pattern, size, occupancy and free entries; size-1 groups summed
  per pattern), offloaded connections against ``ct_max_offloaded_conns`` and
  its 2-rules-per-connection budget, refused inserts by reason and a pending
  ``num_of_groups``.  Real devlink has no such resource for CT; the layout
  borrows devlink's ``name X size N occ N unit entry`` vocabulary.
* ``offload_stats``: ``ovs-appctl dpctl/offload-stats-show`` in the layout of
  OVS-DOCA (``"     Total" + name right-aligned in 34 + ":" + value in 8``),
  with the model's extra counters in the same layout.
* ``conn_tuple`` / ``explain_block``: one connection as a conntrack-style line
  (no timeout: it is volatile) followed by the manager's explanation.
"""

from __future__ import annotations

import ipaddress

from ctswitch.offload.fdb import PROTO_NAMES
from ctswitch.offload.manager import OffloadManager, OffloadState
from ctswitch.offload.policy import IPS_ASSURED, IPS_HW_OFFLOAD, IPS_OFFLOAD, IPS_SEEN_REPLY, tcp_state_name
from ctswitch.packet.headers import IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP

DEFAULT_DEV = "pci/0000:03:00.0"

# Refusal keys as shown, in display order.
REFUSAL_LABELS = (
    ("ct_max_offloaded_conns", "ct_max_offloaded_conns"),
    ("group_full", "group_full"),
    ("table_full", "table_full"),
)


def resource_show(m: OffloadManager, dev: str = DEFAULT_DEV) -> str:
    """The devlink-styled resource tree of the FDB and the CT offload budget."""
    m.sync()
    f = m.fdb
    lines = [f"{dev}:"]
    hdr = (f"  name fdb size {f.capacity} occ {f.used} unit entry "
           f"num_of_groups {f.num_of_groups} group_size {f.group_size}")
    lines.append(hdr)
    lines.append("    resources:")
    for name, n, size, used, free in f.group_view():
        if n == 1 and size == f.group_size and size != 1:
            lines.append(f"      name {name} size {size} occ {used} free {free} unit entry")
        else:
            lines.append(f"      name {name} size {size} occ {used} free {free} unit entry groups {n} group_size 1")
    lines.append(f"      name unallocated size {f.capacity - f.allocated} unit entry")
    if f.pending:
        parts = []
        if f.pending_num_of_groups is not None:
            parts.append(f"num_of_groups {f.pending_num_of_groups}")
        if f.pending_capacity is not None:
            parts.append(f"size {f.pending_capacity}")
        lines.append(f"    pending {' '.join(parts)} (applies when the FDB is empty; {f.used} entries in use)")
    lines.append(f"  name ct_offloaded_conns size {m.max_conns} occ {m.n_hw} unit entry")
    lines.append("    resources:")
    lines.append(f"      name hw_rules size {2 * m.max_conns} occ {m.hw_rules} unit entry")
    lines.append(f"      name sw_only occ {m.n_sw} unit entry")
    total = sum(m.refused.values())
    lines.append(f"  name refused_inserts occ {total} unit insert")
    lines.append("    resources:")
    for key, label in REFUSAL_LABELS:
        lines.append(f"      name {label} occ {m.refused.get(key, 0)} unit insert")
    return "\n".join(lines) + "\n"


def _stat_line(name: str, value: int) -> str:
    return f"     Total{name:>34}:{value:>8}"


def offload_stats(m: OffloadManager) -> str:
    """``dpctl/offload-stats-show`` text."""
    m.sync()
    rows = [
        ("Enqueued offloads", 0),  # inserts are synchronous in the model
        ("Inserted offloads", m.hw_rules),
        ("CT uni-dir Connections", m.n_uni),
        ("CT bi-dir Connections", m.n_hw - m.n_uni),
        ("CT SW-only Connections", m.n_sw),
        ("CT HW rules limit", 2 * m.max_conns),
        ("CT offloads to HW", m.stats["hw_inserted"]),
        ("CT refused by ct_max_conns", m.refused["ct_max_offloaded_conns"]),
        ("CT refused, group full", m.refused["group_full"]),
        ("CT refused, table full", m.refused["table_full"]),
        ("CT aged out", m.stats["aged"]),
        ("CT torn down", m.stats["torn_down"]),
    ]
    return "HW Offload stats:\n" + "".join(_stat_line(n, v) + "\n" for n, v in rows)


def addr(ip_ver: int, value: int) -> str:
    """An int address as text (IPv4 dotted quad, IPv6 compressed)."""
    if ip_ver == 6:
        return str(ipaddress.IPv6Address(value))
    return str(ipaddress.IPv4Address(value))


def _tuple(conn, t: tuple) -> str:
    src, dst, sport, dport = t
    s = f"src={addr(conn.ip_ver, src)} dst={addr(conn.ip_ver, dst)} "
    if conn.proto in (IPPROTO_ICMP, IPPROTO_ICMPV6):
        return s + f"type={dport >> 8} code={dport & 0xFF} id={sport}"
    return s + f"sport={sport} dport={dport}"


def conn_tuple(conn) -> str:
    """``tcp      6 ESTABLISHED src=... [UNREPLIED] src=... [HW_OFFLOAD] mark=0 zone=1`` (no timeout)."""
    name = PROTO_NAMES.get(conn.proto, "unknown")
    parts = [f"{name:<8} {conn.proto}"]
    st = conn.status
    if conn.proto == IPPROTO_TCP and not st & IPS_OFFLOAD:
        parts.append(tcp_state_name(conn))
    parts.append(_tuple(conn, conn.orig))
    if not st & IPS_SEEN_REPLY:
        parts.append("[UNREPLIED]")
    parts.append(_tuple(conn, conn.reply))
    if st & IPS_HW_OFFLOAD:
        parts.append("[HW_OFFLOAD]")
    elif st & IPS_OFFLOAD:
        parts.append("[OFFLOAD]")
    elif st & IPS_ASSURED:
        parts.append("[ASSURED]")
    parts.append(f"mark={getattr(conn, 'mark', 0)} zone={conn.zone}")
    return " ".join(parts)


def explain_block(m: OffloadManager, conn) -> str:
    """Two lines: the connection and, indented, why it is (not) offloaded."""
    return f"{conn_tuple(conn)}\n    {m.explain(conn)}\n"


def explain_summary(m: OffloadManager, conns: list) -> str:
    """``N connections: H in hardware, S in software only, U not offloaded``."""
    counts = dict.fromkeys(OffloadState, 0)
    for c in conns:
        counts[m.state_of(c)] += 1
    n = len(conns)
    return (f"{n} connection{'' if n == 1 else 's'}: {counts[OffloadState.HW_OFFLOAD]} in hardware, "
            f"{counts[OffloadState.OFFLOAD]} in software only, {counts[OffloadState.NONE]} not offloaded\n")
