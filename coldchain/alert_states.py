"""The alert lifecycle as a pure state machine: what may happen to an alert, and when.

open → acknowledged (a named person, with a comment) → closed (a named person, a
disposition and a comment; only once the condition has ended). An open alert that
nobody acknowledges escalates one level every ``after_minutes`` since it opened —
unless an alarm took over the pre-alarm or late data merged or withdrew it; an
acknowledged alert no longer escalates. While the condition lasts, evaluation refreshes
the alert's figures; only a *meaningful change* is told again (an ``updated`` event):
the peak moved another ``PEAK_STEP`` further from the limit, the condition ended (or an
alarm took the pre-alarm over), late data showed up, an absolute limit was breached, a
budget was exceeded.

Ingest (evaluation and escalation) and the ERP (acknowledge, close) decide with these
functions; the database functions of migration 0023 then write the change and its
``telemetry.alert_events`` row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

PEAK_STEP = 0.5  # °C the peak must rise (or fall) before people are told again


class Status(StrEnum):
    """Where an alert is in its lifecycle."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


class Action(StrEnum):
    """What a person does to an alert."""

    ACKNOWLEDGE = "acknowledge"
    CLOSE = "close"


class Disposition(StrEnum):
    """How quality staff concluded an alert."""

    NO_IMPACT = "no impact"
    PRODUCT_ASSESSED = "product assessed"
    PRODUCT_REJECTED = "product rejected"
    FALSE_ALARM = "false alarm"


@dataclass(frozen=True, slots=True)
class AlertState:
    """What the lifecycle rules need to know about one alert."""

    status: Status
    ended: bool  # the condition (or excursion) is over
    episode: bool = False  # an excursion episode's alert (else a sensor condition)
    escalation_level: int = 0
    opened_at: datetime | None = None
    superseded: bool = False  # a pre-alarm an alarm took over, or merged/withdrawn


def refusal(state: AlertState, action: Action, *, actor: str, comment: str) -> str | None:
    """Why a person may not do ``action`` to an alert in ``state`` now (None: they may)."""
    if not (actor.strip() and comment.strip()):
        return "a named person and a comment are required"
    if action is Action.ACKNOWLEDGE:
        return None if state.status is Status.OPEN else f"it is {state.status}"
    if state.status is Status.OPEN:
        return "it must be acknowledged first"
    if state.status is Status.CLOSED:
        return "it is already closed"
    if not state.ended:
        return "the excursion is still in progress" if state.episode else "the condition lasts"
    return None


def escalation_due(state: AlertState, *, now: datetime, after_minutes: float) -> bool:
    """Whether an alert should rise one escalation level at ``now``."""
    if state.status is not Status.OPEN or state.superseded or state.opened_at is None:
        return False
    step = timedelta(minutes=after_minutes)
    return now >= state.opened_at + (state.escalation_level + 1) * step


@dataclass(frozen=True, slots=True)
class Told:
    """The facts of an alert that people are told about (as last told, or as now)."""

    peak: float | None  # None: the peak is not told (pre-alarms)
    ended: bool
    late: bool
    abs_breach: bool = False
    budget: bool = False


def meaningful_changes(
    told: Told, now: Told, *, side: Literal["high", "low"], ended_as: str = "ended"
) -> tuple[str, ...]:
    """What changed enough since ``told`` to tell people again (empty: a silent refresh).

    ``side`` is the limit the value is beyond; ``ended_as`` names an ending (a
    pre-alarm's ending by an alarm taking over is ``alarm``).
    """
    changes = []
    if told.peak is not None and now.peak is not None:
        rise = now.peak - told.peak if side == "high" else told.peak - now.peak
        if rise >= PEAK_STEP:
            changes.append("peak")
    if now.ended and not told.ended:
        changes.append(ended_as)
    if now.late and not told.late:
        changes.append("late")
    if now.abs_breach and not told.abs_breach:
        changes.append("abs_breach")
    if now.budget and not told.budget:
        changes.append("budget")
    return tuple(changes)
