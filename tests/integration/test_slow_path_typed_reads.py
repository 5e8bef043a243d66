"""The slow path's typed reads and _emit's bytes (session 10) against the code they replaced:
``receive`` reads its packet's drop reason and calls ``key.extract`` typed, ``_slow`` reads the
packet's TCP flags, each verdict's connection and reply and the connection's status and protocol
as struct members (behind exact type checks), and ``_emit`` hands a bytes output on as it is
instead of through ``bytes()`` (which returns a bytes object itself).

The reference is a twin switch running the previous ``receive``, ``_slow`` and ``_emit``
(test_slow_path_leftovers' verbatim copies); both get the same frames, handed over as bytes,
bytearray and memoryview in turn (a frame that is not bytes and leaves unchanged takes
``bytes()``), and every output must be the same bytes, as a ``bytes`` object.
"""

from __future__ import annotations

import pytest
import test_slow_path_leftovers as L
from pipeline import Lab

pytest.importorskip("numpy")

_KINDS = (bytes, bytearray, memoryview)
# NAT on every connection (the example pipeline), and a plain one: outputs rewritten and not.
_PLAIN = ("table=0,arp,action=normal",
          "table=0,ip,ct_state=-trk,action=ct(table=1)",
          "table=1,ip,ct_state=+new,action=ct(commit),normal",
          "table=1,ip,ct_state=+est,action=normal")


def _send(lab, port, frame, kind):
    out = lab.send(port, kind(frame))
    assert all(type(f) is bytes for _, f in out), [type(f) for _, f in out]
    return out


@pytest.mark.parametrize("flows", [None, _PLAIN])
@pytest.mark.parametrize("config", [{}, {"devlink:ct_max_offloaded_conns": 1}])
def test_typed_reads_and_bytes_match_previous(flows, config):
    kw = dict(config) if flows is None else dict(config, flows=flows)
    a, b = Lab(**kw), Lab(**kw)
    L._previous(b.sw.datapath)
    n = 0
    for i, sport in enumerate((40001, 40002, 40003, 40004, 40005)):
        for lab in (a, b):
            k = _KINDS[i % 3]
            lab.outs = [_send(lab, "pf0hpf", lab.host_tcp("S", sport, seq=1000), k),
                        _send(lab, "p0", lab.remote_tcp("SA", sport, seq=5000, ack=1001,
                                                        dst="1.1.1.16" if flows is None else "2.2.2.1"), k)]
            seq, ack = 1001, 5001
            dst = "1.1.1.16" if flows is None else "2.2.2.1"
            for j in range(6):
                kj = _KINDS[(i + j) % 3]
                lab.outs.append(_send(lab, "pf0hpf", lab.host_tcp("A", sport, payload=b"x" * 7, seq=seq, ack=ack), kj))
                lab.outs.append(_send(lab, "p0", lab.remote_tcp("A", sport, payload=b"y" * 9, seq=ack, ack=seq + 7,
                                                                dst=dst), kj))
                seq, ack = seq + 7, ack + 9
            close = "FA" if i % 2 else "R"
            lab.outs.append(_send(lab, "p0", lab.remote_tcp(close, sport, seq=ack, ack=seq, dst=dst), k))
            lab.outs.append(_send(lab, "pf0hpf", lab.host_tcp("A", sport, seq=seq, ack=ack + 1), k))
            if i == 2:
                lab.at(lab.t + 31_000)
        assert a.outs == b.outs
        n += sum(len(o) for o in a.outs)
        L.assert_twins_agree(a, b)
    assert n > 50
    assert a.sw.offload.counters()["offloaded"] >= 1
