"""Alarm profiles (YAML defaults, validation) and the pure location compliance check."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coldchain.compliance import LocationSetup, Probe, check
from coldchain.errors import ProfileError
from coldchain.profiles import (
    DEFAULT_FOR_QUANTITY,
    AlarmProfile,
    default_profiles,
    load_profiles,
    profile_from_dict,
)


def by_name() -> dict[str, AlarmProfile]:
    return {p.name: p for p in default_profiles()}


def test_shipped_defaults_carry_the_regulatory_numbers():
    p = by_name()
    nmpa = p["nmpa-md-cold-chain-2-8"]
    assert (nmpa.low, nmpa.high) == (2.0, 8.0)
    assert nmpa.max_interval_storage_s == 30 * 60
    assert nmpa.max_interval_transport_s == 5 * 60
    assert nmpa.max_interval_excursion_s == 2 * 60
    assert nmpa.min_recipients == 2
    assert nmpa.min_probes_per_location == 2
    assert nmpa.calibration_interval_days == 365
    assert nmpa.alarm_delay_s == 0  # alarm on reaching the limit
    assert {"eu-gdp-2-8", "usp-1079-crt", "usp-1079-refrigerated"} <= set(p)
    assert p["usp-1079-crt"].mkt_limit == 25.0
    assert set(DEFAULT_FOR_QUANTITY.values()) <= set(p)


def test_profiles_round_trip_through_their_dict():
    for profile in default_profiles():
        assert profile_from_dict(profile.to_dict()) == profile


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"low": 8, "high": 2}, "below high"),
        ({"low": 2, "high": 8, "abs_high": 7}, "abs_high"),
        ({"low": 2, "high": 8, "abs_low": 3}, "abs_low"),
        ({"low": 2, "high": 8, "pre_alarm_band": 3}, "no range"),
        ({"low": 2, "high": 8, "alarm_delay_s": -1}, ">= 0"),
        ({"low": 2, "high": 8, "pre_alarm_delay_s": -1}, ">= 0"),
        ({"low": 2, "high": 8, "rolling_window_days": 0}, "rolling_window_days"),
        ({"low": 2, "high": 8, "colour": "red"}, "unknown fields"),
        ({"low": 2}, "high"),
    ],
)
def test_inconsistent_profiles_are_refused_with_their_name(fields, words):
    with pytest.raises(ProfileError, match=words) as info:
        profile_from_dict({"name": "bad", **fields})
    assert info.value.profile == "bad"


def test_yaml_needs_a_profiles_list_with_unique_names():
    with pytest.raises(ProfileError):
        load_profiles("- just a list")
    doc = "profiles:\n  - {name: a, low: 2, high: 8}\n  - {name: a, low: 2, high: 8}\n"
    with pytest.raises(ProfileError, match="duplicate"):
        load_profiles(doc)


@given(st.floats(-50, 50), st.floats(0.1, 30), st.floats(-100, 100))
def test_in_range_includes_both_limits(low, width, value):
    p = AlarmProfile(name="h", low=low, high=low + width)
    assert p.in_range(low)
    assert p.in_range(low + width)
    assert p.in_range(value) == (low <= value <= low + width)


NMPA = by_name()["nmpa-md-cold-chain-2-8"]
TODAY = date(2026, 11, 25)


def good_probe(uid: str) -> Probe:
    return Probe(uid=uid, interval_s=300, calibrated_on=date(2026, 3, 1), excursion_interval_s=60)


def test_a_compliant_cold_room_has_no_violations():
    setup = LocationSetup("CR-1", "storage", [good_probe("a"), good_probe("b")], recipients=2)
    assert check(setup, NMPA, today=TODAY) == []


def test_nmpa_violations_each_with_a_reason():
    probes = [
        Probe("a", interval_s=45 * 60, calibrated_on=date(2025, 11, 1)),  # slow, overdue
        # 30 min is fine in storage, not in a truck
    ]
    found = check(LocationSetup("CR-1", "storage", probes, recipients=1), NMPA, today=TODAY)
    rules = sorted(v.rule for v in found)
    assert rules == ["calibration", "excursion_interval", "interval", "probes", "recipients"]
    by_rule = {v.rule: v for v in found}
    assert "at least 2" in by_rule["probes"].reason
    assert "every 45 min" in by_rule["interval"].reason
    assert by_rule["interval"].probe == "a"
    assert "2026-11-01" in by_rule["calibration"].reason  # 2025-11-01 + 365 days

    truck = [Probe(uid, interval_s=30 * 60, calibrated_on=TODAY, excursion_interval_s=60)
             for uid in ("x", "y")]  # fmt: skip
    found = check(LocationSetup("TRUCK-7", "transport", truck, recipients=2), NMPA, today=TODAY)
    assert [(v.rule, v.probe) for v in found] == [("interval", "x"), ("interval", "y")]
    assert check(LocationSetup("CR-2", "storage", truck, recipients=2), NMPA, today=TODAY) == []


def test_a_probe_without_calibration_record_is_a_violation():
    setup = LocationSetup("F-1", "storage", [Probe("a", 60, None, 60)], recipients=3)
    (v,) = check(setup, by_name()["eu-gdp-2-8"], today=TODAY)
    assert v.rule == "calibration"
    assert "no calibration" in v.reason
