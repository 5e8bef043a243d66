"""What datapath/datapath.pxd must not change: compiled, Datapath and FastEntry are extension types
and the per-packet methods cpdef, and they behave as the Python classes do.  An instance attribute
shadowing a method is what the datapath's own calls use (the tests' ``_cache_peer = ...`` and
bench_slowpath --split's timers rely on it); the constructor stores only declared fields, so a
compiled Datapath's instance __dict__ stays empty (the cpdef override check stays cached); a
FastEntry built field by field (BatchFastPath.items) reads as one built by its constructor."""

from pipeline import Lab

import ctswitch.datapath.datapath as D

COMPILED = not D.__file__.endswith(".py")


def test_instance_attributes_shadow_the_methods_the_datapath_calls() -> None:
    lab = Lab()
    dp = lab.sw.datapath
    calls: list[str] = []
    for name in ("_slow", "_emit", "_maybe_cache", "_note_peer", "_cache_peer"):
        real = getattr(dp, name)

        def timed(*a, _real=real, _name=name, **k):
            calls.append(_name)
            return _real(*a, **k)
        setattr(dp, name, timed)
    lab.handshake()
    assert {"_slow", "_emit", "_maybe_cache", "_note_peer", "_cache_peer"} <= set(calls)
    assert calls.count("_slow") == 3  # SYN, SYN-ACK, ACK
    for name in ("_slow", "_emit", "_maybe_cache", "_note_peer", "_cache_peer"):
        delattr(dp, name)  # the class's method shows again
    calls.clear()
    lab.send("pf0hpf", lab.host_tcp("PA", seq=1001, ack=5001, payload=b"x"))
    assert calls == []
    assert "_slow" not in vars(dp)


def test_a_compiled_datapath_keeps_its_state_in_fields() -> None:
    lab = Lab()
    dp = lab.sw.datapath
    before = dp.stats["slow_path"]
    lab.handshake()
    if COMPILED:
        assert vars(dp) == {}
    assert dp.stats["slow_path"] - before == 3 and dp.n_cached() == 2


def test_fastentry_built_field_by_field_reads_as_constructed() -> None:
    lab = Lab()
    lab.handshake()
    conn = lab.conn()
    tracker = lab.sw.tracker
    a = D.FastEntry(7, conn, True, [(1, [])], [], None, 5, tracker, ((0, 1, 2),))
    b = D.FastEntry.__new__(D.FastEntry)
    b.generation, b.cid, b.tracker, b.reply = 7, conn.id, tracker, True
    b.outputs, b.rules, b.extra, b.learns = [(1, [])], [], None, ((0, 1, 2),)
    b.packets, b.bytes, b.used, b.created = 0, 0, None, 5
    fields = ("generation", "cid", "tracker", "reply", "outputs", "rules", "extra", "packets", "bytes", "used",
              "created", "learns")
    assert [getattr(a, f) for f in fields] == [getattr(b, f) for f in fields]
    assert a.conn is conn and b.conn is conn
