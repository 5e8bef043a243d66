"""The loader of the compiled core (ctswitch._native): which modules load from an extension, and when.

The logic (check, read_manifest, install, status, the finder) is tested in this process against
manifests and dummy "extensions" in a temporary directory; what a fresh interpreter really imports
(the .py with CTSWITCH_PURE=1 or a stale source, the extension when the build is fresh) is tested
in subprocesses, never by touching the source tree or the build.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
from importlib.machinery import ExtensionFileLoader

import pytest

from ctswitch import _native

TRACKER = "conntrack.tracker"
NAT = "conntrack.nat"
FDB = "offload.fdb"


def _entry(name: str, file: str, sha256: str | None = None) -> dict:
    return {"file": file, "sha256": _native.module_digest(name) if sha256 is None else sha256}


# What status() says of the real build: "Cython" or, when every loaded module was built with the
# profile, "Cython, profile-guided" (which one is test_status_says_profile_guided_when_every_loaded_module_is's
# and test_build_native_pgo's business).
_COMPILED = re.compile(r"compiled core \(Cython(, profile-guided)?\): (\d+) of (\d+) modules")


def _loaded_count(status: str) -> tuple[int, int]:
    m = _COMPILED.fullmatch(status)
    assert m, status
    return int(m.group(2)), int(m.group(3))


def _touch(d, name: str) -> str:
    path = os.path.join(str(d), name)
    with open(path, "wb") as f:
        f.write(b"not really an extension")
    return path


def _fresh_build(*names: str) -> None:
    """Skips unless the real build is present, for this interpreter, and fresh for ``names``."""
    fresh, _stale = _native.check(_native.read_manifest())
    if not fresh:
        pytest.skip("no compiled build: run make native (scripts/build_native.py)")
    missing = [n for n in names if "ctswitch." + n not in fresh]
    if missing:
        pytest.skip(f"the compiled build is not fresh for {', '.join(missing)}: run make native")


def _python(code: str, pure: str | None, *args: str) -> str:
    """Runs ``code`` (with ``args``) in a fresh interpreter (CTSWITCH_PURE=``pure``, or unset); its stdout."""
    env = {k: v for k, v in os.environ.items() if k != _native.ENV_PURE}
    if pure is not None:
        env[_native.ENV_PURE] = pure
    p = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


# --- the module list and the paths --------------------------------------------------------------

def test_every_listed_module_has_its_source() -> None:
    assert len(set(_native.MODULES)) == len(_native.MODULES)
    for name in _native.MODULES:
        path = _native.source_path(name)
        assert os.path.isfile(path), name
        assert not path.endswith("__init__.py"), name


def test_source_module_runs_the_py_as_a_module_of_its_own() -> None:
    import sys

    from ctswitch.conntrack import tcp
    mod = _native.source_module("conntrack.tcp", "ctswitch.conntrack._tcp_native_test")
    assert mod.__name__ == "ctswitch.conntrack._tcp_native_test"
    assert mod.__file__ == _native.source_path("conntrack.tcp")
    assert "ctswitch.conntrack._tcp_native_test" not in sys.modules
    assert mod.packet is not tcp.packet and mod.NEXT == tcp.NEXT  # its own functions, the same tables
    assert not mod._COMPILED  # the source, whatever is loaded for the module


def test_source_path_and_digest(tmp_path) -> None:
    assert _native.source_path(TRACKER) == os.path.join(_native.PACKAGE_DIR, "conntrack", "tracker.py")
    assert _native.NATIVE_DIR == os.path.join(_native.PACKAGE_DIR, "_compiled")
    assert _native.MANIFEST == os.path.join(_native.NATIVE_DIR, "manifest.json")
    p = tmp_path / "x.py"
    p.write_bytes(b"abc")
    assert _native.digest(str(p)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_abi_is_this_interpreters_extension_suffix() -> None:
    assert _native.abi() == sysconfig.get_config_var("EXT_SUFFIX")
    assert _native.abi().endswith(".so") or _native.abi().endswith(".pyd")


def test_build_tag_names_the_abi_and_this_interpreters_build() -> None:
    assert _native.build_tag() == f"{sysconfig.get_config_var('EXT_SUFFIX')} {sys.version}"


# --- read_manifest ------------------------------------------------------------------------------

def test_read_manifest_missing_file(tmp_path) -> None:
    assert _native.read_manifest(str(tmp_path / "nope.json")) == {}


@pytest.mark.parametrize("text", ["{", "", "not json", "\xff", '{"abi": '])
def test_read_manifest_invalid_json(tmp_path, text: str) -> None:
    p = tmp_path / "manifest.json"
    p.write_text(text, encoding="latin-1")
    assert _native.read_manifest(str(p)) == {}


@pytest.mark.parametrize("text", ["[1, 2]", "3", '"abi"', "null"])
def test_read_manifest_not_an_object(tmp_path, text: str) -> None:
    p = tmp_path / "manifest.json"
    p.write_text(text)
    assert _native.read_manifest(str(p)) == {}


def test_read_manifest_valid(tmp_path) -> None:
    m = {"abi": _native.build_tag(), "modules": {TRACKER: {"file": "t.so", "sha256": "00"}}}
    p = tmp_path / "manifest.json"
    p.write_text(json.dumps(m))
    assert _native.read_manifest(str(p)) == m


# --- check --------------------------------------------------------------------------------------

def test_check_fresh_stale_and_ignored(tmp_path) -> None:
    tracker_so = _touch(tmp_path, "tracker.so")
    nat_so = _touch(tmp_path, "nat.so")
    _touch(tmp_path, "unknown.so")
    _touch(tmp_path, "tcp.so")
    deps = {}
    for m in _native.needs(TRACKER)[1:]:  # the modules whose types it cimports, fresh too
        deps[m] = _entry(m, _touch(tmp_path, m + ".so"))
    # Three modules the tracker does not need (whatever it cimports), for the ignored entries.
    no_file, not_entry, no_name = [m for m in _native.MODULES if m not in _native.needs(TRACKER) and m != NAT][:3]
    assert NAT not in _native.needs(TRACKER)
    manifest = {"abi": _native.build_tag(), "modules": {
        **deps,
        TRACKER: _entry(TRACKER, "tracker.so"),                      # fresh
        NAT: _entry(NAT, "nat.so", sha256="0" * 64),                  # source changed since: stale
        no_file: _entry(no_file, "missing.so"),                       # no extension file: ignored
        "conntrack.nosuch": {"file": "unknown.so", "sha256": "0" * 64},  # not in MODULES: ignored
        "cli.main": {"file": "unknown.so", "sha256": "0" * 64},      # not in MODULES: ignored
        not_entry: "tcp.so",                                          # not an entry: ignored
        no_name: {"sha256": _native.module_digest(no_name)},          # no file
    }}
    fresh, stale = _native.check(manifest, native_dir=str(tmp_path))
    assert fresh == {"ctswitch.conntrack.tracker": tracker_so,
                     **{"ctswitch." + m: os.path.join(str(tmp_path), m + ".so") for m in deps}}
    assert stale == [NAT]
    assert os.path.isfile(nat_so)  # stale although its extension is there


def test_check_every_module_fresh(tmp_path) -> None:
    modules = {}
    for name in _native.MODULES:
        _touch(tmp_path, name + ".so")
        modules[name] = _entry(name, name + ".so")
    fresh, stale = _native.check({"abi": _native.build_tag(), "modules": modules}, native_dir=str(tmp_path))
    assert fresh == {"ctswitch." + n: os.path.join(str(tmp_path), n + ".so") for n in _native.MODULES}
    assert stale == []


def test_check_stale_in_manifest_order(tmp_path) -> None:
    names = ["offload.manager", "conntrack.tcp", "packet.codec"]
    for n in names:
        _touch(tmp_path, n)
    manifest = {"abi": _native.build_tag(), "modules": {n: _entry(n, n, sha256=n) for n in names}}
    assert _native.check(manifest, native_dir=str(tmp_path)) == ({}, names)


@pytest.mark.parametrize("abi", ["", ".cpython-27-x86_64-linux-gnu.so", None, "missing",
                                 # this ABI tag, another build of the interpreter (or the tag alone)
                                 "this ABI, another build", "this ABI alone"])
def test_check_other_abi_gives_nothing(tmp_path, abi) -> None:
    _touch(tmp_path, "fdb.so")
    manifest = {"modules": {FDB: _entry(FDB, "fdb.so"), NAT: _entry(NAT, "nat.so", "0")}}
    if abi == "this ABI, another build":
        abi = f"{_native.abi()} 3.11.2 (main, Apr 28 2025, 14:11:48) [GCC 12.2.0] other"
    elif abi == "this ABI alone":  # a manifest written before the interpreter's build was in it
        abi = _native.abi()
    if abi != "missing":
        manifest["abi"] = abi
    assert _native.check(manifest, native_dir=str(tmp_path)) == ({}, [])
    manifest["abi"] = _native.build_tag()  # the same manifest for this interpreter does load
    assert _native.check(manifest, native_dir=str(tmp_path)) == (
        {"ctswitch.offload.fdb": os.path.join(str(tmp_path), "fdb.so")}, [NAT])


def test_check_a_module_loads_only_with_the_types_it_cimports(tmp_path) -> None:
    """Compiled tcp cimports Conn, Timeouts and Packet: when conn is not current (runs as Python),
    tcp, tracker and the other modules whose .pxd cimport its types must not load compiled either
    (their extension would refuse to import); modules that do not need it still load."""
    modules = {}
    for name in _native.MODULES:
        modules[name] = _entry(name, _touch(tmp_path, name + ".so"))
    modules["conntrack.conn"] = dict(modules["conntrack.conn"], sha256="0" * 64)  # as if edited
    fresh, stale = _native.check({"abi": _native.build_tag(), "modules": modules}, native_dir=str(tmp_path))
    users = sorted(n for n in _native.MODULES if "conntrack.conn" in _native.needs(n)[1:])
    assert users == ["conntrack.tcp", "conntrack.tracker", "datapath.datapath", "ofproto.xlate"]
    assert stale == ["conntrack.conn"] + users
    assert set(fresh) == {"ctswitch." + n for n in _native.MODULES} - {"ctswitch." + n for n in stale}
    del modules["packet.headers"]  # not built at all: everything that reads a Packet typed stays Python
    fresh, stale = _native.check({"abi": _native.build_tag(), "modules": modules}, native_dir=str(tmp_path))
    assert sorted(stale) == ["conntrack.conn", "conntrack.tcp", "conntrack.tracker", "datapath.datapath", "flow.key",
                             "ofproto.xlate", "packet.codec", "packet.rewrite"]
    assert "ctswitch.ofproto.megaflow" in fresh and "ctswitch.packet.headers" not in fresh


def test_who_cimports_the_rule_and_bridge_types() -> None:
    """Rule, Port and OFBridge (rule.pxd, bridge.pxd) are read typed, and rule.credit_rules called in
    C, by the datapath (its counters, learn), bridge.py's credit_hits (the batch table's crediting, which fastpath.pxd calls typed) and
    the translation's replay (learn): those load compiled only with them."""
    for name, users in (("ofproto.rule", ["datapath.datapath", "datapath.fastpath", "ofproto.bridge",
                                          "ofproto.xlate"]),
                        ("ofproto.bridge", ["datapath.datapath", "datapath.fastpath", "ofproto.xlate"])):
        assert sorted(n for n in _native.MODULES if name in _native.needs(n)[1:]) == users


