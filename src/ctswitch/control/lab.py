"""The netns lab: the vendor's topology on veths, with the daemon as the switch.

Theory of operation
-------------------
``ctswitch lab up [--example 1|2]`` builds, with a random 4-hex suffix XXXX:

```
 ctsw-host-XXXX            ctsw-sw-XXXX (daemon, bridge ctBr)        ctsw-remote-XXXX
 eth0 2.2.2.1/24 ===veth=== pf0hpf            p0 ===veth=== eth0 1.1.1.2/24
 route 1.1.1.0/24 dev eth0                                  route 2.2.2.0/24 dev eth0
 neigh 1.1.1.2 -> remote MAC                                neigh 1.1.1.16, 2.2.2.1 -> host MAC
```

The switch-side veth ends live in their own namespace, so they carry exactly
the vendor's names ``p0`` and ``pf0hpf`` and nothing touches the root
namespace (no address, route or interface is added there).  IPv6 is disabled
in the lab namespaces (no router solicitations or DAD in the traffic),
reverse-path filtering is off, and the peers' NIC offloads are turned off
(the daemon turns off its own ports').  The daemon is then started inside the
switch namespace with ``--lab-example N``: it replaces bridge ``ctBr`` in the
database by the vendor's example N (``EXAMPLES``) with ``hw-offload=true``.

Everything created is recorded in ``DB.lab.json`` as it is created, so
``lab down`` (or a failed ``up``) removes exactly that: it stops the daemon
and deletes the three namespaces (their veths go with them).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys

from .client import paths
from .daemon_tool import db_path, is_daemon_pid, ping, read_pid, start_daemon, stop_daemon
from .result import Result
from .vendor import EXAMPLE1, EXAMPLE2

BRIDGE = "ctBr"
HOST_MAC = "02:c7:00:00:02:01"
REMOTE_MAC = "02:c7:00:00:01:02"
HOST_IP, REMOTE_IP, SNAT_IP = "2.2.2.1", "1.1.1.2", "1.1.1.16"

EXAMPLES: dict[int, tuple[str, ...]] = {1: EXAMPLE1, 2: EXAMPLE2}

USAGE = ("usage: ctswitch lab up [--example 1|2]\n"
         "       ctswitch lab down\n"
         "       ctswitch lab status\n"
         "       ctswitch lab exec host|remote|switch -- COMMAND...\n")


class LabError(RuntimeError):
    """A lab step failed (message: the command and its error output)."""


def configure_switch(sw, example: int) -> None:
    """Replaces bridge ctBr of ``sw`` by the vendor example (ports p0, pf0hpf; hw-offload on)."""
    from . import ofctl

    if example not in EXAMPLES:
        raise LabError(f"unknown example {example} (1 or 2)")
    sw.params.set("other_config:hw-offload", True)
    if BRIDGE in sw.bridges:
        sw.del_bridge(BRIDGE)
    br = sw.add_bridge(BRIDGE)
    br.add_port("p0")
    br.add_port("pf0hpf")
    for flow in EXAMPLES[example]:
        r = ofctl.run(sw, ["add-flow", BRIDGE, flow])
        if r.code != 0:
            raise LabError(f"add-flow {flow}: {r.err.strip()}")


# ---------------------------------------------------------------------- state
def load_state(db: str) -> dict | None:
    try:
        with open(paths(db)["lab"]) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _save_state(db: str, state: dict) -> None:
    p = paths(db)["lab"]
    with open(p + ".tmp", "w") as f:
        json.dump(state, f, indent=1)
    os.replace(p + ".tmp", p)


def netns_exists(name: str) -> bool:
    return os.path.exists(f"/run/netns/{name}")


def available() -> str | None:
    """None when a lab can be built here, else the reason it cannot."""
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, veth, AF_PACKET)"
    if shutil.which("ip") is None:
        return "the 'ip' command (iproute2) is not installed"
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    if r.returncode != 0:
        return f"'ip netns' is unavailable: {r.stderr.strip()}"
    return None


def _run(cmd: list[str], stdin: str | None = None) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True, input=stdin, timeout=60)
    if r.returncode != 0:
        raise LabError(f"{' '.join(cmd)}: {(r.stderr or r.stdout).strip()}")
    return r.stdout


def _nsexec(ns: str, *cmd: str) -> str:
    return _run(["ip", "netns", "exec", ns, *cmd])


def _sysctl(ns: str, key: str, value: str) -> None:
    path = "/proc/sys/" + key.replace(".", "/")
    _nsexec(ns, "sh", "-c", f"echo {value} > {path}")


# ---------------------------------------------------------------------- up/down
def lab_up(db: str, example: int = 2, suffix: str | None = None) -> dict:
    """Builds the lab for ``db`` and starts its daemon; returns the lab state. Raises LabError."""
    why = available()
    if why:
        raise LabError(why)
    old = load_state(db)
    if old is not None and any(netns_exists(n) for n in old.get("netns", {}).values()):
        raise LabError(f"a lab is already up for {db} (suffix {old['suffix']}); run 'ctswitch lab down' first")
    if ping(db, timeout=2.0) is not None:
        raise LabError(f"a daemon already runs for {db}; run 'ctswitch stop' first")
    sfx = suffix or secrets.token_hex(2)
    ns = {"sw": f"ctsw-sw-{sfx}", "host": f"ctsw-host-{sfx}", "remote": f"ctsw-remote-{sfx}"}
    if any(netns_exists(n) for n in ns.values()):
        raise LabError(f"namespaces with suffix {sfx} already exist")
    state = {"suffix": sfx, "example": example, "db": os.path.abspath(db), "netns": {}, "daemon": None,
             "created_by_pid": os.getpid()}
    _save_state(db, state)
    try:
        for role in ("sw", "host", "remote"):
            _run(["ip", "netns", "add", ns[role]])
            state["netns"][role] = ns[role]
            _save_state(db, state)
        sw, host, remote = ns["sw"], ns["host"], ns["remote"]
        _run(["ip", "-n", sw, "link", "add", "name", "pf0hpf", "type", "veth", "peer", "name", "eth0", "netns", host])
        _run(["ip", "-n", sw, "link", "add", "name", "p0", "type", "veth", "peer", "name", "eth0", "netns", remote])
        for n in (sw, host, remote):
            _sysctl(n, "net.ipv6.conf.all.disable_ipv6", "1")
            _sysctl(n, "net.ipv6.conf.default.disable_ipv6", "1")
            _sysctl(n, "net.ipv4.conf.all.rp_filter", "0")
            _sysctl(n, "net.ipv4.conf.default.rp_filter", "0")
            _run(["ip", "-n", n, "link", "set", "lo", "up"])
        for n, mac in ((host, HOST_MAC), (remote, REMOTE_MAC)):
            _sysctl(n, "net.ipv4.conf.eth0.rp_filter", "0")
            _run(["ip", "-n", n, "link", "set", "eth0", "address", mac])
        _run(["ip", "-n", host, "addr", "add", f"{HOST_IP}/24", "dev", "eth0"])
        _run(["ip", "-n", remote, "addr", "add", f"{REMOTE_IP}/24", "dev", "eth0"])
        for n in (sw, host, remote):
            for dev in (("pf0hpf", "p0") if n == sw else ("eth0",)):
                _run(["ip", "-n", n, "link", "set", dev, "up"])
        _run(["ip", "-n", host, "route", "add", "1.1.1.0/24", "dev", "eth0"])
        _run(["ip", "-n", remote, "route", "add", "2.2.2.0/24", "dev", "eth0"])
        _run(["ip", "-n", host, "neigh", "replace", REMOTE_IP, "lladdr", REMOTE_MAC, "dev", "eth0", "nud", "permanent"])
        for ip in (SNAT_IP, HOST_IP):
            _run(["ip", "-n", remote, "neigh", "replace", ip, "lladdr", HOST_MAC, "dev", "eth0", "nud", "permanent"])
        for n in (host, remote):
            _nsexec(n, sys.executable, "-m", "ctswitch.io.afpacket", "offloads-off", "eth0")
        r = start_daemon(db, netns=sw, extra=["--lab-example", str(example)])
        if r.code != 0:
            raise LabError(r.err.strip())
        st = ping(db)
        state["daemon"] = st["pid"] if st else None
        _save_state(db, state)
    except (LabError, OSError, subprocess.SubprocessError) as e:
        lab_down(db)
        raise LabError(str(e)) from None
    return state


def lab_down(db: str) -> list[str]:
    """Stops the lab's daemon and deletes the namespaces recorded for ``db``; returns what was done."""
    state = load_state(db)
    if state is None:
        return []
    done = []
    pid = read_pid(db)
    if ping(db, timeout=2.0) is not None or state.get("daemon") or (pid and is_daemon_pid(pid)):
        r = stop_daemon(db)
        if r.code == 0:
            done.append(r.out.strip())
    for role in ("host", "remote", "sw"):
        n = state.get("netns", {}).get(role)
        if n and netns_exists(n):
            subprocess.run(["ip", "netns", "del", n], capture_output=True)
            done.append(f"deleted netns {n}")
    try:
        os.unlink(paths(db)["lab"])
    except FileNotFoundError:
        pass
    return done


