"""Shared fixtures for the oracle tests (real Open vSwitch 3.1 as reference).

The harness modules live next to this file; pytest runs in importlib mode, so
this directory is put on sys.path for `import ovs_harness` / `import pcapfile`.
`ovs` skips a test with the reason when OVS cannot run here (not installed,
not root, or CTSWITCH_NO_OVS set).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ORACLE_DIR = Path(__file__).resolve().parent
if str(ORACLE_DIR) not in sys.path:
    sys.path.insert(0, str(ORACLE_DIR))

import ovs_harness  # noqa: E402

SCENARIOS_DIR = ORACLE_DIR / "scenarios"
# shared/ sits beside the checkout (on a developer's machine and in CI alike).
SHARED_CASES_DIR = Path(os.environ.get("CTSWITCH_ORACLE_CASES",
                                       ORACLE_DIR.parents[2] / "shared" / "oracle" / "cases"))


def scenario_dirs() -> list[Path]:
    """Stored differential scenarios (each has case.json and expected/)."""
    return sorted(p.parent for p in SCENARIOS_DIR.glob("*/case.json"))


@pytest.fixture(scope="session")
def ovs() -> None:
    reason = ovs_harness.ovs_available()
    if reason:
        pytest.skip(f"real Open vSwitch unavailable: {reason}")
