"""Store: the switch kept in an SQLite file between commands.

Theory of operation
-------------------
Each ``ctswitch`` invocation is one transaction::

    with store.transaction() as tx:
        sw = tx.load()
        ... run the command on sw ...
        tx.save(sw)           # only when the command succeeded

``transaction()`` starts ``BEGIN IMMEDIATE``: the write lock is taken before
the switch is read, so two concurrent commands run one after the other (the
second waits up to ``BUSY_TIMEOUT_MS``) and neither loses the other's change.
Leaving the block with an exception rolls everything back.

Configuration is relational (``bridges``, ``ports``, ``flows`` with one row
per OpenFlow rule, ``params`` with one row per knob that was set); the rest of
the runtime snapshot (clock, tracker, offload model, datapath, MAC tables,
port counters, log, the Open_vSwitch row) is one JSON blob per key in
``runtime``.  ``Switch.to_state()`` / ``Switch.from_state()`` are the only
way in and out of the switch, so the store knows nothing of its internals.

``save`` is differential: the transaction remembers the rows it loaded and
writes only rows (and runtime keys) whose content changed.  Its cost is
serialising the whole switch (``to_state`` plus ``json.dumps``), O(flows +
connections) of CPU per command, while disk writes are O(changes); a read-only
command writes nothing.

The file is created 0600 in a 0700 directory, whole (built under a private name and
hard-linked into place, so nobody opens it half made), then switched to journal mode WAL.  It is marked
with ``PRAGMA application_id = APPLICATION_ID``; ``PRAGMA user_version`` is the
schema version, upgraded by ``MIGRATIONS``.  A file that is not SQLite, or an
SQLite database of another application, is refused ("not a ctswitch
database"), a damaged one too ("is corrupt"); neither is ever written to.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Iterator

APPLICATION_ID = 0x43545357  # "CTSW"
BUSY_TIMEOUT_MS = 30_000
SQLITE_MAGIC = b"SQLite format 3\x00"

# MIGRATIONS[i] brings a database from schema version i to i + 1.
MIGRATIONS: list[list[str]] = [
    [  # 0 -> 1: the initial schema
        """CREATE TABLE bridges (
             name TEXT PRIMARY KEY, pos INTEGER NOT NULL, fail_mode TEXT NOT NULL,
             other TEXT NOT NULL, seq INTEGER NOT NULL)""",
        """CREATE TABLE ports (
             bridge TEXT NOT NULL, name TEXT NOT NULL, pos INTEGER NOT NULL, ofport INTEGER NOT NULL,
             type TEXT NOT NULL, options TEXT NOT NULL, PRIMARY KEY (bridge, name))""",
        """CREATE TABLE flows (
             bridge TEXT NOT NULL, seq INTEGER NOT NULL, table_id INTEGER NOT NULL,
             priority INTEGER NOT NULL, match TEXT NOT NULL, actions TEXT NOT NULL,
             cookie INTEGER NOT NULL, idle_timeout INTEGER NOT NULL, hard_timeout INTEGER NOT NULL,
             importance INTEGER NOT NULL, flags INTEGER NOT NULL, created_ms INTEGER NOT NULL,
             modified_ms INTEGER NOT NULL, used_ms INTEGER NOT NULL, n_packets INTEGER NOT NULL,
             n_bytes INTEGER NOT NULL, PRIMARY KEY (bridge, seq))""",
        """CREATE TABLE params (
             domain TEXT NOT NULL, name TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (domain, name))""",
        "CREATE TABLE runtime (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)

# Switch attributes outside to_state() that the store keeps too (set by the control tools).
EXTRA_ATTRS = ("ovs_row",)

_RUNTIME_KEYS = ("now", "log", "tracker", "offload", "datapath", "macs", "port_counters") + EXTRA_ATTRS

_U64 = 1 << 64


class StoreError(Exception):
    """The database cannot be used; the message is one line: ``PATH: reason``."""


def _dumps(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True)


def _s64(v: int) -> int:
    """A u64 (cookies) as SQLite's signed INTEGER."""
    return v - _U64 if v >= 1 << 63 else v


def _u64(v: int) -> int:
    return v + _U64 if v < 0 else v


