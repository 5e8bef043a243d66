"""The auto-grouped FDB: group sizes, overflow groups, refusals, pending num_of_groups."""

import pytest

from ctswitch.offload.fdb import Fdb, InsertResult, pattern_name

TCP4 = (4, 6, False)
TCP4N = (4, 6, True)
UDP4 = (4, 17, False)
UDP6 = (6, 17, False)
TCP6 = (6, 6, False)


def test_pattern_names():
    assert [pattern_name(p) for p in (TCP4N, UDP6, TCP4, (6, 132, True))] == [
        "tcp4-nat", "udp6", "tcp4", "sctp6-nat"]


def test_default_big_groups_are_800k():
    f = Fdb()
    assert (f.capacity, f.num_of_groups, f.group_size) == (4_000_000, 4, 800_000)
    for p in (TCP4, TCP4N, UDP4, UDP6):
        assert f.insert(p) is InsertResult.OK
    assert f.group_view() == [
        ("tcp4", 1, 800_000, 1, 799_999), ("tcp4-nat", 1, 800_000, 1, 799_999),
        ("udp4", 1, 800_000, 1, 799_999), ("udp6", 1, 800_000, 1, 799_999)]
    assert f.allocated == 3_200_000


@pytest.mark.parametrize("n,size", [(1, 2_000_000), (2, 1_333_333), (3, 1_000_000), (4, 800_000), (15, 250_000)])
def test_group_size_formula(n, size):
    assert Fdb(4_000_000, n).group_size == size


def test_fifth_pattern_gets_size_one_groups():
    f = Fdb()
    for p in (TCP4, TCP4N, UDP4, UDP6):
        f.insert(p)
    assert f.insert(TCP6) is InsertResult.OK
    assert f.insert(TCP6) is InsertResult.OK
    assert f.group_view()[-1] == ("tcp6", 2, 2, 2, 0)
    assert f.pattern_usage(TCP6) == (2, 2)
    assert f.big_groups == 4 and len(f.groups) == 6


def test_full_big_group_spills_into_next_big_then_size_one():
    f = Fdb(capacity=10, num_of_groups=2)  # group_size 3
    results = [f.insert(TCP4) for _ in range(10)]
    assert results == [InsertResult.OK] * 10
    assert f.group_view() == [("tcp4", 1, 3, 3, 0), ("tcp4", 1, 3, 3, 0), ("tcp4", 4, 4, 4, 0)]
    assert f.insert(TCP4) is InsertResult.GROUP_FULL
    assert f.insert(UDP4) is InsertResult.TABLE_FULL
    assert (f.stats["group_full"], f.stats["table_full"]) == (1, 1)


def test_new_pattern_after_big_slots_and_spill_gets_size_one():
    f = Fdb(capacity=10, num_of_groups=2)  # group_size 3
    for _ in range(3):
        f.insert(TCP4)
    for _ in range(5):
        f.insert(TCP4N)  # one big group of 3 then two size-1 groups
    assert f.capacity - f.allocated == 2
    # a third pattern would get a size-1 group (both big slots are taken)
    assert f.insert(UDP4) is InsertResult.OK
    assert f.group_view()[-1] == ("udp4", 1, 1, 1, 0)


def test_empty_group_is_destroyed_and_frees_its_big_slot():
    f = Fdb(capacity=100, num_of_groups=1)  # group_size 50
    f.insert(TCP4)
    gid = f.last_group
    f.insert(UDP4)  # big slot taken: size-1 group
    assert f.group_view() == [("tcp4", 1, 50, 1, 49), ("udp4", 1, 1, 1, 0)]
    assert f.remove(TCP4, gid) is True
    assert f.groups.keys() == {gid + 1}
    assert f.insert(UDP6) is InsertResult.OK  # the big slot is free again
    assert f.group_view() == [("udp6", 1, 50, 1, 49), ("udp4", 1, 1, 1, 0)]
    assert f.remove(TCP4) is False


def test_num_of_groups_applies_at_once_when_empty():
    f = Fdb()
    assert f.set_num_of_groups(2) is True
    assert (f.num_of_groups, f.group_size, f.pending_num_of_groups) == (2, 1_333_333, None)


def test_num_of_groups_pending_until_empty():
    f = Fdb()
    f.insert(TCP4)
    g = f.last_group
    f.insert(TCP4)
    assert f.set_num_of_groups(1) is False
    assert f.pending and f.pending_num_of_groups == 1
    assert f.group_size == 800_000
    f.insert(UDP4)
    assert f.group_view()[1] == ("udp4", 1, 800_000, 1, 799_999)
    f.remove(TCP4, g)
    f.remove(UDP4)
    assert f.pending_num_of_groups == 1  # one entry left
    f.remove(TCP4, g)
    assert (f.num_of_groups, f.group_size, f.pending) == (1, 2_000_000, False)
    assert f.stats["reconfigured"] == 1


def test_setting_back_the_active_value_cancels_pending():
    f = Fdb()
    f.insert(TCP4)
    f.set_num_of_groups(8)
    assert f.set_num_of_groups(4) is True
    assert not f.pending


def test_state_round_trip():
    f = Fdb(capacity=20, num_of_groups=2)
    for p in (TCP4, TCP4, UDP4, UDP6, TCP6):
        f.insert(p)
    f.set_num_of_groups(3)
    g = Fdb.from_state(f.to_state())
    assert g.to_state() == f.to_state()
    assert g.group_view() == f.group_view()
    assert (g.allocated, g.used, g.big_groups) == (f.allocated, f.used, f.big_groups)
    assert g.insert(TCP4) is InsertResult.OK and g.last_group == 0


def test_bad_configuration():
    with pytest.raises(ValueError):
        Fdb(0, 4)
    with pytest.raises(ValueError):
        Fdb().set_num_of_groups(0)
