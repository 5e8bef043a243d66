"""NAT tuple allocation (the nf_nat model, with OVS-observed port choice).

Theory of operation
-------------------
NAT is set up once, when a connection is committed with ``nat(src=..)`` or
``nat(dst=..)``: ``allocate`` picks the new address and port, the tracker
rewrites the connection's *reply* tuple with them and sets IPS_SRC_NAT /
IPS_DST_NAT.  Later packets are translated from the two tuples alone.

Address: the original address is kept when it lies in the range; otherwise
``min + hash % size`` with a CRC32 hash of the source address (``persistent``)
or of both addresses (the kernel uses jhash; the choice inside a range is
therefore deterministic but not the kernel's).

Port (TCP/UDP/SCTP ports, ICMP id):
* the original port is kept when it is in range and the tuple is free
  (except with ``random``, which always draws);
* otherwise the range is the given one, or the original port's class
  1-511 / 600-1023 / 1024-65535 (ICMP ids: 0-65535); DNAT without a port
  range never changes the port (kernel rule);
* the search starts at the port after the original one (``hash``: at a
  hash-derived offset; ``random``: at an offset drawn from the tracker's
  seeded RNG) and probes upward, wrapping inside the range, in rounds of
  min(size,128), 64, 32, 16 and 8 probes (the kernel's 248-probe bound).

Deliberate difference from the kernel: the kernel starts the search at a
random or hashed offset, so 2.2.2.2:40003 clashing with 2.2.2.1:40003 on
1.1.1.16 gets some random port (52211 in the kernel sample); ctswitch takes
the next free port up (40004), which is what OVS 3.1 produced in the oracle
cases and makes outputs reproducible.  On exhaustion ``allocate`` returns
None and the tracker drops the packet (kernel: the clashing entry cannot be
confirmed; OVS userspace instead forwards the packet un-NATed).
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable

from ..flow.actions import Nat

PORT_CLASSES = ((1, 511), (600, 1023), (1024, 65535))
ROUNDS = (128, 64, 32, 16, 8)
EXHAUSTED_MSG = ("Unable to NAT due to tuple space exhaustion - if DoS attack, "
                 "use firewalling and/or zone partitioning.")


def port_class(port: int) -> tuple[int, int]:
    """The ephemeral class of ``port``: the first of PORT_CLASSES whose top is not below it (0
    and 512-599, in no class, map to the next one up; above 65535, the last)."""
    if port <= 511:
        return PORT_CLASSES[0]
    if port <= 1023:
        return PORT_CLASSES[1]
    return PORT_CLASSES[2]


def _hash(*vals: int) -> int:
    return zlib.crc32(b"".join(v.to_bytes(16, "big") for v in vals))


def choose_addr(spec: Nat, cur: int, other: int) -> int:
    """The NAT address for original address ``cur`` (``other``: the peer address)."""
    lo, hi = spec.addr_min, spec.addr_max or spec.addr_min
    if lo == 0:
        return cur  # nat(src=0.0.0.0): keep the address, only resolve port clashes
    if lo <= cur <= hi:
        return cur
    size = hi - lo + 1
    if size == 1:
        return lo  # lo + hash % 1: no need to hash
    h = _hash(cur) if spec.persistent else _hash(cur, other)
    return lo + h % size


def allocate(spec: Nat, proto: int, cur_addr: int, other_addr: int, cur_port: int,
             taken: Callable[[int, int], bool], rng: random.Random) -> tuple[int, int] | None:
    """Picks (addr, port) for the manipulated side of a new connection.

    ``cur_port`` is the port (or ICMP id) being translated, -1 when the protocol
    has none.  ``taken(addr, port)`` tells whether the resulting reply tuple is
    already in the table.  Returns None when no free tuple was found.
    """
    addr = choose_addr(spec, cur_addr, other_addr)
    if cur_port < 0:
        return None if taken(addr, 0) else (addr, 0)
    icmp = proto in (1, 58)
    if spec.port_min:
        lo, hi = spec.port_min, spec.port_max or spec.port_min
    elif spec.kind == "dst" and not icmp:
        return None if taken(addr, cur_port) else (addr, cur_port)
    elif icmp:
        lo, hi = 0, 65535
    else:
        lo, hi = port_class(cur_port)
    in_range = lo <= cur_port <= hi
    if in_range and not spec.random and not taken(addr, cur_port):
        return addr, cur_port
    size = hi - lo + 1
    if spec.random:
        off = rng.randrange(size)
    elif spec.hash:
        off = _hash(cur_addr if spec.persistent else cur_addr ^ other_addr, other_addr, cur_port) % size
    elif in_range:
        off = (cur_port - lo + 1) % size
    else:
        off = 0
    probed = 0
    for budget in ROUNDS:
        n = min(budget, size)
        for _ in range(n):
            port = lo + off
            off = (off + 1) % size
            if not taken(addr, port):
                return addr, port
            probed += 1
            if probed >= size:
                return None
    return None
