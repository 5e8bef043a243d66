"""``Datapath.stats``/``drops`` are ``Counts``: a ``collections.Counter`` whose item stores are
dict's own (no Python-level ``__setitem__`` slot per ``+=``).  Held to the ``Counter`` they
replaced: the same reads (a missing key is 0 and is not stored by reading), the same ``+=``
results, the same dict/JSON views, equality with a Counter and a state round trip."""

from __future__ import annotations

import json
import random
from collections import Counter

from ctswitch.datapath.datapath import Counts


def test_counts_behave_as_the_counter_they_replaced():
    rng = random.Random(8)
    c, ref = Counts(), Counter()
    keys = ["slow_path", "tx_packets", "fast_hw", "malformed: x", "frag_queued"]
    for _ in range(2000):
        k = rng.choice(keys)
        n = rng.randrange(4)
        if rng.random() < 0.2:
            assert c[k] == ref[k]  # a read (0 when missing) stores nothing
        else:
            c[k] += n
            ref[k] += n
        assert dict(c) == dict(ref) and list(c.items()) == list(ref.items())
    assert isinstance(c, Counter) and c == ref and c["never"] == 0 and "never" not in c
    assert json.dumps(dict(c), sort_keys=True) == json.dumps(dict(ref), sort_keys=True)
    assert c.most_common() == ref.most_common() and c.total() == ref.total()
    again = Counts(dict(c))
    assert type(again) is Counts and again == ref and dict(again) == dict(ref)


def test_item_stores_are_dicts_own():
    # Counter.__delitem__ made every store go through a Python-level slot; dict's is restored
    assert Counts.__delitem__ is dict.__delitem__ and Counts.__setitem__ is dict.__setitem__
