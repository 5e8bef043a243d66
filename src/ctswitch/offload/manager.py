"""The offload lifecycle of each connection: software flow table, then hardware.

Theory of operation
-------------------
States (``LIFECYCLE`` is the transition table)::

    NONE --consider: eligible--> OFFLOAD --HW insert ok--> HW_OFFLOAD
      ^                            |  ^ (HW refused: stays, retried on SW hits)
      +---- aged / FIN / RST / deleted / flushed ----+---------------+

* ``consider()`` runs after a slow-path ct() verdict on a committed connection.
  When ``policy.check`` allows it, the connection enters the software flow
  table (``IPS_OFFLOAD``, listed ``[OFFLOAD]``; ``tracker.on_offload`` stops its
  expiry and makes TCP liberal) and the hardware insert is tried at once.
* The hardware insert is two FDB rules (one per direction), all or nothing.
  It is refused when ``hw_rules + 2 > 2 * ct_max_offloaded_conns`` (mlx5's
  -ENOSPC; lowering the limit evicts nothing) or when the FDB group of the
  connection's pattern is full (``fdb.Fdb``).  A refused connection stays
  ``[OFFLOAD]`` with the reason in ``conn.why`` and is retried on a software
  hit, at most once per second (``flow_offload_refresh`` only re-requests the
  add when the timeout moves by more than 1 s).
* UDP before ASSURED with ``ctswitch.udp_unidirectional_offload`` (kernels >= 6.3,
  act_ct ``bidirectional = false``): one HW rule, the original direction only
  (``uni``; counted as a "CT uni-dir" connection).  Reply packets are not
  answered by the flow table while the connection is not ASSURED ("Process this
  flow in SW to allow promoting to ASSURED"): conntrack sees them.  The first
  reply to reach the flow table once the connection is ASSURED makes it
  bidirectional (``NF_FLOW_HW_BIDIRECTIONAL``, forced refresh): the reply rule
  is added.  Without the knob UDP is offloaded after its first reply, both
  directions at once (NV-DOC, reference §3.2 CHOICE).
* ``hw_hit``/``sw_hit`` record fast-path packets: last-used time and the
  connection's packet/byte counters (exact, unlike the real system).  A TCP
  FIN or RST reaching the software flow table tears the offload down.
* ``gc(now)`` is nf_flowtable's 1 s garbage collection: a connection idle for
  ``nf_flowtable_{tcp,udp}_timeout`` seconds is torn down at the first whole
  second ``t`` with ``t >= last_used + timeout``.  Deadlines sit in a heap
  refreshed lazily (hits only store ``last_used``), so a tick with nothing due
  costs O(1) and the work is O(log n) per expiring connection.  Call ``gc(now)``
  before delivering packets stamped ``now``.  A heap entry is one int,
  ``deadline << 40 | conn id`` (ids below 2**40), so entries order as
  (deadline, id); the record keeps its live entry (``hent``, the same int
  object), and a popped entry that differs is stale and skipped.
* Teardown deletes the HW rules (an emptied FDB applies a pending
  ``num_of_groups``), clears OFFLOAD/HW_OFFLOAD, and hands the connection back
  to conntrack with ``tracker.on_unoffload`` (timeout fix-up, window re-learn),
  except when the connection itself is being deleted.

Compact tier: an offloaded connection that nothing outside the tracker and
this manager references and that has been idle for ``COLD_IDLE_MS`` is
*frozen* (``compact``, run every ``COLD_BATCH`` offloads and at each GC
tick): the tracker moves the connection and
this record into one packed row (``conntrack/cold.py``, ``COLD_FIELDS`` is
the record's part) and drops the objects (~1.1 KB -> ~220 B per connection).
Anything that needs the connection thaws it back, equal field for field, and
``thaw_record`` re-attaches the record here.  While frozen its aging deadline
is a row field: ``gc`` thaws the rows that are due (one vectorised scan, only
when the earliest frozen deadline is due) before it pops the heap, so the
teardown order is unchanged; heap entries of frozen connections are stale
and are dropped when the heap is rebuilt.  Records carry ``seq`` (offload
order), so walks over offloaded connections keep the order of a manager that
never froze anything.

Knobs are read from ``params`` and cached per ``params.version``.
Per connection the manager keeps one small ``OffloadRecord`` (no tuples: the
pattern is a shared tuple, the two FDB group ids are int slots), one dict
entry and one heap int; ``consider`` is O(1) for a connection already
offloaded.  Counters are the conntrack Conn's int slots (``pk0``..``by1``),
or ``packets``/``bytes`` lists of other connection objects.
Pure: no clock (``now`` is switch time in ms), no I/O.
"""

from __future__ import annotations

import enum
import heapq
import sys
from collections import deque
from heapq import heappush

from ctswitch.offload import policy
from ctswitch.offload.fdb import Fdb, InsertResult, Pattern, pattern_name
from ctswitch.offload.policy import (
    _PATTERNS,
    IPS_ASSURED,
    IPS_HW_OFFLOAD,
    IPS_NAT_MASK,
    IPS_OFFLOAD,
    PolicyConfig,
)
from ctswitch.offload.policy import check as _check
from ctswitch.packet.headers import IPPROTO_TCP, IPPROTO_UDP, TCP_FIN, TCP_RST
from ctswitch.params import NF

P_HW_OFFLOAD = "other_config:hw-offload"
P_TC_POLICY = "other_config:tc-policy"
P_UDP_UNIDIR = "modparam:ctswitch.udp_unidirectional_offload"
P_MAX_CONNS = "devlink:ct_max_offloaded_conns"
P_NUM_GROUPS = "modparam:mlx5_core.num_of_groups"
P_FDB_CAPACITY = "modparam:ctswitch.fdb_capacity"
P_TCP_TIMEOUT = "sysctl:" + NF + "nf_flowtable_tcp_timeout"
P_UDP_TIMEOUT = "sysctl:" + NF + "nf_flowtable_udp_timeout"

