"""Exhaustive TCP transitions against the kernel table, flag validity and windows."""

from __future__ import annotations

import pytest

from ctswitch.conntrack import tcp
from ctswitch.conntrack.conn import DIR_ORIG, DIR_REPLY
from ctswitch.packet.headers import TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN, TCP_URG

# The kernel rows (nf_conntrack_proto_tcp.c), written independently of tcp._ROWS:
# one string per (direction, flag class), states in order NO SS SR ES FW CW LA TW CL S2.
KERNEL = {
    (0, "syn"): "SS SS IG IG IG IG IG SS SS S2",
    (0, "synack"): "IV IV SR IV IV IV IV IV IV SR",
    (0, "fin"): "IV IV FW FW LA LA LA TW CL IV",
    (0, "ack"): "ES IV ES ES CW CW TW TW CL IV",
    (0, "rst"): "IV CL CL CL CL CL CL CL CL CL",
    (0, "none"): "IV IV IV IV IV IV IV IV IV IV",
    (1, "syn"): "IV S2 IV IV IV IV IV SS IV S2",
    (1, "synack"): "IV SR IG IG IG IG IG IG IG SR",
    (1, "fin"): "IV IV FW FW LA LA LA TW CL IV",
    (1, "ack"): "IV IG SR ES CW CW TW TW CL IG",
    (1, "rst"): "IV CL CL CL CL CL CL CL CL CL",
    (1, "none"): "IV IV IV IV IV IV IV IV IV IV",
}
ABBR = {"NO": tcp.NONE, "SS": tcp.SYN_SENT, "SR": tcp.SYN_RECV, "ES": tcp.ESTABLISHED,
        "FW": tcp.FIN_WAIT, "CW": tcp.CLOSE_WAIT, "LA": tcp.LAST_ACK, "TW": tcp.TIME_WAIT,
        "CL": tcp.CLOSE, "S2": tcp.SYN_SENT2, "IV": tcp.INVALID, "IG": tcp.IGNORE}
CASES = [(d, c, s, ABBR[row.split()[s]]) for (d, cname), row in KERNEL.items()
         for c in [tcp.CLASS_NAMES.index(cname)] for s in range(10)]


def test_table_is_complete():
    assert len(tcp.TABLE) == 2 * 6 * 10 == len(CASES)


@pytest.mark.parametrize(("d", "cls", "state", "expected"), CASES)
def test_every_transition(d, cls, state, expected):
    assert tcp.TABLE[(d, cls, state)] == expected


@pytest.mark.parametrize(("flags", "cls"), [
    (TCP_SYN, tcp.SYN_SET), (TCP_SYN | TCP_ACK, tcp.SYNACK_SET), (TCP_FIN | TCP_ACK, tcp.FIN_SET),
    (TCP_ACK, tcp.ACK_SET), (TCP_ACK | TCP_PSH, tcp.ACK_SET), (TCP_RST | TCP_ACK, tcp.RST_SET),
    (TCP_RST | TCP_SYN, tcp.RST_SET), (0, tcp.NONE_SET)])
def test_classify_priority(flags, cls):
    assert tcp.classify(flags) == cls


@pytest.mark.parametrize(("flags", "ok"), [
    (TCP_SYN, True), (TCP_SYN | TCP_ACK, True), (TCP_ACK | TCP_PSH, True), (TCP_FIN | TCP_ACK, True),
    (TCP_RST, True), (TCP_RST | TCP_ACK, True), (TCP_ACK | TCP_URG, True),
    (TCP_SYN | TCP_FIN, False), (TCP_SYN | TCP_RST, False), (0, False),
    (TCP_FIN | TCP_PSH | TCP_URG, False), (TCP_FIN, False), (TCP_PSH, False), (TCP_URG, False)])
def test_flag_validity(flags, ok):
    assert tcp.flags_valid(flags) is ok


def test_sequence_comparison_wraps():
    assert tcp.before(0xFFFFFFF0, 5)
    assert tcp.after(5, 0xFFFFFFF0)
    assert not tcp.before(5, 5)


def test_directions_are_distinct_constants():
    assert (DIR_ORIG, DIR_REPLY) == (0, 1)
