"""``conntrack -E``: event lines against oracle/kernel/sample/conntrack-events.txt (a real
conntrack 1.4.7 capture, with SNAT to 1.1.1.16), the summary line, filters, -o timestamp."""

from __future__ import annotations

from scapy.layers.inet import IP, TCP, UDP

from ctswitch.control.conntrack_tool import run

from .test_render_cli import SAMPLE, A, B, N, Sw, send

SUMMARY = "conntrack v1.4.7 (conntrack-tools): {} flow events have been shown.\n"


def sample_events() -> list[str]:
    """The sample's lines without their ``[sec.usec]\\t`` prefix."""
    return [line.split("\t", 1)[1] for line in (SAMPLE / "conntrack-events.txt").read_text().splitlines()]


def traffic(sw: Sw) -> None:
    """The sample's HTTPS (mark 42), DNS and mDNS (zone 7) flows through SNAT."""
    send(sw, IP(src=A, dst=B) / TCP(sport=40003, dport=443, flags="S", seq=1, window=500), 1000, True, mark=42)
    send(sw, IP(src=B, dst=N) / TCP(sport=443, dport=40003, flags="SA", seq=9, ack=2, window=500), 1000)
    send(sw, IP(src=A, dst=B) / TCP(sport=40003, dport=443, flags="A", seq=2, ack=10, window=500), 1000, True)
    send(sw, IP(src=A, dst=B) / UDP(sport=50000, dport=53) / b"q", 2500, True)
    send(sw, IP(src=B, dst=N) / UDP(sport=53, dport=50000) / b"r", 2500)
    send(sw, IP(src=A, dst=B) / UDP(sport=50001, dport=5353) / b"z", 2500, True, zone=7)
    send(sw, IP(src=B, dst=N) / UDP(sport=5353, dport=50001) / b"z", 2500, zone=7)


def listening() -> Sw:
    sw = Sw()
    first = run(sw, ["-E"])  # subscribes: nothing recorded before it
    assert first.code == 0 and first.out == "" and first.err == SUMMARY.format(0)
    traffic(sw)
    return sw


def test_lines_and_summary_match_the_kernel_sample():
    ev = sample_events()
    r = run(listening(), ["-E"])
    assert r.code == 0
    assert r.out.splitlines() == [ev[6], ev[7], ev[8], ev[14], ev[15], ev[16], ev[17]]
    assert r.err == SUMMARY.format(7)


def test_each_listener_sees_only_what_came_after_the_previous_one():
    sw = listening()
    run(sw, ["-E"])
    again = run(sw, ["-E"])
    assert again.out == "" and again.err == SUMMARY.format(0)


def test_filters_select_events_and_the_count():
    ev = sample_events()
    r = run(listening(), ["-E", "-p", "tcp"])
    assert r.out.splitlines() == ev[6:9] and r.err == SUMMARY.format(3)
    assert run(listening(), ["-E", "-w", "7"]).out.splitlines() == ev[16:18]
    assert run(listening(), ["-E", "-m", "42"]).out.splitlines() == ev[6:9]
    assert run(listening(), ["-E", "-p", "udp", "--dport", "53"]).out.splitlines() == ev[14:16]
    assert run(listening(), ["-E", "--src-nat", N, "-s", A, "-p", "udp", "--orig-port-dst", "5353"]).err \
        == SUMMARY.format(2)


def test_timestamp_prefix_is_seconds_dot_microseconds_zero_padded():
    ev = sample_events()
    lines = run(listening(), ["-E", "-o", "timestamp", "-p", "udp"]).out.splitlines()
    assert lines[:2] == ["[00000002.500000]\t" + ev[14], "[00000002.500000]\t" + ev[15]]


def test_extended_puts_the_layer3_protocol_after_the_tag():
    ev = sample_events()
    line = run(listening(), ["-E", "-o", "extended", "-w", "7"]).out.splitlines()[0]
    assert line == ev[16].replace("    [NEW] udp ", "    [NEW] ipv4     2 udp ")


def test_daemon_stream_applies_the_filters_too():
    sw = Sw()
    sw.tracker.events_enabled = True
    traffic(sw)
    r = run(sw, ["-E", "-p", "udp", "-w", "7", "--ctswitch-since", "0"])
    ev = sample_events()
    assert r.out.splitlines() == ev[16:18] and r.err == "7\n"
