"""daemon.store: creation, round trip, differential save, atomicity, concurrency, bad files, migration."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys

import pytest

from ctswitch.control import ofctl, vsctl
from ctswitch.daemon.store import APPLICATION_ID, SCHEMA_VERSION, Store, StoreError
from ctswitch.datapath.switch import Switch


def _norm(sw: Switch) -> dict:
    return json.loads(json.dumps(sw.to_state(), sort_keys=True))


def _configured() -> Switch:
    sw = Switch()
    assert vsctl.run(sw, ["add-br", "ctBr", "--", "add-port", "ctBr", "p0", "--", "add-port", "ctBr", "pf0hpf",
                          "--", "set", "Open_vSwitch", ".", "other_config:hw-offload=true",
                          "other_config:foo=bar"]).code == 0
    for flow in ("table=0,arp,action=normal", "table=0,ip,ct_state=-trk,action=ct(table=1)",
                 "table=1,priority=1,ip,ct_state=+trk+new,action=ct(commit),normal",
                 "cookie=0xffffffffffffffff,table=1,priority=1,ip,ct_state=+trk+est,action=normal"):
        r = ofctl.run(sw, ["add-flow", "ctBr", flow])
        assert r.code == 0, r.err
    sw.params.set("sysctl:net.netfilter.nf_conntrack_max", 1000)
    sw.bridges["ctBr"].learn(0, 0x0A0000000001, 1, 5)
    sw.bridges["ctBr"].ports["p0"].rx_packets = 7
    sw.now = 12345
    return sw


def test_new_database_is_private_and_marked(tmp_path):
    path = tmp_path / "a" / "b" / "ct.db"
    st = Store(str(path))
    st.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "a").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "a" / "b").st_mode) == 0o700
    c = sqlite3.connect(path)
    assert c.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"bridges", "ports", "flows", "params", "runtime"}


def test_empty_database_loads_a_fresh_switch(tmp_path):
    with Store(str(tmp_path / "x.db")) as st:
        sw = st.load()
    assert sw.bridges == {} and sw.now == 0


def test_round_trip(tmp_path):
    sw = _configured()
    with Store(str(tmp_path / "x.db")) as st:
        st.save(sw)
    with Store(str(tmp_path / "x.db")) as st:
        back = st.load()
    assert _norm(back) == _norm(sw)
    assert back.ovs_row == sw.ovs_row  # the Open_vSwitch row (uuid, unknown other_config keys)
    assert vsctl.show(back) == vsctl.show(sw)
    assert back.params.get("other_config:hw-offload") is True


def test_flows_are_rows(tmp_path):
    sw = _configured()
    with Store(str(tmp_path / "x.db")) as st:
        st.save(sw)
        rows = st.conn.execute("SELECT table_id, priority, seq, cookie FROM flows ORDER BY seq").fetchall()
    # the default NORMAL flow (seq 1) and the four added ones; the u64 cookie kept exactly
    assert [r[:3] for r in rows] == [(0, 0, 1), (0, 32768, 2), (0, 32768, 3), (1, 1, 4), (1, 1, 5)]
    assert rows[-1][3] == -1  # 0xffffffffffffffff as SQLite's signed INTEGER
    back = Store(str(tmp_path / "x.db")).load()
    assert [r.cookie for r in back.bridges["ctBr"].iter_rules()][-1] == 0xFFFFFFFFFFFFFFFF


def test_save_writes_only_changes(tmp_path):
    with Store(str(tmp_path / "x.db")) as st:
        st.save(_configured())
        with st.transaction() as tx:
            sw = tx.load()
            assert tx.save(sw) == 0  # nothing changed, nothing written
        with st.transaction() as tx:
            sw = tx.load()
            ofctl.run(sw, ["add-flow", "ctBr", "table=2,actions=drop"])
            # one new flow row, and the bridge row (its insertion counter moved)
            assert tx.save(sw) == 2
        with st.transaction() as tx:
            sw = tx.load()
            vsctl.run(sw, ["del-port", "p0"])
            # p0's row goes, pf0hpf's position moves up; MAC table and port counters
            # (two runtime keys) change
            assert tx.save(sw) == 4
        assert {r[0] for r in st.conn.execute("SELECT name FROM ports")} == {"ctBr", "pf0hpf"}


def test_exception_in_transaction_saves_nothing(tmp_path):
    with Store(str(tmp_path / "x.db")) as st:
        st.save(_configured())
        with pytest.raises(RuntimeError), st.transaction() as tx:
            sw = tx.load()
            vsctl.run(sw, ["add-br", "other"])
            tx.save(sw)
            raise RuntimeError("boom")
        assert set(st.load().bridges) == {"ctBr"}


_WRITER = r"""
import sys, time
from ctswitch.daemon.store import Store
st = Store(sys.argv[1])
for i in range(int(sys.argv[3])):
    with st.transaction() as tx:
        sw = tx.load()
        time.sleep(0.002)   # hold the switch while the other process wants it too
        sw.add_bridge(f"{sys.argv[2]}{i}")
        tx.save(sw)