def test_stale_message_names_the_edited_modules_apart_from_those_held_back(tmp_path) -> None:
    """The warning says which sources changed, and which modules run as Python only because they
    cimport the types of a changed one (it used to say "source changed" for both)."""
    modules = {name: _entry(name, _touch(tmp_path, name + ".so")) for name in _native.MODULES}
    modules["conntrack.conn"] = dict(modules["conntrack.conn"], sha256="0" * 64)  # as if edited
    manifest = {"abi": _native.build_tag(), "modules": modules}
    _fresh, stale = _native.check(manifest, native_dir=str(tmp_path))
    users = sorted(n for n in _native.MODULES if "conntrack.conn" in _native.needs(n)[1:])
    assert users
    assert _native.stale_message(stale, manifest) == (
        "ctswitch: source changed since the compiled build, running as Python: conntrack.conn; also running "
        "as Python as they cimport those types: " + ", ".join(users) + " (make rebuilds them)")
    modules["conntrack.conn"] = _entry("conntrack.conn", "conntrack.conn.so")
    modules[NAT] = dict(modules[NAT], sha256="0" * 64)
    assert _native.stale_message([NAT], manifest) == (
        f"ctswitch: source changed since the compiled build, running as Python: {NAT} (make rebuilds them)")


def test_module_digest_covers_the_pxd_it_depends_on(tmp_path, monkeypatch) -> None:
    """The digest of tcp changes with tcp.py, tcp.pxd and conn.pxd (a type it cimports), not with
    an unrelated module's .pxd; a module without a .pxd hashes its .py alone."""
    import shutil
    root = tmp_path / "ctswitch"
    shutil.copytree(_native.PACKAGE_DIR, root, ignore=shutil.ignore_patterns("_compiled", "__pycache__"))
    monkeypatch.setattr(_native, "PACKAGE_DIR", str(root))
    base = {m: _native.module_digest(m) for m in ("conntrack.tcp", "packet.codec", "offload.fdb")}
    assert len(set(base.values())) == 3
    for rel, changed in (("conntrack/conn.pxd", {"conntrack.tcp"}),
                         ("conntrack/tcp.pxd", {"conntrack.tcp"}),
                         ("packet/headers.pxd", {"conntrack.tcp", "packet.codec"}),
                         ("packet/codec.py", {"packet.codec"}),
                         ("offload/fdb.py", {"offload.fdb"})):
        p = root / rel
        old = p.read_bytes()
        p.write_bytes(old + b"\n# changed\n")
        now = {m: _native.module_digest(m) for m in base}
        assert {m for m in base if now[m] != base[m]} == changed, rel
        p.write_bytes(old)
    assert {m: _native.module_digest(m) for m in base} == base


