"""The connection record (``Conn``) and the kernel's IPS_* status bits.

Theory of operation
-------------------
A ``Conn`` is one nf_conntrack entry: the original and reply tuples, the
status bits, the protocol state (TCP: a ``TcpInfo`` with one ``TcpSide`` per
direction, exactly the fields of the kernel's ``ip_ct_tcp``), the expiry time
in ms, mark/label, per-direction counters and the offload manager's slot.
Records use ``__slots__`` so a table of a million entries stays small.

Tuples are ``(src, dst, sport, dport)`` ints.  For ICMP/ICMPv6 ``sport`` is
the echo id and ``dport`` is ``type << 8 | code`` (the kernel keeps the same
three values; this packing keeps every tuple four ints wide).

``okey``/``rkey`` are the lookup keys of both directions (see ``tuples.py``).
A Conn is "confirmed" once committed and inserted into the tracker's table.
"""

from __future__ import annotations

# IPS_* status bits (include/uapi/linux/netfilter/nf_conntrack_common.h).
IPS_EXPECTED = 1 << 0
IPS_SEEN_REPLY = 1 << 1
IPS_ASSURED = 1 << 2
IPS_CONFIRMED = 1 << 3
IPS_SRC_NAT = 1 << 4
IPS_DST_NAT = 1 << 5
IPS_SEQ_ADJUST = 1 << 6
IPS_SRC_NAT_DONE = 1 << 7
IPS_DST_NAT_DONE = 1 << 8
IPS_DYING = 1 << 9
IPS_FIXED_TIMEOUT = 1 << 10
IPS_TEMPLATE = 1 << 11
IPS_UNTRACKED = 1 << 12
IPS_HELPER = 1 << 13
IPS_OFFLOAD = 1 << 14
IPS_HW_OFFLOAD = 1 << 15
IPS_NAT_MASK = IPS_SRC_NAT | IPS_DST_NAT

# Status names as OVS's ct-dpif prints them (bit order = kernel bit order).
STATUS_NAMES = ("EXPECTED", "SEEN_REPLY", "ASSURED", "CONFIRMED", "SRC_NAT", "DST_NAT",
                "SEQ_ADJUST", "SRC_NAT_DONE", "DST_NAT_DONE", "DYING", "FIXED_TIMEOUT",
                "TEMPLATE", "UNTRACKED")

DIR_ORIG = 0
DIR_REPLY = 1

# Event bits (IPCT_*), collected per packet, delivered as one [UPDATE] line.
EV_NEW = 1
EV_PROTOINFO = 2
EV_REPLY = 4
EV_ASSURED = 8
EV_MARK = 16
EV_LABEL = 32


class TcpSide:
    """One direction's window data (kernel ``ip_ct_tcp_state``)."""

    __slots__ = ("td_end", "td_maxend", "td_maxwin", "td_maxack", "td_scale", "flags")

    def __init__(self) -> None:
        self.td_end = 0
        self.td_maxend = 0
        self.td_maxwin = 0
        self.td_maxack = 0
        self.td_scale = 0
        self.flags = 0

    def to_state(self) -> list[int]:
        return [self.td_end, self.td_maxend, self.td_maxwin, self.td_maxack, self.td_scale, self.flags]

    @classmethod
    def from_state(cls, s: list[int]) -> TcpSide:
        t = cls()
        t.td_end, t.td_maxend, t.td_maxwin, t.td_maxack, t.td_scale, t.flags = s
        return t


