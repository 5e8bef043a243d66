"""Rule, Port and OFBridge as extension types (rule.pxd, bridge.pxd) keep the results of the code
they replaced: ``Port`` written out as the ``@dataclass(slots=True)`` it was (constructor,
``repr``, ``==``, unhashable); ``OFBridge.learn`` returning early for a known MAC on the same port;
``credit_hits`` (the batch table's crediting of an entry's rules, learned MAC and ports, which
``BatchFastPath._credit_entry`` wrote inline).  Each is compared with the previous implementation,
kept here, on random sequences, for the module as loaded (compiled when built) and its source."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from ctswitch._native import source_module
from ctswitch.ofproto import bridge as loaded
from ctswitch.ofproto import rule as loaded_rule
from ctswitch.ofproto.rule import Rule

SOURCE = source_module("ofproto.bridge", "ctswitch.ofproto._bridge_pure_ref")
MODULES = [pytest.param(loaded, id="loaded"), pytest.param(SOURCE, id="source")]


# --- the previous implementations ---------------------------------------------------------------

@dataclass(slots=True)
class _DataclassPort:
    name: str
    ofport: int
    type: str = ""
    options: dict[str, str] = field(default_factory=dict)
    rx_packets: int = 0
    rx_bytes: int = 0
    tx_packets: int = 0
    tx_bytes: int = 0
    rx_dropped: int = 0
    tx_dropped: int = 0


def _ref_learn(br, vlan: int, mac: int, ofport: int, now: int) -> None:
    if mac & (1 << 40):
        return
    macs = br.mac
    k = (vlan, mac)
    old = macs.get(k)
    if (old is None or old[0] != ofport) and br.mac_sync is not None:
        br.mac_sync()
        old = macs.get(k)
    macs[k] = (ofport, now)
    if old is None or old[0] != ofport:
        br.generation += 1


def _ref_credit(bridge, rules, pk, by, used, learned, src, in_port, out_port) -> None:
    """BatchFastPath._credit_entry's crediting of rules, MAC and ports as it was written inline."""
    by_no = bridge.by_no if bridge is not None else {}
    for r in rules:
        r.n_packets += pk
        r.n_bytes += by
        r.last_used_ms = used
    if learned and bridge is not None:
        _ref_learn(bridge, 0, src, in_port, used)
    p = by_no.get(in_port)
    if p is not None:
        p.rx_packets += pk
        p.rx_bytes += by
    p = by_no.get(out_port)
    if p is not None:
        p.tx_packets += pk
        p.tx_bytes += by


# --- Port ----------------------------------------------------------------------------------------

def _port_args(rng: random.Random) -> tuple[tuple, dict]:
    values = [f"p{rng.randint(0, 3)}", rng.randint(1, 5), rng.choice(["", "internal", "dummy"]),
              {"k": str(rng.randint(0, 2))}] + [rng.randint(0, 3) for _ in range(6)]
    names = ["name", "ofport", "type", "options", "rx_packets", "rx_bytes", "tx_packets", "tx_bytes",
             "rx_dropped", "tx_dropped"]
    n = rng.randint(2, 10)
    npos = rng.randint(2, n)
    return tuple(values[:npos]), {k: v for k, v in zip(names[npos:n], values[npos:n])}


@pytest.mark.parametrize("mod", MODULES)
def test_port_is_the_dataclass_it_was(mod) -> None:
    rng = random.Random(7)
    made = []
    for _ in range(300):
        args, kw = _port_args(rng)
        p, ref = mod.Port(*args, **kw), _DataclassPort(*args, **kw)
        assert repr(p) == repr(ref).replace("_DataclassPort(", "Port(", 1)
        made.append((p, ref))
    for (p, ref), (q, qref) in zip(made, made[1:] + made[:1]):
        assert (p == q) == (ref == qref) and (p != q) == (ref != qref)
        assert p == p and (p == ref) is False and (p != "x") is True
    a, b = mod.Port("a", 1), mod.Port("a", 1)
    assert a.options == {} and a.options is not b.options  # a new dict each (default_factory)
    with pytest.raises(TypeError):
        hash(a)
    with pytest.raises(AttributeError):
        a.foo = 1  # slots
    with pytest.raises(TypeError):
        mod.Port("a")
    with pytest.raises(TypeError):
        mod.Port("a", 1, bogus=2)


# --- learn and credit_hits ----------------------------------------------------------------------

class _Sync:
    """A bridge's ``mac_sync``: logs its calls and, like the batch table's pending credits,
    refreshes or moves a MAC (the same pseudo-random ones for every bridge given the same seed)."""

    def __init__(self, br, seed: int) -> None:
        self.br, self.rng, self.log = br, random.Random(seed), []

    def __call__(self) -> None:
        self.log.append(len(self.br.mac))
        if self.rng.random() < 0.5:
            self.br.mac[(0, self.rng.randint(1, 6))] = (self.rng.randint(1, 3), self.rng.randint(0, 50))


def _world(mod, seed: int):
    br = mod.OFBridge("br0")
    for i in range(3):
        br.add_port(f"p{i}")
    sync = _Sync(br, seed)
    br.mac_sync = sync
    rules = [Rule(0, i, None, []) for i in range(5)]
    return br, sync, rules


def _state(br, sync, rules) -> tuple:
    ports = sorted((p.name, p.ofport, p.rx_packets, p.rx_bytes, p.tx_packets, p.tx_bytes, p.rx_dropped,
                    p.tx_dropped) for p in br.by_no.values())
    return (dict(br.mac), br.generation, ports, list(sync.log),
            [(r.n_packets, r.n_bytes, r.last_used_ms) for r in rules])


@pytest.mark.parametrize("mod", MODULES)
@pytest.mark.parametrize("seed", range(40))
def test_learn_and_credit_hits_match_the_previous_code(mod, seed: int) -> None:
    rng = random.Random(seed)
    got, want = _world(mod, seed), _world(mod, seed)
    if rng.random() < 0.2:  # nothing pending anywhere
        got[0].mac_sync = want[0].mac_sync = None
    now = 0
    macs = [1, 2, 3, 4, 5, 6, 1 << 40 | 7, 0xFFFF_FFFF_FFFF]
    for _ in range(300):
        now += rng.randint(0, 3)
        if rng.random() < 0.5:
            args = (rng.randint(0, 1), rng.choice(macs), rng.randint(1, 4), now)
            got[0].learn(*args)
            _ref_learn(want[0], *args)
        else:
            pick = rng.sample(range(5), rng.randint(0, 5))
            pk = rng.randint(1, 4)
            args = (pk, pk * rng.randint(60, 1500), now, rng.random() < 0.6, rng.choice(macs),
                    rng.randint(0, 5), rng.choice([0, 1, 2, 3, 4, 0xFFFE]))
            gone = rng.random() < 0.1  # the bridge deleted meanwhile
            mod.credit_hits(None if gone else got[0], [got[2][i] for i in pick], *args)
            _ref_credit(None if gone else want[0], [want[2][i] for i in pick], *args)
        assert _state(*got) == _state(*want)
    assert got[0].generation > 4  # moves and new MACs happened


def test_loaded_rule_keeps_its_fields() -> None:
    r = loaded_rule.Rule(3, 7, None, (), cookie=5, now=9)
    assert (r.table_id, r.priority, r.actions, r.cookie, r.created_ms, r.last_used_ms, r.n_packets, r.n_bytes,
            r.seq, r.installed) == (3, 7, [], 5, 9, 9, 0, 0, 0, False)
    with pytest.raises(AttributeError):
        r.foo = 1