GC_INTERVAL_MS = 1000  # nf_flow_offload_work_gc runs every HZ
RETRY_MS = 1000  # a SW hit re-requests the HW add only when the timeout moves by > 1 s

WHY_FIN = "torn down by FIN"
WHY_RST = "torn down by RST"
WHY_DELETED = "conntrack entry deleted"
WHY_FLUSH = "conntrack table flushed"
WHY_SKIP_HW = "tc-policy=skip_hw keeps offloaded connections out of hardware"


class OffloadState(enum.Enum):
    """Where a connection's fast path lives."""

    NONE = "none"  # conntrack only
    OFFLOAD = "offload"  # nf_flowtable in software: [OFFLOAD]
    HW_OFFLOAD = "hw_offload"  # and two FDB rules: [HW_OFFLOAD]


LIFECYCLE: dict[OffloadState, frozenset[OffloadState]] = {
    OffloadState.NONE: frozenset({OffloadState.OFFLOAD}),
    OffloadState.OFFLOAD: frozenset({OffloadState.HW_OFFLOAD, OffloadState.NONE}),
    OffloadState.HW_OFFLOAD: frozenset({OffloadState.NONE}),
}
# The members as module constants for the per-packet paths (an Enum class attribute costs ~50 ns).
_SW = OffloadState.OFFLOAD
_HW = OffloadState.HW_OFFLOAD

REFUSAL_KEYS = ("ct_max_offloaded_conns", "group_full", "table_full")


class OffloadRecord:
    """Per-connection offload bookkeeping (``conn.offload``).

    Attributes:
        state: OFFLOAD or HW_OFFLOAD (a connection in NONE has no record).
        pattern: FDB traffic pattern (a shared tuple).
        since: ms when it entered the software flow table.
        hw_since: ms when its HW rules went in, or None.
        last_used: ms of the last fast-path hit (or of the offload).
        last_try: ms of the last HW insert attempt.
        g1, g2: FDB group ids of the two rules (None without HW rules); ``groups`` is the pair.
        hent: the record's live heap entry (others are stale).
        sw_packets, sw_bytes, hw_packets, hw_bytes: fast-path hits counted here.
        uni: offloaded in the original direction only (UDP before ASSURED): one HW rule.
        seq: offload order (the manager's walks follow it; not persisted: the saved list is in it).
    """

    __slots__ = ("state", "pattern", "since", "hw_since", "last_used", "last_try", "g1", "g2", "hent",
                 "sw_packets", "sw_bytes", "hw_packets", "hw_bytes", "uni", "seq")

    def __init__(self, pattern: Pattern, now: int, seq: int = 0, hent: int = -1, uni: bool = False) -> None:
        self.state = _SW
        self.pattern = pattern
        self.since = self.last_used = self.last_try = now
        self.hw_since: int | None = None
        self.g1: int | None = None
        self.g2: int | None = None
        self.hent = hent
        self.sw_packets = self.sw_bytes = self.hw_packets = self.hw_bytes = 0
        self.uni = uni
        self.seq = seq

    @property
    def groups(self) -> tuple[int, ...] | None:
        if self.g1 is None:
            return None
        return (self.g1,) if self.g2 is None else (self.g1, self.g2)

    @property
    def n_rules(self) -> int:
        """HW rules the record needs (held once in HW_OFFLOAD): 1 one-way, else 2."""
        return 1 if self.uni else 2

    def to_list(self) -> list:
        return [self.state.value, list(self.pattern), self.since, self.hw_since, self.last_used,
                self.last_try, None if self.g1 is None else [self.g1, self.g2],
                self.sw_packets, self.sw_bytes, self.hw_packets, self.hw_bytes, self.uni]

    @classmethod
    def from_list(cls, v: list) -> OffloadRecord:
        p = (int(v[1][0]), int(v[1][1]), bool(v[1][2]))
        r = cls(policy._PATTERNS.setdefault(p, p), v[2])
        r.state = OffloadState(v[0])
        r.hw_since, r.last_used, r.last_try = v[3], v[4], v[5]
        if v[6]:
            r.g1, r.g2 = v[6][0], v[6][1]
        r.sw_packets, r.sw_bytes, r.hw_packets, r.hw_bytes = v[7:11]
        r.uni = bool(v[11]) if len(v) > 11 else False
        return r


HEAP_SHIFT = 40
HEAP_MASK = (1 << HEAP_SHIFT) - 1

# The record's part of a compact-tier row (conntrack/cold.py): (name, struct code).  Times
# other than since/last_used/deadline are stored as 32-bit offsets from ``since``; a value
# that does not fit keeps the connection an object.
COLD_FIELDS = (("oflags", "B"),  # OF_* bits
               ("pattern", "B"),  # index into OffloadManager._pats
               ("seq", "Q"), ("since", "q"), ("last_used", "q"),
               ("deadline", "q"),  # of the live heap entry (hent >> HEAP_SHIFT)
               ("hw_since_d", "i"), ("last_try_d", "i"),
               ("g1", "H"), ("g2", "H"),  # NO_GROUP: None
               ("sw_packets", "I"), ("sw_bytes", "I"), ("hw_packets", "I"), ("hw_bytes", "I"))
