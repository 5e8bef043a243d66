"""Datapath flows as ``ovs-appctl dpctl/dump-flows`` prints them.

ctswitch's datapath caches, per direction of an offloaded connection, the whole
decision of the pipeline (OVS would install a chain of megaflows joined by
``recirc``; the hardware holds the CT tuple rule and the pre/post-CT rules).
Each cached decision is shown as one exact-match datapath flow, in OVS's ODP
syntax: ``recirc_id(0),in_port(2),eth(...),eth_type(0x0800),ipv4(...),tcp(...),
packets:N, bytes:N, used:X.XXXs[, offloaded:yes, dp:tc], actions:...``.
``type=offloaded`` lists the ones in the modelled hardware ([HW_OFFLOAD]),
``type=ovs``/``non-offloaded`` the software-flowtable ones ([OFFLOAD]).
"""

from __future__ import annotations

import hashlib
import uuid

from ..flow.key import (
    DL_DST,
    DL_SRC,
    DL_TYPE,
    IN_PORT,
    IPV6_DST,
    IPV6_SRC,
    NW_DST,
    NW_PROTO,
    NW_SRC,
    TP_DST,
    TP_SRC,
)
from ..packet.summary import ip_str, mac_str
from .datapath import IPS_HW_OFFLOAD

_L4 = {6: "tcp", 17: "udp", 132: "sctp"}


def _set(proto_name: str, d: dict, src: int, dst: int, fmt) -> str | None:
    """``set(PROTO(src=..,dst=..))`` for the fields of ``d`` (field index -> new value)."""
    parts = [f"{name}={fmt(d[i])}" for name, i in (("src", src), ("dst", dst)) if i in d]
    return f"set({proto_name}({','.join(parts)}))" if parts else None


def _used(e, now: int) -> str:
    if e.used is None:
        return "never"
    return f"{(now - e.used) / 1000:.3f}s"


def format_dp_flows(switch, typ: str = "all", verbose: bool = False) -> str:
    dp = switch.datapath
    if dp is None:
        return ""
    lines = []
    for ck, e in list(dp.cached_items()):
        conn = e.conn
        if conn is None:
            continue  # its connection is gone (the entry leaves the cache at its next use)
        hw = bool(conn.status & IPS_HW_OFFLOAD)
        if typ in ("offloaded", "tc") and not hw:
            continue
        if typ in ("non-offloaded", "ovs", "dpdk") and hw:
            continue
        (_br, in_port, dl_src, dl_dst, dl_type, _vlan, nw_src, nw_dst, v6s, v6d, proto, sport, dport) = ck
        key = {IN_PORT: in_port, DL_SRC: dl_src, DL_DST: dl_dst, DL_TYPE: dl_type, NW_SRC: nw_src,
               NW_DST: nw_dst, IPV6_SRC: v6s, IPV6_DST: v6d, NW_PROTO: proto, TP_SRC: sport, TP_DST: dport}
        m = [f"recirc_id(0),in_port({in_port}),eth(src={mac_str(dl_src)},dst={mac_str(dl_dst)}),"
             f"eth_type(0x{dl_type:04x})"]
        if dl_type == 0x86DD:
            m.append(f",ipv6(src={ip_str(v6s, 6)},dst={ip_str(v6d, 6)},proto={proto},frag=no)")
        else:
            m.append(f",ipv4(src={ip_str(nw_src, 4)},dst={ip_str(nw_dst, 4)},proto={proto},frag=no)")
        if proto in _L4:
            m.append(f",{_L4[proto]}(src={sport},dst={dport})")
        acts = []
        for port, deltas in e.outputs:
            d = dict(deltas)
            sets = [_set("ipv4", d, NW_SRC, NW_DST, lambda v: ip_str(v, 4))]
            if proto in _L4:
                sets.append(_set(_L4[proto], d, TP_SRC, TP_DST, str))
            sets.append(_set("eth", d, DL_SRC, DL_DST, mac_str))
            sets = [x for x in sets if x]
            acts.extend(sets)
            acts.append(str(port))
        del key
        stats = f"packets:{e.packets}, bytes:{e.bytes}, used:{_used(e, switch.now)}"
        line = "".join(m) + ", " + stats
        if verbose:
            u = uuid.UUID(bytes=hashlib.md5(repr(ck).encode()).digest())
            line = f"ufid:{u}, " + line + (", offloaded:yes, dp:tc" if hw else ", dp:ovs")
        line += ", actions:" + ",".join(acts)
        lines.append(line)
    lines.sort()
    return "".join(x + "\n" for x in lines)
