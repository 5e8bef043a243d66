"""Fdb.insert_two (the manager's two-rule fast path) does exactly what two inserts do."""

import random

import pytest

from ctswitch.offload.fdb import Fdb, InsertResult

PATTERNS = ((4, 6, False), (4, 6, True), (4, 17, False), (6, 6, False))


def _pair(f: Fdb, p, fast: bool):
    """The manager's all-or-nothing pair insert, with or without insert_two."""
    if fast:
        gid = f.insert_two(p)
        if gid is not None:
            return gid, gid
    if f.insert(p) is not InsertResult.OK:
        return None
    g1 = f.last_group
    if f.insert(p) is not InsertResult.OK:
        f.remove(p, g1)
        return None
    return g1, f.last_group


@pytest.mark.parametrize("seed", range(12))
def test_insert_two_matches_two_inserts(seed):
    rng = random.Random(seed)
    cap, n = rng.choice(((7, 1), (12, 2), (40, 3), (9, 4), (100, 1)))
    a, b = Fdb(cap, n), Fdb(cap, n)
    held = []  # (pattern, g1, g2)
    for _ in range(400):
        if held and rng.random() < 0.45:
            p, g1, g2 = held.pop(rng.randrange(len(held)))
            for f in (a, b):
                assert f.remove(p, g1) and f.remove(p, g2)
        else:
            p = rng.choice(PATTERNS)
            ra, rb = _pair(a, p, True), _pair(b, p, False)
            assert ra == rb
            if ra is not None:
                held.append((p, *ra))
        assert a.to_state() == b.to_state()
        assert a.last_group == b.last_group
        assert {k: list(v) for k, v in a._open.items()} == {k: list(v) for k, v in b._open.items()}
