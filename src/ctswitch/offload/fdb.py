"""The eSwitch FDB as an mlx5 auto-grouped flow table.

Theory of operation
-------------------
Every offloaded tuple is one FDB entry (FTE).  The hardware keeps entries of the
same *match criteria* together in a flow group, so the table is carved into
groups, one per traffic pattern.  ctswitch names a pattern
``(ip_ver, proto, nat)`` and prints it as ``tcp4-nat``, ``udp6``...

Rules (mlx5 ``fs_core`` auto-grouping, as NV-DOC describes it):

1. ``group_size = capacity // (num_of_groups + 1)``: the "+1" share is kept for
   groups that do not get a big slot.
2. An insert goes into a group of its pattern that has room.  When none has
   room a new group is created: a *big* group of ``group_size`` entries while
   fewer than ``num_of_groups`` big groups exist, else a *size-1* group.
3. A new group needs that many unallocated entries; when they are missing the
   insert is refused: ``GROUP_FULL`` when the pattern already has (full)
   groups, ``TABLE_FULL`` when it has none.  Refusals are results, never
   exceptions.
4. A group is destroyed when its last entry is removed (the driver deletes
   empty auto-groups); a destroyed big group frees its big slot.
5. ``num_of_groups`` (and the capacity) are read only when the table is
   (re)created: a change applies at once when the FDB is empty, else it stays
   *pending* and applies when the last entry leaves.

Model simplifications (documented choices): free space is counted, not placed,
so fragmentation of the index space is not modelled; the firmware pool is the
NV-DOC figure (4,000,000) rather than 4·1024·1024.

Pure: no clock, no I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ctswitch.packet.headers import IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP

Pattern = tuple[int, int, bool]  # (ip_ver 4|6, IP protocol, NATed?)

PROTO_NAMES: dict[int, str] = {
    IPPROTO_TCP: "tcp",
    IPPROTO_UDP: "udp",
    IPPROTO_ICMP: "icmp",
    IPPROTO_ICMPV6: "icmpv6",
    IPPROTO_SCTP: "sctp",
    47: "gre",
}


def pattern_name(pattern: Pattern) -> str:
    """``(4, 6, True)`` -> ``"tcp4-nat"``; ``(6, 17, False)`` -> ``"udp6"``."""
    ip_ver, proto, nat = pattern
    base = PROTO_NAMES.get(proto, f"proto{proto}")
    return f"{base}{ip_ver}" + ("-nat" if nat else "")


class InsertResult(enum.Enum):
    """Outcome of ``Fdb.insert``."""

    OK = "ok"
    GROUP_FULL = "group full"  # the pattern's groups are full and no new group fits
    TABLE_FULL = "table full"  # no group for the pattern and no room to create one


@dataclass(slots=True)
class FlowGroup:
    """One flow group.

    Attributes:
        gid: creation number (unique for the table's life, across resizes).
        pattern: the traffic pattern all its entries share.
        size: entries reserved (``group_size`` for a big group, 1 otherwise).
        used: entries in use.
        big: True for a big group.
    """

    gid: int
    pattern: Pattern
    size: int
    used: int = 0
    big: bool = True

    @property
    def name(self) -> str:
        return pattern_name(self.pattern)


class Fdb:
    """The auto-grouped FDB table (see the module docstring).

    Attributes:
        capacity: entries in the table (active configuration).
        num_of_groups: big-group slots (active configuration).
        group_size: entries per big group.
        pending_num_of_groups / pending_capacity: a change waiting for the FDB to empty, or None.
        groups: live groups by gid, in creation order.
        allocated: entries reserved by live groups.
        used: entries in use.
        big_groups: live big groups.
        last_group: gid of the group that took the last successful insert.
        stats: counters (inserts, removes, group_full, table_full, groups_created,
            groups_destroyed, reconfigured).
    """

    def __init__(self, capacity: int = 4_000_000, num_of_groups: int = 4) -> None:
        if capacity < 1 or num_of_groups < 1:
            raise ValueError("fdb capacity and num_of_groups must be positive")
        self.capacity = capacity
        self.num_of_groups = num_of_groups
        self.group_size = capacity // (num_of_groups + 1)
        self.pending_num_of_groups: int | None = None
        self.pending_capacity: int | None = None
        self.groups: dict[int, FlowGroup] = {}
        self._by_pattern: dict[Pattern, dict[int, FlowGroup]] = {}
        self._open: dict[Pattern, dict[int, FlowGroup]] = {}  # groups with room
        self.allocated = 0
        self.used = 0
        self.big_groups = 0
        self.last_group: int | None = None
        self._next_gid = 0
        self.stats: dict[str, int] = dict.fromkeys(
            ("inserts", "removes", "group_full", "table_full", "groups_created",
             "groups_destroyed", "reconfigured"), 0)

    # ------------------------------------------------------------------ entries
    def insert(self, pattern: Pattern) -> InsertResult:
        """Adds one entry of ``pattern``; on OK ``last_group`` names its group."""
        open_groups = self._open.get(pattern)
        if open_groups:
            g = open_groups[next(iter(open_groups))]
        else:
            free = self.capacity - self.allocated
            if self.big_groups < self.num_of_groups and self.group_size >= 1:
                size, big = self.group_size, True
            else:
                size, big = 1, False
            if free < size:
                if self._by_pattern.get(pattern):
                    self.stats["group_full"] += 1
                    return InsertResult.GROUP_FULL
                self.stats["table_full"] += 1
                return InsertResult.TABLE_FULL
            g = self._create(pattern, size, big)
        g.used += 1
        self.used += 1
        if g.used >= g.size:
            del self._open[pattern][g.gid]
        self.stats["inserts"] += 1
        self.last_group = g.gid
        return InsertResult.OK

    def insert_two(self, pattern: Pattern) -> int | None:
        """Two entries of ``pattern`` when the group ``insert`` would pick has room for both:
        exactly what two ``insert`` calls would do (both land in that group); returns its gid.
        None (nothing done) otherwise: the caller falls back to ``insert``."""
        open_groups = self._open.get(pattern)
        if not open_groups:
            return None
        gid = next(iter(open_groups))
        g = open_groups[gid]
        used = g.used + 2
        size = g.size
        if used > size:
            return None
        g.used = used
        self.used += 2
        if used >= size:
            del open_groups[gid]
        self.stats["inserts"] += 2
        self.last_group = gid = g.gid
        return gid

    def remove(self, pattern: Pattern, gid: int | None = None, n: int = 1) -> bool:
        """Removes one entry of ``pattern`` (from group ``gid`` when given); ``n`` entries: the
        same as ``n`` calls (a connection's two rules of one group leave in one call).

        Returns False when there is no such entry (for the last of the ``n``).  An emptied group
        is destroyed; an emptied table applies a pending reconfiguration.
        """
        groups = self._by_pattern.get(pattern)
        if not groups:
            return False
        g = groups.get(next(reversed(groups)) if gid is None else gid)
        if g is None or g.used == 0:
            return False
        used = g.used
        if n > used:  # the group empties before the last: one call after the other
            ok = False
            for _ in range(n):
                ok = self.remove(pattern, gid)
            return ok
        # (with n > 1 and the group left non-empty by all but the last, as the calls one by one:
        # no group is destroyed before the last, the table not emptied; the group goes back to
        # the open ones once, which the last's destruction undoes)
        g.used = used = used - n
        self.used -= n
        self.stats["removes"] += n
        if used == 0:
            self._destroy(g)
        else:
            og = self._open.get(pattern)
            if og is None:  # no empty dict built per call, as setdefault(pattern, {}) would
                og = self._open[pattern] = {}
            og[g.gid] = g
        if self.used == 0:
            self._apply_pending()
        return True

    def clear(self) -> None:
        """Removes every entry and group (driver unload / flush); applies pending changes."""
        for g in list(self.groups.values()):
            self.used -= g.used
            self.stats["removes"] += g.used
            g.used = 0
            self._destroy(g)
        self._apply_pending()

    # ------------------------------------------------------------ configuration
    def set_num_of_groups(self, n: int) -> bool:
        """Requests ``n`` big groups; True when applied now, False when pending."""
        if n < 1:
            raise ValueError(f"num_of_groups {n} is out of range [1..1024]")
        return self._request(n, None)

    def set_capacity(self, capacity: int) -> bool:
        """Requests a new table size; True when applied now, False when pending."""
        if capacity < 1:
            raise ValueError(f"fdb capacity {capacity} must be positive")
        return self._request(None, capacity)

    def _request(self, n: int | None, capacity: int | None) -> bool:
        if n is not None:
            self.pending_num_of_groups = None if n == self.num_of_groups else n
        if capacity is not None:
            self.pending_capacity = None if capacity == self.capacity else capacity
        if self.used == 0:
            return self._apply_pending() or True
        return not self.pending

    @property
    def pending(self) -> bool:
        """True when a configuration change waits for the FDB to empty."""
        return self.pending_num_of_groups is not None or self.pending_capacity is not None

    def _apply_pending(self) -> bool:
        if not self.pending:
            return False
        if self.pending_num_of_groups is not None:
            self.num_of_groups = self.pending_num_of_groups
        if self.pending_capacity is not None:
            self.capacity = self.pending_capacity
        self.pending_num_of_groups = self.pending_capacity = None
        self.group_size = self.capacity // (self.num_of_groups + 1)
        self.stats["reconfigured"] += 1
        return True

    # -------------------------------------------------------------------- views
    def pattern_usage(self, pattern: Pattern) -> tuple[int, int]:
        """(entries used, entries reserved) over all groups of ``pattern``."""
        groups = self._by_pattern.get(pattern) or {}
        return sum(g.used for g in groups.values()), sum(g.size for g in groups.values())

    def group_view(self) -> list[tuple[str, int, int, int, int]]:
        """Rows for display: big groups one by one, size-1 groups summed per pattern.

        Each row is ``(pattern name, groups, size, used, free)``; big groups
        come first in creation order, then size-1 summaries by first creation.
        """
        rows: list[tuple[str, int, int, int, int]] = []
        small: dict[Pattern, list[int]] = {}
        for g in self.groups.values():
            if g.big:
                rows.append((g.name, 1, g.size, g.used, g.size - g.used))
            else:
                s = small.setdefault(g.pattern, [0, 0, 0])
                s[0] += 1
                s[1] += g.size
                s[2] += g.used
        for p, (n, size, used) in small.items():
            rows.append((pattern_name(p), n, size, used, size - used))
        return rows

    # -------------------------------------------------------------- internals
    def _create(self, pattern: Pattern, size: int, big: bool) -> FlowGroup:
        g = FlowGroup(self._next_gid, pattern, size, 0, big)
        self._next_gid += 1
        self.groups[g.gid] = g
        self._by_pattern.setdefault(pattern, {})[g.gid] = g
        self._open.setdefault(pattern, {})[g.gid] = g
        self.allocated += size
        if big:
            self.big_groups += 1
        self.stats["groups_created"] += 1
        return g

    def _destroy(self, g: FlowGroup) -> None:
        del self.groups[g.gid]
        pg = self._by_pattern[g.pattern]
        del pg[g.gid]
        if not pg:
            del self._by_pattern[g.pattern]
        og = self._open.get(g.pattern)
        if og is not None:
            og.pop(g.gid, None)
            if not og:
                del self._open[g.pattern]
        self.allocated -= g.size
        if g.big:
            self.big_groups -= 1
        self.stats["groups_destroyed"] += 1

    # ------------------------------------------------------------- persistence
    def to_state(self) -> dict:
        """JSON-able snapshot."""
        return {
            "capacity": self.capacity,
            "num_of_groups": self.num_of_groups,
            "pending_num_of_groups": self.pending_num_of_groups,
            "pending_capacity": self.pending_capacity,
            "next_gid": self._next_gid,
            "groups": [[g.gid, list(g.pattern), g.size, g.used, g.big] for g in self.groups.values()],
            "stats": dict(self.stats),
        }

    @classmethod
    def from_state(cls, state: dict) -> Fdb:
        """Rebuilds a table saved by ``to_state``."""
        f = cls(state["capacity"], state["num_of_groups"])
        f.pending_num_of_groups = state.get("pending_num_of_groups")
        f.pending_capacity = state.get("pending_capacity")
        for gid, pat, size, used, big in state.get("groups", ()):
            pattern: Pattern = (int(pat[0]), int(pat[1]), bool(pat[2]))
            g = FlowGroup(gid, pattern, size, used, big)
            f.groups[gid] = g
            f._by_pattern.setdefault(pattern, {})[gid] = g
            if used < size:
                f._open.setdefault(pattern, {})[gid] = g
            f.allocated += size
            f.used += used
            f.big_groups += 1 if big else 0
        f._next_gid = state.get("next_gid", max(f.groups, default=-1) + 1)
        f.stats.update(state.get("stats", {}))
        return f
