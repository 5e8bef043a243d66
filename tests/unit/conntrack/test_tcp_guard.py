"""tcp's guard held to the one it replaced (session 7).

``_fits`` decides which values the compiled window check may read as C integers; its predicates
(``_u32``, ``_u8``, ``_u5``) compare the int object with constants instead of converting it
through a C long long inside a ``try`` (the previous ``_within``).  The predicates accept exactly
what ``_within`` accepted, and the compiled module answers as its Python source at and around
every bound, in every field the guard reads.  (That the window check writes back only the fields
it changed is held by test_tcp_compiled.py: the connection's state is compared after every
segment.)"""

from __future__ import annotations

import random

import pytest

from ctswitch.conntrack import tcp
from ctswitch.conntrack.timeouts import Timeouts
from ctswitch.packet.headers import TCP_ACK
from ctswitch.params import Params

from .test_tcp_compiled import PY, _segment, _state, _step, _twins

LL = 1 << 63


class _Int(int):
    pass


def _old_within(x, hi: int) -> bool:
    """The previous ``tcp._within`` as compiled: an int read through a C long long (OverflowError:
    False), then 0 <= value <= hi."""
    if type(x) is not int:
        return False
    if not -LL <= x < LL:
        return False
    return 0 <= x <= hi


BOUNDS = (0, 1, 14, 15, 31, 32, 33, 64, 254, 255, 256, 65535, 1 << 31, (1 << 32) - 1, 1 << 32,
          (1 << 32) + 1, LL - 1, LL, 1 << 64, 1 << 70, -1, -255, -(1 << 32), -LL, -LL - 1)
ODD = (True, False, 1.0, 0.0, None, "1", _Int(5), _Int(1 << 40))


def test_guard_predicates_accept_what_within_accepted() -> None:
    for x in BOUNDS + ODD:
        assert PY._u32(x) == _old_within(x, 0xFFFFFFFF), x
        assert PY._u8(x) == _old_within(x, 255), x
        assert PY._u5(x) == _old_within(x, 31), x


PKT_FIELDS = ("tcp_flags", "tcp_seq", "tcp_ack", "tcp_win", "payload_len", "tcp_wscale")
CONN_FIELDS = ("state", "end0", "maxend0", "maxwin0", "maxack0", "scale0", "flags0", "end1",
               "maxend1", "maxwin1", "maxack1", "scale1", "flags1")


@pytest.mark.skipif(not tcp._COMPILED, reason="conntrack.tcp runs as Python here: nothing to compare")
@pytest.mark.parametrize("field", PKT_FIELDS + CONN_FIELDS)
def test_compiled_answers_as_python_at_every_bound(field: str) -> None:
    rng = random.Random(field)
    t = Timeouts(Params())
    for v in BOUNDS + ODD:
        for d in (0, 1):
            conns = _twins(rng, t, 0, _segment(random.Random(0), 0, [100, 0], 0x02))
            out = []
            for mod, c in zip((tcp, PY), conns, strict=True):
                mod.packet(c, 0, _segment(random.Random(0), 0, [100, 0], 0x02), t, 0)
                p = _segment(random.Random(2), d, [101, 5000], TCP_ACK)
                if field in PKT_FIELDS:
                    setattr(p, field, v)
                else:
                    setattr(c, field, v)
                out.append(_step(mod, c, d, p, t, 10))
            assert out[0] == out[1], (field, v, d)
            assert _state(conns[0]) == _state(conns[1]), (field, v, d)