def _make_dirs(path: str) -> None:
    """Creates the missing directories of ``path`` with mode 0700."""
    parts = []
    d = os.path.dirname(os.path.abspath(path))
    while d and not os.path.isdir(d):
        parts.append(d)
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    for d in reversed(parts):
        with contextlib.suppress(FileExistsError):
            os.mkdir(d, 0o700)
            os.chmod(d, 0o700)


def _create(path: str) -> None:
    """Creates the database whole, then publishes it: built under a private name (schema,
    application_id, user_version) and hard-linked to ``path``, which fails harmlessly when
    another command published one first.  So no command ever opens a half-made database
    (24 commands creating the same new file at once met one between its creation and its
    schema and refused it as "not a ctswitch database")."""
    tmp = f"{path}.{os.getpid()}.{os.urandom(4).hex()}.new"
    try:
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
    except OSError as e:
        raise StoreError(f"{path}: cannot create: {e.strerror}") from None
    try:
        c = sqlite3.connect(tmp, isolation_level=None)
        try:
            c.execute("BEGIN")
            for steps in MIGRATIONS:
                for sql in steps:
                    c.execute(sql)
            c.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            c.execute("COMMIT")
        finally:
            c.close()
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another command published one first
        except OSError:  # a file system without hard links: publish by renaming instead
            if not os.path.exists(path):
                os.rename(tmp, path)
    except sqlite3.Error as e:
        raise StoreError(f"{path}: cannot create: {e}") from None
    except OSError as e:
        raise StoreError(f"{path}: cannot create: {e.strerror}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


class Store:
    """One ctswitch database file (see module docstring)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._check_file()
        try:
            self.conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                        check_same_thread=False)
        except sqlite3.Error as e:
            raise StoreError(f"{path}: cannot open: {e}") from None
        try:
            self._setup()
        except StoreError:
            self.conn.close()
            raise
        except sqlite3.DatabaseError as e:
            self.conn.close()
            raise self._error(e) from None

    # ------------------------------------------------------------------ opening
    def _check_file(self) -> None:
        """Creates the file (0600) or checks that an existing one is SQLite."""
        path = self.path
        if os.path.isdir(path):
            raise StoreError(f"{path}: is a directory")
        if not os.path.exists(path):
            _make_dirs(path)
            _create(path)
        try:
            with open(path, "rb") as f:
                head = f.read(100)
        except OSError as e:
            raise StoreError(f"{path}: cannot read: {e.strerror}") from None
        if not head:
            return  # new (or still empty) file
        if head.startswith(SQLITE_MAGIC):
            if len(head) < 100:
                raise StoreError(f"{path}: is corrupt (truncated header)")
            return
        if len(head) < len(SQLITE_MAGIC) and SQLITE_MAGIC.startswith(head):
            raise StoreError(f"{path}: is corrupt (truncated header)")
        raise StoreError(f"{path}: not a ctswitch database")

    def _setup(self) -> None:
        c = self.conn
        c.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        app_id = c.execute("PRAGMA application_id").fetchone()[0]
        if app_id not in (0, APPLICATION_ID):
            raise StoreError(f"{self.path}: not a ctswitch database")
        if app_id == 0:
            n = c.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if n:
                raise StoreError(f"{self.path}: not a ctswitch database")
        version = c.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: written by a newer ctswitch (schema {version}, "
                             f"this one knows up to {SCHEMA_VERSION})")
        if c.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            c.execute("PRAGMA journal_mode = WAL")
        c.execute("PRAGMA synchronous = NORMAL")
        if app_id == 0 or version < SCHEMA_VERSION:
            self._migrate()

    def _migrate(self) -> None:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            # Re-read under the lock: another process may have done it meanwhile.
            app_id = c.execute("PRAGMA application_id").fetchone()[0]
            if app_id == 0 and c.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                raise StoreError(f"{self.path}: not a ctswitch database")
            version = c.execute("PRAGMA user_version").fetchone()[0]
            for v in range(version, SCHEMA_VERSION):
                for sql in MIGRATIONS[v]:
                    c.execute(sql)
            c.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def _error(self, e: sqlite3.Error) -> StoreError:
        msg = str(e)
        if isinstance(e, sqlite3.OperationalError) and ("locked" in msg or "busy" in msg):
            return StoreError(f"{self.path}: database is locked (another ctswitch command is still running)")
        if isinstance(e, sqlite3.DatabaseError) and not isinstance(e, sqlite3.OperationalError | sqlite3.IntegrityError):
            return StoreError(f"{self.path}: is corrupt ({msg})")
        if "malformed" in msg or "not a database" in msg:
            return StoreError(f"{self.path}: is corrupt ({msg})")
        return StoreError(f"{self.path}: {msg}")

    # ------------------------------------------------------------------ API
    @property
    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """One IMMEDIATE transaction: committed when the block ends normally, else rolled back."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            raise self._error(e) from None
        tx = Transaction(self)
        try:
            yield tx
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            raise
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error as e:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            raise self._error(e) from None

    def load(self):
        """The stored switch (in a transaction of its own)."""
        with self.transaction() as tx:
            return tx.load()

    def save(self, sw) -> None:
        """Stores ``sw`` (in a transaction of its own)."""
        with self.transaction() as tx:
            tx.save(sw)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Transaction:
    """The rows of one transaction; ``load`` and ``save`` (see module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.conn = store.conn
        # What is in the database now, for the differential save: table -> {pk: row}.
        self._rows: dict[str, dict] = {"bridges": {}, "ports": {}, "flows": {}, "params": {}, "runtime": {}}
        self._loaded = False

    def _fetch(self) -> None:
        if self._loaded:
            return
        c = self.conn
        try:
            self._rows["bridges"] = {r[0]: r for r in c.execute(
                "SELECT name, pos, fail_mode, other, seq FROM bridges")}
            self._rows["ports"] = {(r[0], r[1]): r for r in c.execute(
                "SELECT bridge, name, pos, ofport, type, options FROM ports")}
            self._rows["flows"] = {(r[0], r[1]): r for r in c.execute(
                "SELECT bridge, seq, table_id, priority, match, actions, cookie, idle_timeout, hard_timeout,"
                " importance, flags, created_ms, modified_ms, used_ms, n_packets, n_bytes FROM flows")}
            self._rows["params"] = {(r[0], r[1]): r for r in c.execute("SELECT domain, name, value FROM params")}
            self._rows["runtime"] = {r[0]: r for r in c.execute("SELECT key, value FROM runtime")}
        except sqlite3.Error as e:
            raise self.store._error(e) from None
        self._loaded = True

    # ------------------------------------------------------------------ load
    def load(self):
        """The switch as stored (a fresh one for a new database)."""
        from ..datapath.switch import Switch

        self._fetch()
        try:
            state = self._state()
            # Rows of valid JSON but of the wrong shape fail in from_state: corrupt too.
            sw = Switch.from_state(state)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
            msg = (str(e).splitlines() or [type(e).__name__])[0]
            raise StoreError(f"{self.store.path}: is corrupt (bad row: {msg})") from None
        for attr in EXTRA_ATTRS:
            if state.get(attr) is not None:
                setattr(sw, attr, state[attr])
        return sw

    def _state(self) -> dict:
        rt = {k: json.loads(r[1]) for k, r in self._rows["runtime"].items()}
        macs = rt.get("macs") or {}
        counters = rt.get("port_counters") or {}
        ports: dict[str, list] = {}
        for (br, _name), r in sorted(self._rows["ports"].items(), key=lambda kv: kv[1][2]):
            _b, name, _pos, ofport, typ, options = r
            c = (counters.get(br) or {}).get(name) or [0] * 6
            ports.setdefault(br, []).append([name, ofport, typ, json.loads(options), c])
        rules: dict[str, list] = {}
        for r in sorted(self._rows["flows"].values(), key=lambda r: r[1]):
            (br, seq, table, prio, match, actions, cookie, idle, hard, imp, flags,
             created, modified, used, n_packets, n_bytes) = r
            acts = json.loads(actions)
            if not isinstance(acts, list) or not all(isinstance(a, dict) for a in acts):
                raise ValueError(f"flow {seq}: actions are not action records")
            rules.setdefault(br, []).append({
                "table": table, "priority": prio, "match": json.loads(match), "actions": acts,
                "cookie": _u64(cookie), "idle": idle, "hard": hard, "importance": imp, "flags": flags,
                "created": created, "modified": modified, "used": used,
                "n_packets": n_packets, "n_bytes": n_bytes, "seq": seq})
        bridges = []
        for name, _pos, fail_mode, other, seq in sorted(self._rows["bridges"].values(), key=lambda r: r[1]):
            bridges.append({"name": name, "fail_mode": fail_mode, "other": json.loads(other),
                            "ports": ports.get(name, []), "seq": seq, "rules": rules.get(name, []),
                            "mac": macs.get(name, [])})
        params = {f"{d}:{n}": json.loads(v) for (d, n), (_d, _n, v) in self._rows["params"].items()}
        state = {"now": rt.get("now", 0), "log": rt.get("log") or [], "params": params, "bridges": bridges,
                 "tracker": rt.get("tracker"), "offload": rt.get("offload"), "datapath": rt.get("datapath")}
        for attr in EXTRA_ATTRS:
            state[attr] = rt.get(attr)
        return state

    # ------------------------------------------------------------------ save
    def save(self, sw) -> int:
        """Writes what changed since the load; returns the number of rows written or deleted."""
        from ..datapath.switch import rule_to_state

        self._fetch()
        new: dict[str, dict] = {t: {} for t in self._rows}
        macs, counters = {}, {}
        for pos, br in enumerate(sw.bridges.values()):
            new["bridges"][br.name] = (br.name, pos, br.fail_mode, _dumps(br.other), br._seq)
            macs[br.name] = [[v, m, p, t] for (v, m), (p, t) in br.mac.items()]
            pc = {}
            for ppos, p in enumerate(br.ports.values()):
                new["ports"][(br.name, p.name)] = (br.name, p.name, ppos, p.ofport, p.type, _dumps(p.options))
                pc[p.name] = [p.rx_packets, p.rx_bytes, p.tx_packets, p.tx_bytes, p.rx_dropped, p.tx_dropped]
            counters[br.name] = pc
            for r in br.iter_rules():
                d = rule_to_state(r)
                new["flows"][(br.name, d["seq"])] = (
                    br.name, d["seq"], d["table"], d["priority"], _dumps(d["match"]), _dumps(d["actions"]),
                    _s64(d["cookie"]), d["idle"], d["hard"], d["importance"], int(d["flags"]),
                    d["created"], d["modified"], d["used"], d["n_packets"], d["n_bytes"])
        for key, value in sw.params.to_state().items():
            domain, _, name = key.partition(":")
            new["params"][(domain, name)] = (domain, name, _dumps(value))
        st = sw.to_state()  # the engines' snapshots (tracker, offload, datapath)
        runtime = {"now": sw.now, "log": st.get("log") or [], "tracker": st.get("tracker"),
                   "offload": st.get("offload"), "datapath": st.get("datapath"),
                   "macs": macs, "port_counters": counters}
        for attr in EXTRA_ATTRS:
            runtime[attr] = getattr(sw, attr, None)
        for k in _RUNTIME_KEYS:
            if runtime.get(k) is not None:
                new["runtime"][k] = (k, _dumps(runtime[k]))
        return self._write(new)

    _SQL = {
        "bridges": ("DELETE FROM bridges WHERE name = ?", "INSERT OR REPLACE INTO bridges VALUES (?,?,?,?,?)"),
        "ports": ("DELETE FROM ports WHERE bridge = ? AND name = ?",
                  "INSERT OR REPLACE INTO ports VALUES (?,?,?,?,?,?)"),
        "flows": ("DELETE FROM flows WHERE bridge = ? AND seq = ?",
                  "INSERT OR REPLACE INTO flows VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"),
        "params": ("DELETE FROM params WHERE domain = ? AND name = ?", "INSERT OR REPLACE INTO params VALUES (?,?,?)"),
        "runtime": ("DELETE FROM runtime WHERE key = ?", "INSERT OR REPLACE INTO runtime VALUES (?,?)"),
    }

    def _write(self, new: dict[str, dict]) -> int:
        n = 0
        c = self.conn
        try:
            for table, rows in new.items():
                old = self._rows[table]
                delete, upsert = self._SQL[table]
                gone = [k if isinstance(k, tuple) else (k,) for k in old.keys() - rows.keys()]
                changed = [row for k, row in rows.items() if old.get(k) != row]
                if gone:
                    c.executemany(delete, gone)
                if changed:
                    c.executemany(upsert, changed)
                n += len(gone) + len(changed)
                self._rows[table] = rows
        except sqlite3.Error as e:
            raise self.store._error(e) from None
        return n