"""


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    db = str(tmp_path / "x.db")
    Store(db).close()
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, db, name, "15"]) for name in ("a", "b")]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    names = set(Store(db).load().bridges)
    assert names == {f"a{i}" for i in range(15)} | {f"b{i}" for i in range(15)}


def _untouched(path, fn):
    before = path.read_bytes()
    mtime = os.stat(path).st_mtime_ns
    with pytest.raises(StoreError) as ei:
        fn()
    assert path.read_bytes() == before and os.stat(path).st_mtime_ns == mtime
    assert not os.path.exists(str(path) + "-wal")
    return str(ei.value)


def test_text_file_is_refused_and_kept(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("hello, this is not a database\n" * 10)
    assert _untouched(p, lambda: Store(str(p))) == f"{p}: not a ctswitch database"


def test_other_sqlite_application_is_refused(tmp_path):
    p = tmp_path / "other.db"
    c = sqlite3.connect(p)
    c.execute("CREATE TABLE t (x)")
    c.commit()
    c.close()
    assert _untouched(p, lambda: Store(str(p))) == f"{p}: not a ctswitch database"
    q = tmp_path / "other2.db"
    c = sqlite3.connect(q)
    c.execute("PRAGMA application_id = 1234")
    c.commit()
    c.close()
    assert _untouched(q, lambda: Store(str(q))) == f"{q}: not a ctswitch database"


def test_truncated_header_is_corrupt(tmp_path):
    p = tmp_path / "x.db"
    Store(str(p)).close()
    data = p.read_bytes()
    p.write_bytes(data[:10])
    assert _untouched(p, lambda: Store(str(p))) == f"{p}: is corrupt (truncated header)"


def _save_big(p) -> None:
    """A store of 400 flows (many pages) at ``p``."""
    sw = _configured()
    for i in range(400):
        ofctl.run(sw, ["add-flow", "ctBr", f"table=3,priority={i},tcp,tp_dst={i},actions=drop"])
    with Store(str(p)) as st:
        st.save(sw)


def test_truncated_database_is_corrupt(tmp_path):
    p = tmp_path / "x.db"
    _save_big(p)
    data = p.read_bytes()
    assert len(data) > 8 * 4096
    p.write_bytes(data[: len(data) // 2])

    def load():
        with Store(str(p)) as st:
            st.load()
    msg = _untouched(p, load)
    assert msg.startswith(f"{p}: is corrupt (")


def test_garbage_pages_are_corrupt(tmp_path):
    p = tmp_path / "x.db"
    _save_big(p)
    data = bytearray(p.read_bytes())
    data[4096:len(data)] = b"\xa5" * (len(data) - 4096)
    p.write_bytes(bytes(data))

    def load():
        with Store(str(p)) as st:
            st.load()
    assert _untouched(p, load).startswith(f"{p}: is corrupt (")


def test_migration_from_version_0(tmp_path):
    p = tmp_path / "v0.db"
    c = sqlite3.connect(p)
    c.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    c.commit()
    c.close()
    with Store(str(p)) as st:
        assert st.schema_version == SCHEMA_VERSION
        st.save(_configured())
        assert set(st.load().bridges) == {"ctBr"}


def test_empty_sqlite_file_is_adopted(tmp_path):
    p = tmp_path / "blank.db"
    sqlite3.connect(p).close()  # 0 bytes
    with Store(str(p)) as st:
        assert st.schema_version == SCHEMA_VERSION


def test_newer_schema_is_refused(tmp_path):
    p = tmp_path / "new.db"
    Store(str(p)).close()
    c = sqlite3.connect(p)
    c.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    c.commit()
    c.close()
    with pytest.raises(StoreError) as ei:
        Store(str(p))
    assert str(ei.value) == (f"{p}: written by a newer ctswitch (schema {SCHEMA_VERSION + 1}, "
                             f"this one knows up to {SCHEMA_VERSION})")


def test_directory_path_is_refused(tmp_path):
    with pytest.raises(StoreError) as ei:
        Store(str(tmp_path))
    assert str(ei.value) == f"{tmp_path}: is a directory"


@pytest.mark.parametrize("where,bad", [("flows", -1), ("flows", 2.5), ("ports", -3), ("ports", True),
                                       ("ports", 1 << 64)])
def test_bad_saved_counter_is_corrupt(tmp_path, where, bad):
    """A rule's or a port's saved counter must be an int in 0..2**64-1 (the compiled core holds
    them as C integers; the Python build checks the same): anything else is a corrupt store, with
    the same one-line error either way."""
    p = tmp_path / "x.db"
    with Store(str(p)) as st:
        st.save(_configured())
    c = sqlite3.connect(p)
    if where == "flows":
        c.execute("UPDATE flows SET n_packets = ?", (bad,))
    else:
        (raw,) = c.execute("SELECT value FROM runtime WHERE key = 'port_counters'").fetchone()
        counters = json.loads(raw)
        for ports in counters.values():  # {bridge: {port: [rx_packets, rx_bytes, ...]}}
            for v in ports.values():
                v[0] = bad
        c.execute("UPDATE runtime SET value = ? WHERE key = 'port_counters'", (json.dumps(counters),))
    c.commit()
    c.close()

    def load():
        with Store(str(p)) as st:
            st.load()
    assert _untouched(p, load) == f"{p}: is corrupt (bad row: bad counter {bad!r})"


def test_counters_round_trip_at_their_largest(tmp_path):
    """The largest counter SQLite keeps (2**63 - 1) comes back as it went in, for a rule and a port."""
    sw = _configured()
    big = (1 << 63) - 1
    sw.bridges["ctBr"].ports["p0"].tx_bytes = big
    rule = next(iter(sw.bridges["ctBr"].iter_rules()))
    rule.n_bytes = big
    with Store(str(tmp_path / "x.db")) as st:
        st.save(sw)
        back = st.load()
    assert back.bridges["ctBr"].ports["p0"].tx_bytes == big
    assert [r.n_bytes for r in back.bridges["ctBr"].iter_rules()][0] == big
    assert _norm(back) == _norm(sw)