class TcpInfo:
    """TCP tracking state of one connection (kernel ``ip_ct_tcp``)."""

    __slots__ = ("seen", "last_dir", "last_index", "last_seq", "last_ack", "last_end",
                 "last_win", "last_wscale", "last_flags", "retrans")

    def __init__(self) -> None:
        self.seen = (TcpSide(), TcpSide())
        self.last_dir = 0
        self.last_index = 5  # TCP_NONE_SET
        self.last_seq = 0
        self.last_ack = 0
        self.last_end = 0
        self.last_win = 0
        self.last_wscale = 0
        self.last_flags = 0
        self.retrans = 0

    def to_state(self) -> dict:
        return {"seen": [self.seen[0].to_state(), self.seen[1].to_state()],
                "last": [self.last_dir, self.last_index, self.last_seq, self.last_ack,
                         self.last_end, self.last_win, self.last_wscale, self.last_flags,
                         self.retrans]}

    @classmethod
    def from_state(cls, s: dict) -> TcpInfo:
        t = cls()
        t.seen = (TcpSide.from_state(s["seen"][0]), TcpSide.from_state(s["seen"][1]))
        (t.last_dir, t.last_index, t.last_seq, t.last_ack, t.last_end, t.last_win,
         t.last_wscale, t.last_flags, t.retrans) = s["last"]
        return t


class Conn:
    """One tracked connection.

    Attributes (see docs/architecture.md): id, zone, ip_ver, proto, orig, reply,
    status (IPS_*), state (TCP state number, 0 for other protocols), expires (ms),
    timeout (ms of the last refresh, for events), mark, label, packets/bytes
    ([orig, reply]), created (ms), helper (alg port, 0 none), related, offload,
    why; okey/rkey (lookup keys), tcp (TcpInfo or None), stream_ts (UDP: ms
    after which a replied flow becomes a stream), confirmed.
    """

    __slots__ = ("id", "zone", "ip_ver", "proto", "orig", "reply", "okey", "rkey",
                 "status", "state", "expires", "timeout", "mark", "label", "packets",
                 "bytes", "created", "helper", "related", "offload", "why", "tcp",
                 "stream_ts", "confirmed", "events")

    def __init__(self, zone: int, ip_ver: int, proto: int, orig: tuple, reply: tuple, now: int) -> None:
        self.id = 0
        self.zone = zone
        self.ip_ver = ip_ver
        self.proto = proto
        self.orig = orig
        self.reply = reply
        self.okey: tuple = ()
        self.rkey: tuple = ()
        self.status = 0
        self.state = 0
        self.expires = now
        self.timeout = 0
        self.mark = 0
        self.label = 0
        self.packets = [0, 0]
        self.bytes = [0, 0]
        self.created = now
        self.helper = 0
        self.related = False
        self.offload = None
        self.why: str | None = None
        self.tcp: TcpInfo | None = None
        self.stream_ts = now + 2000
        self.confirmed = False
        self.events = 0

    @property
    def offloaded(self) -> bool:
        return bool(self.status & IPS_OFFLOAD)

    def __repr__(self) -> str:
        return (f"Conn(id={self.id}, zone={self.zone}, proto={self.proto}, orig={self.orig}, "
                f"reply={self.reply}, status={self.status:#x}, state={self.state})")

    def to_state(self) -> dict:
        return {"id": self.id, "zone": self.zone, "ip_ver": self.ip_ver, "proto": self.proto,
                "orig": list(self.orig), "reply": list(self.reply), "status": self.status,
                "state": self.state, "expires": self.expires, "timeout": self.timeout,
                "mark": self.mark, "label": str(self.label), "packets": list(self.packets),
                "bytes": list(self.bytes), "created": self.created, "helper": self.helper,
                "related": self.related, "why": self.why, "stream_ts": self.stream_ts,
                "tcp": self.tcp.to_state() if self.tcp is not None else None}

    @classmethod
    def from_state(cls, s: dict) -> Conn:
        c = cls(s["zone"], s["ip_ver"], s["proto"], tuple(s["orig"]), tuple(s["reply"]), s["created"])
        c.id = s["id"]
        c.status = s["status"]
        c.state = s["state"]
        c.expires = s["expires"]
        c.timeout = s["timeout"]
        c.mark = s["mark"]
        c.label = int(s["label"])
        c.packets = list(s["packets"])
        c.bytes = list(s["bytes"])
        c.helper = s["helper"]
        c.related = s["related"]
        c.why = s["why"]
        c.stream_ts = s["stream_ts"]
        c.tcp = TcpInfo.from_state(s["tcp"]) if s["tcp"] is not None else None
        c.confirmed = True
        return c