def lab_exec(db: str, role: str, cmd: list[str], stdin: str | None = None, timeout: float | None = None) -> Result:
    state = load_state(db)
    if state is None:
        return Result(err="ctswitch lab: no lab is up (run 'ctswitch lab up')\n", code=1)
    key = {"host": "host", "remote": "remote", "switch": "sw", "sw": "sw"}.get(role)
    ns = state.get("netns", {}).get(key) if key else None
    if ns is None:
        return Result(err=f"ctswitch lab exec: unknown namespace '{role}' (host, remote or switch)\n", code=2)
    if not cmd:
        return Result(err="ctswitch lab exec: missing command\n" + USAGE, code=2)
    try:
        r = subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True,
                           input=stdin, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as e:
        return Result(err=f"ctswitch lab exec: {e}\n", code=1)
    return Result(out=r.stdout, err=r.stderr, code=r.returncode)


def status_text(db: str) -> tuple[str, int]:
    state = load_state(db)
    if state is None:
        return "ctswitch lab: no lab is up\n", 3
    lines = [f"lab {state['suffix']} (vendor example {state['example']}), database {state['db']}"]
    for role, n in state.get("netns", {}).items():
        lines.append(f"  {role:6} {n}{'' if netns_exists(n) else ' (missing)'}")
    st = ping(db)
    lines.append(f"  daemon: {'pid ' + str(st['pid']) if st else 'not running'}")
    if st:
        dp = st.get("datapath", {})
        lines.append("  datapath: " + ", ".join(f"{k} {dp.get(k, 0)}" for k in
                                               ("rx_packets", "slow_path", "fast_hw", "fast_sw", "tx_packets")))
    return "\n".join(lines) + "\n", 0


