"""Soak: the ctswitch daemon under continuous TCP connection churn in the netns lab.

Theory of operation
-------------------
One lab (``control.lab``, vendor example 2: SNAT to 1.1.1.16, hw-offload on)
in a temporary database, then for ``--minutes`` (default 10):

* **churn**: ``--threads`` client threads in the host namespace open TCP
  connections to an echo server in the remote namespace (1.1.1.2:5001), send
  ``--bytes`` bytes, read the echo and close (the client closes first, so the
  client side holds TIME_WAIT), paced to ``--rate`` connections per second in
  all.  Every ``--linger-every``-th connection stays open and idle for
  ``--linger-s`` seconds (longer than ``nf_flowtable_tcp_timeout``, 30 s) before
  closing: the offload aging has to take it out of the hardware table.
* **established**: one long-lived connection to 1.1.1.2:5002 sends a 64-byte
  numbered record every second; the server echoes it.  Sent, received-by-the-
  server and echoed bytes are counted, and ``TCP_INFO.tcpi_total_retrans`` is
  read on both of its sockets at the end: zero retransmissions means no packet
  of the connection was lost (TCP would hide a loss behind a retransmission;
  this counter shows it).
* every ``--sample-s`` (10 s) the bench samples the daemon's ``VmRSS`` (from
  ``/proc/PID/status``), ``conntrack -C``, the HW-offloaded connections
  (``dpctl/offload-stats-show``: ``CT bi-dir Connections``) and the datapath
  counters (``offload_aged``, ``ct_expired``, drops) over the control socket.

The report is a table of the samples plus the totals; it is appended to
``docs/benchmarks.md`` unless ``--no-save``.  Needs root (``lab.available``).
Every process started is stopped by its pid; the lab and the temp dir are
removed even on failure.

Run: ``python -m bench.bench_soak [--minutes 10] [--no-save]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

from bench.common import report
from ctswitch.control import lab as labmod
from ctswitch.control.client import daemon_request, paths, request
from ctswitch.control.daemon_tool import read_pid

# tcp_info: 8 bytes of u8 fields, then u32s; tcpi_total_retrans is the 24th u32 (offset 100).
TCP_INFO_RETRANS = r"""
import socket, struct
FLAGS = {  # the options run_all may pass (without values); the module parses its own with argparse
    "--no-save": "print only",
}

def total_retrans(s):
    try:
        b = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        return struct.unpack_from("I", b, 100)[0]
    except OSError:
        return -1
"""

SERVER = TCP_INFO_RETRANS + r"""
import json, socketserver, sys, threading
stats = {"churn_conns": 0, "churn_bytes": 0, "est_bytes": 0, "est_retrans": -1, "errors": 0}
lock = threading.Lock()
class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        s = self.request
        est = s.getsockname()[1] == 5002
        n = 0
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                s.sendall(d)
                n += len(d)
                if est:
                    with lock:
                        stats["est_bytes"] += len(d)
                        stats["est_retrans"] = total_retrans(s)
        except OSError:
            with lock:
                stats["errors"] += 1
        with lock:
            if est:
                stats["est_retrans"] = total_retrans(s)
            else:
                stats["churn_conns"] += 1
                stats["churn_bytes"] += n
class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 512
servers = [Server(("1.1.1.2", p), Echo) for p in (5001, 5002)]
for srv in servers:
    threading.Thread(target=srv.serve_forever, daemon=True).start()
print("ready", flush=True)
sys.stdin.readline()
with lock:
    print(json.dumps(stats), flush=True)