OF_HW = 1  # state HW_OFFLOAD (else OFFLOAD)
OF_UNI = 2
OF_NO_HW_SINCE = 4  # hw_since is None
NO_GROUP = 0xFFFF
COLD_BATCH = 256  # offloads between two compactions
COLD_WORK = 4096  # queued ids one compaction looks at, at most (a bounded pause)
# A connection offloaded or used by the fast path more recently is not frozen yet: one that
# still has traffic would only be thawed again at its next packet (a freeze and a thaw cost
# ~10 us together).  Short, so that at a high offload rate few connections wait.
COLD_IDLE_MS = 200
# _freeze outcomes
FROZEN, HELD, BUSY, KEPT = range(4)
NEVER = 1 << 62


def _local_refs() -> int:
    o = []
    return sys.getrefcount(o)


# sys.getrefcount of an object held by one local variable only (the call's own reference
# included): the baseline of the "nothing else holds it" test of ``_freeze``.
_LOCAL_REFS = _local_refs()


# Offloaded connections share a handful of status values: one int object each (``consider``
# stores ``_STATUS.setdefault(status, status)``).
_STATUS: dict[int, int] = {}


def _count(conn, reply: bool, nbytes: int) -> None:
    """One packet of ``nbytes`` on the connection's counters."""
    try:  # the conntrack Conn: int slots
        if reply:
            conn.pk1 += 1
            conn.by1 += nbytes
        else:
            conn.pk0 += 1
            conn.by0 += nbytes
    except AttributeError:  # any other connection object: [orig, reply] lists
        d = 1 if reply else 0
        conn.packets[d] += 1
        conn.bytes[d] += nbytes


