"""Fuzzing central alert event documents as the gateway reads them (gateway/central_alerts.py).

Contract: ``decode_alert_event(payload: bytes) -> AlertEvent | None`` never raises: a
document that is not an alert event (not JSON, nested too deeply, a field of the wrong
type, another ``type``) is None and ignored. ``hold_reason`` of a decoded event says
why an output is held, bounded in length (it goes into the gateway state message),
or None for an event that releases it. Fed to a local alarm, a stream of events holds
the output exactly while the last event of some alert on a watched sensor is open.
"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from gateway.alarm import LocalAlarm
from gateway.central_alerts import decode_alert_event, hold_reason
from gateway.config import LocalLimit
from tests.fuzz_support import dumps, fuzz_settings, hostile_text, invalid_utf8, json_values, nested

# docs/wire-contract.md, `alerts`: the notifier's event document
DOCUMENTED = (
    b'{"v": 1, "type": "alert_event", "event_id": 41, "alert_id": 12, "event": "opened",'
    b' "level": 0, "at": "2026-01-15T09:47:02Z", "actor": null, "kind": "excursion_high",'
    b' "severity": "critical", "status": "open", "site": "plant-1",'
    b' "location": "Cold room 2 / Fridge 7", "sensor": "fridge-a", "quantity": "temperature",'
    b' "unit": "Cel", "peak": 9.5, "duration_s": 1805.0, "late": true,'
    b' "started_at": "2026-01-15T09:30:00Z", "ended_at": null,'
    b' "limits": {"low": 2.0, "high": 8.0}, "summary": "Fridge 7 above 8.0 Cel",'
    b' "url": "https://coldtrace.example.com/alerts/12", "delivery_id": 77}'
)

EVENTS = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["alert_event", "other", ""]) | hostile_text(max_size=5),
        "alert_id": st.integers(-5, 20)
        | st.integers(2**63, 2**70)
        | st.floats()
        | st.text(max_size=2),
        "status": st.sampled_from(["open", "acknowledged", "closed", "OPEN"]) | st.none(),
        "sensor": st.sampled_from(["fridge-a", "fridge-b"]) | hostile_text(max_size=10) | st.none(),
        "kind": st.text(max_size=10) | st.none(),
        "summary": hostile_text(max_size=50) | st.none() | st.integers(),
        "limits": json_values(max_leaves=5),
    },
)


def _decoded_or_none(payload: bytes) -> None:
    event = decode_alert_event(payload)
    if event is None:
        return
    assert event.type == "alert_event"
    reason = hold_reason(event)
    assert (reason is None) == (event.status != "open")
    if reason is not None:
        assert reason.startswith(f"central alert {event.alert_id}")
        assert len(reason) <= 300


@fuzz_settings()
@given(
    st.one_of(EVENTS.map(dumps), json_values().map(dumps), st.binary(max_size=100), invalid_utf8())
)
def test_any_payload_is_an_alert_event_or_ignored(payload: bytes) -> None:
    _decoded_or_none(payload)


@fuzz_settings(scale=0.3)
@given(st.integers(1, 200_000), st.sampled_from(["list", "dict"]))
@example(100_000, "list")  # msgspec raised RecursionError: the publisher's receive loop died
def test_deep_nesting_is_ignored(depth: int, kind: str) -> None:
    _decoded_or_none(nested(depth, kind=kind))
    _decoded_or_none(
        b'{"type":"alert_event","alert_id":1,"status":"open","x":' + nested(depth, kind=kind) + b"}"
    )


def test_a_huge_summary_holds_with_a_bounded_reason() -> None:
    # a 1 MB summary went whole into the alarm's causes and so into every state message
    payload = (
        b'{"type":"alert_event","alert_id":3,"status":"open","summary":"' + b"x" * 1_000_000 + b'"}'
    )
    event = decode_alert_event(payload)
    assert event is not None
    reason = hold_reason(event)
    assert reason is not None
    assert reason.startswith("central alert 3: xxx")
    assert len(reason) <= 300


@fuzz_settings()
@given(
    st.lists(
        st.tuples(
            st.integers(1, 4),
            st.sampled_from(["open", "acknowledged", "closed"]),
            st.sampled_from(["fridge-a", "fridge-b"]),
        ),
        max_size=12,
    )
)
def test_an_output_is_held_exactly_while_an_alert_on_a_watched_sensor_is_open(
    events: list[tuple[int, str, str]],
) -> None:
    alarm = LocalAlarm("buzzer", [LocalLimit(sensor="fridge-a", high=8.0)])
    last: dict[int, str] = {}
    for alert_id, status, sensor in events:
        payload = dumps(
            {"type": "alert_event", "alert_id": alert_id, "status": status, "sensor": sensor}
        )
        event = decode_alert_event(payload)
        assert event is not None
        if event.sensor == "fridge-a":  # AlarmOutputDriver.central passes watched sensors only
            alarm.hold(f"alert {event.alert_id}", hold_reason(event), 0)
            last[alert_id] = status
    assert alarm.active == any(status == "open" for status in last.values())


def test_the_documented_event_holds_the_output() -> None:
    event = decode_alert_event(DOCUMENTED)
    assert event is not None
    assert (event.alert_id, event.status, event.sensor, event.kind) == (
        12,
        "open",
        "fridge-a",
        "excursion_high",
    )
    assert hold_reason(event) == "central alert 12: Fridge 7 above 8.0 Cel"
    closed = decode_alert_event(DOCUMENTED.replace(b'"status": "open"', b'"status": "closed"'))
    assert closed is not None
    assert hold_reason(closed) is None