@pytest.mark.parametrize("manifest", [{}, {"abi": "x"}, {"modules": None}])
def test_check_empty(tmp_path, manifest) -> None:
    assert _native.check(manifest, native_dir=str(tmp_path)) == ({}, [])


def test_check_this_abi_without_modules(tmp_path) -> None:
    for modules in (None, {}, []):
        assert _native.check({"abi": _native.build_tag(), "modules": modules}, native_dir=str(tmp_path)) == ({}, [])


# --- the finder, install and status, in this process (nothing is imported) -----------------------

def test_finder_answers_only_for_its_modules(tmp_path) -> None:
    so = _touch(tmp_path, "tracker.ext")  # the loader must not depend on the name's suffix
    f = _native._Finder({"ctswitch.conntrack.tracker": so})
    spec = f.find_spec("ctswitch.conntrack.tracker")
    assert spec.name == "ctswitch.conntrack.tracker"
    assert spec.origin == so
    assert isinstance(spec.loader, ExtensionFileLoader)
    assert spec.loader.path == so
    assert f.find_spec("ctswitch.conntrack.nat") is None
    assert f.find_spec("conntrack.tracker") is None


@pytest.fixture
def fresh_loader(monkeypatch, tmp_path):
    """``_native`` as if nothing were installed yet, with its own sys.meta_path and environment,
    reading ``tmp_path/manifest.json`` and the extensions in ``tmp_path`` (restored afterwards)."""
    monkeypatch.delenv(_native.ENV_PURE, raising=False)
    monkeypatch.delenv(_native.ENV_TRAINING_MANIFEST, raising=False)
    monkeypatch.setattr(_native, "_installed", None)
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    path = str(tmp_path / "manifest.json")
    monkeypatch.setattr(_native, "MANIFEST", path)

    def write(modules: dict) -> None:
        with open(path, "w") as f:
            json.dump({"abi": _native.build_tag(), "modules": modules}, f)
    return write


