"""The compiled core's profile-guided build (scripts/build_native.py, scripts/pgo_train.py)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from ctswitch import _native

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _build_native():
    """The build script as a module (importing it sets CTSWITCH_PURE: callers restore it)."""
    spec = importlib.util.spec_from_file_location("build_native_under_test",
                                                  os.path.join(ROOT, "scripts", "build_native.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def script(monkeypatch):
    """The build script, its CTSWITCH_PURE undone afterwards; the environment as the test has it."""
    monkeypatch.setenv(_native.ENV_PURE, os.environ.get(_native.ENV_PURE, ""))
    return _build_native()


@pytest.fixture
def bn(script, monkeypatch):
    """The build script with neither CTSWITCH_PGO nor CC set."""
    monkeypatch.delenv(script.ENV_PGO, raising=False)
    monkeypatch.delenv("CC", raising=False)
    return script


def test_pgo_is_on_with_gcc(bn, monkeypatch) -> None:
    for cc in ("gcc", "x86_64-linux-gnu-gcc -pthread", "/usr/bin/gcc-12"):
        monkeypatch.setenv("CC", cc)
        assert bn._pgo_off([]) is None


@pytest.mark.parametrize("argv,env,cc,why", [
    (["--no-pgo"], None, "gcc", "not asked for (--no-pgo or CTSWITCH_PGO=0)"),
    ([], "0", "gcc", "not asked for (--no-pgo or CTSWITCH_PGO=0)"),
    ([], None, "clang", "the C compiler is clang, not GCC"),
    ([], None, "/usr/lib/llvm/bin/clang-gcc-compat", "the C compiler is clang-gcc-compat, not GCC"),
    ([], None, "cc", "the C compiler is cc, not GCC"),
])
def test_pgo_off_says_why(bn, monkeypatch, argv, env, cc, why) -> None:
    if env is not None:
        monkeypatch.setenv(bn.ENV_PGO, env)
    monkeypatch.setenv("CC", cc)
    assert bn._pgo_off(argv) == why


def test_the_training_run_succeeds() -> None:
    """A training run that fails makes the build fall back, silently slower: held here instead.
    It runs with whatever this tree has built (compiled or not, the same script)."""
    p = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "pgo_train.py")], cwd=ROOT,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout == ""  # (every command's output is captured)


def test_the_build_here_is_profile_guided(script) -> None:
    """The tree's own build took the profile-guided pass, unless it could not or was told not to."""
    manifest = _native.read_manifest()
    fresh, _stale = _native.check(manifest)
    if not fresh:
        pytest.skip("no compiled build: run make native (scripts/build_native.py)")
    why = script._pgo_off([])
    if why is not None:
        pytest.skip(f"the build is not profile-guided here: {why}")
    plain = sorted(n for n, e in manifest["modules"].items() if e.get("pgo") is not True)
    assert plain == [], "built without the profile (see make's 'native build: without a profile' line)"


class _Run:
    """subprocess.run as the training run sees it: records the call, answers as told."""

    def __init__(self, code=0, stderr="", timeout=False):
        self.code, self.stderr, self.timeout, self.calls = code, stderr, timeout, []

    def __call__(self, argv, **kw):
        env = kw["env"]
        with open(env[_native.ENV_TRAINING_MANIFEST]) as f:
            self.calls.append((argv, kw, json.load(f)))
        if self.timeout:
            raise subprocess.TimeoutExpired(argv, kw["timeout"])
        return subprocess.CompletedProcess(argv, self.code, "", self.stderr)


def _fake_build(calls, missing=()):
    def build(exts, jobs, tmp, cflags, ldflags):
        calls.append((sorted(exts), cflags, ldflags))
        return {n: f"{tmp}/lib/{n}-{len(calls)}.so" for n in exts if n not in missing}
    return build


@pytest.fixture
def trained(bn, monkeypatch, tmp_path):
    """_trained on two modules to build, beside one already built, with the compiler faked."""
    builds: list = []
    monkeypatch.setattr(bn, "_build", _fake_build(builds))
    monkeypatch.setenv(_native.ENV_PURE, "1")  # (the training run must not inherit it)
    exts = {"conntrack.nat": object(), "offload.fdb": object()}
    digests = {"conntrack.nat": "n" * 64, "offload.fdb": "f" * 64}
    entries = {"conntrack.tcp": {"file": "tcp.so", "sha256": "t" * 64, "pgo": True},
               "conntrack.nat": {"file": "old-nat.so", "sha256": "o" * 64}}

    def call(run):
        monkeypatch.setattr(subprocess, "run", run)
        return bn._trained(exts, digests, entries, 2, str(tmp_path))
    return call, builds, tmp_path


def test_trained_builds_instrumented_trains_and_builds_with_the_counts(trained) -> None:
    call, builds, tmp = trained
    run = _Run()
    done, why = call(run)
    assert why == ""
    assert builds == [(["conntrack.nat", "offload.fdb"], ["-fprofile-generate"], ["-fprofile-generate"]),
                      (["conntrack.nat", "offload.fdb"],
                       ["-fprofile-use", "-fprofile-correction", "-Wno-missing-profile"], [])]
    assert done == {"conntrack.nat": f"{tmp}/lib/conntrack.nat-2.so", "offload.fdb": f"{tmp}/lib/offload.fdb-2.so"}
    [(argv, kw, manifest)] = run.calls
    assert argv == [sys.executable, os.path.join(ROOT, "scripts", "pgo_train.py")]
    assert _native.ENV_PURE not in kw["env"] and kw["cwd"] == ROOT
    assert manifest == {"abi": _native.build_tag(), "modules": {  # instrumented, and the current build
        "conntrack.nat": {"file": f"{tmp}/lib/conntrack.nat-1.so", "sha256": "n" * 64},
        "offload.fdb": {"file": f"{tmp}/lib/offload.fdb-1.so", "sha256": "f" * 64},
        "conntrack.tcp": {"file": os.path.join(_native.NATIVE_DIR, "tcp.so"), "sha256": "t" * 64, "pgo": True}}}


@pytest.mark.parametrize("run,why", [
    (_Run(code=1, stderr="Traceback...\nSystemExit: pgo training: ctswitch replay exited 2: boom\n"),
     "the training run failed (SystemExit: pgo training: ctswitch replay exited 2: boom)"),
    (_Run(code=-9), "the training run failed (exit -9)"),
    (_Run(timeout=True), "the training run took more than 900 s"),
])
def test_trained_says_why_when_the_training_fails(trained, run, why) -> None:
    call, builds, _tmp = trained
    assert call(run) == ({}, why)
    assert [b[1] for b in builds] == [["-fprofile-generate"]]  # no second build: main builds plain


def test_trained_stops_when_the_instrumented_build_fails(bn, trained, monkeypatch) -> None:
    call, builds, _tmp = trained
    monkeypatch.setattr(bn, "_build", _fake_build(builds, missing={"offload.fdb"}))
    run = _Run()
    assert call(run) == ({}, "the instrumented build failed")
    assert run.calls == []
