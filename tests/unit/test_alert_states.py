"""The alert lifecycle rules (coldchain.alert_states): transitions, escalation, changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from coldchain.alert_states import (
    PEAK_STEP,
    Action,
    AlertState,
    Status,
    Told,
    escalation_due,
    meaningful_changes,
    refusal,
)

T0 = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
ORDER = [Status.OPEN, Status.ACKNOWLEDGED, Status.CLOSED]

states = st.builds(
    AlertState,
    status=st.sampled_from(list(Status)),
    ended=st.booleans(),
    episode=st.booleans(),
    escalation_level=st.integers(0, 5),
    opened_at=st.just(T0),
    superseded=st.booleans(),
)
names = st.sampled_from(["", "  ", "qa-lena"])


@given(states, st.sampled_from(list(Action)), names, names)
def test_a_step_is_allowed_exactly_when_the_lifecycle_says_so(state, action, actor, comment):
    allowed = refusal(state, action, actor=actor, comment=comment) is None
    named = bool(actor.strip() and comment.strip())
    if action is Action.ACKNOWLEDGE:
        assert allowed == (named and state.status is Status.OPEN)
    else:
        assert allowed == (named and state.status is Status.ACKNOWLEDGED and state.ended)


def step(state: AlertState, action: Action) -> AlertState:
    if refusal(state, action, actor="qa", comment="seen") is not None:
        return state
    new = Status.ACKNOWLEDGED if action is Action.ACKNOWLEDGE else Status.CLOSED
    return AlertState(new, ended=state.ended, episode=state.episode)


@given(st.lists(st.tuples(st.sampled_from(list(Action)), st.booleans()), max_size=12))
def test_any_sequence_only_moves_forward_and_closed_is_final(moves):
    state = AlertState(Status.OPEN, ended=False)
    seen = [state.status]
    for action, ends in moves:
        if ends:  # the condition may end at any time between steps, never restart
            state = AlertState(state.status, ended=True, episode=state.episode)
        state = step(state, action)
        seen.append(state.status)
    ranks = [ORDER.index(s) for s in seen]
    assert ranks == sorted(ranks)
    assert Status.CLOSED not in seen or Status.ACKNOWLEDGED in seen  # never skips the ack


def test_the_reasons_name_what_is_missing():
    open_ = AlertState(Status.OPEN, ended=True)
    acked = AlertState(Status.ACKNOWLEDGED, ended=False, episode=True)
    assert refusal(open_, Action.CLOSE, actor="qa", comment="x") == "it must be acknowledged first"
    assert refusal(acked, Action.CLOSE, actor="qa", comment="x") == (
        "the excursion is still in progress"
    )
    assert refusal(AlertState(Status.ACKNOWLEDGED, ended=False), Action.CLOSE, actor="qa",
                   comment="x") == "the condition lasts"  # fmt: skip
    assert refusal(acked, Action.ACKNOWLEDGE, actor="qa", comment="x") == "it is acknowledged"


@given(states, st.integers(0, 600), st.floats(1, 120))
def test_escalation_is_due_once_per_step_and_only_for_live_open_alerts(state, minutes, after):
    now = T0 + timedelta(minutes=minutes)
    due = escalation_due(state, now=now, after_minutes=after)
    expected = (state.escalation_level + 1) * after <= minutes
    assert due == (expected and state.status is Status.OPEN and not state.superseded)
    if due:  # and later it stays due until the level rises
        assert escalation_due(state, now=now + timedelta(minutes=1), after_minutes=after)


facts = st.builds(
    Told,
    peak=st.floats(-30, 40),
    ended=st.booleans(),
    late=st.booleans(),
    abs_breach=st.booleans(),
    budget=st.booleans(),
)


@given(facts, facts, st.sampled_from(["high", "low"]))
def test_only_news_is_told_again(told, now, side):
    changes = meaningful_changes(told, now, side=side)
    further = now.peak - told.peak if side == "high" else told.peak - now.peak
    assert ("peak" in changes) == (further >= PEAK_STEP)
    for flag in ("ended", "late", "abs_breach", "budget"):
        assert (flag in changes) == (getattr(now, flag) and not getattr(told, flag))
    assert meaningful_changes(now, now, side=side) == ()


def test_a_pre_alarm_tells_no_peak_and_names_its_ending():
    told = Told(None, ended=False, late=False)
    now = Told(None, ended=True, late=True)
    assert meaningful_changes(told, now, side="low", ended_as="alarm") == ("alarm", "late")
