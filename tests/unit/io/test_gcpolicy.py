"""io.gcpolicy: the young-generation GC threshold while packets flow, restored after."""

import gc

import pytest

from ctswitch.io.gcpolicy import PACKET_GC_GEN0, packet_gc


def test_packet_gc_raises_the_young_threshold_and_restores_all_three():
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 11, 12)
        with packet_gc():
            assert gc.get_threshold() == (PACKET_GC_GEN0, 11, 12)
        assert gc.get_threshold() == (700, 11, 12)
        gc.set_threshold(50_000, 11, 12)  # already higher: kept as it is
        with packet_gc():
            assert gc.get_threshold() == (50_000, 11, 12)
        gc.set_threshold(700, 11, 12)
        with pytest.raises(RuntimeError), packet_gc():
            raise RuntimeError("a packet loop failing")
        assert gc.get_threshold() == (700, 11, 12)
    finally:
        gc.set_threshold(*before)
