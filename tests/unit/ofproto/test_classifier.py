"""The classifier against a dumb linear oracle (OVS's test-classifier idea)."""

from hypothesis import given, settings
from hypothesis import strategies as st

from ctswitch.flow.key import DL_TYPE, IN_PORT, N_FIELDS, NW_DST, NW_PROTO, NW_SRC, TP_DST, ZERO, Match
from ctswitch.ofproto.classifier import Classifier
from ctswitch.ofproto.rule import Rule

FIELDS = [(IN_PORT, 3), (DL_TYPE, 2), (NW_SRC, 8), (NW_DST, 8), (NW_PROTO, 3), (TP_DST, 4)]


def linear_lookup(rules, key):
    best = None
    for r in rules:
        if r.match.matches(key) and (best is None or r.priority > best.priority or
                                     (r.priority == best.priority and r.seq < best.seq)):
            best = r
    return best


def make_match(items):
    values = list(ZERO)
    mask = list(ZERO)
    for idx, v, m in items:
        values[idx] = v & m
        mask[idx] = m
    return Match(tuple(values), tuple(mask))


rule_st = st.tuples(
    st.integers(0, 5),  # priority (small range: many ties)
    st.lists(st.tuples(st.sampled_from(range(len(FIELDS))), st.integers(0, 255), st.integers(0, 255)),
             max_size=3),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(rule_st, min_size=1, max_size=25),
       st.lists(st.lists(st.integers(0, 255), min_size=len(FIELDS), max_size=len(FIELDS)), min_size=1, max_size=20),
       st.data())
def test_classifier_agrees_with_linear_scan(rule_defs, keys, data):
    cls = Classifier()
    rules = []
    for prio, items in rule_defs:
        m = make_match([(FIELDS[i][0], v, mk) for i, v, mk in items])
        r = Rule(0, prio, m, [])
        cls.insert(r)
        rules.append(r)
    # remove a few to exercise deletion
    for r in data.draw(st.lists(st.sampled_from(rules), max_size=3, unique_by=id)):
        assert cls.remove(r)
        rules.remove(r)
    for kv in keys:
        key = [0] * N_FIELDS
        for (idx, _), v in zip(FIELDS, kv):
            key[idx] = v
        wc = [0] * N_FIELDS
        got = cls.lookup(key, wc)
        assert got is linear_lookup(rules, key)
        # Un-wildcarding: any key that agrees on the wc bits gets the same decision.
        if got is not None:
            other = [k if wc[i] == 0 else k for i, k in enumerate(key)]
            for i in range(N_FIELDS):
                if not wc[i]:
                    other[i] = 0x5A
            assert cls.lookup(other) is got


def test_equal_priority_first_added_wins():
    cls = Classifier()
    roce = Rule(0, 32768, make_match([(DL_TYPE, 0x0800, 0xFFFF), (NW_PROTO, 17, 0xFF), (TP_DST, 4791, 0xFFFF)]), ["roce"])
    ct = Rule(0, 32768, make_match([(DL_TYPE, 0x0800, 0xFFFF)]), ["ct"])
    cls.insert(roce)
    cls.insert(ct)
    key = [0] * N_FIELDS
    key[DL_TYPE], key[NW_PROTO], key[TP_DST] = 0x0800, 17, 4791
    assert cls.lookup(key) is roce
    cls2 = Classifier()
    cls2.insert(ct)
    cls2.insert(roce)
    assert cls2.lookup(key) is ct


def test_higher_priority_wins_and_miss():
    cls = Classifier()
    lo = Rule(0, 1, make_match([(DL_TYPE, 0x0800, 0xFFFF)]), [])
    hi = Rule(0, 100, make_match([(DL_TYPE, 0x0800, 0xFFFF), (NW_SRC, 10, 0xFF)]), [])
    cls.insert(lo)
    cls.insert(hi)
    key = [0] * N_FIELDS
    key[DL_TYPE] = 0x0800
    key[NW_SRC] = 10
    assert cls.lookup(key) is hi
    key[NW_SRC] = 11
    assert cls.lookup(key) is lo
    key[DL_TYPE] = 0x86DD
    assert cls.lookup(key) is None
    assert cls.n_subtables == 2
    cls.remove(hi)
    assert cls.n_subtables == 1 and len(cls) == 1


def test_find_exact_and_iteration_order():
    cls = Classifier()
    a = Rule(0, 5, make_match([(IN_PORT, 1, 0xFFFFFFFF)]), [])
    b = Rule(0, 7, make_match([(IN_PORT, 2, 0xFFFFFFFF)]), [])
    c = Rule(0, 5, make_match([(IN_PORT, 3, 0xFFFFFFFF)]), [])
    for r in (a, b, c):
        cls.insert(r)
    assert list(cls) == [b, a, c]
    assert cls.find_exact(make_match([(IN_PORT, 3, 0xFFFFFFFF)]), 5) is c
    assert cls.find_exact(make_match([(IN_PORT, 3, 0xFFFFFFFF)]), 6) is None
