"""The connection tracker: lookup, state update, commit, NAT, limits, expiry.

Theory of operation
-------------------
One dict maps the key of *both* tuples of every confirmed connection (see
``tuples.py``) to its ``Conn``.  ``process`` follows the kernel datapath
(``nf_conntrack_in`` called by OVS's ``ovs_ct_execute``):

1. Look the packet's current tuple up in its zone.  A hit in the reply
   direction is ESTABLISHED_REPLY (``+trk+est+rpl``); in the original
   direction ESTABLISHED (``+est``) once a reply was seen, else NEW (``+new``:
   every original-direction packet is new until the first reply).  A miss
   builds an unconfirmed Conn (``+trk+new``) that is stored only if this or a
   later ct() of the same packet commits.  ICMP errors quoting a tracked
   connection are RELATED (``+rel``, ``+rpl`` in the reply direction); errors
   quoting nothing and packets the L4 tracker rejects are ``+trk+inv``.
2. The protocol handler (``protocols.py``) updates the state and returns the
   new timeout; SEEN_REPLY is set after a reply packet has been handled.
3. ``commit`` confirms a new Conn (zone limit, ``nf_conntrack_max`` with early
   drop of the oldest non-ASSURED, non-offloaded entry, NAT allocation),
   applies ``exec(set_field:..->ct_mark/ct_label)`` and records a [NEW] event.
4. NAT (``nat.py``) is set up at commit; bare ``nat`` (or ``nat(src|dst)`` on
   an existing entry) rewrites established packets both ways: the reply of an
   SNAT connection gets ``+dnat``.  The verdict carries the new (addr, port).

Connections the offload manager froze (offloaded, referenced by nothing
else: ``cold.py``) are rows of the compact tier instead of objects; a lookup
that misses the dict asks the compact tier's index too, and a hit thaws the
row back into an equal Conn.  Walks over the table (listings, flush, sweep,
persistence) see both tiers in id order.

The kernel keeps the conntrack attached to the skb between ct() actions of
one packet (``skb_nfct_cached``): the tracker remembers the last (packet,
zone) it processed and does not run the state machine twice for it, so
``ct(table=1)`` followed by ``ct(commit)`` counts the packet once and a
NAT-translated key still finds its connection.

Deliberate differences from OVS userspace (the oracle cases were recorded
with it; BlueField runs the kernel datapath):

============================  ===========================  ======================
topic                         ctswitch (kernel)            OVS userspace
============================  ===========================  ======================
TCP established timeout       432000 s (5 days)            86400 s
UDP timeouts                  30 s, 120 s once a stream    60 s first, 30 s bidir
TCP RST                       state CLOSE, 10 s            both peers TIME_WAIT
RST before any reply          entry deleted at once        entry kept
table full                    early drop, then drop pkt    commit silently fails
NAT port clash                next free port up (=OVS)     hash/next port
NAT exhaustion                packet dropped               packet sent un-NATed
dpctl ``-m`` id/status        kernel id and IPS bits       id=0,status=0
============================  ===========================  ======================
"""

from __future__ import annotations

import random
import struct
from collections import OrderedDict, deque
from operator import attrgetter

from ..flow.actions import Ct, Load, SetField
from ..flow.key import (
    CS_DNAT,
    CS_EST,
    CS_INV,
    CS_NEW,
    CS_REL,
    CS_RPL,
    CS_SNAT,
    CS_TRK,
    IPV6_DST,
    IPV6_SRC,
    NW_DST,
    NW_PROTO,
    NW_SRC,
    TP_DST,
    TP_SRC,
)
from ..packet.headers import FRAG_LATER
from . import nat as natmod
from . import render
from .cold import I_ID, N_CONN, ColdTier, conn_row, rare_of, row_conn
from .conn import (
    C_FIELDS,
    DIR_ORIG,
    DIR_REPLY,
    EV_ASSURED,
    EV_LABEL,
    EV_MARK,
    EV_REPLY,
    IPS_ASSURED,
    IPS_CONFIRMED,
    IPS_DST_NAT,
    IPS_DST_NAT_DONE,
    IPS_EXPECTED,
    IPS_HW_OFFLOAD,
    IPS_NAT_MASK,
    IPS_OFFLOAD,
    IPS_SEEN_REPLY,
    IPS_SRC_NAT,
    IPS_SRC_NAT_DONE,
    Conn,
    TcpConn,
)
from .defrag import Defrag
from .helpers import ALG_FTP, ALG_TFTP, EXPECT_TIMEOUT_MS, Expectation, ftp_announce, tftp_request
from .limits import ZoneLimits
from .protocols import DEFAULT, PORTED, REGISTRY
from .tcp import CLOSE as TCP_CLOSE
from .tcp import ESTABLISHED as TCP_ESTABLISHED
from .tcp import F_BE_LIBERAL, KILL, R_IGNORE, R_INVALID, REPEAT, VALID_OF
from .tcp import init as tcp_init
from .tcp import packet as tcp_packet
from .timeouts import Timeouts
from .tuples import ICMP_ERROR_TYPES, ICMPV6_ERROR_TYPES, invert

# Every port / ICMP id / type<<8|code value as one shared int object (see _intern).
_PORTS = tuple(range(65536))
INTERN_MAX = 65536
STAT_NAMES = ("found", "invalid", "insert", "insert_failed", "drop", "early_drop", "error",
              "search_restart", "clash_resolve", "chaintoolong")
TABLE_FULL_MSG = "nf_conntrack: table full, dropping packet"
ZONE_LIMIT_MSG = "openvswitch: zone: {zone} exceeds conntrack limit"
CLASH_MSG = "nf_conntrack: insert clash, dropping packet"
EARLY_DROP_SCAN = 8
LOG_MAX = 1000
RATELIMIT_BURST = 10
RATELIMIT_MS = 5000
DAY_MS = 86_400_000
# Whether on_offload folds a TcpConn's WIDE_FIELDS into ``wide`` (TcpConn.pack): only when conn.py
# runs as Python, where they are twelve int objects; compiled, they are C integers inside the
# connection (conn.pxd), and folding them would only add a 48-byte int object and the work.
_PACK = not C_FIELDS
M128 = (1 << 128) - 1
_BY_ID = attrgetter("id")


