"""Coverage-guided fuzzing of ctswitch's input decoders with atheris (libFuzzer).

Theory of operation
-------------------
One target per decoder; each feeds the fuzzer's bytes to the property of
``tests/robustness/corpus.py`` (the same properties the hypothesis suite
checks), seeded with that module's well-formed inputs:

| target   | input                                   | property                                   |
| -------- | --------------------------------------- | ------------------------------------------ |
| codec    | frame bytes                             | ``parse`` never raises, drop in REASONS    |
| datapath | 1 port byte + frame, through the switch | forwarded or counted as exactly one drop   |
| flow     | add-flow text                           | FlowSyntaxError with one line, or a spec   |
| script   | ``ctswitch run`` text                   | a Result; failures end "ctswitch run: ..." |
| pcap     | capture file bytes                      | PcapError "fuzz.pcap: ..." or records      |
| protocol | control-socket line                     | ProtocolError with one line, or a dict     |

Any other exception is a crash: atheris stops and writes the input to
``fuzz/crashes/<target>-*``.  Usage::

    .venv/bin/python fuzz/run_fuzz.py TARGET [-runs=N | -max_total_time=S] [libFuzzer flags]

Prints ``<target>: inputs tried N, crashes C, coverage cov=E ft=F`` (libFuzzer's
edge and feature counts, from its final stats line).  Without atheris, falls
back to a long hypothesis run of the same property (``--hypothesis N``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "robustness"), str(ROOT / "tests" / "integration")]

corpus = None  # tests/robustness/corpus.py, imported after atheris instruments ctswitch
TARGETS = ("codec", "datapath", "flow", "script", "pcap", "protocol")
_guard = []


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def one(target: str, data: bytes) -> None:
    if target == "codec":
        corpus.check_frame(data)
    elif target == "datapath":
        if not _guard:
            from hostile import Guard
            _guard.append(Guard())
        g = _guard[0]
        g.send("p0" if data[:1] and data[0] & 1 else "pf0hpf", data[1:])
        if g.sent % 1000 == 0:
            g.relearn()  # spoofed source MACs legitimately move NORMAL's entries
            g.alive(fast=False)
    elif target == "flow":
        corpus.check_flow(_text(data))
    elif target == "script":
        corpus.check_script(_text(data))
    elif target == "pcap":
        corpus.check_pcap(data)
    elif target == "protocol":
        corpus.check_request(data)
    else:
        raise SystemExit(f"unknown target {target!r} (one of {', '.join(TARGETS)})")


def seeds(target: str) -> list[bytes]:
    if target in ("codec",):
        return corpus.frame_seeds()
    if target == "datapath":
        return [b"\0" + f for f in corpus.frame_seeds()] + [b"\1" + f for f in corpus.frame_seeds()]
    if target == "flow":
        return [s.encode() for s in corpus.FLOW_SEEDS]
    if target == "script":
        return [s.encode() for s in corpus.SCRIPT_SEEDS]
    if target == "pcap":
        return corpus.pcap_seeds()
    return list(corpus.REQUEST_SEEDS)


def main(argv: list[str]) -> None:
    if not argv or argv[0] not in TARGETS:
        raise SystemExit(f"usage: run_fuzz.py {{{'|'.join(TARGETS)}}} [libFuzzer flags] | --hypothesis N")
    target, rest = argv[0], argv[1:]
    global corpus
    if rest[:1] == ["--hypothesis"]:
        import corpus as c
        corpus = c
        return _hypothesis(target, int(rest[1]))
    import atheris

    with atheris.instrument_imports(include=["ctswitch"]):
        import corpus as c
        import hostile  # noqa: F401

        import ctswitch.control.dispatch  # noqa: F401
        import ctswitch.control.script  # noqa: F401
        import ctswitch.datapath.datapath  # noqa: F401
    corpus = c

    seed_dir = ROOT / "fuzz" / "seeds" / target
    seed_dir.mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(seeds(target)):
        (seed_dir / f"seed{i}").write_bytes(s)
    work = ROOT / "fuzz" / "corpus" / target
    work.mkdir(parents=True, exist_ok=True)
    crashes = ROOT / "fuzz" / "crashes"
    crashes.mkdir(exist_ok=True)
    os.environ.setdefault("PYTHONHASHSEED", "0")
    atheris.Setup([sys.argv[0], *rest, f"-artifact_prefix={crashes}/{target}-", str(work), str(seed_dir)],
                  lambda data: one(target, data))
    atheris.Fuzz()


def _hypothesis(target: str, n: int) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    pool = seeds(target)

    @settings(max_examples=n, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(pool), st.lists(st.tuples(st.integers(0, 4096), st.binary(max_size=8)), max_size=6))
    def prop(seed, edits):
        d = bytearray(seed)
        for pos, b in edits:
            d[pos % (len(d) + 1):pos % (len(d) + 1) + len(b) // 2] = b
        one(target, bytes(d))

    prop()
    print(f"{target}: inputs tried {n}, crashes 0 (hypothesis)")


if __name__ == "__main__":
    main(sys.argv[1:])
