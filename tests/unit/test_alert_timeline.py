"""An alert's timeline merges its events and notifications in time order (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from erp_core.alerts.models import AlertEvent
from erp_core.alerts.timeline import timeline

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _event(n: int, event: str, minutes: float, **detail: object) -> AlertEvent:
    return AlertEvent(id=n, event=event, level=0, at=T0 + timedelta(minutes=minutes),
                      actor=None if event == "opened" else "qa", detail=detail)  # fmt: skip


def _sent(event: str, minutes: float, status: str = "sent", **extra: object) -> dict[str, object]:
    at = T0 + timedelta(minutes=minutes)
    return {"event": event, "level": 0, "channel": "email", "recipient": "Li Wei",
            "status": status, "attempts": 1, "created_at": at,
            "sent_at": at if status == "sent" else None,
            "failed_at": at if status == "failed" else None, **extra}  # fmt: skip


def test_a_step_comes_before_the_notifications_it_caused_and_times_order_the_rest() -> None:
    steps = timeline(
        [
            _event(1, "opened", 0),
            _event(2, "acknowledged", 20, comment="moving stock"),
            _event(3, "closed", 40, comment="fine", disposition="no impact"),
        ],
        [_sent("closed", 41), _sent("opened", 0), _sent("opened", 3, "failed")],
    )
    assert [(s.what, s.event) for s in steps] == [
        ("opened", None), ("notice", "opened"), ("notice", "opened"),
        ("acknowledged", None), ("closed", None), ("notice", "closed"),
    ]  # fmt: skip
    assert steps[2].status == "failed"
    assert steps[3].comment == "moving stock"
    assert (steps[4].disposition, steps[4].actor) == ("no impact", "qa")


def test_an_update_carries_the_figure_it_brought() -> None:
    (opened, updated) = timeline(
        [_event(1, "opened", 0, peak=8.4), _event(2, "updated", 5, peak=9.7)], []
    )
    assert (opened.peak, updated.peak) == (None, 9.7)


def test_a_waiting_notification_is_placed_when_it_was_created() -> None:
    (_, waiting) = timeline([_event(1, "opened", 0)], [_sent("opened", 5, "pending")])
    assert waiting.at == T0 + timedelta(minutes=5)
    assert waiting.status == "pending"


@given(
    st.lists(st.integers(0, 600), max_size=8),
    st.lists(st.integers(0, 600), max_size=8),
)
def test_every_event_and_notification_appears_once_in_time_order(
    events: list[int], sent: list[int]
) -> None:
    steps = timeline(
        [_event(i, "escalated", m) for i, m in enumerate(events)],
        [_sent("escalated", m) for m in sent],
    )
    assert len(steps) == len(events) + len(sent)
    times = [s.at for s in steps]
    assert times == sorted(times)
    assert sum(s.what == "notice" for s in steps) == len(sent)
