"""``conntrack -E`` follows a running daemon: events appear as traffic creates connections."""

from __future__ import annotations

import contextlib
import io
import threading
import time

from ctswitch.control import client, daemon_tool
from ctswitch.gen import cli_main


def test_conntrack_events_stream_from_the_daemon(tmp_path):
    db = str(tmp_path / "ev.db")
    from ctswitch.cli.main import execute
    for line in (["ovs-vsctl", "add-br", "ctBr"], ["ovs-vsctl", "add-port", "ctBr", "p0"],
                 ["ovs-vsctl", "add-port", "ctBr", "pf0hpf"],
                 ["ovs-ofctl", "add-flow", "ctBr", "table=0,ip,ct_state=-trk,action=ct(table=1)"],
                 ["ovs-ofctl", "add-flow", "ctBr", "table=1,ip,ct_state=+trk+new,action=ct(commit),normal"],
                 ["ovs-ofctl", "add-flow", "ctBr", "table=1,ip,ct_state=+trk+est,action=normal"]):
        res, _ = execute(["--db", db, *line])
        assert res.code == 0, res.err
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli_main([str(tmp_path / "tr"), "--tcp", "2", "--udp", "1", "--no-arp"]) == 0
    r = daemon_tool.start_daemon(db)
    assert r.code == 0, r.err
    try:
        sock = client.paths(db)["sock"]
        out = io.StringIO()
        result = {}

        def follow():
            with contextlib.redirect_stdout(out):
                result["r"] = client.stream_events(sock, ["-E"], interval=0.05, max_s=3.0)

        t = threading.Thread(target=follow)
        t.start()
        time.sleep(0.5)
        r = client.request(sock, "replay", ["ctBr", "--in", f"pf0hpf={tmp_path}/tr/pf0hpf.pcap",
                                            "--in", f"p0={tmp_path}/tr/p0.pcap"])
        assert r.code == 0, r.err
        t.join()
        text = out.getvalue()
        assert "    [NEW] tcp      6 120 SYN_SENT src=2.2.2.1 dst=1.1.1.2 sport=40001 dport=5001" in text
        assert " [UPDATE] tcp      6 60 SYN_RECV src=2.2.2.1" in text
        assert "    [NEW] udp      17 30 src=2.2.2.1 dst=1.1.1.2 sport=50000 dport=53 [UNREPLIED]" in text
        n = text.count("\n")
        assert result["r"].err == f"conntrack v1.4.7 (conntrack-tools): {n} flow events have been shown.\n"
    finally:
        daemon_tool.stop_daemon(db)