class CtVerdict:
    """What one ct() did to a packet (see docs/architecture.md)."""

    __slots__ = ("state", "zone", "mark", "label", "orig", "nat_src", "nat_dst", "icmp_id",
                 "icmp_inner", "conn", "reply", "drop")

    def __init__(self, state: int, zone: int, mark: int = 0, label: int = 0, orig: tuple | None = None,
                 conn: Conn | None = None, reply: bool = False) -> None:
        # The tracker passes what it knows of the connection positionally: one call per packet
        # instead of the defaults plus a second store of each.
        self.state = state
        self.zone = zone
        self.mark = mark
        self.label = label
        self.orig = orig
        self.nat_src: tuple[int, int] | None = None
        self.nat_dst: tuple[int, int] | None = None
        self.icmp_id: int | None = None
        self.icmp_inner: tuple | None = None  # ICMP error: new quoted (src, dst, sport, dport)
        self.conn = conn
        self.reply = reply
        self.drop: str | None = None

    def __repr__(self) -> str:
        return (f"CtVerdict(state={self.state:#x}, zone={self.zone}, nat_src={self.nat_src}, "
                f"nat_dst={self.nat_dst}, drop={self.drop!r})")


class _NatProbe:
    """``taken(addr, port)`` of ``natmod.allocate`` for one new connection: whether the reply tuple
    it would get with (addr, port) is in use, in its table or (``cold``) by a frozen connection.
    The tracker keeps one and sets it up per allocation (``_setup_nat``) instead of building
    closures per connection.  SNAT (``snat``): (peer, addr, fixed, port), DNAT: (addr, peer, port,
    fixed); ``ported`` False: the port is 0; ICMP: (peer, addr, id, rtype) / (addr, peer, id, rtype).
    """

    __slots__ = ("table", "cold", "zp", "peer", "fixed", "rtype", "snat", "icmp", "ported")

    def __init__(self) -> None:
        self.table = self.cold = None
        self.zp = self.peer = self.fixed = self.rtype = 0
        self.snat = self.icmp = self.ported = False

    def __call__(self, a: int, p: int) -> bool:
        if self.icmp:
            t = (self.peer, a, p, self.rtype) if self.snat else (a, self.peer, p, self.rtype)
        elif self.snat:
            t = (self.peer, a, self.fixed, p if self.ported else 0)
        else:
            t = (a, self.peer, p if self.ported else 0, self.fixed)
        if t in self.table:
            return True
        cold = self.cold
        return cold is not None and cold.find(self.zp, t) >= 0