def test_install_puts_the_finder_first(fresh_loader, tmp_path, recwarn) -> None:
    so = _touch(tmp_path, "fdb.so")
    fresh_loader({FDB: _entry(FDB, "fdb.so")})
    before = list(sys.meta_path)
    _native.install()
    assert sys.meta_path[0] is _native._installed
    assert sys.meta_path[1:] == before
    assert _native._installed.modules == {"ctswitch.offload.fdb": so}
    assert _native.status() == f"compiled core (Cython): 1 of {len(_native.MODULES)} modules"
    assert _native.active() == 1
    assert [w for w in recwarn if issubclass(w.category, RuntimeWarning)] == []
    first = _native._installed
    _native.install()  # once
    assert _native._installed is first
    assert sys.meta_path[1:] == before


@pytest.mark.parametrize("pgo", [(True, True), (True, False), (True, None), (False, False)])
def test_status_says_profile_guided_when_every_loaded_module_is(fresh_loader, tmp_path, pgo) -> None:
    _touch(tmp_path, "fdb.so")
    _touch(tmp_path, "tracker.so")
    fdb, tracker = _entry(FDB, "fdb.so"), _entry(TRACKER, "tracker.so", "0" * 64)  # (tracker: stale)
    for e, flag in zip((fdb, tracker), pgo):
        if flag is not None:
            e["pgo"] = flag
    fresh_loader({FDB: fdb, TRACKER: tracker})
    with pytest.warns(RuntimeWarning):
        _native.install()
    how = "Cython, profile-guided" if pgo[0] else "Cython"  # a stale module does not count
    assert _native.status() == f"compiled core ({how}): 1 of {len(_native.MODULES)} modules"


