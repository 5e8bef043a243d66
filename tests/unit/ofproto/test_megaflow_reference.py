"""MegaflowCache against its previous implementation (entries keyed by (bridge name, table), each
subtable's masked values made by an eval'd lambda), kept here as the reference.

Random sequences of inserts (masks of 0 to 12 fields, full-width and partial, so every length the
compiled masking unrolls and the longer ones), lookups, peeks, generation changes of two bridges,
the entry limit and clears: every call's result (the same recorded program or None), the
counters and the subtable ranking must agree, compiled (when loaded) and as the module's Python
source.
"""

from __future__ import annotations

import random

import pytest

from ctswitch._native import source_module
from ctswitch.flow.key import EXACT, N_FIELDS
from ctswitch.ofproto import megaflow


def _masker(idx, msk):
    parts = [f"k[{i}]" if m == EXACT[i] else f"k[{i}] & {m}" for i, m in zip(idx, msk)]
    return eval(f"lambda k: ({', '.join(parts)},)")  # noqa: S307 -- ints only, built here


class ReferenceCache:
    """MegaflowCache as it was (commit 5db2171)."""

    def __init__(self, limit: int = 200_000) -> None:
        self.limit = limit
        self._tables = {}
        self.n = self.hits = self.misses = self.inserted = self.flushed = 0

    def lookup(self, bridge, table, key):
        e = self._tables.get((bridge.name, table))
        if e is not None:
            if e[0] == bridge.generation:
                subtables = e[1]
                for j, st in enumerate(subtables):
                    p = st[2].get(st[3](key))
                    if p is not None:
                        self.hits += 1
                        if j:
                            subtables[j - 1], subtables[j] = st, subtables[j - 1]
                        return p
            else:
                self._drop_bridge(bridge.name)
        self.misses += 1
        return None

    def peek(self, bridge, table, key):
        e = self._tables.get((bridge.name, table))
        if e is None or e[0] != bridge.generation:
            return None
        for st in e[1]:
            p = st[2].get(st[3](key))
            if p is not None:
                return p
        return None

    def insert(self, bridge, table, key, wc, ops, rules):
        if self.n >= self.limit:
            return
        k = (bridge.name, table)
        e = self._tables.get(k)
        if e is None or e[0] != bridge.generation:
            if e is not None:
                self._drop_bridge(bridge.name)
            e = self._tables[k] = (bridge.generation, [])
        idx = tuple(i for i in range(N_FIELDS) if wc[i])
        msk = tuple(wc[i] for i in idx)
        found = next((st for st in e[1] if st[0] == idx and st[1] == msk), None)
        if found is None:
            found = (idx, msk, {}, _masker(idx, msk) if idx else (lambda key: ()))
            e[1].append(found)
        vals = found[3](key)
        if vals not in found[2]:
            self.n += 1
            self.inserted += 1
        found[2][vals] = megaflow.Program(ops, rules, tuple(zip(idx, msk)))

    def _drop_bridge(self, name):
        for k in [k for k in self._tables if k[0] == name]:
            _gen, subtables = self._tables.pop(k)
            self.n -= sum(len(st[2]) for st in subtables)
            self.flushed += 1

    def clear(self):
        self._tables.clear()
        self.n = 0
        self.flushed += 1

    def __len__(self):
        return self.n


class _Bridge:
    def __init__(self, name: str) -> None:
        self.name = name
        self.generation = 0


FIELDS_USED = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 20, 21)  # a few fields, so masks repeat


def _key(rng: random.Random) -> list[int]:
    k = [0] * N_FIELDS
    for i in FIELDS_USED:
        k[i] = rng.choice([0, 1, 0x23, EXACT[i], rng.randint(0, EXACT[i])])
    return k


def _wc(rng: random.Random) -> list[int]:
    wc = [0] * N_FIELDS
    for i in rng.sample(FIELDS_USED, rng.randint(0, 12)):
        wc[i] = EXACT[i] if rng.random() < 0.6 else rng.choice([0x20, 0x23, 1, rng.randint(1, EXACT[i])])
    return wc


def _state(c) -> tuple:
    return (c.n, c.hits, c.misses, c.inserted, c.flushed, len(c))


@pytest.mark.parametrize("pure", [False, True])
def test_cache_matches_reference(pure) -> None:
    cls = megaflow.MegaflowCache
    if pure:  # the module's Python source, whatever is loaded
        cls = source_module("ofproto.megaflow", "ctswitch.ofproto._megaflow_pure_ref").MegaflowCache
    hits = 0
    for seed in range(300):
        rng = random.Random(seed)
        limit = rng.choice([5, 40, 200_000])
        got, want = cls(limit), ReferenceCache(limit)
        bridges = [_Bridge("br0"), _Bridge("br1")]
        keys = [_key(rng) for _ in range(4)]
        for k in list(keys):  # neighbours: one field apart, so a field left out of a mask shows
            for i in rng.sample(FIELDS_USED, 3):
                k2 = list(k)
                k2[i] ^= rng.choice([1, 0x20, EXACT[i]])
                keys.append(k2)
        for step in range(150):
            r = rng.random()
            br = rng.choice(bridges)
            table = rng.randint(0, 3)
            key = list(rng.choice(keys))
            if r < 0.35:
                wc, ops = _wc(rng), [(0, step)]  # ops tell the recorded programs apart
                got.insert(br, table, key, wc, ops, ["r"])
                want.insert(br, table, key, wc, ops, ["r"])
                a, b = got.peek(br, table, key), want.peek(br, table, key)
            elif r < 0.75:
                a, b = got.lookup(br, table, key), want.lookup(br, table, key)
                hits += a is not None
            elif r < 0.93:
                a, b = got.peek(br, table, key), want.peek(br, table, key)
            elif r < 0.99:
                br.generation += 1
                a = b = None
            else:
                got.clear()
                want.clear()
                a = b = None
            assert (a is None) == (b is None), (seed, step)
            assert a is None or (a.ops, a.rules, a.wc) == (b.ops, b.rules, b.wc), (seed, step)
            assert _state(got) == _state(want), (seed, step)
    assert hits > 1000