class Tracker:
    """The conntrack table of the emulated host (all zones).

    Connections live as ``Conn`` objects (the hot tier) or, once the offload manager
    froze them, as rows of the compact tier (``cold.py``); every lookup, listing and
    removal sees both, and thaws a frozen connection back into an object first.
    """

    # References the tracker itself holds to a confirmed connection object: its two table
    # entries and ``_conns`` (the offload manager freezes only what nothing else holds).
    HOLDS = 3

    def __init__(self, params, seed: int = 0) -> None:
        self.params = params
        self._t = Timeouts(params)
        # (zone << 12 | ip_ver << 8 | proto) -> {orig or reply tuple: Conn}: the keys are the
        # connections' own tuples, so indexing both directions costs no key objects.
        self._tables: dict[int, dict[tuple, Conn]] = {}
        self._conns: dict[int, Conn] = {}
        # Insertion-ordered, oldest first.  An OrderedDict, not a dict: early drop reads the
        # front after many deletions there, and a dict's iteration would first skip every
        # deleted slot (O(deletions) per early drop under a SYN flood).
        self._unassured: OrderedDict[int, Conn] = OrderedDict()
        self._zone_count: dict[int, int] = {}
        self.limits = ZoneLimits()
        self.stats = dict.fromkeys(STAT_NAMES, 0)
        self.created = 0  # connections committed since the start (not a conntrack -S counter)
        self.log_total = 0  # log lines ever appended (``log`` keeps only the newest)
        self.log: list[str] = []
        self._rl_start = -RATELIMIT_MS
        self._rl_count = 0
        self._rl_suppressed = 0
        self.events: deque = deque(maxlen=10000)
        self.events_enabled = False
        self.events_total = 0  # events ever recorded (``events`` keeps the newest 10000)
        self._next_id = 1
        self._rng = random.Random(seed)
        self._next_expiry = 0
        self._c_pkt = None
        self._c_zone = -1
        self._c_conn: Conn | None = None
        self._c_dir = 0
        self._c_state = 0
        self._c_hpkt = None  # the packet and the connection of the last ct() lookup (two fields:
        self._c_hconn: Conn | None = None  # no tuple per ct())
        # Called as destroy_hook(conn, now) after an entry is removed (the switch
        # tears its offload down); None: nothing to notify.
        self.destroy_hook = None
        # The offload flow table act_ct consults before conntrack for offloaded connections:
        # flow_hit(conn, now, nbytes, reply, tcp_flags) -> bool (offload/manager.py); None: none.
        self.flowtable = None
        # Expectations of the FTP/TFTP helpers (helpers.py): key -> Expectation, and the key of
        # each master's one expectation (max_expected 1).
        self._addrs: dict[int, int] = {}  # address -> its canonical int (see _intern)
        self._expects: dict[tuple, Expectation] = {}
        self._expect_of: dict[int, tuple] = {}
        # IPv4 reassembly in front of conntrack (ct() on a fragment; see defrag.py).
        self.defrag = Defrag(params)
        # The compact tier (cold.py), created by the first freeze; its rows carry the fields of
        # one owner (the offload manager), which rebuilds its part when a row is thawed.
        self._cold: ColdTier | None = None
        self._cold_owner = None
        self._ncold = 0
        # False once a thawed connection was appended to ``_conns`` behind younger ones:
        # ``_ordered`` sorts it back into id (= age) order before an ordered walk.
        self._sorted = True
        self._probe = _NatProbe()  # natmod.allocate's ``taken`` (see _setup_nat)

    # ------------------------------------------------------------------ helpers
    def _timeouts(self) -> Timeouts:
        t = self._t
        if t.version != self.params.version:
            t = self._t = Timeouts(self.params)
        return t

    def _log(self, now: int, msg: str) -> None:
        """Kernel-style rate-limited log (10 messages per 5 s)."""
        if now - self._rl_start >= RATELIMIT_MS:
            if self._rl_suppressed:
                self._append_log(f"net_ratelimit: {self._rl_suppressed} callbacks suppressed")
            self._rl_start = now
            self._rl_count = 0
            self._rl_suppressed = 0
        if self._rl_count < RATELIMIT_BURST:
            self._rl_count += 1
            self._append_log(msg)
        else:
            self._rl_suppressed += 1

    def _append_log(self, msg: str) -> None:
        self.log_total += 1
        self.log.append(msg)
        if len(self.log) > LOG_MAX:
            del self.log[: len(self.log) - LOG_MAX]

    def _event(self, conn: Conn, now: int, kind: str) -> None:
        if self.events_enabled:
            self.events_total += 1
            self.events.append((now, kind, render.event_line(conn, now, kind)))

    def __len__(self) -> int:
        return len(self._conns) + self._ncold

    @property
    def count(self) -> int:
        return len(self._conns) + self._ncold

    def iter_conns(self):
        """Confirmed connections, oldest first (frozen ones are thawed: callers may keep them)."""
        if self._ncold:
            self.thaw_all()
        return iter(list(self._ordered().values()))

    def snapshot(self) -> list[Conn]:
        """Confirmed connections, oldest first, thawing nothing: frozen ones come as unregistered
        copies (with their offload record), to read only (persistence, counts)."""
        conns = list(self._ordered().values())
        if self._ncold:
            cold, owner = self._cold, self._cold_owner
            for row in cold.live_rows():
                v = cold.values(row)
                c = row_conn(v, cold.rare.get(v[I_ID]))
                c.offload = owner.cold_record(c.id, v[N_CONN:])
                conns.append(c)
            conns.sort(key=_BY_ID)
        return conns

    def get(self, conn_id: int) -> Conn | None:
        c = self._conns.get(conn_id)
        if c is None and self._ncold:
            row = self._cold.find_id(conn_id)
            if row >= 0:
                c = self.thaw_row(row)
        return c

    def zone_count(self, zone: int) -> int:
        return self._zone_count.get(zone, 0)

    def set_zone_limit(self, zone: int | None, limit: int) -> None:
        """Limit of connections in ``zone`` (None: the default); 0 = unlimited."""
        self.limits.set(zone, limit)

    # ------------------------------------------------------------------ process
    def process(self, pkt, key: list[int], zone: int, ct: Ct, now: int) -> CtVerdict:
        """Runs one ct() action on a packet; see the module docstring."""
        t = self._t
        if t.version != self.params.version:
            t = self._timeouts()
        if pkt is self._c_pkt and zone == self._c_zone:
            conn, d, base = self._c_conn, self._c_dir, self._c_state
            if conn is not None and conn.confirmed and self._find(conn, conn.orig) is not conn:
                # deleted meanwhile (force, flush)
                conn, d, base = self._track(pkt, key, zone, t, now)
                self._c_pkt, self._c_zone, self._c_conn, self._c_dir, self._c_state = pkt, zone, conn, d, base
        else:
            conn, d, base = self._track(pkt, key, zone, t, now)
            self._c_pkt, self._c_zone, self._c_conn, self._c_dir, self._c_state = pkt, zone, conn, d, base
        if type(base) is str:
            v = CtVerdict(0, zone)
            v.drop = base
            return v
        if conn is None or base & CS_INV:
            return CtVerdict(CS_TRK | CS_INV, zone)
        if base & CS_REL and pkt.inner is not None:  # an ICMP error about ``conn``
            return self._related_verdict(conn, d, base, key, zone, ct)
        cached = self._c_hpkt is pkt and self._c_hconn is conn  # this ct() is a cached lookup (OVS)
        self._c_hpkt = pkt
        self._c_hconn = conn
        if ct.commit:
            if ct.force and d == DIR_REPLY and conn.confirmed:
                self._destroy(conn, now)
                conn, d, base = self._track(pkt, key, zone, t, now)
                self._c_conn, self._c_dir, self._c_state = conn, d, base
                if isinstance(base, str):
                    v = CtVerdict(0, zone)
                    v.drop = base
                    return v
                if conn is None or base & CS_INV:
                    return CtVerdict(CS_TRK | CS_INV, zone)
            if ct.exec:
                self._exec(conn, ct.exec, now)
            if ct.alg and not conn.helper and not conn.confirmed:
                conn.helper = ct.alg  # ovs_ct_add_helper: attached when the connection is committed
            if not conn.confirmed:
                err = self._confirm(conn, ct, now)
                if err is not None:
                    self._c_pkt = None
                    v = CtVerdict(0, zone)
                    v.drop = err
                    return v
                cached = False  # committing: the helper sees this packet (OVS __ovs_ct_lookup)
        if conn.helper and conn.confirmed and not cached:
            self._help(conn, d, base, pkt, now)
        return self._verdict(conn, d, base, zone, ct, key)

    def _verdict(self, conn: Conn, d: int, base: int, zone: int, ct: Ct, key: list[int] | None) -> CtVerdict:
        """The verdict of a packet of ``conn`` in direction ``d`` with ct_state ``base``: the
        connection's mark, label and original tuple, and its NAT when ``ct`` asks for it
        (``key``: the packet's flow key, read for ICMP only)."""
        o = conn.orig
        proto = conn.proto
        if proto == 1 or proto == 58:
            orig = (conn.ip_ver, o[0], o[1], proto, o[3] >> 8, o[3] & 0xFF)
        else:
            orig = (conn.ip_ver, o[0], o[1], proto, o[2], o[3])
        if conn.confirmed:
            v = CtVerdict(base, zone, conn.mark, conn.label, orig, conn, d == DIR_REPLY)
            if ct.nat is not None and conn.status & IPS_NAT_MASK:
                self._nat_packet(conn, d, base, ct, key, v)
        else:
            v = CtVerdict(base, zone, conn.mark, conn.label, orig, None, d == DIR_REPLY)
        return v

    def offloaded_verdict(self, conn: Conn, reply: bool, zone: int, ct: Ct) -> CtVerdict | None:
        """The verdict ``process`` gives a packet of offloaded TCP/UDP connection ``conn`` in
        direction ``reply`` that hits its flow-table entry (no FIN/RST) at a ct() ``ct`` in
        ``zone``, computed without changing anything (the datapath predicts the other direction's
        cached decision with it).  None when that is not the path such a packet takes: the
        connection is not offloaded or in another zone, or ``ct`` commits (exec, force)."""
        if (not conn.status & IPS_OFFLOAD or conn.zone != zone or ct.commit or not conn.confirmed
                or (conn.proto != 6 and conn.proto != 17)):
            return None
        if reply:
            base = CS_TRK | CS_EST | CS_RPL
        elif conn.status & IPS_SEEN_REPLY:
            base = CS_TRK | CS_EST
        else:
            return None
        return self._verdict(conn, DIR_REPLY if reply else DIR_ORIG, base, zone, ct, None)

    def _sub(self, zone: int, ip_ver: int, proto: int) -> dict[tuple, Conn]:
        """The table of (zone, ip_ver, proto), created on first use."""
        zp = (zone << 12) | (ip_ver << 8) | proto
        tables = self._tables
        sub = tables.get(zp)
        if sub is None:
            sub = tables[zp] = {}
        return sub

    def find(self, zone: int, ip_ver: int, proto: int, tup: tuple) -> Conn | None:
        """The confirmed connection with ``tup`` (src, dst, sport, dport; ICMP: id,
        type << 8 | code) as its original or reply tuple in ``zone``, or None."""
        zp = (zone << 12) | (ip_ver << 8) | proto
        sub = self._tables.get(zp)
        c = sub.get(tup) if sub is not None else None
        if c is None and self._ncold:
            c = self._thaw_tuple(zp, tup)
        return c

    def _find(self, conn: Conn, tup: tuple) -> Conn | None:
        """The entry under ``tup`` in ``conn``'s zone and protocol."""
        sub = self._tables.get((conn.zone << 12) | (conn.ip_ver << 8) | conn.proto)
        return sub.get(tup) if sub is not None else None

    def _tuple_of(self, pkt, key: list[int]) -> tuple[int, int, tuple]:
        ipv = pkt.ip_ver
        proto = key[NW_PROTO]
        if ipv == 6:
            src, dst = key[IPV6_SRC], key[IPV6_DST]
        else:
            src, dst = key[NW_SRC], key[NW_DST]
        if proto == 1 or proto == 58:
            return ipv, proto, (src, dst, pkt.icmp_id, (key[TP_SRC] << 8) | key[TP_DST])
        if proto in PORTED:
            return ipv, proto, (src, dst, key[TP_SRC], key[TP_DST])
        return ipv, proto, (src, dst, 0, 0)

    def _track(self, pkt, key: list[int], zone: int, t: Timeouts, now: int):
        """Lookup + L4 update.  Returns (conn, direction, ct_state bits | drop reason)."""
        ipv = pkt.ip_ver
        if ipv == 4:
            src, dst = key[NW_SRC], key[NW_DST]
        elif ipv == 6:
            src, dst = key[IPV6_SRC], key[IPV6_DST]
        else:
            self.stats["invalid"] += 1
            return None, 0, CS_TRK | CS_INV
        proto = key[NW_PROTO]
        if proto == 6 or proto == 17:
            tup = (src, dst, key[TP_SRC], key[TP_DST])
        elif proto == 1 or proto == 58:
            typ = key[TP_SRC]
            if typ in (ICMP_ERROR_TYPES if proto == 1 else ICMPV6_ERROR_TYPES):
                return self._related(pkt, zone, ipv)
            tup = (src, dst, pkt.icmp_id, (typ << 8) | key[TP_DST])
        elif proto in PORTED:
            tup = (src, dst, key[TP_SRC], key[TP_DST])
        else:
            tup = (src, dst, 0, 0)
        if pkt.nw_frag & FRAG_LATER or (proto == 6 and pkt.l4 < 0):
            # A non-first fragment has no L4 header: the kernel's get_l4proto gives up
            # on it (conntrack sees fragments only when defrag did not reassemble them).
            self.stats["invalid"] += 1
            return None, 0, CS_TRK | CS_INV
        zp = (zone << 12) | (ipv << 8) | proto
        tables = self._tables
        sub = tables.get(zp)
        conn = sub.get(tup) if sub is not None else None
        if conn is None and self._ncold:
            conn = self._thaw_tuple(zp, tup)
        if conn is not None and conn.expires <= now and not conn.status & IPS_OFFLOAD:
            self._destroy(conn, now)
            conn = None
        if conn is not None:
            d = DIR_ORIG if tup == conn.orig else DIR_REPLY
            status = conn.status
            if d:
                base = CS_TRK | CS_EST | CS_RPL
            elif status & IPS_SEEN_REPLY:
                base = CS_TRK | CS_EST
            else:  # an expected connection stays related (IP_CT_RELATED) until its reply
                base = CS_TRK | (CS_REL if status & IPS_EXPECTED else CS_NEW)
            if status & IPS_OFFLOAD and self.flowtable is not None and (proto == 6 or proto == 17) \
                    and not pkt.nw_frag and not pkt.ip_options and pkt.nw_ttl > 1:
                # act_ct looks in the flow table before conntrack: a hit forwards with the
                # stored NAT and leaves the conntrack state alone (a SYN too: only FIN/RST are
                # checked); FIN/RST tear the entry down first (fix-ups included), then
                # conntrack follows the close below.
                if self.flowtable.flow_hit(conn, now, len(pkt.frame), d == DIR_REPLY,
                                           pkt.tcp_flags if proto == 6 else 0):
                    return conn, d, base
                status = conn.status
            if proto == 6:
                if not VALID_OF[pkt.tcp_flags & 0x3F]:
                    self.stats["invalid"] += 1
                    return None, 0, CS_TRK | CS_INV
                res, timeout, ev = tcp_packet(conn, d, pkt, t, now)
                if _PACK and conn.status & IPS_OFFLOAD:  # (as on_offload: compiled, never packed)
                    tc = conn
                    tc.pack()  # tcp.packet unpacked it; still in the flow table
            else:
                res, timeout, ev = REGISTRY.get(proto, DEFAULT).packet(conn, d, pkt, t, now)
            if res == REPEAT:
                self._destroy(conn, now)
            else:
                if res == R_INVALID:
                    self.stats["invalid"] += 1
                    return None, 0, CS_TRK | CS_INV
                if d:
                    conn.pk1 += 1
                    conn.by1 += pkt.ip_len
                else:
                    conn.pk0 += 1
                    conn.by0 += pkt.ip_len
                if res == KILL:  # RST before any reply: deleted at once, timer untouched
                    self._destroy(conn, now)
                    return conn, d, base
                if res != R_IGNORE and timeout >= 0:
                    conn.expires = now + timeout
                    conn.timeout = timeout
                if d and not status & IPS_SEEN_REPLY:
                    conn.status |= IPS_SEEN_REPLY
                    ev |= EV_REPLY
                if ev:
                    if ev & EV_ASSURED:
                        self._unassured.pop(conn.id, None)
                    if conn.confirmed and self.events_enabled:  # (tested here: no call per packet)
                        self._event(conn, now, "UPDATE")
                return conn, d, base
        # Not found: a new, unconfirmed connection.
        if len(self._conns) + self._ncold >= t.conntrack_max and not self._early_drop(now):
            self.stats["drop"] += 1
            self._log(now, TABLE_FULL_MSG)
            return None, 0, TABLE_FULL_MSG
        # The tuple a new connection keeps: canonical int objects for its ports and hot
        # addresses, so a million connections do not each hold copies of "5001" or the
        # server's address (28-32 B per int; this runs once per connection, not per packet).
        tup = (self._intern(tup[0]), self._intern(tup[1]), _PORTS[tup[2]], _PORTS[tup[3]])
        rtup = invert(proto, tup)
        if rtup is None:  # ICMP type that cannot start a connection
            self.stats["invalid"] += 1
            return None, 0, CS_TRK | CS_INV
        if proto == 6:
            if not VALID_OF[pkt.tcp_flags & 0x3F]:
                self.stats["invalid"] += 1
                return None, 0, CS_TRK | CS_INV
            conn = TcpConn(zone, ipv, proto, tup, rtup, now)
            conn.ext = t.ext
            if not tcp_init(conn, pkt, t.loose):
                self.stats["invalid"] += 1
                return None, 0, CS_TRK | CS_INV
            res, timeout, _ev = tcp_packet(conn, DIR_ORIG, pkt, t, now)
            if res == R_INVALID:
                self.stats["invalid"] += 1
                return None, 0, CS_TRK | CS_INV
        else:
            conn = Conn(zone, ipv, proto, tup, rtup, now)
            conn.ext = t.ext
            h = REGISTRY.get(proto, DEFAULT)
            if not h.new(pkt, t):
                self.stats["invalid"] += 1
                return None, 0, CS_TRK | CS_INV
            res, timeout, _ev = h.packet(conn, DIR_ORIG, pkt, t, now)
        if timeout >= 0:
            conn.expires = now + timeout
            conn.timeout = timeout
        conn.pk0 = 1
        conn.by0 = pkt.ip_len
        if self._expects:
            e = self._expects.get((zone, ipv, proto, tup[0], tup[1], tup[3]))
            if e is not None and e.expires > now and e.master.confirmed:
                # init_conntrack: an expected connection is related, and uses its expectation up.
                self._unexpect(e.master)
                conn.related = True
                conn.status |= IPS_EXPECTED
                return conn, DIR_ORIG, CS_TRK | CS_REL
        return conn, DIR_ORIG, CS_TRK | CS_NEW

    def _intern(self, addr: int) -> int:
        """The canonical object for ``addr`` (a bounded table: it is emptied when it holds
        INTERN_MAX addresses, which keeps the hot ones and never grows without limit)."""
        t = self._addrs
        a = t.get(addr)
        if a is None:
            if len(t) >= INTERN_MAX:
                t.clear()
            a = t[addr] = addr
        return a

    # ------------------------------------------------------------------ helpers (ALGs)
    def _help(self, conn: Conn, d: int, base: int, pkt, now: int) -> None:
        """Shows a packet of a connection with a helper to that helper (helpers.py)."""
        if pkt.payload < 0 or pkt.payload_len <= 0:
            return
        data = bytes(pkt.frame[pkt.payload:pkt.payload + pkt.payload_len])
        if conn.helper == ALG_FTP:
            if conn.proto != 6 or not base & CS_EST:
                return  # the FTP helper reads established segments only
            ann = ftp_announce(data, d == DIR_REPLY)
            if ann is None:
                return
            ver, addr, port = ann
            sender = conn.reply[0] if d == DIR_REPLY else conn.orig[0]
            if addr is None:
                ver, addr = conn.ip_ver, sender
            if ver != conn.ip_ver or addr != sender:
                return  # loose=0: only the sender's own address
            other = conn.orig[0] if d == DIR_REPLY else conn.reply[0]
            self._expect(conn, 6, other, addr, port, now)
        elif conn.helper == ALG_TFTP:
            if conn.proto == 17 and d == DIR_ORIG and tftp_request(data):
                r = conn.reply  # the answer: from the server, any port, to the client's port
                self._expect(conn, 17, r[0], r[1], r[3], now)

    def _expect(self, master: Conn, proto: int, src: int, dst: int, dport: int, now: int) -> None:
        self._unexpect(master)  # max_expected 1: the newest replaces the older
        e = Expectation(master.zone, master.ip_ver, proto, src, dst, dport, master,
                        now + EXPECT_TIMEOUT_MS, master.helper)
        old = self._expects.get(e.key)
        if old is not None:
            self._unexpect(old.master)
        self._expects[e.key] = e
        self._expect_of[master.id] = e.key

    def unexpect(self, master: Conn) -> None:
        """Drops ``master``'s expectation (``conntrack -F expect``)."""
        self._unexpect(master)

    def _unexpect(self, master: Conn) -> None:
        k = self._expect_of.pop(master.id, None)
        if k is not None:
            self._expects.pop(k, None)

    def expectations(self, now: int) -> list[Expectation]:
        """The live expectations, oldest master first (``conntrack -L expect``)."""
        for e in [e for e in self._expects.values() if e.expires <= now]:
            self._unexpect(e.master)
        return sorted(self._expects.values(), key=lambda e: e.master.id)

    def _related(self, pkt, zone: int, ipv: int):
        inner = pkt.inner
        if inner is None:
            self.stats["error"] += 1
            return None, 0, CS_TRK | CS_INV
        p = inner.nw_proto
        if p == 1 or p == 58:
            itup = (inner.nw_src, inner.nw_dst, inner.icmp_id, (inner.tp_src << 8) | inner.tp_dst)
        elif p in PORTED:
            itup = (inner.nw_src, inner.nw_dst, inner.tp_src, inner.tp_dst)
        else:
            itup = (inner.nw_src, inner.nw_dst, 0, 0)
        rt = invert(p, itup)
        zp = (zone << 12) | (ipv << 8) | p
        sub = self._tables.get(zp) if rt is not None else None
        conn = sub.get(rt) if sub is not None else None
        if conn is None and rt is not None and self._ncold:
            conn = self._thaw_tuple(zp, rt)
        if conn is None or pkt.nw_dst != rt[1]:
            # No connection, or (nf_conntrack_inet_error) "outer daddr != inner": the error must
            # go to the source of the packet it quotes.
            self.stats["error"] += 1
            return None, 0, CS_TRK | CS_INV
        d = DIR_ORIG if rt == conn.orig else DIR_REPLY
        base = CS_TRK | CS_REL | (CS_RPL if d == DIR_REPLY else 0)
        return conn, d, base

    def _related_verdict(self, conn: Conn, d: int, base: int, key: list[int], zone: int, ct: Ct) -> CtVerdict:
        v = CtVerdict(base, zone)
        v.conn = conn
        v.reply = d == DIR_REPLY
        v.mark = conn.mark
        v.label = conn.label
        o = conn.orig
        v.orig = (conn.ip_ver, o[0], o[1], conn.proto, o[2], o[3])
        if ct.nat is not None and conn.status & (IPS_SRC_NAT | IPS_DST_NAT):
            # The error travels in direction d and quotes a packet of the other
            # direction, which must look as it did on the side the error goes to.
            status = conn.status
            if d == DIR_ORIG:
                want = invert(conn.proto, conn.reply)
                v.icmp_inner = conn.reply
                do_src, do_dst = status & IPS_SRC_NAT, status & IPS_DST_NAT
            else:
                want = invert(conn.proto, conn.orig)
                v.icmp_inner = conn.orig
                do_src, do_dst = status & IPS_DST_NAT, status & IPS_SRC_NAT
            if do_src:
                v.nat_src = (want[0], key[TP_SRC])
                v.state |= CS_SNAT
            if do_dst:
                v.nat_dst = (want[1], key[TP_DST])
                v.state |= CS_DNAT
        return v

    def _nat_packet(self, conn: Conn, d: int, base: int, ct: Ct, key: list[int], v: CtVerdict) -> None:
        """Translates an established packet like its connection's mapping: to the inverse of
        its other direction's tuple."""
        status = conn.status
        if d == DIR_ORIG:
            if base & CS_NEW:
                kind = ct.nat.kind
                if kind is None:
                    return  # kernel: bare nat does not touch a NEW packet
                want_src = status & IPS_SRC_NAT and kind != "dst"
                want_dst = status & IPS_DST_NAT and kind != "src"
            else:
                want_src = status & IPS_SRC_NAT
                want_dst = status & IPS_DST_NAT
            other = conn.reply
        else:
            want_src = status & IPS_DST_NAT
            want_dst = status & IPS_SRC_NAT
            other = conn.orig
        proto = conn.proto
        if proto == 1 or proto == 58:
            want = invert(proto, other)
            if want_src:
                v.nat_src = (want[0], key[TP_SRC])
                v.state |= CS_SNAT
            if want_dst:
                v.nat_dst = (want[1], key[TP_DST])
                v.state |= CS_DNAT
            if want_src or want_dst:
                v.icmp_id = want[2]
        else:  # invert(proto, other) is (other[1], other[0], other[3], other[2]): read in place
            if want_src:
                v.nat_src = (other[1], other[3])
                v.state |= CS_SNAT
            if want_dst:
                v.nat_dst = (other[0], other[2])
                v.state |= CS_DNAT

    # ------------------------------------------------------------------ commit
    def _confirm(self, conn: Conn, ct: Ct, now: int) -> str | None:
        zone = conn.zone
        zc = self._zone_count
        if not self.limits.allows(zone, zc.get(zone, 0)):
            msg = ZONE_LIMIT_MSG.format(zone=zone)
            self.stats["drop"] += 1
            self._log(now, msg)
            return msg
        spec = ct.nat
        natted = spec is not None and spec.kind is not None
        sub = self._sub(zone, conn.ip_ver, conn.proto)
        if natted:
            err = self._setup_nat(conn, spec, now, sub)
            if err is not None:
                return err
        if conn.reply in sub or conn.orig in sub or (self._ncold and self._cold_has(conn, natted)):
            self.stats["insert_failed"] += 1
            self.stats["drop"] += 1
            return CLASH_MSG
        conn.id = self._next_id
        self._next_id += 1
        self.created += 1
        conn.status |= IPS_CONFIRMED
        conn.confirmed = True
        sub[conn.orig] = conn
        sub[conn.reply] = conn
        self._conns[conn.id] = conn
        if not conn.status & IPS_ASSURED:
            self._unassured[conn.id] = conn
        zc[zone] = zc.get(zone, 0) + 1
        if conn.expires < self._next_expiry:
            self._next_expiry = conn.expires
        if self.events_enabled:
            self._event(conn, now, "NEW")
        return None

    def _setup_nat(self, conn: Conn, spec, now: int, table: dict) -> str | None:
        """Allocates the NAT of new connection ``conn`` (``table``: its zone and protocol's)."""
        proto = conn.proto
        o = conn.orig
        icmp = proto == 1 or proto == 58
        rtype = conn.reply[3]
        # ``taken(addr, port)`` of natmod.allocate: the tracker's one probe, set up for this
        # connection's reply tuple (see _NatProbe).
        taken = self._probe
        taken.table = table
        taken.cold = self._cold if self._ncold else None  # a tuple is taken by a frozen connection too
        taken.zp = (conn.zone << 12) | (conn.ip_ver << 8) | proto
        taken.icmp = icmp
        taken.rtype = rtype
        if spec.kind == "src":
            cur_port = o[2] if (icmp or proto in PORTED) else -1
            taken.snat = True
            taken.peer = o[1]
            taken.fixed = o[3]
            taken.ported = cur_port >= 0
            res = natmod.allocate(spec, proto, o[0], o[1], cur_port, taken, self._rng)
            if res is None:
                return self._nat_fail(now)
            a, p = self._intern(res[0]), _PORTS[res[1]]
            conn.reply = (o[1], a, p, rtype) if icmp else (o[1], a, o[3], p if cur_port >= 0 else 0)
            conn.status |= IPS_SRC_NAT_DONE
            if conn.reply != invert(proto, o):
                conn.status |= IPS_SRC_NAT
        else:
            cur_port = o[2] if icmp else (o[3] if proto in PORTED else -1)
            taken.snat = False
            taken.peer = o[0]
            taken.fixed = o[2]
            taken.ported = cur_port >= 0
            res = natmod.allocate(spec, proto, o[1], o[0], cur_port, taken, self._rng)
            if res is None:
                return self._nat_fail(now)
            a, p = self._intern(res[0]), _PORTS[res[1]]
            conn.reply = (a, o[0], p, rtype) if icmp else (a, o[0], p if cur_port >= 0 else 0, o[2])
            conn.status |= IPS_DST_NAT_DONE
            if conn.reply != invert(proto, o):
                conn.status |= IPS_DST_NAT
        return None

    def _nat_fail(self, now: int) -> str:
        self.stats["insert_failed"] += 1
        self.stats["drop"] += 1
        self._log(now, natmod.EXHAUSTED_MSG)
        return natmod.EXHAUSTED_MSG

    def _exec(self, conn: Conn, actions: tuple, now: int) -> None:
        ev = 0
        for a in actions:
            if isinstance(a, SetField):
                field, value, mask = a.field, a.value, a.mask
            elif isinstance(a, Load):
                field = a.dst.field
                mask = ((1 << a.dst.n_bits) - 1) << a.dst.ofs
                value = a.value << a.dst.ofs
            else:
                continue
            if field == "ct_mark":
                m = 0xFFFFFFFF if mask is None else mask
                new = (conn.mark & ~m) | (value & m)
                if new != conn.mark:
                    conn.mark = new & 0xFFFFFFFF
                    ev |= EV_MARK
            elif field == "ct_label":
                m = M128 if mask is None else mask
                new = (conn.label & ~m) | (value & m)
                if new != conn.label:
                    conn.label = new & M128
                    ev |= EV_LABEL
        if ev and conn.confirmed and conn.created != now:
            self._event(conn, now, "UPDATE")

    def _early_drop(self, now: int) -> bool:
        """Evicts the oldest non-ASSURED, non-offloaded entry (scan of 8)."""
        for i, c in enumerate(self._unassured.values()):
            if i >= EARLY_DROP_SCAN:
                break
            if c.status & (IPS_ASSURED | IPS_OFFLOAD):
                continue
            self._destroy(c, now)
            self.stats["early_drop"] += 1
            return True
        return False

    # ------------------------------------------------------------------ removal and timers
    def _destroy(self, conn: Conn, now: int) -> None:
        if not conn.confirmed:
            return
        sub = self._tables.get((conn.zone << 12) | (conn.ip_ver << 8) | conn.proto)
        if sub is not None:
            if sub.get(conn.orig) is conn:
                del sub[conn.orig]
            if sub.get(conn.reply) is conn:
                del sub[conn.reply]
        if self._conns.pop(conn.id, None) is not None:
            self._zone_count[conn.zone] -= 1
        self._unassured.pop(conn.id, None)
        if self._expect_of:
            self._unexpect(conn)  # nf_ct_remove_expectations: a master takes its own along
        conn.confirmed = False
        self._event(conn, now, "DESTROY")
        if self.destroy_hook is not None:
            self.destroy_hook(conn, now)

    def delete(self, conn: Conn, now: int = 0) -> None:
        """Removes one entry (conntrack -D)."""
        self._destroy(conn, now)

    def flush(self, zone: int | None = None, now: int = 0) -> int:
        """Deletes every entry (of ``zone``); returns how many."""
        if self._ncold:
            self.thaw_all(zone)
        victims = [c for c in self._ordered().values() if zone is None or c.zone == zone]
        for c in victims:
            self._destroy(c, now)
        return len(victims)

    def sweep(self, now: int) -> list[Conn]:
        """Removes and returns the expired, non-offloaded entries."""
        if now < self._next_expiry:
            return []
        dead = []
        nxt = None
        for c in self._ordered().values():
            if c.status & IPS_OFFLOAD:
                continue
            if c.expires <= now:
                dead.append(c)
            elif nxt is None or c.expires < nxt:
                nxt = c.expires
        for c in dead:
            self._destroy(c, now)
        self._next_expiry = nxt if nxt is not None else now + 1000
        return dead

    # ------------------------------------------------------------------ offload hooks
    def on_offload(self, conn: Conn, now: int) -> None:
        """The connection entered the flow table (kernel flow_offload_add)."""
        conn.status |= IPS_OFFLOAD
        if type(conn) is TcpConn:
            tc = conn
            tc.flags0 |= F_BE_LIBERAL
            tc.flags1 |= F_BE_LIBERAL
            if _PACK:
                tc.pack()  # its TCP state waits in one int until it leaves the flow table
        if conn.expires - now < DAY_MS // 2:  # nf_ct_offload_timeout
            conn.expires = now + DAY_MS
        self._unassured.pop(conn.id, None)

    def on_unoffload(self, conn: Conn, now: int, expired: bool = True, closing: bool = False) -> None:
        """Back to software (kernel flow_offload_fixup_ct): window re-learn, timeout fix-up."""
        conn.status &= ~(IPS_OFFLOAD | IPS_HW_OFFLOAD)
        t = self._timeouts()
        if conn.proto == 6:
            if closing:
                conn.state = TCP_CLOSE
                timeout = t.tcp[TCP_CLOSE]
                expired = False
            else:
                timeout = t.tcp[conn.state] if conn.state else t.tcp[TCP_ESTABLISHED]
            if type(conn) is TcpConn:
                tc = conn
                tc.unpack()
                tc.maxwin0 = tc.maxwin1 = 0
            off = t.flow_tcp
        elif conn.proto == 17:
            timeout = t.udp_stream if conn.status & IPS_SEEN_REPLY else t.udp
            off = t.flow_udp
        else:
            return
        if expired and timeout > off:
            # flow_offload_fixup_ct: the state's timeout minus the offload timeout, but only
            # when it is longer (a 10 s CLOSE stays 10 s).
            timeout -= off
        if closing or conn.expires - now > timeout:
            conn.expires = now + timeout
            conn.timeout = timeout
        if conn.expires < self._next_expiry:
            self._next_expiry = conn.expires
        if not conn.status & IPS_ASSURED and conn.confirmed:
            self._unassured[conn.id] = conn

    # ------------------------------------------------------------------ the compact tier (cold.py)
    def freeze(self, conn: Conn, ext: tuple, owner) -> bool:
        """Moves ``conn`` into the compact tier, with ``owner``'s row fields ``ext``.

        The caller (the offload manager) freezes only offloaded connections that nothing
        but itself and the tracker references (cold.py, Rule 1), and rebuilds its part in
        ``owner.thaw_record`` when the row is thawed.  Returns False, leaving ``conn`` as it
        is, when a value does not fit its row field exactly (cold.py, Rule 2).
        """
        if not conn.confirmed or conn.id in self._unassured or conn.id in self._expect_of:
            return False
        cold = self._cold
        if cold is None:
            cold = self._cold = ColdTier(owner.COLD_FIELDS)
            self._cold_owner = owner
        elif owner is not self._cold_owner:
            return False
        try:
            cold.put(conn_row(conn) + ext)
        except (struct.error, OverflowError):
            return False
        rare = rare_of(conn)
        if rare is not None:
            cold.rare[conn.id] = rare
        sub = self._tables[(conn.zone << 12) | (conn.ip_ver << 8) | conn.proto]
        sub.pop(conn.orig, None)
        sub.pop(conn.reply, None)
        del self._conns[conn.id]
        self._ncold += 1
        return True

    def thaw_row(self, row: int) -> Conn:
        """Turns compact-tier ``row`` back into a registered Conn (its owner re-attaches its
        record) and returns it."""
        cold = self._cold
        v = cold.values(row)
        conn = row_conn(v, cold.rare.pop(v[I_ID], None))
        cold.remove(row)
        self._ncold -= 1
        sub = self._sub(conn.zone, conn.ip_ver, conn.proto)
        sub[conn.orig] = conn
        sub[conn.reply] = conn
        self._conns[conn.id] = conn
        self._sorted = False
        self._cold_owner.thaw_record(conn, v[N_CONN:])
        return conn

    def thaw_all(self, zone: int | None = None) -> None:
        """Thaws every frozen connection (of ``zone``)."""
        if not self._ncold:
            return
        cold = self._cold
        for row in cold.live_rows():
            if zone is None or cold.zp_of(row) >> 12 == zone:
                self.thaw_row(row)

    def cold_views(self):
        """(first row, NumPy view) per chunk of the compact tier (see ``ColdTier.views``)."""
        return self._cold.views() if self._ncold else ()

    def _thaw_tuple(self, zp: int, tup: tuple) -> Conn | None:
        rd = self._cold.find(zp, tup)
        return self.thaw_row(rd >> 1) if rd >= 0 else None

    def _cold_has(self, conn: Conn, natted: bool) -> bool:
        """Whether a frozen connection has ``conn``'s original or reply tuple (``natted``: the
        reply tuple was just allocated by ``_setup_nat``, whose ``taken`` saw the frozen ones)."""
        zp = (conn.zone << 12) | (conn.ip_ver << 8) | conn.proto
        find = self._cold.find
        return (not natted and find(zp, conn.reply) >= 0) or find(zp, conn.orig) >= 0

    def _ordered(self) -> dict[int, Conn]:
        """``_conns`` in id order, the order of every walk over the table."""
        if not self._sorted:
            self._conns = dict(sorted(self._conns.items()))
            self._sorted = True
        return self._conns

    # ------------------------------------------------------------------ persistence
    def to_state(self) -> dict:
        return {"conns": [c.to_state() for c in self.snapshot()], "next_id": self._next_id, "created": self.created,
                "stats": dict(self.stats), "limits": self.limits.to_state(),
                "log": list(self.log), "events_enabled": self.events_enabled,
                "events": [list(e) for e in self.events], "ip_mib": dict(self.defrag.stats),
                "expects": [[e.proto, e.src, e.dst, e.dport, e.master.id, e.expires] for e in self._expects.values()]}

    @classmethod
    def from_state(cls, params, state: dict) -> Tracker:
        tr = cls(params)
        for s in state.get("conns", []):
            c = Conn.from_state(s)
            sub = tr._sub(c.zone, c.ip_ver, c.proto)
            sub[c.orig] = c
            sub[c.reply] = c
            tr._conns[c.id] = c
            if not c.status & (IPS_ASSURED | IPS_OFFLOAD):
                tr._unassured[c.id] = c
            tr._zone_count[c.zone] = tr._zone_count.get(c.zone, 0) + 1
        tr._next_id = state.get("next_id", 1)
        tr.created = state.get("created", 0)
        tr.stats.update(state.get("stats", {}))
        tr.defrag.stats.update(state.get("ip_mib", {}))  # the queues themselves are not kept
        for proto, src, dst, dport, mid, expires in state.get("expects", []):
            m = tr._conns.get(mid)
            if m is not None:
                tr._expect(m, proto, src, dst, dport, expires - EXPECT_TIMEOUT_MS)
        tr.limits = ZoneLimits.from_state(state.get("limits", {}))
        tr.log = list(state.get("log", []))
        tr.events_enabled = state.get("events_enabled", False)
        tr.events.extend(tuple(e) for e in state.get("events", []))
        return tr
