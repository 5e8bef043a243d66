"""Rule: one OpenFlow flow entry with its counters and timeouts.

A rule is owned by one table of one bridge.  Counters (``n_packets``,
``n_bytes``) count every packet the rule's decision applied to, including
packets the fast path handled on its behalf (credited back by the datapath,
as OVS's revalidators credit datapath-flow statistics to OpenFlow rules).
Times are switch milliseconds; timeouts are OpenFlow seconds.
"""

from __future__ import annotations

from ..flow.key import Match

DEFAULT_PRIORITY = 32768


class Rule:
    """One flow entry.

    Attributes:
        table_id: 0..254.
        priority: 0..65535 (higher wins).
        match: the masked match.
        actions: list of flow.actions records (empty: drop).
        cookie: 64-bit opaque value.
        idle_timeout, hard_timeout: seconds; 0 means never.
        importance: 0..65535 (eviction order; stored and printed only).
        flags: OpenFlow flow-mod flag bits (FF_* of flow/ofctl_syntax: send_flow_rem, reset_counts...).
        created_ms: switch time of insertion (duration is measured from it).
        modified_ms: switch time of the last mod-flows (hard_age).
        last_used_ms: switch time of the last packet (idle_age).
        n_packets, n_bytes: counters.
        seq: insertion order; among equal priorities the lowest seq wins.
    """

    __slots__ = (
        "table_id", "priority", "match", "actions", "cookie", "idle_timeout", "hard_timeout",
        "importance", "flags", "created_ms", "modified_ms", "last_used_ms", "n_packets", "n_bytes",
        "seq", "installed",
    )

    def __init__(self, table_id: int, priority: int, match: Match, actions: list, *, cookie: int = 0,
                 idle_timeout: int = 0, hard_timeout: int = 0, importance: int = 0,
                 flags: int = 0, now: int = 0) -> None:
        self.table_id = table_id
        self.priority = priority
        self.match = match
        self.actions = list(actions)
        self.cookie = cookie
        self.idle_timeout = idle_timeout
        self.hard_timeout = hard_timeout
        self.importance = importance
        self.flags = flags
        self.created_ms = now
        self.modified_ms = now
        self.last_used_ms = now
        self.n_packets = 0
        self.n_bytes = 0
        self.seq = 0
        self.installed = False  # True while in a classifier

    def expired(self, now: int) -> str | None:
        """'idle' or 'hard' when a timeout has passed at ``now``, else None."""
        if self.hard_timeout and now - self.created_ms >= self.hard_timeout * 1000:
            return "hard"
        if self.idle_timeout and now - self.last_used_ms >= self.idle_timeout * 1000:
            return "idle"
        return None

    def __repr__(self) -> str:
        return f"Rule(table={self.table_id}, priority={self.priority}, seq={self.seq}, {self.match!r}, {self.actions!r})"


def credit_rules(rules, packets: int, nbytes: int, used: int) -> None:
    """Counts ``packets`` hits of ``nbytes`` bytes, the last at ``used`` (ms), on each of ``rules``
    (a rule listed twice, which ran twice, counts twice): the datapath's slow and cached paths
    and the batch table's crediting (``bridge.credit_hits``)."""
    for r in rules:
        r.n_packets += packets
        r.n_bytes += nbytes
        r.last_used_ms = used
