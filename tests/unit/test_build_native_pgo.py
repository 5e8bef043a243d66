"""The compiled core's profile-guided build (scripts/build_native.py, scripts/pgo_train.py)."""

from __future__ import annotations

import importlib.util
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