"""

CLIENT = TCP_INFO_RETRANS + r"""
import json, os, socket, sys, threading, time
secs, threads, rate, size = float(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
linger_every, linger_s, progress = int(sys.argv[5]), float(sys.argv[6]), sys.argv[7]
t0 = time.monotonic(); deadline = t0 + secs
lock = threading.Lock()
st = {"conns": 0, "failed": 0, "lingered": 0, "bad_echo": 0, "errors": {},
      "est_sent": 0, "est_echoed": 0, "est_retrans": -1, "est_max_rtt_ms": 0.0, "est_late": 0}
lingering = []  # (close_at, socket)
def fail(e):
    with lock:
        st["failed"] += 1
        k = type(e).__name__
        st["errors"][k] = st["errors"].get(k, 0) + 1
def churn(i):
    period = threads / rate
    nxt = time.monotonic() + period * i / threads
    n = 0
    payload = os.urandom(size)
    while True:
        now = time.monotonic()
        if now >= deadline:
            return
        if nxt > now:
            time.sleep(nxt - now)
        nxt += period
        n += 1
        try:
            s = socket.create_connection(("1.1.1.2", 5001), timeout=10)
            s.sendall(payload)
            got = b""
            while len(got) < size:
                d = s.recv(size - len(got))
                if not d:
                    break
                got += d
            with lock:
                st["conns"] += 1
                st["bad_echo"] += got != payload
            if linger_every and n % linger_every == 0:
                with lock:
                    lingering.append((time.monotonic() + linger_s, s))
                    st["lingered"] += 1
            else:
                s.close()
        except OSError as e:
            fail(e)
def closer():
    while True:
        now = time.monotonic()
        with lock:
            due = [x for x in lingering if x[0] <= now]
            for x in due:
                lingering.remove(x)
            left = len(lingering)
        for _, s in due:
            s.close()
        if now >= deadline and not left:
            return
        time.sleep(0.2)
def established():
    s = socket.create_connection(("1.1.1.2", 5002), timeout=30)
    seq = 0
    while time.monotonic() < deadline:
        rec = b"%08d" % seq + b"e" * 56
        t = time.monotonic()
        s.sendall(rec)
        got = b""
        while len(got) < len(rec):
            d = s.recv(len(rec) - len(got))
            if not d:
                raise OSError("established connection closed by the server")
            got += d
        rtt = (time.monotonic() - t) * 1000
        with lock:
            st["est_sent"] += len(rec)
            st["est_echoed"] += len(got) if got == rec else 0
            st["est_max_rtt_ms"] = max(st["est_max_rtt_ms"], round(rtt, 2))
            st["est_late"] += rtt > 200
            st["est_retrans"] = total_retrans(s)
        seq += 1
        time.sleep(max(0.0, 1.0 - (time.monotonic() - t)))
    st["est_retrans"] = total_retrans(s)
    s.close()
def reporter():
    while time.monotonic() < deadline + 5:
        with lock:
            d = dict(st, t=round(time.monotonic() - t0, 1))
        with open(progress + ".tmp", "w") as f:
            json.dump(d, f)
        os.replace(progress + ".tmp", progress)
        time.sleep(1)
ths = [threading.Thread(target=churn, args=(i,)) for i in range(threads)]
ths += [threading.Thread(target=closer), threading.Thread(target=established)]
threading.Thread(target=reporter, daemon=True).start()
for t in ths:
    t.start()
for t in ths:
    t.join()
with lock:
    print(json.dumps(st), flush=True)
"""


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def sample(db: str, pid: int) -> dict:
    sock = paths(db)["sock"]
    r = request(sock, "conntrack", ["-C"], timeout=60)
    ct = int(r.out.strip()) if r.code == 0 else -1
    r = request(sock, "ovs-appctl", ["dpctl/offload-stats-show"], timeout=60)
    hw = -1
    for line in r.out.splitlines():
        if "CT bi-dir Connections:" in line:
            hw = int(line.rsplit(":", 1)[1])
    st = json.loads(daemon_request(db, ["stats"], timeout=60).out)
    return {"rss_kib": rss_kib(pid), "ct": ct, "hw": hw, "dp": st["datapath"],
            "drops": sum(st.get("drops", {}).values())}


def _read_json(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def _stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)


def main(argv: list[str] | None = None) -> list[str]:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_soak")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=4, help="churn client threads")
    ap.add_argument("--rate", type=float, default=100.0, help="new connections per second (all threads)")
    ap.add_argument("--bytes", type=int, default=200, help="bytes each churn connection sends (echoed)")
    ap.add_argument("--linger-every", type=int, default=20, help="every Nth connection idles before closing")
    ap.add_argument("--linger-s", type=float, default=45.0)
    ap.add_argument("--sample-s", type=float, default=10.0)
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args(argv)
    why = labmod.available()
    if why:
        print(f"bench_soak: skipped: {why}")
        return []
    secs = a.minutes * 60
    tmp = tempfile.mkdtemp(prefix="ctsw-soak-")
    db = f"{tmp}/soak.db"
    progress = f"{tmp}/client.json"
    procs: list[subprocess.Popen] = []
    samples: list[tuple[float, dict, dict]] = []
    lines: list[str] = []
    try:
        st = labmod.lab_up(db, 2)
        ns = st["netns"]
        pid = read_pid(db)
        srv = subprocess.Popen(["ip", "netns", "exec", ns["remote"], sys.executable, "-c", textwrap.dedent(SERVER)],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(srv)
        if srv.stdout.readline().strip() != "ready":
            raise RuntimeError("the echo server did not start")
        samples.append((0.0, sample(db, pid), {}))
        t0 = time.monotonic()
        cli = subprocess.Popen(["ip", "netns", "exec", ns["host"], sys.executable, "-c", textwrap.dedent(CLIENT),
                                str(secs), str(a.threads), str(a.rate), str(a.bytes), str(a.linger_every),
                                str(a.linger_s), progress], stdout=subprocess.PIPE, text=True)
        procs.append(cli)
        nxt = t0 + a.sample_s
        while cli.poll() is None:
            time.sleep(max(0.0, min(1.0, nxt - time.monotonic())))
            if time.monotonic() >= nxt:
                samples.append((time.monotonic() - t0, sample(db, pid), _read_json(progress)))
                s = samples[-1]
                print(f"t={s[0]:6.0f}s rss={s[1]['rss_kib'] / 1024:.1f} MiB ct={s[1]['ct']} hw={s[1]['hw']} "
                      f"conns={s[2].get('conns', 0)} aged={s[1]['dp'].get('offload_aged', 0)}", flush=True)
                nxt += a.sample_s
        out, _ = cli.communicate(timeout=120)
        client = json.loads(out.strip().splitlines()[-1])
        srv.stdin.write("report\n")
        srv.stdin.flush()
        server = json.loads(srv.stdout.readline())
        srv.wait(timeout=10)
        final = sample(db, pid)
        lines = _table(a, samples, final, client, server)
    finally:
        for p in procs:
            _stop(p)
        labmod.lab_down(db)
        shutil.rmtree(tmp, ignore_errors=True)
    if lines:
        report(f"Soak: {a.minutes:g} min of lab connection churn (vendor example 2)", "bench.bench_soak",
               sys.argv[1:] if argv is None else list(argv), lines, save=not a.no_save)
    return lines


def _table(a, samples, final, client, server) -> list[str]:
    lines = ["| t (s) | daemon RSS (MiB) | conntrack entries | HW offloaded | connections done | "
             "offload aged (total) | ct expired (total) |", "|---:|---:|---:|---:|---:|---:|---:|"]
    step = max(1, len(samples) // 30)  # at most ~30 rows in the table
    shown = samples[::step]
    if shown[-1] is not samples[-1]:
        shown.append(samples[-1])
    for t, s, c in shown:
        lines.append(f"| {t:.0f} | {s['rss_kib'] / 1024:.1f} | {s['ct']:,} | {s['hw']:,} | {c.get('conns', 0):,} | "
                     f"{s['dp'].get('offload_aged', 0):,} | {s['dp'].get('ct_expired', 0):,} |")
    rss = [s["rss_kib"] / 1024 for _, s, _ in samples[1:]] or [final["rss_kib"] / 1024]
    half = rss[len(rss) // 2:]
    cts = [s["ct"] for _, s, _ in samples]
    hws = [s["hw"] for _, s, _ in samples]
    dp = final["dp"]
    lines.append("")
    lines.append(f"* Churn: {client['conns']:,} connections completed ({client['failed']} failed"
                 f"{', ' + json.dumps(client['errors']) if client['errors'] else ''}; "
                 f"{client['bad_echo']} wrong echoes), {client['lingered']:,} of them idled {a.linger_s:g} s "
                 f"before closing; the server saw {server['churn_conns']:,} connections; target "
                 f"{a.rate:g}/s on {a.threads} threads, {a.bytes} B each way.")
    lines.append(f"* Daemon RSS: {rss[0]:.1f} MiB at the first sample, {max(rss):.1f} MiB peak, "
                 f"{rss[-1]:.1f} MiB at the end; over the second half {min(half):.1f}-{max(half):.1f} MiB.")
    lines.append(f"* Conntrack entries: peak {max(cts):,}, end {cts[-1]:,} (one per connection, "
                 f"{client['conns']:,} in all); {dp.get('ct_expired', 0):,} removed by the timeout sweep, the "
                 "others when a packet met them (expired, or a SYN reopening a TIME_WAIT entry). "
                 f"HW-offloaded peak {max(hws):,}, end {hws[-1]:,}; offload aged out "
                 f"{dp.get('offload_aged', 0):,} (the idling connections, after `nf_flowtable_tcp_timeout`).")
    lines.append(f"* Datapath: {dp.get('rx_packets', 0):,} packets, {dp.get('fast_hw', 0):,} on the HW fast "
                 f"path, {dp.get('slow_path', 0):,} slow path; drops {final['drops']:,}.")
    lost = client["est_sent"] - server["est_bytes"]
    lines.append(f"* Established connection: {client['est_sent']:,} bytes sent, {server['est_bytes']:,} received "
                 f"by the server, {client['est_echoed']:,} echoed back intact ({lost:,} missing); TCP "
                 f"retransmissions: client {client['est_retrans']}, server {server['est_retrans']}; "
                 f"max echo RTT {client['est_max_rtt_ms']:.1f} ms, {client['est_late']} over 200 ms.")
    return lines


if __name__ == "__main__":
    main()
