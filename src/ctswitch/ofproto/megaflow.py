"""MegaflowCache: recorded decisions of pipeline passes, looked up by masked key.

Theory of operation
-------------------
OVS does not run the OpenFlow tables for every packet: the first packet of a
flow is translated (the "upcall"), and the decision is installed in the
datapath as a *megaflow*: the key masked by every bit the translation looked
at (the classifier's un-wildcarding), with the resulting datapath actions.
Later packets that agree on those bits reuse it.

Here a decision covers one *pass* — from a table (0, or the table a ct()
recirculates to) to the end of its actions — and is a small program of ops
(outputs, header writes, ct() calls, MAC learning...; see ``xlate._exec``).
ct() is an op, not a result: conntrack still runs for every packet, so
connection state is always exact; the pass after a recirculation is looked up
again with the ct_state conntrack returned, exactly as the datapath's
``recirc_id`` + ``ct_state`` megaflows do.

Rule 1 (a cache is only a cache): entries are keyed by (bridge, table) and
tagged with the bridge's ``generation``; any flow, port or MAC-table change
bumps it and the bridge's entries are dropped at the next lookup.  A pass
whose outcome depends on more than its masked key (flooding on an unknown
MAC, a table lookup after a NAT rewrite in the same pass, controller, depth
limits) is never recorded.

Rule 2: entries are found by tuple-space search over the distinct masks, like
the classifier; any entry whose masked values equal the key's is correct for
it, so the first found is used, and a subtable that hits moves one place up
(OVS's dpcls ranks its subtables by hits the same way).
"""

from __future__ import annotations

from ..flow.key import EXACT, N_FIELDS


def _ands(idx: tuple[int, ...], msk: tuple[int, ...]) -> tuple:
    """Per field of a subtable's mask: None where it is the field's full width, else the mask."""
    return tuple(None if m == EXACT[i] else m for i, m in zip(idx, msk))


def _mv(key: list[int], idx: tuple[int, ...], ands: tuple, j: int) -> int:
    i = idx[j]  # compiled: a C index (the key's item read without an index object)
    a = ands[j]
    return key[i] if a is None else key[i] & a


def _masked(key: list[int], idx: tuple[int, ...], ands: tuple) -> tuple:
    """The tuple of ``key``'s masked values at ``idx``: ``key[i] & m``, or ``key[i]`` where the
    mask is the field's full width (``ands``).  Compiled, a tuple display for up to 6 fields (the
    masks of the usual pipelines): one tuple, no list, no Python frame; it runs twice per
    slow-path packet."""
    n = len(idx)
    if n <= 3:
        if n == 3:
            return (_mv(key, idx, ands, 0), _mv(key, idx, ands, 1), _mv(key, idx, ands, 2))
        if n == 2:
            return (_mv(key, idx, ands, 0), _mv(key, idx, ands, 1))
        return (_mv(key, idx, ands, 0),) if n else ()
    if n <= 6:
        if n == 6:
            return (_mv(key, idx, ands, 0), _mv(key, idx, ands, 1), _mv(key, idx, ands, 2),
                    _mv(key, idx, ands, 3), _mv(key, idx, ands, 4), _mv(key, idx, ands, 5))
        if n == 5:
            return (_mv(key, idx, ands, 0), _mv(key, idx, ands, 1), _mv(key, idx, ands, 2),
                    _mv(key, idx, ands, 3), _mv(key, idx, ands, 4))
        return (_mv(key, idx, ands, 0), _mv(key, idx, ands, 1), _mv(key, idx, ands, 2),
                _mv(key, idx, ands, 3))
    return tuple([_mv(key, idx, ands, j) for j in range(n)])


