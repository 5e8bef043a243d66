"""ctswitch against real Open vSwitch 3.1: the shared oracle cases and our own scenarios.

Each case directory holds flows, per-port input pcaps and what real OVS produced
(``expected/``, recorded by ``ovs_harness``; no OVS is needed to run this test).
ctswitch replays the same inputs and must produce the same frames on every port (byte
for byte), the same per-packet outputs, the same sorted conntrack dump and the same
OpenFlow counters.

Where ctswitch deliberately follows the Linux kernel (what BlueField runs) instead of
OVS userspace, the file is listed in ``KERNEL_DIFFERENCES`` with the reason, and
compared instead with ``kernel/<file>`` in the case directory: the kernel's behaviour,
checked by hand against nf_conntrack's rules (see docs/oracle.md).  Where hw-offload changes
what the kernel does (act_ct's flow table answers before conntrack, offloaded connections are
BE_LIBERAL), ``KERNEL_DIFFERENCES_HW`` lists files compared with ``kernel/hw/<file>`` in that
mode.  ``KNOWN_BUGS`` are ctswitch bugs found by the scenarios: strict xfails until fixed.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from ctswitch.control import ofctl
from ctswitch.control.dpctl import dump_conntrack
from ctswitch.datapath.switch import Switch
from ctswitch.io.replay import replay

HERE = Path(__file__).resolve().parent
# shared/ sits beside the checkout (on a developer's machine and in CI alike).
SHARED_CASES_DIR = Path(os.environ.get("CTSWITCH_ORACLE_CASES", HERE.parents[2] / "shared" / "oracle" / "cases"))


def scenario_dirs() -> list[Path]:
    return sorted(p.parent for p in (HERE / "scenarios").glob("*/case.json"))


CASES = ([p for p in sorted(SHARED_CASES_DIR.iterdir()) if (p / "case.json").exists()]
         if SHARED_CASES_DIR.is_dir() else []) + scenario_dirs()

# case name -> {file: why ctswitch (the kernel) differs from OVS userspace}
KERNEL_DIFFERENCES: dict[str, dict[str, str]] = {
    "snat_port_range": {
        "trace.tsv": "NAT range exhausted: the kernel's nf_nat drops h3's packets; OVS userspace "
                     "forwards them un-NATed",
        "p0.pcap": "same: h3's un-NATed frames do not leave p0",
        "conntrack.txt": "ctswitch takes the next free port (deterministic); OVS 3.1 hashes with a "
                         "per-process seed",
    },
    "tcp_teardown": {
        "conntrack.txt": "kernel TCP states: a RST moves to CLOSE (printed CLOSING by OVS's "
                         "netlink mapping) where OVS userspace says TIME_WAIT; an RST answering a "
                         "SYN deletes the entry; a half-close is CLOSE_WAIT, not TIME_WAIT",
    },
    # Sources: nf_conntrack_proto_tcp.c tcp_in_window()/nf_conntrack_tcp_packet() (an IGNOREd
    # segment returns NF_ACCEPT, so OVS's kernel datapath sees +trk+est; INVALID returns
    # -NF_ACCEPT: untracked, +trk+inv); OVS userspace is pf's window check (conntrack-tcp.c).
    "tcp_window": {
        "trace.tsv": "idx 8: data 100000 below the window is IGNOREd by the kernel (\"SEQ is under lower "
                     "bound\", NF_ACCEPT: +est), OVS userspace +inv; idx 14: an in-window RST that is "
                     "not exact keeps ESTABLISHED (challenge ACK) and passes (+est+rpl), pf wants "
                     "seq exact: +inv; idx 19: a SYN after the *server's* RST is IGNOREd in CLOSE "
                     "(no CLOSE_INIT, last RST from the other direction): +est, OVS reopens (+new); "
                     "idx 33: a SYN-ACK acking data never sent fails 'ACK is over upper bound': "
                     "+inv, pf's ackskew tolerates it",
        "conntrack.txt": "bad-synack: the kernel ignores the invalid SYN-ACK, the entry stays SYN_SENT "
                         "(OVS: ESTABLISHED)",
        "dump-flows.norm.txt": "counters follow the verdicts above",
        "s_est.pcap": "frames follow the verdicts above",
        "s_est_rpl.pcap": "frames follow the verdicts above",
        "s_inv.pcap": "frames follow the verdicts above",
        "s_new.pcap": "frames follow the verdicts above",
    },
    # Source: net/openvswitch/conntrack.c ovs_ct_handle_fragments(): the fragment that completes
    # the datagram becomes the reassembled skb, which is recirculated once (flow stats count
    # skb->len of the whole frame); OVS userspace ipf runs every fragment through the pipeline.
    "ipv4_frag": {
        "dump-flows.norm.txt": "after ct(table=1) the kernel counts one packet per datagram with the "
                               "reassembled length; OVS userspace counts each fragment",
    },
}

# With hw-offload on: case -> {file: why the kernel differs}, compared with kernel/hw/<file>.
KERNEL_DIFFERENCES_HW: dict[str, dict[str, str]] = {
    "tcp_window": {
        "trace.tsv": "once the handshake ACK offloads the connection (act_ct, tcf_ct_flow_table_"
                     "process_conn), segments hit the flow table before conntrack: idx 7-9 (beyond/below "
                     "the window, ACK of unsent data) are +est without any window check; FIN/RST tear "
                     "the flow down and go through conntrack with BE_LIBERAL set (tcf_ct_flow_table_add), "
                     "so the far-off RST (idx 12) is accepted (+est+rpl, ESTABLISHED kept: not exact); "
                     "idx 29: the client's RST after offload is inexact against the stale td_maxack, "
                     "ESTABLISHED is kept, so the next SYN is IGNOREd (+est)",
        "dump-flows.norm.txt": "counters follow the verdicts above",
        "s_est.pcap": "frames follow the verdicts above",
        "s_est_rpl.pcap": "frames follow the verdicts above",
        "s_inv.pcap": "frames follow the verdicts above",
        "s_new.pcap": "frames follow the verdicts above",
    },
}

# ctswitch bugs the scenarios found: (case, mode or None for both) -> reason.  Strict xfails:
# fixing the bug makes the test XPASS, which fails until the entry is removed.
KNOWN_BUGS: dict[tuple[str, str | None], str] = {
}


def _setup(case: Path, hw_offload: bool = False) -> tuple[Switch, dict]:
    meta = json.loads((case / "case.json").read_text())
    sw = Switch()
    sw.params.set("other_config:hw-offload", hw_offload)
    br = sw.add_bridge(meta["bridge"], meta.get("fail_mode", "secure"))
    for name, no in sorted(meta["ports"].items(), key=lambda kv: kv[1]):
        br.add_port(name, ofport_request=no)
    r = ofctl.run(sw, ["add-flows", meta["bridge"], str(case / meta.get("flows", "flows.txt"))])
    assert r.code == 0, r.err
    return sw, meta


def norm_dump(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        if line.startswith(("NXST_FLOW", "OFPST_FLOW")):
            continue
        line = re.sub(r"duration=[0-9.]+s, ", "", line.strip())
        line = re.sub(r"(idle|hard)_age=[0-9]+, ", "", line)
        out.append(line)
    return out


def _inputs(case: Path, meta: dict) -> list[tuple[str, str]]:
    order = meta.get("inputs") or ["pf0hpf", "p0"]
    found = [(p, str(case / "in" / f"{p}.pcap")) for p in order if (case / "in" / f"{p}.pcap").exists()]
    extra = sorted(f.stem for f in (case / "in").glob("*.pcap") if f.stem not in order)
    return found + [(p, str(case / "in" / f"{p}.pcap")) for p in extra]


def _params() -> list:
    out = []
    for c in CASES:
        for hw, mode in ((False, "sw"), (True, "hw-offload")):
            bug = KNOWN_BUGS.get((c.name, mode)) or KNOWN_BUGS.get((c.name, None))
            marks = [pytest.mark.xfail(strict=True, reason=bug)] if bug else []
            out.append(pytest.param(c, hw, id=f"{c.name}-{mode}", marks=marks))
    return out


@pytest.mark.skipif(not CASES, reason="no oracle cases found (shared/ not beside the checkout?)")
@pytest.mark.parametrize(("case", "hw_offload"), _params())
def test_matches_real_ovs(case: Path, hw_offload: bool, tmp_path: Path):
    """With hw-offload on, established packets take ctswitch's fast path: the frames on the
    wire and the OpenFlow counters (credited back to the rules, as OVS's revalidators do)
    must still equal real OVS's.  The conntrack dump then differs by design (offloaded
    entries carry no TCP state), so it is compared with offload off only."""
    sw, meta = _setup(case, hw_offload)
    trace = tmp_path / "trace.tsv"
    out = tmp_path / "out"
    summary = replay(sw, meta["bridge"], _inputs(case, meta), str(out), trace_path=str(trace))
    assert summary.error is None
    exp = case / "expected"
    stable = set(meta.get("stable_files") or [])
    diffs = KERNEL_DIFFERENCES.get(case.name, {})
    hw_diffs = KERNEL_DIFFERENCES_HW.get(case.name, {}) if hw_offload else {}

    def want(name: str) -> Path | None:
        if name in hw_diffs:
            return case / "kernel" / "hw" / name
        if name in diffs:
            return case / "kernel" / name
        if stable and name not in stable:
            return None
        return exp / name

    actual = {
        "trace.tsv": "".join(line.split("\t")[4] + "\n" for line in trace.read_text().splitlines()[1:]),
        "conntrack.txt": "".join(sorted(x + "\n" for x in dump_conntrack(sw, []).out.splitlines())),
        "dump-flows.norm.txt": "".join(x + "\n" for x in
                                       norm_dump(ofctl.run(sw, ["dump-flows", meta["bridge"], "--no-names"]).out)),
    }
    w = want("trace.tsv")
    if w is not None:
        expected = "".join(line.split("\t")[4] + "\n" for line in w.read_text().splitlines()[1:])
        assert actual["trace.tsv"] == expected, "per-packet outputs differ"
    for name in ("conntrack.txt", "dump-flows.norm.txt"):
        if hw_offload and name == "conntrack.txt":
            continue
        w = want(name)
        if w is not None:
            expected_lines = w.read_text().splitlines()
            if name == "conntrack.txt":
                expected_lines = sorted(expected_lines)
            assert actual[name].splitlines() == expected_lines, name
    for p in sorted(exp.glob("*.pcap")):
        w = want(p.name)
        if w is None:
            continue
        got = out / p.name
        if not got.exists() and len(w.read_bytes()) == 24:
            continue  # OVS creates every port's tx_pcap; ctswitch writes only ports that sent frames
        assert got.exists(), f"ctswitch transmitted nothing on {p.stem}"
        assert got.read_bytes() == w.read_bytes(), f"{p.name} differs"
    for p in sorted(out.glob("*.pcap")):
        assert (exp / p.name).exists(), f"ctswitch transmitted on {p.stem}, OVS did not"
