"""The local alarm logic: active exactly while a watched sensor's newest reading is out of range."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from gateway.alarm import LocalAlarm, breach
from gateway.central_alerts import alerts_topic, decode_alert_event, hold_reason
from gateway.config import LocalLimit
from telemetry.payloads import Reading

FRIDGE = LocalLimit(sensor="fridge-a", low=2.0, high=8.0)
FREEZER = LocalLimit(sensor="freezer-b", high=-15.0)


def temp(sensor: str, value: float, t: int = 0) -> Reading:
    return Reading(t=t, sensor=sensor, qty="temperature", value=value, unit="Cel")


def test_limits_are_inclusive_like_the_excursion_rules() -> None:
    assert breach(FRIDGE, 8.0) is None
    assert breach(FRIDGE, 2.0) is None
    assert breach(FRIDGE, 8.05) == "fridge-a temperature 8.05 > 8"
    assert breach(FRIDGE, 1.5) == "fridge-a temperature 1.5 < 2"
    assert breach(FREEZER, -40.0) is None  # no low limit


def test_on_when_beyond_off_when_every_sensor_is_back() -> None:
    alarm = LocalAlarm("buzzer", [FRIDGE, FREEZER])
    assert alarm.observe([temp("fridge-a", 5.0)], 1_000) is False
    assert (alarm.active, alarm.since) == (False, None)
    assert alarm.observe([temp("fridge-a", 9.0), temp("freezer-b", -10.0)], 2_000) is True
    assert (alarm.active, alarm.since) == (True, 2_000)
    assert alarm.causes() == ["freezer-b temperature -10 > -15", "fridge-a temperature 9 > 8"]
    # one back in range: still on, since unchanged
    assert alarm.observe([temp("fridge-a", 7.0)], 3_000) is False
    assert (alarm.active, alarm.since) == (True, 2_000)
    assert alarm.observe([temp("freezer-b", -20.0)], 4_000) is True
    assert (alarm.active, alarm.since, alarm.causes()) == (False, None, [])


def test_other_sensors_and_quantities_are_ignored() -> None:
    alarm = LocalAlarm("buzzer", [FRIDGE])
    humid = Reading(t=0, sensor="fridge-a", qty="humidity", value=95.0, unit="%")
    assert alarm.observe([humid, temp("fridge-z", 30.0)], 0) is False
    assert not alarm.active


def test_state_reports_the_output() -> None:
    alarm = LocalAlarm("buzzer", [FRIDGE])
    alarm.observe([temp("fridge-a", 12.0)], 5_000)
    state = alarm.state(output_on=None, error="ttyUSB0 unit 2 coil 0: timeout")
    assert (state.name, state.active, state.since, state.output_on) == ("buzzer", True, 5_000, None)
    assert state.error == "ttyUSB0 unit 2 coil 0: timeout"


@given(st.lists(st.tuples(st.sampled_from(["fridge-a", "freezer-b"]), st.floats(-50, 50))))
def test_active_iff_some_newest_reading_is_out_of_range(seq: list[tuple[str, float]]) -> None:
    alarm = LocalAlarm("buzzer", [FRIDGE, FREEZER])
    newest: dict[str, float] = {}
    for i, (sensor, value) in enumerate(seq):
        alarm.observe([temp(sensor, value, t=i)], i)
        newest[sensor] = value
    out_of_range = {"fridge-a": lambda v: v < 2.0 or v > 8.0, "freezer-b": lambda v: v > -15.0}
    expected = any(out_of_range[s](v) for s, v in newest.items())
    assert alarm.active is expected
    assert (alarm.since is not None) is expected


def test_a_held_alert_and_the_limits_each_keep_the_alarm_on() -> None:
    alarm = LocalAlarm("buzzer", [FRIDGE])
    assert alarm.hold("alert 1", "central alert 1: door open", 1_000) is True
    assert (alarm.active, alarm.since) == (True, 1_000)
    assert alarm.observe([temp("fridge-a", 9.0)], 2_000) is False  # already on
    assert alarm.causes() == ["fridge-a temperature 9 > 8", "central alert 1: door open"]
    assert alarm.hold("alert 1", None, 3_000) is False  # the limit still holds it
    assert alarm.observe([temp("fridge-a", 5.0)], 4_000) is True
    assert (alarm.active, alarm.since) == (False, None)
    assert alarm.hold("alert 2", None, 5_000) is False  # releasing an unknown alert: no-op


def test_alert_events_are_read_leniently() -> None:
    doc = {"v": 1, "type": "alert_event", "alert_id": 7, "status": "open", "sensor": "s"}
    event = decode_alert_event(json.dumps(doc | {"extra": [1, 2]}).encode())
    assert event is not None
    assert hold_reason(event) == "central alert 7: open"
    summary = decode_alert_event(json.dumps(doc | {"summary": "too warm"}).encode())
    assert summary is not None
    assert hold_reason(summary) == "central alert 7: too warm"
    for status in ("acknowledged", "closed"):
        released = decode_alert_event(json.dumps(doc | {"status": status}).encode())
        assert released is not None
        assert hold_reason(released) is None
    assert decode_alert_event(b"not json") is None
    assert decode_alert_event(json.dumps(doc | {"type": "other"}).encode()) is None
    assert decode_alert_event(json.dumps({"type": "alert_event"}).encode()) is None
    assert alerts_topic("plant-1") == "ct/v1/plant-1/alerts"


def test_two_limits_on_one_sensor_both_apply() -> None:
    high = LocalLimit(sensor="fridge-a", high=8.0)
    low = LocalLimit(sensor="fridge-a", low=2.0)
    alarm = LocalAlarm("buzzer", [high, low])
    assert alarm.observe([temp("fridge-a", 9.0)], 1_000) is True
    assert alarm.active  # the low limit, in range, must not clear the broken high one
    assert alarm.causes() == ["fridge-a temperature 9 > 8"]
    assert alarm.observe([temp("fridge-a", 1.0)], 2_000) is False
    assert alarm.causes() == ["fridge-a temperature 1 < 2"]
    assert alarm.observe([temp("fridge-a", 5.0)], 3_000) is True
    assert not alarm.active


def test_known_only_once_every_watched_sensor_has_answered() -> None:
    alarm = LocalAlarm("buzzer", [FRIDGE, FREEZER])
    assert not alarm.known
    alarm.observe([temp("fridge-a", 5.0)], 1_000)
    assert not alarm.known  # freezer-b has not answered: "not active" is not "clear"
    alarm.observe([temp("freezer-b", -20.0)], 2_000)
    assert alarm.known
