"""Shared reads stay written once: no code copies what a migration defines as a view.

A sensor's effective alarm profile was the same four-table join in five places until
migration 0022 made it ``telemetry.sensor_effective_profiles``
(tests/integration/test_effective_profile.py checks that every reader sees the same).
The join's signature is matching a profile's ``default_for_quantity`` to a sensor's
quantity; outside the migrations nothing may write it again.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("ingest", "erp_core", "coldtrace", "coldchain", "dashboards", "gateway", "telemetry")

_COPIED_JOIN = re.compile(
    r"default_for_quantity\s*=\s*\w+\.quantity|\w+\.quantity\s*=\s*\w*\.?default_for_quantity"
)


def copies(text: str) -> list[int]:
    """Line numbers where the effective-profile join is written."""
    return [text.count("\n", 0, m.start()) + 1 for m in _COPIED_JOIN.finditer(text)]


def test_the_pattern_finds_the_old_join() -> None:
    old = (
        "  LEFT JOIN telemetry.alarm_profiles a ON a.id = sp.profile_id\n"
        "  LEFT JOIN telemetry.alarm_profiles d\n"
        "         ON d.default_for_quantity = s.quantity\n"
    )
    assert copies(old) == [3]
    assert copies("JOIN telemetry.sensors s ON s.quantity = p.default_for_quantity") == [1]
    assert copies("SELECT name FROM telemetry.alarm_profiles WHERE default_for_quantity = %s") == []


@pytest.mark.parametrize("package", PACKAGES)
def test_no_copy_of_the_effective_profile_join_is_left(package: str) -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
        for line in copies(path.read_text(encoding="utf-8"))
    ]
    assert found == [], "read telemetry.sensor_effective_profiles (migration 0022) instead"
