"""Runs every tests/scenarios/*.scn as its own test (id = the file's stem).

A scenario with a ``%xfail REASON`` line documents a known bug: it is expected to fail
(strictly, so that the fix is noticed and the line removed).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def _load_runner():
    name = "ctswitch_scenario_runner"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / "runner.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod  # dataclasses look the module up while the class is built
        spec.loader.exec_module(mod)
    return sys.modules[name]


runner = _load_runner()
SCENARIOS = sorted(HERE.glob("*.scn"))


def _param(path: Path):
    reason = runner.xfail_reason(str(path))
    marks = [pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason)] if reason else []
    return pytest.param(path, id=path.stem, marks=marks)


def test_there_are_scenarios():
    assert len(SCENARIOS) >= 8, f"expected the scenario files in {HERE}"


@pytest.mark.parametrize("path", [_param(p) for p in SCENARIOS])
def test_scenario(path: Path):
    runner.run_scenario(str(path))
