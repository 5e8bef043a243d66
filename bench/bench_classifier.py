"""Classifier: lookups/s of ``ofproto.classifier.Classifier`` with 10, 1k and 100k flows.

Realistic masks, four subtables (an ACL-like table):

* ``ip,nw_dst=A.B.C.D,tcp,tp_dst=P`` (exact service rules, priority 300)
* ``ip,nw_src=A.B.0.0/16`` (prefix rules, priority 200)
* ``in_port=N,dl_src=MAC`` (port security, priority 100)
* ``ip`` / ``arp`` catch-alls (priority 0)

Keys are random: about half match an exact rule, the rest fall through to a
prefix rule or the catch-all.  The cost should follow the number of
subtables consulted, not the number of rules.
"""

from __future__ import annotations

import random
import sys

from bench.common import check_flags, report, timeit
from ctswitch.flow.key import (
    DL_SRC,
    DL_TYPE,
    EXACT,
    IN_PORT,
    N_FIELDS,
    NW_DST,
    NW_PROTO,
    NW_SRC,
    TP_DST,
    Match,
)
from ctswitch.ofproto.classifier import Classifier
from ctswitch.ofproto.rule import Rule

FLAGS = {  # the command line (common.check_flags; run_all passes each module only its own)
    "--quick": "a short pass (smaller sizes, fewer runs)",
    "--no-save": "print only, do not append to docs/benchmarks.md",
}

def _match(fields: dict[int, tuple[int, int]]) -> Match:
    v = [0] * N_FIELDS
    m = [0] * N_FIELDS
    for i, (val, mask) in fields.items():
        v[i], m[i] = val, mask
    return Match(tuple(v), tuple(m))


def build(n_flows: int, rng: random.Random):
    cls = Classifier()
    exact, prefix, ports = [], [], []
    cls.insert(Rule(0, 0, _match({DL_TYPE: (0x0800, 0xFFFF)}), []))
    cls.insert(Rule(0, 0, _match({DL_TYPE: (0x0806, 0xFFFF)}), []))
    for i in range(max(0, n_flows - 2)):
        kind = i % 3
        if kind == 0:
            d, p = 0x0A000000 + rng.randrange(1 << 20), rng.choice((22, 80, 443, 8080))
            exact.append((d, p))
            m = _match({DL_TYPE: (0x0800, 0xFFFF), NW_PROTO: (6, 0xFF), NW_DST: (d, EXACT[NW_DST]),
                        TP_DST: (p, 0xFFFF)})
            cls.insert(Rule(0, 300, m, []))
        elif kind == 1:
            s = (0xAC000000 + (rng.randrange(1 << 14) << 16))
            prefix.append(s)
            cls.insert(Rule(0, 200, _match({DL_TYPE: (0x0800, 0xFFFF), NW_SRC: (s, 0xFFFF0000)}), []))
        else:
            port, mac = rng.randrange(1, 64), 0x020000000000 + rng.randrange(1 << 24)
            ports.append((port, mac))
            cls.insert(Rule(0, 100, _match({IN_PORT: (port, 0xFFFFFFFF), DL_SRC: (mac, EXACT[DL_SRC])}), []))
    return cls, exact, prefix, ports


def keys(n: int, exact, prefix, ports, rng: random.Random) -> list[list[int]]:
    out = []
    for _ in range(n):
        k = [0] * N_FIELDS
        k[DL_TYPE], k[NW_PROTO] = 0x0800, 6
        k[IN_PORT], k[DL_SRC] = rng.randrange(1, 64), 0x020000000000 + rng.randrange(1 << 24)
        k[NW_SRC], k[NW_DST], k[TP_DST] = rng.randrange(1 << 32), rng.randrange(1 << 32), 80
        r = rng.random()
        if r < 0.5 and exact:
            k[NW_DST], k[TP_DST] = rng.choice(exact)
        elif r < 0.7 and prefix:
            k[NW_SRC] = rng.choice(prefix) | rng.randrange(1 << 16)
        elif r < 0.8 and ports:
            k[IN_PORT], k[DL_SRC] = rng.choice(ports)
        out.append(k)
    return out


def main(argv: list[str]) -> list[str]:
    check_flags(argv, FLAGS, "bench_classifier")
    quick = "--quick" in argv
    rng = random.Random(1)
    lines = ["| flows | subtables | lookups/s (median, ±half-spread) | µs/lookup | with wildcard tracking |",
             "|---|---|---|---|---|"]
    for n in (10, 1000, 100_000):
        cls, exact, prefix, ports = build(n, rng)
        ks = keys(20_000 if quick else 100_000, exact, prefix, ports, rng)
        look = cls.lookup

        def run(ks=ks, look=look):
            for k in ks:
                look(k)
            return len(ks)

        def run_wc(ks=ks, look=look):
            for k in ks:
                look(k, [0] * N_FIELDS)
            return len(ks)

        t = timeit(run, runs=5)
        tw = timeit(run_wc, runs=5)
        lines.append(f"| {n:,} | {cls.n_subtables} | {t.per_s()} | {1e6 / t.rate:.2f} | {tw.per_s()} |")
        print(lines[-1])
    return report("Classifier lookups", "bench.bench_classifier", argv, lines)


if __name__ == "__main__":
    main(sys.argv[1:])
