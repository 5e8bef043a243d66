"""io.gcpolicy: the GC thresholds while packets flow (raised, never lowered), restored after."""

import gc

import pytest

from ctswitch.io.gcpolicy import PACKET_GC_GEN0, PACKET_GC_OLDER, packet_gc


def test_packet_gc_raises_the_thresholds_and_restores_all_three():
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 11, 12)
        with packet_gc():
            assert gc.get_threshold() == (PACKET_GC_GEN0, PACKET_GC_OLDER, PACKET_GC_OLDER) == (20_000, 100, 100)
        assert gc.get_threshold() == (700, 11, 12)
        gc.set_threshold(50_000, 11, 500)  # already higher: kept as it is
        with packet_gc():
            assert gc.get_threshold() == (50_000, 100, 500)
        assert gc.get_threshold() == (50_000, 11, 500)
        gc.set_threshold(700, 11, 12)
        with pytest.raises(RuntimeError), packet_gc():
            raise RuntimeError("a packet loop failing")
        assert gc.get_threshold() == (700, 11, 12)
    finally:
        gc.set_threshold(*before)
