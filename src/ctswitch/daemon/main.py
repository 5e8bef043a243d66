"""The ctswitch daemon: one live switch on real interfaces, served on a unix socket.

Theory of operation
-------------------
``python -m ctswitch.daemon.main --db DB`` (what ``ctswitch start`` spawns and
``ctswitch daemon --foreground`` runs in place):

1. takes the pidfile ``DB.pid`` with an exclusive ``flock`` (a second daemon
   for the same database refuses to start; a stale pidfile left by ``kill -9``
   is simply re-locked) and writes its pid;
2. binds the control socket ``DB.sock`` (mode 0600) *before* loading, so a
   starter can wait for the socket while the store may still be busy;
3. loads the switch from the store (``daemon.store.Store``) and owns it from
   then on; the live clock (``io.clock``) continues the stored switch time;
   ``--lab-example N`` replaces bridge ``ctBr`` by the vendor example N first;
4. binds the bridge ports that are Linux interfaces (``io.loop.sync_ports``)
   and runs the event loop until SIGTERM/SIGINT or a ``stop`` request.  The
   loop hands rounds of frames to the batched Numba fast path
   (``Datapath.enable_batch``, turned on at the first round of at least
   ``--batch-min`` frames, so an idle daemon never loads numba).

Hits of the batched path are credited lazily; the daemon credits them
(``Datapath.sync_counters``) before every command and status reply, so
``conntrack -L``, ``dump-flows``, ``explain`` and the port counters are exact.

Each request runs ``control.dispatch.dispatch(switch, tool, argv, ctx)`` on the
live switch.  A command that changed the switch (``Result.changed``) is saved
in one store transaction *before* the reply is sent: an acknowledged change
survives ``kill -9``.  Runtime state (connections, counters) is saved on a
clean stop and along with every saved command.  A failing command becomes an
error reply and a log line, never a dead daemon.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import signal
import sys
import time
import traceback
from types import SimpleNamespace

from ..control import protocol
from ..control.client import DAEMON_TOOL, paths
from ..control.result import Result
from ..control.server import ControlServer
from ..datapath.switch import Switch
from ..io.clock import LiveClock
from ..io.gcpolicy import packet_gc
from ..io.loop import BATCH_MIN, LiveLoop

log = logging.getLogger("ctswitch.daemon")

try:
    from .store import StoreError
except ImportError:  # pragma: no cover - the JSON stand-in below raises no StoreError
    class StoreError(Exception):  # type: ignore[no-redef]
        pass


# ---------------------------------------------------------------------- store & dispatch adapters
class _JsonStore:
    """Stand-in used only while ``daemon.store`` is not importable: the state as JSON."""

    def __init__(self, path: str) -> None:
        self.path = path

    @contextlib.contextmanager
    def transaction(self):
        yield self

    def load(self) -> Switch:
        try:
            with open(self.path) as f:
                return Switch.from_state(json.load(f))
        except (FileNotFoundError, ValueError):
            return Switch()

    def save(self, sw: Switch) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(sw.to_state(), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


def open_store(db: str):
    try:
        from .store import Store
    except ImportError:
        return _JsonStore(db)
    return Store(db)


def load_switch(store) -> Switch:
    with store.transaction() as tx:
        sw = tx.load()
    return sw if sw is not None else Switch()


def save_switch(store, sw: Switch) -> None:
    with store.transaction() as tx:
        tx.save(sw)


def dispatch(sw: Switch, tool: str, argv: list[str], ctx) -> Result:
    try:
        from ..control.dispatch import dispatch as real
    except ImportError:
        real = None
    if real is not None:
        return real(sw, tool, argv, ctx)
    from ..control import appctl, conntrack_tool, ofctl
    table = {"ovs-ofctl": ofctl.run, "ovs-appctl": appctl.run, "conntrack": conntrack_tool.run}
    fn = table.get(tool)
    if fn is None:
        return Result(err=f"ctswitch: unknown tool '{tool}'\n", code=127)
    return fn(sw, argv, ctx)


def make_ctx(stdin: str | None, cwd: str, db: str):
    """The handlers' context (``control.dispatch.Context`` when it exists)."""
    try:
        from ..control.dispatch import Context
    except ImportError:
        return SimpleNamespace(stdin=stdin, cwd=cwd, db=db, db_path=db)
    return Context(cwd=cwd, db_path=db, stdin_loader=lambda: stdin)


