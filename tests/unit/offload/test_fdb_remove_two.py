"""Fdb.remove_two (the manager's teardown of a connection whose two rules share a group) does
exactly what two removes of that group do, and refuses (nothing done) what they could not both do."""

import random

import pytest

from ctswitch.offload.fdb import Fdb, InsertResult

PATTERNS = ((4, 6, False), (4, 6, True), (4, 17, False), (6, 6, False))


def _state(f: Fdb):
    return (f.to_state(), f.last_group, f.used, f.allocated, f.big_groups, dict(f.stats),
            {k: list(v) for k, v in f._open.items()}, {k: list(v) for k, v in f._by_pattern.items()})


def _unpair(f: Fdb, p, g1, g2, fast: bool):
    """The manager's teardown of a connection's rules, with or without remove_two."""
    if fast and g2 == g1 and f.remove_two(p, g1):
        return True
    r = f.remove(p, g1)
    if g2 is not None:
        r = f.remove(p, g2) and r
    return r


@pytest.mark.parametrize("seed", range(16))
def test_remove_two_matches_two_removes(seed):
    rng = random.Random(seed)
    cap, n = rng.choice(((7, 1), (12, 2), (40, 3), (9, 4), (100, 1), (5, 2)))
    a, b = Fdb(cap, n), Fdb(cap, n)
    held = []  # (pattern, g1, g2)
    for step in range(500):
        r = rng.random()
        if held and r < 0.45:
            p, g1, g2 = held.pop(rng.randrange(len(held)))
            assert _unpair(a, p, g1, g2, True) == _unpair(b, p, g1, g2, False)
        elif r < 0.5:  # odd calls: unknown groups, other patterns, groups with fewer than two
            p = rng.choice(PATTERNS)
            gid = rng.randrange(-1, 12)
            assert _unpair(a, p, gid, gid, True) == _unpair(b, p, gid, gid, False)
            held = [h for h in held if h[1] != gid and h[2] != gid]  # (possibly gone now)
        elif r < 0.53:
            k = rng.randrange(1, 6)
            assert a.set_num_of_groups(k) == b.set_num_of_groups(k)
        else:
            p = rng.choice(PATTERNS)
            two = rng.random() < 0.6
            got = []
            for f in (a, b):  # the same inserts in both tables
                gid = f.insert_two(p) if two else None
                if gid is not None:
                    got.append((gid, gid))
                elif f.insert(p) is not InsertResult.OK:
                    got.append(None)
                else:
                    g1 = f.last_group
                    got.append((g1, f.last_group if f.insert(p) is InsertResult.OK else None))
            assert got[0] == got[1]
            if got[0] is not None:
                held.append((p, *got[0]))
        assert _state(a) == _state(b), step


def test_remove_two_refuses_what_two_removes_could_not_both_do():
    f = Fdb(10, 1)
    assert f.insert(PATTERNS[0]) is InsertResult.OK
    g = f.last_group
    before = _state(f)
    assert not f.remove_two(PATTERNS[0], g)  # one entry only
    assert not f.remove_two(PATTERNS[1], g)  # another pattern's
    assert not f.remove_two(PATTERNS[0], g + 1)  # no such group
    assert _state(f) == before