def test_install_warns_once_naming_the_stale_modules(fresh_loader, tmp_path) -> None:
    for n in ("tracker.so", "nat.so", "fdb.so"):
        _touch(tmp_path, n)
    fresh_loader({TRACKER: _entry(TRACKER, "tracker.so", "0" * 64), NAT: _entry(NAT, "nat.so", "1" * 64),
                  FDB: _entry(FDB, "fdb.so")})
    with pytest.warns(RuntimeWarning) as rec:
        _native.install()
    assert [str(w.message) for w in rec] == [
        "ctswitch: source changed since the compiled build, running as Python: "
        "conntrack.nat, conntrack.tracker (make rebuilds them)"]
    assert _native._installed.modules == {"ctswitch.offload.fdb": os.path.join(str(tmp_path), "fdb.so")}
    assert sys.meta_path[0] is _native._installed


def test_install_loads_the_training_manifest_when_named(fresh_loader, monkeypatch, tmp_path, recwarn) -> None:
    """The profile-guided build's training run: its manifest (in the build's temporary directory)
    names the instrumented extensions by absolute path, and the current build's by theirs."""
    fresh_loader({FDB: _entry(FDB, "fdb.so")})  # the installed build: not what this process loads
    _touch(tmp_path, "fdb.so")
    train = tmp_path / "train"
    train.mkdir()
    nat_so = _touch(train, "nat-instrumented.so")
    tracker_so = _touch(tmp_path, "tracker.so")
    deps = {m: _entry(m, _touch(tmp_path, m + ".so")) for m in _native.needs(NAT)[1:]}
    with open(train / "training.json", "w") as f:
        json.dump({"abi": _native.build_tag(), "modules": {
            NAT: _entry(NAT, nat_so), TRACKER: _entry(TRACKER, tracker_so, "0" * 64), **deps}}, f)
    monkeypatch.setenv(_native.ENV_TRAINING_MANIFEST, str(train / "training.json"))
    with pytest.warns(RuntimeWarning, match="conntrack.tracker"):
        _native.install()
    assert _native._installed.modules == {"ctswitch.conntrack.nat": nat_so,
                                          **{"ctswitch." + m: e["file"] for m, e in deps.items()}}


def test_install_without_a_build(fresh_loader, recwarn) -> None:
    before = list(sys.meta_path)  # no manifest written
    _native.install()
    assert sys.meta_path == before
    assert _native._installed is not None and _native._installed.modules == {}
    assert _native.status() == "pure Python (no compiled build)"
    assert _native.active() == 0
    assert [w for w in recwarn if issubclass(w.category, RuntimeWarning)] == []


@pytest.mark.parametrize("value", ["1", "yes", "true"])
def test_install_with_pure_set(fresh_loader, monkeypatch, tmp_path, value: str) -> None:
    _touch(tmp_path, "fdb.so")
    fresh_loader({FDB: _entry(FDB, "fdb.so")})
    monkeypatch.setenv(_native.ENV_PURE, value)
    before = list(sys.meta_path)
    _native.install()
    assert sys.meta_path == before
    assert _native._installed is None
    assert _native.status() == "pure Python (CTSWITCH_PURE=1)"
    assert _native.active() == 0