# ---------------------------------------------------------------------- daemon
class Daemon:
    """One running daemon (see module docstring)."""

    def __init__(self, db: str, *, lab_example: int | None = None, disable_offloads: bool = True,
                 batch_min: int = BATCH_MIN) -> None:
        self.paths = paths(db)
        self.batch_min = batch_min
        self.db = self.paths["db"]
        self.lab_example = lab_example
        self.disable_offloads = disable_offloads
        self.pidfile = None
        self.server = None
        self.loop = None
        self.store = None
        self.switch: Switch | None = None
        self.started = time.time()
        self.requests = 0
        self.saves = 0

    # -------------------------------------------------------------- lifecycle
    def lock(self) -> bool:
        """Takes the pidfile lock; False when another daemon holds it."""
        f = open(self.paths["pid"], "a+")  # noqa: SIM115 - held for the daemon's life
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            return False
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        self.pidfile = f
        return True

    def setup(self) -> None:
        # The loop (and its selector) first, with a placeholder switch: the socket is bound
        # before the store is read, so a starter can wait for it while the store is busy.
        self.loop = LiveLoop(Switch(), LiveClock(0), disable_offloads=self.disable_offloads,
                             batch=self.batch_min > 0, batch_min=self.batch_min)
        self.server = ControlServer(self.paths["sock"], self.handle, self.loop.sel)
        self.store = open_store(self.db)
        sw = load_switch(self.store)
        if self.lab_example is not None:
            from ..control.lab import configure_switch
            configure_switch(sw, self.lab_example)
            save_switch(self.store, sw)
            log.info("lab: bridge ctBr configured with vendor example %d", self.lab_example)
        if sw.tracker is not None:
            sw.tracker.events_enabled = True  # for conntrack -E (a bounded ring)
        self.switch = sw
        self.loop.switch = sw
        self.loop.clock = LiveClock(sw.now)
        for line in self.loop.sync_ports():
            log.info("%s", line)
        log.info("serving %s: %d bridge(s), %d port(s) bound", self.paths["sock"], len(sw.bridges),
                 len(self.loop.ports))

    def run(self) -> int:
        if not self.lock():
            print(f"ctswitch: a daemon already runs for {self.db} (pidfile {self.paths['pid']})", file=sys.stderr)
            return 1
        signal.signal(signal.SIGTERM, self._signal)
        signal.signal(signal.SIGINT, self._signal)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        try:
            self.setup()
            with packet_gc():  # fewer young-generation collections while packets flow
                self.loop.run()
            self.save("stop")
            log.info("stopped")
            return 0
        except StoreError as e:  # an unusable database: one clear line, the file left as it is
            log.error("cannot use the database: %s", e)
            return 1
        except Exception as e:  # noqa: BLE001 - a daemon logs, then exits non-zero
            log.error("fatal: %s\n%s", e, traceback.format_exc())
            return 1
        finally:
            self.shutdown()

    def _signal(self, signum, frame) -> None:
        if self.loop is not None:
            self.loop.stopping = True
        log.info("signal %d: stopping", signum)

    def shutdown(self) -> None:
        if self.server is not None:
            self.server.close()
        if self.loop is not None:
            self.loop.close()
        if self.pidfile is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.paths["pid"])
            self.pidfile.close()

    def save(self, why: str) -> bool:
        try:
            save_switch(self.store, self.switch)
        except Exception as e:  # noqa: BLE001
            log.error("saving the switch (%s) failed: %s", why, e)
            return False
        self.saves += 1
        return True

    # -------------------------------------------------------------- requests
    def handle(self, req: dict) -> bytes:
        self.requests += 1
        tool, argv = req["tool"], req["argv"]
        if self.switch is None:
            return protocol.error_reply("daemon is starting")
        if tool == DAEMON_TOOL:
            return self.internal(argv)
        self.loop.tick()
        self.sync_counters()
        ctx = make_ctx(req["stdin"], req["cwd"] or "/", self.db)
        try:
            r = dispatch(self.switch, tool, argv, ctx)
        except Exception as e:  # noqa: BLE001 - a bad command must not kill the daemon
            log.error("%s %s: %s\n%s", tool, " ".join(argv), e, traceback.format_exc())
            return protocol.encode_reply("", f"ctswitch: internal error: {e}\n", 1)
        if r.changed:
            if not self.save(f"{tool} {' '.join(argv)}"):
                return protocol.encode_reply(r.out, r.err + "ctswitch: could not save the change\n", r.code or 1)
            for line in self.loop.sync_ports():
                log.info("%s", line)
        return protocol.encode_reply(r.out, r.err, r.code)

    def sync_counters(self) -> None:
        """Credits the batched fast path's deferred hits, so views read exact counters."""
        dp = self.switch.datapath if self.switch is not None else None
        if dp is not None:
            dp.sync_counters()

    def status(self) -> dict:
        self.sync_counters()
        sw = self.switch
        dp = sw.datapath
        return {
            "pid": os.getpid(), "db": self.db, "uptime_s": round(time.time() - self.started, 1),
            "now_ms": sw.now, "bridges": {b.name: sorted(p.name for p in b.ports.values()) for b in sw.bridges.values()},
            "bound": sorted(self.loop.ports), "unbound": dict(self.loop.errors),
            "requests": self.requests, "saves": self.saves,
            "datapath": dict(dp.stats) if dp is not None else {},
            "drops": dict(dp.drops) if dp is not None else {},
            "ports": self.loop.port_stats(), "loop": dict(self.loop.stats),
            "netns": _netns_name(),
        }

    def internal(self, argv: list[str]) -> bytes:
        op = argv[0] if argv else ""
        if op in ("ping", "stats"):
            return protocol.encode_reply(json.dumps(self.status(), sort_keys=True) + "\n")
        if op == "stop":
            self.loop.stopping = True
            return protocol.encode_reply("")
        if op == "save":
            ok = self.save("request")
            return protocol.encode_reply("", "" if ok else "ctswitch: save failed\n", 0 if ok else 1)
        return protocol.error_reply(f"unknown daemon request '{op}'")


