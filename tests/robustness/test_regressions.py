"""Inputs the fuzzers found that broke a contract: fixed ones pass, open ones are strict xfails."""

from __future__ import annotations

import io

import corpus
import pytest

from ctswitch.io.pcap import PcapError, PcapReader

# atheris, pcap target: a pcapng IDB whose if_tsoffset option claims 8 bytes past the block end
# raised struct.error from the reader (fixed in io/pcap.py: "interface option beyond block").
PCAPNG_IDB_OPTION_BEYOND_BLOCK = bytes.fromhex(
    "0a0d0d0a0000001c1a2b3c4d000100f7ffff00ffffffffff0000001c000000010000002000010000000400000009000109"
    "000000000e800000000020000000")


def test_pcapng_interface_option_beyond_block() -> None:
    with pytest.raises(PcapError, match=r"^x: record 1: interface option beyond block$"):
        list(PcapReader(io.BytesIO(PCAPNG_IDB_OPTION_BEYOND_BLOCK), name="x"))
    assert corpus.check_pcap(PCAPNG_IDB_OPTION_BEYOND_BLOCK) == 0


def test_later_fragment_is_not_a_port_zero_connection() -> None:
    """Hostile-packet suite: a UDP later fragment made a 'sport=0 dport=0' connection (fixed in
    tracker; since ct() reassembles, it waits for its first fragment instead)."""
    from hostile import Guard, v4_fragment

    g = Guard()
    n = len(g.tracker)
    assert g.queued("pf0hpf", v4_fragment(17, bytes(24), 24, False))
    assert len(g.tracker) == n


def test_script_pipe_without_command() -> None:
    # atheris found it: IndexError at argv[0]; now "ctswitch run: FILE:1: a pipe needs a command before it".
    corpus.check_script("| grep x\n")