# ---------------------------------------------------------------------- verb
def run(switch, argv: list[str], ctx=None) -> Result:
    """``ctswitch lab up|down|status|exec ...`` (runs outside any store transaction)."""
    db = db_path(ctx)
    if not argv or argv[0] in ("-h", "--help"):
        return Result(out=USAGE) if argv else Result(err=USAGE, code=2)
    verb, rest = argv[0], argv[1:]
    if verb == "up":
        example = 2
        if rest[:1] == ["--example"] and len(rest) == 2 and rest[1] in ("1", "2"):
            example = int(rest[1])
        elif len(rest) == 1 and rest[0] in ("--example=1", "--example=2"):
            example = int(rest[0][-1])
        elif rest:
            return Result(err=USAGE, code=2)
        try:
            st = lab_up(db, example)
        except LabError as e:
            return Result(err=f"ctswitch lab: {e}\n", code=1)
        text, _ = status_text(db)
        return Result(out=text + f"  try: ctswitch lab exec host -- ping -c 3 {REMOTE_IP}\n"
                      if st else text)
    if verb == "down":
        if rest:
            return Result(err=USAGE, code=2)
        done = lab_down(db)
        return Result(out="".join(d + "\n" for d in done) or "ctswitch lab: no lab is up\n")
    if verb == "status":
        text, code = status_text(db)
        return Result(out=text, code=code)
    if verb == "exec":
        if not rest:
            return Result(err=USAGE, code=2)
        role, cmd = rest[0], rest[1:]
        if cmd[:1] == ["--"]:
            cmd = cmd[1:]
        return lab_exec(db, role, cmd, getattr(ctx, "stdin", None))
    return Result(err=f"ctswitch lab: unknown command '{verb}'\n" + USAGE, code=2)
