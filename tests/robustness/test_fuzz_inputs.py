"""Property tests: the input decoders never raise anything but their own one-line error.

Covered: the packet codec (bytes and mutated valid frames), the whole datapath on
mutated frames, the add-flow parser, the ``ctswitch run`` script reader, the
pcap/pcapng reader, the control-socket request/reply decoders and line framing,
the SQLite store on damaged files and the CLI shell on random argv.  Bounded
``max_examples`` keep each test to a few seconds; ``fuzz/`` runs the same
properties for hours with atheris.
"""

from __future__ import annotations

import json
import os
import shutil

import corpus
import pytest
from hostile import Guard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mutated(draw, seeds: list[bytes], max_ops: int = 6):
    """A seed with a few byte flips, cuts, insertions and 16/32-bit boundary values."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, max_ops))):
        op = draw(st.integers(0, 4))
        pos = draw(st.integers(0, max(len(data), 1)))
        if op == 0 and data:
            data[min(pos, len(data) - 1)] = draw(st.integers(0, 255))
        elif op == 1:
            data = data[:pos]
        elif op == 2:
            data[pos:pos] = draw(st.binary(max_size=16))
        elif op == 3:
            data[pos:pos + 2] = draw(st.sampled_from([b"\x00\x00", b"\xff\xff", b"\x81\x00", b"\x86\xdd", b"\x08\x00"]))
        else:
            data[pos:pos + 4] = draw(st.sampled_from([b"\0\0\0\0", b"\xff\xff\xff\xff", b"\x0c\0\0\0", b"\x06\0\0\0"]))
    return bytes(data)


def tokens(vocab: list[str], max_size: int = 30):
    return st.lists(st.one_of(st.sampled_from(vocab), st.text(max_size=3)), max_size=max_size).map("".join)


FRAMES = corpus.frame_seeds()


@FAST
@given(st.binary(max_size=200))
def test_codec_random_bytes(data: bytes) -> None:
    corpus.check_frame(data)


@settings(max_examples=1500, deadline=None)
@given(mutated(FRAMES))
def test_codec_mutated_frames(data: bytes) -> None:
    corpus.check_frame(data)


_GUARD: list[Guard] = []


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["p0", "pf0hpf"]), mutated(FRAMES)), min_size=1, max_size=5))
def test_datapath_mutated_frames(batch) -> None:
    if not _GUARD:
        _GUARD.append(Guard())
    g = _GUARD[0]
    for port, frame in batch:
        g.send(port, frame)  # forwarded or counted as one drop
    # A spoofed source MAC legitimately moves NORMAL's MAC entry and flushes the fast-path
    # cache: re-teach the MACs, then the protected connection must pass.
    g.relearn()
    g.alive(fast=False)


def test_flow_seeds_parse() -> None:
    from ctswitch.flow.ofctl_syntax import parse_flow

    for text in corpus.FLOW_SEEDS:
        parse_flow(text, corpus.PORTS)


@FAST
@given(st.one_of(tokens(corpus.FLOW_TOKENS),
                 mutated([s.encode() for s in corpus.FLOW_SEEDS]).map(lambda b: b.decode("latin-1"))))
def test_flow_parser(text: str) -> None:
    corpus.check_flow(text)


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.lists(tokens(corpus.SCRIPT_TOKENS, 8), max_size=6).map("\n".join),
                 mutated([s.encode() for s in corpus.SCRIPT_SEEDS], 4).map(lambda b: b.decode("latin-1"))))
def test_script_reader(text: str) -> None:
    corpus.check_script(text)


PCAPS = corpus.pcap_seeds()


@settings(max_examples=1500, deadline=None)
@given(st.one_of(mutated(PCAPS, 8), st.binary(max_size=64)))
def test_pcap_reader(data: bytes) -> None:
    corpus.check_pcap(data)


def test_pcap_errors_keep_earlier_records() -> None:
    data = PCAPS[0]
    n = corpus.check_pcap(data[:-3])  # the last record is cut
    assert n == 3


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                           lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=5), c, max_size=4),
                           max_leaves=10)


@FAST
@given(st.one_of(
    st.binary(max_size=100),
    mutated(corpus.REQUEST_SEEDS),
    st.dictionaries(st.sampled_from(["tool", "argv", "stdin", "cwd", "out", "err", "code", "x"]), json_values,
                    max_size=5).map(lambda d: json.dumps(d).encode()),
))
def test_protocol_decoders(line: bytes) -> None:
    corpus.check_request(line)


@FAST
@given(st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"\n")), max_size=8), st.integers(1, 30))
def test_linebuffer(chunks, limit) -> None:
    corpus.check_linebuffer(chunks, limit)


# --- the SQLite store and the CLI shell ---------------------------------------------------------

@pytest.fixture(scope="module")
def good_db(tmp_path_factory):
    from ctswitch.cli.main import execute

    path = str(tmp_path_factory.mktemp("db") / "ct.db")
    for argv in (["ovs-vsctl", "add-br", "ctBr"], ["ovs-vsctl", "add-port", "ctBr", "p0"],
                 ["ovs-ofctl", "add-flow", "ctBr", "table=0,ip,action=ct(table=1)"]):
        res, _ = execute(["--db", path, *argv], stdin_loader=lambda: None)
        assert res.code == 0, res.err
    return path


def test_store_refuses_damaged_files(good_db, tmp_path) -> None:
    """Byte flips in the header, the schema pages and the data: StoreError or a working store."""
    from ctswitch.daemon.store import Store, StoreError

    for f in ("-wal", "-shm"):
        assert not os.path.exists(good_db + f) or os.path.getsize(good_db + f) >= 0
    data = bytearray(open(good_db, "rb").read())
    import random

    rng = random.Random(5)
    refused = 0
    for i in range(60):
        d = bytearray(data)
        if i < 20:
            d = d[:rng.randrange(len(d))]
        else:
            for _ in range(1 + i % 8):
                d[rng.randrange(0 if i < 40 else 100, len(d))] = rng.randrange(256)
        p = str(tmp_path / f"bad{i}.db")
        open(p, "wb").write(bytes(d))
        try:
            st_ = Store(p)
        except StoreError as e:
            refused += 1
            assert "\n" not in str(e)
            assert open(p, "rb").read() == bytes(d)  # never written to
            continue
        try:
            with st_.transaction() as tx:
                tx.load()
        except StoreError as e:
            refused += 1
            assert "\n" not in str(e)
        finally:
            st_.close()
    assert refused > 0


CLI_TOOLS = ["ovs-vsctl", "ovs-ofctl", "ovs-appctl", "conntrack", "sysctl", "devlink", "modparam", "cat", "echo",
             "explain", "time"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(CLI_TOOLS), st.lists(st.one_of(st.sampled_from(corpus.SCRIPT_TOKENS + corpus.FLOW_SEEDS),
                                                      st.text(max_size=6)), max_size=5))
def test_cli_never_fails_internally(good_db, tmp_path_factory, tool, args) -> None:
    from ctswitch.cli.main import EX_SOFTWARE, execute

    db = str(tmp_path_factory.mktemp("cli") / "ct.db")
    shutil.copy(good_db, db)
    res, _ = execute(["--db", db, tool, *args], stdin_loader=lambda: "ip,actions=normal\n")
    assert res.code != EX_SOFTWARE and "internal error" not in res.err, res.err
    assert "Traceback" not in res.err


def test_script_error_escapes_control_characters() -> None:
    # Found by atheris: the rejected word's ESC sequences reached the terminal; now escaped.
    from ctswitch.control.script import run_text
    from ctswitch.datapath.switch import Switch

    res = run_text(Switch(), "ovs\x1b[2Jofctl show\n", "x.sh")
    assert res.code == 1
    assert "\x1b" not in res.err
