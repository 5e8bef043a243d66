"""Classifier: tuple-space search over masked matches.

Theory of operation
-------------------
Rules are grouped into *subtables* by mask: every rule in a subtable masks the
key the same way, so one dict lookup of the masked key finds all its rules
that match.  Subtables are kept sorted by the highest priority they hold, so a
lookup can stop as soon as the next subtable cannot beat the best rule found.

Rule 1: among matching rules the highest priority wins; among equal
priorities the rule inserted first (lowest ``seq``) wins, which is what
OVS 3.1 was observed to do and what the vendor page's RoCE bypass relies on.

Rule 2 (un-wildcarding): ``lookup(key, wc)`` ORs into ``wc`` the mask of
every subtable it consulted.  A decision cached under the key masked by
``wc`` is correct for every packet agreeing on those bits; extra bits only
cost cache hits.

The cost of a lookup is one dict probe per consulted subtable, independent
of the number of rules.  ``tests/unit/ofproto`` checks it against a linear
scan over random rule sets.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..flow.key import N_FIELDS, Match
from .rule import Rule


class _Subtable:
    __slots__ = ("mask", "idx", "msk", "buckets", "max_priority", "count", "stale")

    def __init__(self, mask: tuple[int, ...]) -> None:
        self.mask = mask
        self.idx = tuple(i for i in range(N_FIELDS) if mask[i])
        self.msk = tuple(mask[i] for i in self.idx)
        # buckets: masked values tuple -> rules sorted by (-priority, seq)
        self.buckets: dict[tuple[int, ...], list[Rule]] = {}
        self.max_priority = -1
        self.count = 0
        self.stale = False  # max_priority may be too high (a removal): recomputed on the next sort

    def masked(self, key: list[int]) -> tuple[int, ...]:
        return tuple([key[i] & m for i, m in zip(self.idx, self.msk)])

    def values_of(self, match: Match) -> tuple[int, ...]:
        return tuple(match.values[i] for i in self.idx)


class Classifier:
    """The rules of one OpenFlow table."""

    __slots__ = ("_subtables", "_by_mask", "_seq", "_sorted", "count")

    def __init__(self) -> None:
        self._subtables: list[_Subtable] = []
        self._by_mask: dict[tuple[int, ...], _Subtable] = {}
        self._seq = 0
        self._sorted = True
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def insert(self, rule: Rule, seq: int | None = None) -> None:
        """Adds ``rule``; it gets the next insertion sequence number unless ``seq`` is given."""
        if seq is None:
            self._seq += 1
            seq = self._seq
        else:
            self._seq = max(self._seq, seq)
        rule.seq = seq
        st = self._by_mask.get(rule.match.mask)
        if st is None:
            st = _Subtable(rule.match.mask)
            self._by_mask[rule.match.mask] = st
            self._subtables.append(st)
        bucket = st.buckets.setdefault(st.values_of(rule.match), [])
        bucket.append(rule)
        bucket.sort(key=lambda r: (-r.priority, r.seq))
        st.count += 1
        if rule.priority > st.max_priority:
            st.max_priority = rule.priority
            self._sorted = False
        self.count += 1
        rule.installed = True

    def remove(self, rule: Rule) -> bool:
        """Removes ``rule``; False when it was not here."""
        st = self._by_mask.get(rule.match.mask)
        if st is None:
            return False
        vals = st.values_of(rule.match)
        bucket = st.buckets.get(vals)
        if not bucket or rule not in bucket:
            return False
        bucket.remove(rule)
        if not bucket:
            del st.buckets[vals]
        st.count -= 1
        self.count -= 1
        rule.installed = False
        if st.count == 0:
            del self._by_mask[st.mask]
            self._subtables.remove(st)
        elif rule.priority == st.max_priority:
            # A too-high bound is still correct (it only prunes less); recompute it lazily so
            # that deleting many rules stays linear.
            st.stale = True
            self._sorted = False
        return True

    def _sort(self) -> None:
        for st in self._subtables:
            if st.stale:
                st.max_priority = max(b[0].priority for b in st.buckets.values())
                st.stale = False
        self._subtables.sort(key=lambda s: -s.max_priority)
        self._sorted = True

    def lookup(self, key: list[int], wc: list[int] | None = None) -> Rule | None:
        """The winning rule for ``key`` (Rule 1), or None on a table miss.

        Args:
            key: a flow key (list of N_FIELDS ints).
            wc: optional list of N_FIELDS ints; the masks consulted are ORed into it.
        """
        if not self._sorted:
            self._sort()
        best: Rule | None = None
        for st in self._subtables:
            if best is not None and st.max_priority < best.priority:
                break
            if wc is not None:
                for i, m in zip(st.idx, st.msk):
                    wc[i] |= m
            bucket = st.buckets.get(tuple([key[i] & m for i, m in zip(st.idx, st.msk)]))
            if bucket:
                r = bucket[0]
                if best is None or r.priority > best.priority or (
                        r.priority == best.priority and r.seq < best.seq):
                    best = r
        return best

    def find_exact(self, match: Match, priority: int) -> Rule | None:
        """The rule with exactly this match and priority (strict identity), or None."""
        st = self._by_mask.get(match.mask)
        if st is None:
            return None
        for r in st.buckets.get(st.values_of(match), ()):
            if r.priority == priority:
                return r
        return None

    def __iter__(self) -> Iterator[Rule]:
        """All rules, highest priority first, then insertion order."""
        rules = [r for st in self._subtables for b in st.buckets.values() for r in b]
        rules.sort(key=lambda r: (-r.priority, r.seq))
        return iter(rules)

    @property
    def n_subtables(self) -> int:
        return len(self._subtables)