def secs(ms: int) -> str:
    """Switch time for messages: ``31000`` -> ``"31"``, ``1500`` -> ``"1.5"``."""
    if ms % 1000 == 0:
        return str(ms // 1000)
    return f"{ms / 1000:.3f}".rstrip("0").rstrip(".")


class OffloadManager:
    """Offload lifecycle of every connection (see the module docstring).

    Attributes:
        params: the switch's Params.
        tracker: the conntrack Tracker (``on_offload``/``on_unoffload``/``iter_conns``).
        fdb: the modelled eSwitch FDB.
        hw_rules: FDB rules held by offloaded connections (2 per HW connection, 1 one-way).
        n_sw, n_hw: connections now in OFFLOAD (software only) / HW_OFFLOAD.
        n_uni: of the n_hw, those offloaded in one direction only (UDP before ASSURED).
        stats: offloaded (entries into the SW flow table), hw_inserted (successful
            HW inserts, one per connection), retries, aged, torn_down.
        refused: HW insert refusals by reason key (one per attempt).
        ineligible: consider() refusals by policy key.
        torn: teardowns by reason text.
    """

    COLD_FIELDS = COLD_FIELDS  # the record's part of a compact-tier row

    def __init__(self, params, tracker, fdb: Fdb | None = None) -> None:
        self.params = params
        self.tracker = tracker
        self.fdb = fdb or Fdb(params.get(P_FDB_CAPACITY), params.get(P_NUM_GROUPS))
        self.hw_rules = 0
        self.n_sw = 0
        self.n_hw = 0
        self.n_uni = 0
        self.stats: dict[str, int] = dict.fromkeys(
            ("offloaded", "hw_inserted", "retries", "aged", "torn_down"), 0)
        self.refused: dict[str, int] = dict.fromkeys(REFUSAL_KEYS, 0)
        self.ineligible: dict[str, int] = {}
        self.torn: dict[str, int] = {}
        self._conns: dict = {}  # conn id -> conn, for every connection with a record
        self._heap: list[int] = []  # deadline ms << HEAP_SHIFT | conn id
        self._ver = -1
        self._timeouts = (-1, -1)
        self.cfg = PolicyConfig()
        self.max_conns = 0
        self.skip_hw = False
        # Called as teardown_hook(conn) whenever a connection leaves offload (aging, FIN/RST,
        # deletion, flush), so caches of its decisions (the datapath's) can drop them.
        self.teardown_hook = None
        # The compact tier (module docstring): False keeps every connection an object.
        self.compaction = True
        self._seq = 0  # the next record's seq
        self._disordered = False  # a thawed connection was appended to _conns behind younger ones
        self._cold_new: deque[int] = deque()  # ids to freeze at the next compaction
        self._cold_retry: deque[int] = deque()  # ids still referenced when first tried: a second chance
        self._cold_busy: deque[tuple[int, int]] = deque()  # (ms, id) of recently used ones, to retry
        self._offloads = 0  # since the last compaction
        self._cold_min = NEVER  # no frozen connection's deadline is earlier
        self._pats: list[Pattern] = []  # pattern index of a row -> the shared pattern tuple
        self._pat_ids: dict[Pattern, int] = {}
        self._sync()

    # ------------------------------------------------------------------ knobs
    def sync(self) -> None:
        """Applies knob changes now (views call it; every entry point does it too)."""
        self._sync()

    def _sync(self) -> None:
        """Re-reads the knobs when ``params`` changed."""
        p = self.params
        if p.version == self._ver:
            return
        self._ver = p.version
        self.cfg = PolicyConfig(bool(p.get(P_HW_OFFLOAD)), bool(p.get(P_UDP_UNIDIR)))
        self.max_conns = int(p.get(P_MAX_CONNS))
        self.skip_hw = p.get(P_TC_POLICY) == "skip_hw"
        n, cap = int(p.get(P_NUM_GROUPS)), int(p.get(P_FDB_CAPACITY))
        f = self.fdb
        if n != (f.pending_num_of_groups or f.num_of_groups):
            f.set_num_of_groups(n)
        if cap != (f.pending_capacity or f.capacity):
            f.set_capacity(cap)
        timeouts = (int(p.get(P_TCP_TIMEOUT)), int(p.get(P_UDP_TIMEOUT)))
        if timeouts != self._timeouts:
            self._timeouts = timeouts
            self._rebuild_heap()

    def timeout_s(self, conn) -> int:
        """The idle aging time (s) of ``conn`` in the flow table."""
        return self._timeouts[0] if conn.proto == IPPROTO_TCP else self._timeouts[1]

    def deadline(self, conn) -> int | None:
        """The GC tick (ms) at which ``conn`` ages out if unused, or None."""
        rec = conn.offload
        if rec is None:
            return None
        self._sync()
        return _tick(rec.last_used + self.timeout_s(conn) * 1000)

    # -------------------------------------------------------------- lifecycle
    def consider(self, conn, now: int, ct_committed_path: bool = True, pkt=None) -> str | None:
        """Offloads ``conn`` when it is eligible.

        Args:
            conn: the connection of a slow-path ct() verdict.
            now: switch time (ms).
            ct_committed_path: False when that ct() path did not commit the connection.
            pkt: the packet (fragment, IPv4 options and TTL facts), or None.

        Returns:
            None when the connection is offloaded (now or already; in software
            at least: a hardware refusal is in ``conn.why``), else the reason
            it is not, also stored in ``conn.why``.
        """
        if conn.offload is not None:
            return None
        if self.params.version != self._ver:
            self._sync()
        verdict = _check(conn, self.cfg, ct_committed_path, pkt)  # (positional: no keyword parsing)
        if verdict is not None:
            key, text = verdict
            ineligible = self.ineligible
            ineligible[key] = ineligible.get(key, 0) + 1
            conn.why = text
            return text
        # Inline: the record (pattern_of, seq, heap entry, one-way flag) and _try_hw's first
        # attempt (last_try is ``now`` already); the same steps in the same order.
        proto = conn.proto
        st = conn.status
        p = (conn.ip_ver, proto, (st & IPS_NAT_MASK) != 0)
        p = _PATTERNS.setdefault(p, p)
        cid = conn.id
        seq = self._seq
        self._seq = seq + 1
        e = (now + (self._timeouts[0] if proto == IPPROTO_TCP else self._timeouts[1]) * 1000) << HEAP_SHIFT | cid
        # act_ct: bidirectional = false for UDP until ASSURED
        uni = True if proto == IPPROTO_UDP and self.cfg.udp_unidirectional and not st & IPS_ASSURED else False
        conn.offload = rec = OffloadRecord(p, now, seq, e, uni)
        conn.status = st | IPS_OFFLOAD
        self._conns[cid] = conn
        self.n_sw += 1
        stats = self.stats
        stats["offloaded"] += 1
        heappush(self._heap, e)
        tracker = self.tracker
        if tracker is not None:
            tracker.on_offload(conn, now)
        why = self._insert_rules(rec)
        if why is None:
            rec.state = _HW
            rec.hw_since = now
            conn.why = None
            self.n_sw -= 1
            self.n_hw += 1
            if uni:
                self.n_uni += 1
            stats["hw_inserted"] += 1
            st = conn.status | IPS_HW_OFFLOAD
        else:
            conn.why = why
            st = conn.status
        conn.status = _STATUS.setdefault(st, st)  # one shared int per status value
        if self.compaction:
            self._cold_new.append(cid)
            self._offloads += 1
            if self._offloads >= COLD_BATCH:
                self.compact(now=now)
        return None

    def _try_hw(self, conn, rec: OffloadRecord, now: int) -> str | None:
        """One HW insert attempt for a connection in OFFLOAD; returns the refusal or None."""
        rec.last_try = now
        why = self._insert_rules(rec)
        if why is not None:
            conn.why = why
            return why
        rec.state = OffloadState.HW_OFFLOAD
        rec.hw_since = now
        conn.status |= IPS_HW_OFFLOAD
        conn.why = None
        self.n_sw -= 1
        self.n_hw += 1
        if rec.uni:
            self.n_uni += 1
        self.stats["hw_inserted"] += 1
        return None

    def _make_bidirectional(self, conn, rec: OffloadRecord, now: int) -> None:
        """A one-way UDP offload whose connection became ASSURED: both directions from now on
        (act_ct sets NF_FLOW_HW_BIDIRECTIONAL and forces a refresh, which re-adds the flow with
        its reply rule).  When the reply rule does not fit, the original one stays."""
        rec.uni = False
        if rec.state is not OffloadState.HW_OFFLOAD:
            return
        self.n_uni -= 1
        why = self._insert_rules(rec, 1)
        if why is not None:  # the original direction keeps its rule; retried like any refusal
            rec.uni = True
            self.n_uni += 1
            conn.why = why
            return
        rec.last_try = now

    def _insert_rules(self, rec: OffloadRecord, n: int | None = None) -> str | None:
        """Inserts the record's ``n`` missing HW rules (default: all it needs), all or nothing.

        ``n`` is 1 for the reply rule of a one-way offload turning bidirectional (``g1``
        already held).  mlx5 counts rules against ``ct_max_offloaded_conns * 2``.
        """
        if self.skip_hw:
            return WHY_SKIP_HW
        if n is None:
            n = 1 if rec.uni else 2  # rec.n_rules
        hw_rules = self.hw_rules
        if hw_rules + n > 2 * self.max_conns:
            self.refused["ct_max_offloaded_conns"] += 1
            return f"ct_max_offloaded_conns reached ({self.max_conns})"
        f = self.fdb
        p = rec.pattern
        if n == 2:
            gid = f.insert_two(p)
            if gid is not None:  # both in one group, as two inserts would place them
                rec.g1 = rec.g2 = gid
                self.hw_rules = hw_rules + 2
                return None
        r = f.insert(p)
        if r is InsertResult.OK:
            g1 = f.last_group
            if n == 1:
                if rec.g1 is None:
                    rec.g1 = g1
                else:
                    rec.g2 = g1
                self.hw_rules += 1
                return None
            r = f.insert(p)
            if r is InsertResult.OK:
                rec.g1 = g1
                rec.g2 = f.last_group
                self.hw_rules += 2
                return None
            f.remove(p, g1)
        # Classified after any rollback: a pattern left without a group is "table full".
        name = pattern_name(p)
        used, size = f.pattern_usage(p)
        if size:
            self.refused["group_full"] += 1
            return f"hardware full: group {name} has {used}/{size}"
        self.refused["table_full"] += 1
        return (f"hardware full: no room for a new {name} group "
                f"({f.allocated}/{f.capacity} FDB entries allocated)")

    def hw_hit(self, conn, now: int, nbytes: int = 0, reply: bool = False) -> bool:
        """A packet forwarded by the connection's HW rules; False when it has none."""
        rec = conn.offload
        if rec is None or rec.state is not _HW:
            return False
        if reply and rec.uni:
            # One-way offload: no reply rule in hardware.  Before ASSURED the reply belongs to
            # conntrack (the caller takes the slow path); after, it turns the offload bidirectional.
            if not conn.status & IPS_ASSURED:
                return False
            self._make_bidirectional(conn, rec, now)
            if rec.uni:  # the reply rule did not fit: the software flow table forwarded it
                rec.last_used = now
                rec.sw_packets += 1
                rec.sw_bytes += nbytes
                _count(conn, reply, nbytes)
                return True
        rec.last_used = now
        rec.hw_packets += 1
        rec.hw_bytes += nbytes
        _count(conn, reply, nbytes)
        return True

    def hits(self, conn, now: int, packets: int, nbytes: int, reply: bool, hw: bool) -> None:
        """``packets`` fast-path hits of ``conn`` credited at once (``nbytes`` bytes, the last at
        ``now``; ``hw``: it was in hardware), as the batch table credits its kernel's hits: the
        same as ``packets - 1`` of them counted in bulk on the connection and its record, then the
        last (``nbytes // packets`` bytes) through ``hw_hit`` or ``sw_hit``, which set
        ``last_used`` and retry the hardware insert exactly as per-packet hits would.  A hardware
        hit that is no reply of a one-way offload is counted in one step (what those two give)."""
        rec = conn.offload
        last = nbytes // packets
        if rec is not None and packets > 1:
            whole = hw and rec.state is _HW and not (reply and rec.uni)  # all of them in one step
            if whole:
                n, b = packets, nbytes
            else:
                n, b = packets - 1, nbytes - last
            if reply:
                conn.pk1 += n
                conn.by1 += b
            else:
                conn.pk0 += n
                conn.by0 += b
            if hw:
                rec.hw_packets += n
                rec.hw_bytes += b
            else:
                rec.sw_packets += n
                rec.sw_bytes += b
            if whole:
                rec.last_used = now
                return
        if hw:
            self.hw_hit(conn, now, last, reply)
        else:
            self.sw_hit(conn, now, last, reply)

    def sw_hit(self, conn, now: int, nbytes: int = 0, reply: bool = False, tcp_flags: int = 0) -> bool:
        """A packet that hit the software flow table.

        Returns False when the packet must take the slow path instead: the
        connection is not offloaded, or the packet carries FIN/RST (which
        tears the offload down first, so conntrack sees the close).
        """
        rec = conn.offload
        if rec is None:
            return False
        if tcp_flags & (TCP_FIN | TCP_RST) and conn.proto == IPPROTO_TCP:
            self.teardown(conn, WHY_RST if tcp_flags & TCP_RST else WHY_FIN, now)
            return False
        if rec.uni:
            if not conn.status & IPS_ASSURED:
                # act_ct: "Process this flow in SW to allow promoting to ASSURED": the flow's
                # timeout is refreshed (with the HW retry), the packet goes to conntrack.
                rec.last_used = now
                self._retry(conn, rec, now)
                return False
            if reply:
                self._make_bidirectional(conn, rec, now)
        rec.last_used = now
        rec.sw_packets += 1
        rec.sw_bytes += nbytes
        _count(conn, reply, nbytes)
        self._retry(conn, rec, now)
        return True

    def _retry(self, conn, rec: OffloadRecord, now: int) -> None:
        """flow_offload_refresh: a software hit re-requests the HW add of a connection
        still in software when its timeout moves by more than 1 s."""
        if rec.state is _SW and now - rec.last_try > RETRY_MS:
            self._sync()
            self.stats["retries"] += 1
            self._try_hw(conn, rec, now)

    def flow_hit(self, conn, now: int, nbytes: int, reply: bool, tcp_flags: int) -> bool:
        """act_ct's flow-table lookup for a packet of an offloaded connection that reached
        ct() (the tracker asks before running conntrack): True when the flow table handled
        it (counted as a hardware or software hit); False when it must go to conntrack:
        FIN/RST, which tear the offload down first."""
        rec = conn.offload
        if rec is None:
            return False
        if rec.state is _HW and not tcp_flags & (TCP_FIN | TCP_RST):
            if reply and rec.uni and not conn.status & IPS_ASSURED:
                rec.last_used = now  # the SW flow table refreshes; conntrack handles the packet
                return False
            return self.hw_hit(conn, now, nbytes, reply)
        return self.sw_hit(conn, now, nbytes, reply, tcp_flags)

    def gc(self, now: int) -> list[tuple[object, str]]:
        """The 1 s flow-table GC up to ``now``: ages out idle connections.

        Returns:
            ``[(conn, why), ...]`` in teardown order; each was torn down at its
            own GC tick (the ``t=`` in ``why``), which is at most ``now``.
        """
        self._sync()
        tick_now = now - now % GC_INTERVAL_MS
        if self._cold_min <= tick_now:
            self._thaw_due(tick_now)
        heap = self._heap
        limit = (tick_now + 1) << HEAP_SHIFT  # entries below it are due (deadline <= tick_now)
        if not heap or heap[0] >= limit:
            if self._cold_new or self._cold_retry or self._cold_busy:
                self.compact(now=now)
            return []
        out: list[tuple[object, str]] = []
        while heap and heap[0] < limit:
            e = heapq.heappop(heap)
            dl = e >> HEAP_SHIFT
            cid = e & HEAP_MASK
            conn = self._conns.get(cid)
            rec = conn.offload if conn is not None else None
            if rec is None or rec.hent != e:
                continue
            t = self.timeout_s(conn)
            real = rec.last_used + t * 1000
            if real > dl:
                rec.hent = e = real << HEAP_SHIFT | cid
                heapq.heappush(heap, e)
                continue
            at = _tick(real)
            why = f"aged out after {t} s idle at t={secs(at)}"
            self._teardown(conn, why, at, fixup=True)
            self.stats["aged"] += 1
            out.append((conn, why))
        if self._cold_new or self._cold_retry or self._cold_busy:
            self.compact(now=now)
        return out

    def teardown(self, conn, why: str, now: int, *, deleted: bool = False) -> bool:
        """Ends the offload of ``conn`` (FIN, RST, conntrack deletion, flush...).

        Args:
            why: the reason, stored in ``conn.why`` (``WHY_FIN``, ``WHY_RST``...).
            deleted: the connection itself is being deleted: skip
                ``tracker.on_unoffload`` (there is nothing to hand back).

        Returns:
            False when the connection was not offloaded.
        """
        if conn.offload is None:
            return False
        if self.params.version != self._ver:
            self._sync()
        self._teardown(conn, why, now, fixup=not deleted)
        self.stats["torn_down"] += 1
        torn = self.torn
        torn[why] = torn.get(why, 0) + 1
        return True

    def flush(self, now: int, zone: int | None = None, why: str = WHY_FLUSH) -> int:
        """Tears down every offloaded connection (of ``zone``) as deleted; returns how many."""
        if getattr(self.tracker, "_ncold", 0):
            self.tracker.thaw_all(zone)
        victims = [c for c in self._ordered().values() if zone is None or c.zone == zone]
        for c in victims:
            self.teardown(c, why, now, deleted=True)
        return len(victims)

    def _teardown(self, conn, why: str, now: int, *, fixup: bool) -> None:
        if self.teardown_hook is not None:
            # First, while the connection is still offloaded: caches credit their last hits.
            self.teardown_hook(conn)
        rec: OffloadRecord = conn.offload
        if rec.state is _HW:
            g1, g2 = rec.g1, rec.g2
            if g1 is not None:  # rec.groups, in order
                if g2 is None:
                    self.fdb.remove(rec.pattern, g1)
                elif g2 == g1:  # both in one group (insert_two): one call
                    self.fdb.remove(rec.pattern, g1, 2)
                else:
                    remove = self.fdb.remove
                    remove(rec.pattern, g1)
                    remove(rec.pattern, g2)
            self.hw_rules -= 1 if g2 is None else 2
            self.n_hw -= 1
            if rec.uni:
                self.n_uni -= 1
        else:
            self.n_sw -= 1
        conn.status &= ~(IPS_OFFLOAD | IPS_HW_OFFLOAD)
        conn.offload = None
        self._conns.pop(conn.id, None)
        conn.why = why
        if fixup and self.tracker is not None:
            self.tracker.on_unoffload(conn, now)

    def _rebuild_heap(self) -> None:
        heap = []
        for cid, c in self._conns.items():
            rec = c.offload
            rec.hent = e = (rec.last_used + self.timeout_s(c) * 1000) << HEAP_SHIFT | cid
            heap.append(e)
        heapq.heapify(heap)
        self._heap = heap
        self._cold_min = NEVER
        views = self.tracker.cold_views() if getattr(self.tracker, "_ncold", 0) else ()
        for _, v in views:  # the same deadlines for frozen connections, in their rows
            live = v["id"] != 0
            if not live.any():
                continue
            tcp = (v["zp"] & 0xFF) == IPPROTO_TCP
            dl = v["last_used"] + (tcp * self._timeouts[0] + ~tcp * self._timeouts[1]) * 1000
            v["deadline"][live] = dl[live]
            self._cold_min = min(self._cold_min, int(dl[live].min()))

    # ------------------------------------------------------------ compact tier
    def compact(self, everything: bool = False, now: int | None = None) -> int:
        """Freezes queued offloaded connections that nothing outside the tracker and this
        manager references; returns how many.

        Args:
            everything: every offloaded connection, queued or not, busy or not (tests, tools).
            now: switch time (ms); a connection offloaded or used by the fast path in the
                last COLD_IDLE_MS waits (freezing a busy connection would only thaw it again
                at its next packet); None: no such wait.

        A queued connection still referenced gets a second chance at a later compaction
        (the caller of the ``consider`` that queued it usually holds it until then); after
        that it stays an object until it is thawed or offloaded again.  A busy one is
        looked at again COLD_IDLE_MS later.  One call looks at COLD_WORK queued ids at most
        (a listing may have thawed a million connections).
        """
        tr = self.tracker
        self._offloads = 0
        retry, new, busy = self._cold_retry, self._cold_new, self._cold_busy
        if getattr(tr, "freeze", None) is None or not self.compaction:
            retry.clear()
            new.clear()
            busy.clear()
            return 0
        n = 0
        freeze = self._freeze
        if everything:
            retry.clear()
            new.clear()
            busy.clear()
            for cid in list(self._conns):
                n += freeze(cid, tr, None) == FROZEN
        else:
            budget = COLD_WORK
            if now is not None:
                while busy and busy[0][0] <= now - COLD_IDLE_MS and budget:
                    new.append(busy.popleft()[1])
                    budget -= 1
            budget = COLD_WORK
            for _ in range(min(len(retry), budget)):
                cid = retry.popleft()
                r = freeze(cid, tr, now)
                n += r == FROZEN
                if r == BUSY:
                    busy.append((now, cid))
                budget -= 1
            for _ in range(min(len(new), budget)):
                cid = new.popleft()
                r = freeze(cid, tr, now)
                if r == FROZEN:
                    n += 1
                elif r == HELD:
                    retry.append(cid)
                elif r == BUSY:
                    busy.append((now, cid))
        heap = self._heap
        if len(heap) > 2 * len(self._conns) + 1024:
            # Mostly entries of frozen connections (stale): keep the live ones only.
            heap = self._heap = [c.offload.hent for c in self._conns.values()]
            heapq.heapify(heap)
        return n

    def _freeze(self, cid: int, tr, now: int | None) -> int:
        """Freezes connection ``cid``: FROZEN, or why not: HELD (referenced elsewhere), BUSY
        (offloaded or used in the last COLD_IDLE_MS), KEPT (gone, or not representable)."""
        conn = self._conns.get(cid)
        if conn is None:
            return KEPT
        rec = conn.offload
        # cold.py Rule 1: the references are this frame's, _conns' and the tracker's only,
        # and the record's are this frame's and the connection's.
        if sys.getrefcount(conn) != _LOCAL_REFS + 1 + tr.HOLDS or sys.getrefcount(rec) != _LOCAL_REFS + 1:
            return HELD
        if now is not None and now - rec.last_used < COLD_IDLE_MS:
            return BUSY
        e = rec.hent
        g1, g2 = rec.g1, rec.g2
        if e & HEAP_MASK != cid or e < 0 or g1 == NO_GROUP or g2 == NO_GROUP:
            return KEPT
        p = rec.pattern
        pi = self._pat_ids.get(p)
        if pi is None:
            pi = self._pat_ids[p] = len(self._pats)
            self._pats.append(p)
        since, hw_since = rec.since, rec.hw_since
        ext = ((OF_HW if rec.state is _HW else 0) | (OF_UNI if rec.uni else 0)
               | (OF_NO_HW_SINCE if hw_since is None else 0),
               pi, rec.seq, since, rec.last_used, e >> HEAP_SHIFT,
               0 if hw_since is None else hw_since - since, rec.last_try - since,
               NO_GROUP if g1 is None else g1, NO_GROUP if g2 is None else g2,
               rec.sw_packets, rec.sw_bytes, rec.hw_packets, rec.hw_bytes)
        if rec.uni.__class__ is not bool or not tr.freeze(conn, ext, self):
            return KEPT
        del self._conns[cid]
        if e >> HEAP_SHIFT < self._cold_min:
            self._cold_min = e >> HEAP_SHIFT
        return FROZEN

    def cold_record(self, cid: int, v: tuple) -> OffloadRecord:
        """The record of connection ``cid`` from its row fields (COLD_FIELDS order)."""
        of, pi, seq, since, last_used, dl, hs_d, lt_d, g1, g2, swp, swb, hwp, hwb = v
        rec = OffloadRecord.__new__(OffloadRecord)
        rec.state = _HW if of & OF_HW else _SW
        rec.pattern = self._pats[pi]
        rec.since = since
        rec.hw_since = None if of & OF_NO_HW_SINCE else since + hs_d
        rec.last_used = last_used
        rec.last_try = since + lt_d
        rec.g1 = None if g1 == NO_GROUP else g1
        rec.g2 = None if g2 == NO_GROUP else g2
        rec.hent = dl << HEAP_SHIFT | cid
        rec.sw_packets, rec.sw_bytes, rec.hw_packets, rec.hw_bytes = swp, swb, hwp, hwb
        rec.uni = bool(of & OF_UNI)
        rec.seq = seq
        return rec

    def thaw_record(self, conn, v: tuple) -> None:
        """The tracker thawed ``conn``: its record comes back (row fields ``v``)."""
        rec = conn.offload = self.cold_record(conn.id, v)
        self._conns[conn.id] = conn
        self._disordered = True
        # Its old heap entry may have been dropped with the stale ones: push it again (a
        # duplicate is harmless, the second pop finds the record changed or gone).
        heapq.heappush(self._heap, rec.hent)
        if self.compaction:
            self._cold_new.append(conn.id)

    def _thaw_due(self, tick_now: int) -> None:
        """Thaws the frozen connections whose deadline is due at ``tick_now``."""
        due: list[int] = []
        nxt = NEVER
        for base, v in self.tracker.cold_views() if getattr(self.tracker, "_ncold", 0) else ():
            live = v["id"] != 0
            dl = v["deadline"]
            d = live & (dl <= tick_now)
            due.extend((base + d.nonzero()[0]).tolist())
            rest = dl[live & ~d]
            if len(rest):
                nxt = min(nxt, int(rest.min()))
        self._cold_min = nxt
        for row in due:
            self.tracker.thaw_row(row)

    def _ordered(self) -> dict:
        """``_conns`` in offload order (thawed connections were appended out of it)."""
        if self._disordered:
            self._conns = dict(sorted(self._conns.items(), key=lambda kv: kv[1].offload.seq))
            self._disordered = False
        return self._conns

    # ----------------------------------------------------------------- views
    def state_of(self, conn) -> OffloadState:
        rec = conn.offload
        return OffloadState.NONE if rec is None else rec.state

    def explain(self, conn) -> str:
        """Whether ``conn`` is offloaded, where, and why (not), in plain words."""
        rec = conn.offload
        if rec is None:
            why = getattr(conn, "why", None)
            if why is None:
                why = "not evaluated yet (no slow-path ct() verdict since it was created or restored)"
            return f"not offloaded: {why}"
        dl = self.deadline(conn)
        aging = (f"last used at t={secs(rec.last_used)}; ages out at t={secs(dl)} "
                 f"unless used ({self.timeout_s(conn)} s idle timeout)")
        if rec.state is OffloadState.HW_OFFLOAD:
            if rec.uni:
                return (f"offloaded to hardware [HW_OFFLOAD] since t={secs(rec.hw_since)}, original "
                        f"direction only: 1 FDB rule in group {pattern_name(rec.pattern)}; replies go "
                        f"to conntrack until the connection is ASSURED; {aging}")
            return (f"offloaded to hardware [HW_OFFLOAD] since t={secs(rec.hw_since)}: "
                    f"2 FDB rules in group {pattern_name(rec.pattern)}; {aging}")
        return (f"offloaded to the software flow table [OFFLOAD] since t={secs(rec.since)}, "
                f"not in hardware: {conn.why}; the hardware insert is retried on software hits; {aging}")

    def counters(self) -> dict[str, int]:
        """Every counter, flat (for offload-stats-show and tests)."""
        self._sync()
        out = {
            "offloaded_sw": self.n_sw,
            "offloaded_hw": self.n_hw,
            "hw_rules": self.hw_rules,
            "hw_rules_max": 2 * self.max_conns,
            "offloaded_uni": self.n_uni,
            "ct_max_offloaded_conns": self.max_conns,
        }
        out.update(self.stats)
        out.update({f"refused_{k}": v for k, v in self.refused.items()})
        return out

    # ------------------------------------------------------------ persistence
    def to_state(self) -> dict:
        """JSON-able snapshot (records keyed by connection id, plus every ``why``)."""
        tr = self.tracker
        conns = (tr.snapshot() if hasattr(tr, "snapshot") else tr.iter_conns()) if tr is not None else ()
        whys = {}
        offloaded = []
        for c in conns:
            w = getattr(c, "why", None)
            if w is not None:
                whys[str(c.id)] = w
            if getattr(tr, "_ncold", 0) and c.offload is not None:
                offloaded.append(c)
        if getattr(tr, "_ncold", 0):  # frozen connections' records too, in offload order
            offloaded.sort(key=lambda c: c.offload.seq)
        else:
            offloaded = self._ordered().values()
        return {
            "fdb": self.fdb.to_state(),
            "stats": dict(self.stats),
            "refused": dict(self.refused),
            "ineligible": dict(self.ineligible),
            "torn": dict(self.torn),
            "conns": [[c.id, c.offload.to_list()] for c in offloaded],
            "why": whys,
        }

    @classmethod
    def from_state(cls, params, tracker, state: dict) -> OffloadManager:
        """A manager rebuilt from ``to_state`` over an already restored ``tracker``."""
        m = cls(params, tracker, Fdb.from_state(state["fdb"]))
        m.load_state(state, tracker)
        return m

    def load_state(self, state: dict, tracker=None) -> None:
        """Restores ``to_state`` in place, re-attaching records to ``tracker``'s connections.

        Records whose connection no longer exists give their FDB rules back.
        """
        if tracker is not None:
            self.tracker = tracker
        self.fdb = Fdb.from_state(state["fdb"])
        self.stats = dict.fromkeys(self.stats, 0) | state.get("stats", {})
        self.refused = dict.fromkeys(REFUSAL_KEYS, 0) | state.get("refused", {})
        self.ineligible = dict(state.get("ineligible", {}))
        self.torn = dict(state.get("torn", {}))
        by_id = {c.id: c for c in self.tracker.iter_conns()} if self.tracker is not None else {}
        self._conns = {}
        self._disordered = False
        self._cold_new.clear()
        self._cold_retry.clear()
        self._cold_busy.clear()
        self.hw_rules = self.n_sw = self.n_hw = self.n_uni = 0
        whys = state.get("why", {})
        for c in by_id.values():
            c.offload = None
            w = whys.get(str(c.id))
            if w is not None:
                c.why = w
        for cid, v in state.get("conns", ()):
            rec = OffloadRecord.from_list(v)
            conn = by_id.get(cid)
            if conn is None:
                if rec.state is OffloadState.HW_OFFLOAD:
                    for gid in rec.groups or ():
                        self.fdb.remove(rec.pattern, gid)
                continue
            conn.offload = rec
            conn.status |= IPS_OFFLOAD
            rec.seq = self._seq
            self._seq += 1
            self._conns[cid] = conn
            if rec.state is OffloadState.HW_OFFLOAD:
                conn.status |= IPS_HW_OFFLOAD
                self.hw_rules += 1 if rec.g2 is None else 2
                self.n_hw += 1
                self.n_uni += 1 if rec.uni else 0
            else:
                conn.status &= ~IPS_HW_OFFLOAD
                self.n_sw += 1
        self._ver = -1
        self._sync()
        self._rebuild_heap()
        if self.compaction:
            self._cold_new.extend(self._conns)  # frozen by the next compactions


def _tick(ms: int) -> int:
    """The first GC tick at or after ``ms``."""
    return -(-ms // GC_INTERVAL_MS) * GC_INTERVAL_MS