def _netns_name() -> str:
    """The name of the network namespace we run in ('' for the root one or unknown)."""
    try:
        me = os.stat("/proc/self/ns/net")
        for name in os.listdir("/run/netns"):
            st = os.stat(os.path.join("/run/netns", name))
            if (st.st_dev, st.st_ino) == (me.st_dev, me.st_ino):
                return name
    except OSError:
        pass
    return ""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="ctswitch daemon", description="run the ctswitch daemon in the foreground")
    ap.add_argument("--db", required=True)
    ap.add_argument("--foreground", action="store_true", help="accepted for symmetry; always foreground")
    ap.add_argument("--lab-example", type=int, choices=(1, 2))
    ap.add_argument("--keep-offloads", action="store_true", help="leave the ports' NIC offloads as they are")
    ap.add_argument("--batch-min", type=int, default=BATCH_MIN, metavar="N",
                    help=f"rounds of at least N frames take the batched fast path (0: never; default {BATCH_MIN})")
    ap.add_argument("--debug", action="store_true")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if a.debug else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s ctswitch[%(process)d] %(levelname)s %(message)s")
    return Daemon(a.db, lab_example=a.lab_example, disable_offloads=not a.keep_offloads,
                  batch_min=a.batch_min).run()


if __name__ == "__main__":
    sys.exit(main())