@pytest.mark.parametrize("value", ["", "0"])
def test_pure_unset_or_zero_does_not_disable(fresh_loader, monkeypatch, tmp_path, value: str) -> None:
    _touch(tmp_path, "fdb.so")
    fresh_loader({FDB: _entry(FDB, "fdb.so")})
    monkeypatch.setenv(_native.ENV_PURE, value)
    _native.install()
    assert sys.meta_path[0] is _native._installed
    assert _native.status() == f"compiled core (Cython): 1 of {len(_native.MODULES)} modules"


# --- fresh interpreters: what is really imported ------------------------------------------------

_REPORT = """
import json, ctswitch.conntrack.tracker as t, ctswitch.conntrack.nat as n
from ctswitch import _native
print(json.dumps([t.__file__, n.__file__, _native.status()]))
"""


def test_pure_runs_the_sources() -> None:
    tracker, nat, status = json.loads(_python(_REPORT, pure="1"))
    assert tracker == _native.source_path(TRACKER)
    assert tracker.endswith(os.path.join("conntrack", "tracker.py"))
    assert nat == _native.source_path(NAT)
    assert status == "pure Python (CTSWITCH_PURE=1)"


@pytest.mark.parametrize("pure", [None, "0"])
def test_fresh_build_loads_the_extension(pure) -> None:
    _fresh_build(TRACKER, NAT)
    fresh, _stale = _native.check(_native.read_manifest())
    tracker, nat, status = json.loads(_python(_REPORT, pure=pure))
    assert tracker == fresh["ctswitch.conntrack.tracker"]
    assert os.path.dirname(tracker) == _native.NATIVE_DIR
    assert tracker.endswith(_native.abi())
    assert nat == fresh["ctswitch.conntrack.nat"]
    assert _loaded_count(status) == (len(fresh), len(_native.MODULES))


# Started with CTSWITCH_PURE=1, so that ``import ctswitch`` installs nothing; then the loader runs as
# without it, on a copy of the manifest (argv[1], its files named by absolute path), named as the
# profile-guided build names its training run's manifest.
_STALE = """
import json, os, sys, warnings
from ctswitch import _native
assert _native._installed is None
del os.environ[_native.ENV_PURE]
os.environ[_native.ENV_TRAINING_MANIFEST] = sys.argv[1]
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    _native.install()
    _native.install()
import ctswitch.conntrack.tracker as t, ctswitch.conntrack.nat as n
print(json.dumps({"warnings": [[x.category.__name__, str(x.message)] for x in w],
                  "tracker": t.__file__, "nat": n.__file__, "status": _native.status(),
                  "finder_first": sys.meta_path[0] is _native._installed}))
"""


def test_stale_module_falls_back_to_its_source(tmp_path) -> None:
    _fresh_build(TRACKER, NAT)
    manifest = _native.read_manifest()
    fresh, _stale = _native.check(manifest)
    manifest["modules"] = {n: dict(e, file=os.path.join(_native.NATIVE_DIR, e["file"]))
                           for n, e in manifest["modules"].items()}
    manifest["modules"][TRACKER] = dict(manifest["modules"][TRACKER], sha256="0" * 64)  # as if edited
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    out = json.loads(_python(_STALE, "1", str(path)))
    users = sorted(n for n in _native.MODULES if TRACKER in _native.needs(n)[1:])  # xlate reads CtVerdict typed
    assert users == ["datapath.datapath", "ofproto.xlate"]
    assert out["warnings"] == [["RuntimeWarning", "ctswitch: source changed since the compiled build, running as "
                                                  "Python: conntrack.tracker; also running as Python as they cimport "
                                                  "those types: datapath.datapath, ofproto.xlate (make rebuilds them)"]]
    assert out["tracker"] == _native.source_path(TRACKER)  # the stale one: its .py
    assert out["nat"] == fresh["ctswitch.conntrack.nat"]  # the others still compiled
    assert _loaded_count(out["status"]) == (len(fresh) - 1 - len(users), len(_native.MODULES))
    assert out["finder_first"] is True