class Program:
    """A recorded pass: its ops, the rules it ran (for their counters) and the bits it
    consulted (``wc``: (field index, mask) pairs), which a replay un-wildcards again so the
    translation's mask is the same whether the pass ran or was replayed.

    ``wc_after`` keeps the translation's whole mask after this pass for the last mask it was
    handed (``_wprev`` -> ``_wcomb``, made from ``_wsrc``, the ``wc`` of that time): the passes
    of a connection's packets repeat, so the mask of a replayed translation is one shared list,
    not a list per packet."""

    __slots__ = ("ops", "rules", "wc", "_wsrc", "_wprev", "_wcomb")

    def __init__(self, ops: list, rules: list, wc: tuple = ()) -> None:
        self.ops = tuple(ops)
        self.rules = tuple(rules)
        self.wc = wc
        self._wsrc = None
        self._wprev = None
        self._wcomb = None

    def wc_after(self, prev: list | None) -> list:
        """The mask of a translation after this pass: ``prev`` (its mask before: a list this
        method returned, or None before the first pass: all zero) with ``wc``'s bits ORed in.
        The list is shared: whoever changes it must copy it first."""
        if prev is self._wprev and self._wsrc is self.wc and self._wcomb is not None:
            return self._wcomb
        comb = [0] * N_FIELDS if prev is None else list(prev)
        for i, m in self.wc:
            x = comb[i]
            comb[i] = m if x == 0 else x | m
        self._wsrc = self.wc
        self._wprev = prev
        self._wcomb = comb
        return comb


class MegaflowCache:
    """Recorded passes per (bridge, table); see the module docstring.

    Attributes:
        limit: entries at most (like OVS's flow-limit); beyond it nothing new is recorded.
        hits, misses, inserted, flushed: counters.
    """

    def __init__(self, limit: int = 200_000) -> None:
        self.limit = limit
        self._tables: dict[str, dict[int, tuple[int, list]]] = {}  # bridge name -> table -> entry
        self.n = 0
        self.hits = 0
        self.misses = 0
        self.inserted = 0
        self.flushed = 0

    def lookup(self, bridge, table: int, key: list[int]) -> Program | None:
        tt = self._tables  # compiled: typed dict (its get is a C call, no method lookup)
        tables = tt.get(bridge.name)
        e = tables.get(table) if tables is not None else None
        if e is not None:
            if e[0] == bridge.generation:
                subtables = e[1]
                for j, st in enumerate(subtables):
                    d = st[2]
                    p = d.get(_masked(key, st[0], st[3]))
                    if p is not None:
                        self.hits += 1
                        if j:  # move the hit subtable one step up (dpcls's ranking by hits)
                            subtables[j - 1], subtables[j] = st, subtables[j - 1]
                        return p
            else:
                self._drop_bridge(bridge.name)
        self.misses += 1
        return None

    def peek(self, bridge, table: int, key: list[int]) -> Program | None:
        """``lookup`` without its side effects (hit/miss counters, subtable ranking, dropping a
        stale generation): for predicting a decision, not for handling a packet."""
        tables = self._tables.get(bridge.name)
        e = tables.get(table) if tables is not None else None
        if e is None or e[0] != bridge.generation:
            return None
        for st in e[1]:
            d = st[2]
            p = d.get(_masked(key, st[0], st[3]))
            if p is not None:
                return p
        return None

    def insert(self, bridge, table: int, key: list[int], wc: list[int], ops: list, rules: list) -> None:
        """Records a pass that started at ``table`` with ``key`` and consulted the bits ``wc``."""
        if self.n >= self.limit:
            return
        tables = self._tables.get(bridge.name)
        e = tables.get(table) if tables is not None else None
        if e is None or e[0] != bridge.generation:
            if e is not None:
                self._drop_bridge(bridge.name)
                tables = None
            if tables is None:
                tables = self._tables[bridge.name] = {}
            e = tables[table] = (bridge.generation, [])
        idx = tuple(i for i in range(N_FIELDS) if wc[i])
        msk = tuple(wc[i] for i in idx)
        found = next((st for st in e[1] if st[0] == idx and st[1] == msk), None)
        if found is None:
            found = (idx, msk, {}, _ands(idx, msk))
            e[1].append(found)
        entries = found[2]
        vals = _masked(key, idx, found[3])
        if vals not in entries:
            self.n += 1
            self.inserted += 1
        entries[vals] = Program(ops, rules, tuple(zip(idx, msk)))

    def _drop_bridge(self, name: str) -> None:
        for _gen, subtables in self._tables.pop(name, {}).values():
            self.n -= sum(len(st[2]) for st in subtables)
            self.flushed += 1

    def clear(self) -> None:
        self._tables.clear()
        self.n = 0
        self.flushed += 1

    def __len__(self) -> int:
        return self.n
