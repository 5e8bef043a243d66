"""Fdb.remove of ``n`` entries (the manager's teardown removes a connection's two rules of one
group in one call) does exactly what ``n`` removes one after the other do: same results, groups,
open groups (in order), counters, pending reconfigurations applied at the same point."""

import random

import pytest

from ctswitch.offload.fdb import Fdb, InsertResult

PATTERNS = ((4, 6, False), (4, 6, True), (4, 17, False), (6, 6, False))


def _snapshot(f: Fdb):
    return (f.to_state(), f.last_group, f.used, f.allocated, f.big_groups, f.group_size, f.pending,
            [(k, list(v)) for k, v in f._open.items()], [(k, list(v)) for k, v in f._by_pattern.items()],
            f.group_view())


@pytest.mark.parametrize("seed", range(16))
def test_remove_n_matches_removes_one_by_one(seed):
    rng = random.Random(seed)
    cap, ng = rng.choice(((7, 1), (12, 2), (40, 3), (9, 4), (100, 1), (4, 1)))
    a, b = Fdb(cap, ng), Fdb(cap, ng)
    held = []  # (pattern, gid) of each entry in
    n_multi = 0
    for _ in range(600):
        r = rng.random()
        if r < 0.02:  # a reconfiguration, pending until the table empties
            cap2, ng2 = rng.randrange(4, 60), rng.randrange(1, 5)
            assert a.set_capacity(cap2) == b.set_capacity(cap2)
            assert a.set_num_of_groups(ng2) == b.set_num_of_groups(ng2)
        elif held and r < 0.5:
            p, gid = held[rng.randrange(len(held))]
            if rng.random() < 0.1:
                gid = None if rng.random() < 0.5 else gid + rng.choice((1, 100))  # any group, or no such group
            same = [i for i, h in enumerate(held) if h[0] == p and (gid is None or h[1] == gid)]
            n = rng.choice((1, 2, 2, 2, 3)) if rng.random() < 0.9 else len(same) + 1  # more than there are, too
            got = a.remove(p, gid, n)
            want = False
            for _ in range(n):
                want = b.remove(p, gid)
            assert got == want
            n_multi += n > 1
            # the entries left (the model counts them per group): drop n of that group from ``held``
            if gid is not None:
                for i in sorted(same, reverse=True)[:n]:
                    held.pop(i)
            else:  # whichever groups they left: rebuild from the table
                held = [(g.pattern, g.gid) for g in a.groups.values() for _ in range(g.used)]
        else:
            p = rng.choice(PATTERNS)
            ra, rb = a.insert(p), b.insert(p)
            assert ra is rb
            if ra is InsertResult.OK:
                assert a.last_group == b.last_group
                held.append((p, a.last_group))
        assert _snapshot(a) == _snapshot(b)
    assert n_multi > 50


def test_remove_two_of_a_group_left_with_others():
    a, b = Fdb(20, 1), Fdb(20, 1)
    p = (4, 6, True)
    for f in (a, b):
        for _ in range(5):
            assert f.insert(p) is InsertResult.OK
    gid = a.last_group
    assert a.remove(p, gid, 2) is True
    assert b.remove(p, gid) and b.remove(p, gid)
    assert _snapshot(a) == _snapshot(b)
    assert a.groups[gid].used == 3 and list(a._open[p]) == [gid]
