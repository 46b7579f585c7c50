"""Excursion episodes: hand-computed cases, and independence from arrival order and batching."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coldchain.episodes import (
    Episode,
    StoredEpisode,
    affected_window,
    budget_exceeded,
    detect,
    reconcile,
    time_out_of_range_ms,
)
from coldchain.errors import ReadingsError
from coldchain.profiles import AlarmProfile

MIN = 60_000
P = AlarmProfile(
    name="t", low=2.0, high=8.0, alarm_delay_s=900, abs_low=0.0, abs_high=15.0,
    single_event_budget_s=600, cumulative_budget_s=3600,
)  # fmt: skip


def test_excursion_closed_by_a_reading_back_in_range():
    (ep,) = detect([0, MIN, 2 * MIN, 3 * MIN], [5.0, 9.0, 10.0, 5.0], P)
    assert (ep.kind, ep.start, ep.end, ep.last, ep.peak) == ("high", MIN, 3 * MIN, 2 * MIN, 10.0)
    assert ep.duration_ms == 2 * MIN
    assert ep.area == pytest.approx(1.0 * 1 + 2.0 * 1)  # (9-8)·1 min + (10-8)·1 min
    assert ep.readings == 2
    assert ep.level == "pre_alarm"
    assert not ep.delay_reached
    assert not ep.abs_breach


def test_open_episode_and_absolute_limit_alarms_at_once():
    (ep,) = detect([0, MIN, 2 * MIN], [5.0, 9.0, 16.0], P)
    assert ep.is_open
    assert ep.end is None
    assert ep.last == 2 * MIN
    assert ep.duration_ms == MIN
    assert ep.area == pytest.approx(1.0)  # the newest reading has no interval yet
    assert ep.abs_breach
    assert ep.level == "alarm"


def test_limits_are_in_range_and_a_jump_across_the_range_makes_two_episodes():
    assert detect([0, MIN], [8.0, 2.0], P) == []
    high, low = detect([0, MIN, 2 * MIN], [9.0, 1.0, 5.0], P)
    assert (high.kind, high.start, high.end) == ("high", 0, MIN)
    assert (low.kind, low.start, low.end, low.peak) == ("low", MIN, 2 * MIN, 1.0)
    assert low.area == pytest.approx(1.0)  # (2-1) °C for 1 min


def test_alarm_delay_is_reached_at_exactly_the_delay():
    p = AlarmProfile(name="d", low=2, high=8, alarm_delay_s=120)
    (at,) = detect([0, 2 * MIN], [9.0, 9.0], p)  # open: last - start = 2 min
    (short,) = detect([0, 2 * MIN - 1000, 2 * MIN], [9.0, 9.0, 5.0], p)  # closed at 2 min
    (shorter,) = detect([0, 2 * MIN - 1000], [9.0, 5.0], p)
    assert at.delay_reached
    assert short.delay_reached
    assert not shorter.delay_reached
    assert shorter.level == "pre_alarm"


def test_late_flag_comes_from_any_reading_of_the_episode():
    (ep,) = detect([0, MIN, 2 * MIN, 3 * MIN], [5.0, 9.0, 9.0, 5.0], P, late=[1, 0, 1, 0])
    assert ep.late
    (ep2,) = detect([0, MIN, 2 * MIN, 3 * MIN], [5.0, 9.0, 9.0, 5.0], P, late=[1, 0, 0, 1])
    assert not ep2.late  # the late readings are the in-range neighbours


def test_time_out_of_range_holds_each_value_until_the_next_reading():
    t = [0, MIN, 2 * MIN, 3 * MIN, 4 * MIN]
    v = [5.0, 9.0, 9.0, 5.0, 1.0]
    assert time_out_of_range_ms(t, v, P) == 2 * MIN  # 1→3 min; the last reading holds no time
    assert time_out_of_range_ms(t, v, P, start=MIN + 30_000) == 90_000
    assert time_out_of_range_ms(t, v, P, end=2 * MIN) == MIN
    assert time_out_of_range_ms([0], [20.0], P) == 0


def test_budgets():
    (ep,) = detect([0, 11 * MIN, 12 * MIN], [9.0, 9.0, 5.0], P)
    assert budget_exceeded(ep, 12 * MIN, P) == ["single excursion longer than 10 min"]
    assert len(budget_exceeded(ep, 61 * MIN, P)) == 2


def test_unsorted_or_mismatched_readings_are_refused():
    with pytest.raises(ReadingsError):
        detect([MIN, 0], [5.0, 5.0], P)
    with pytest.raises(ReadingsError):
        detect([0, 0], [5.0, 5.0], P)
    with pytest.raises(ReadingsError):
        detect([0, MIN], [5.0], P)


def test_reconcile_keeps_the_id_of_a_growing_episode_and_merges_two():
    (grown,) = detect([0, MIN, 2 * MIN, 3 * MIN], [9.0, 9.0, 9.0, 5.0], P)
    plan = reconcile([StoredEpisode(7, "high", 0, None)], [grown])
    assert plan.upserts == [(7, grown)]
    assert plan.superseded == {}
    # late data filled the gap between stored episodes 3 and 4: one episode, id 3 kept
    plan = reconcile(
        [StoredEpisode(4, "high", 2 * MIN, 3 * MIN), StoredEpisode(3, "high", 0, MIN)], [grown]
    )
    assert plan.upserts == [(3, grown)]
    assert plan.superseded == {4: 3}
    # a low episode is not the continuation of a high one
    (low,) = detect([0, MIN], [1.0, 5.0], P)
    plan = reconcile([StoredEpisode(5, "high", 0, MIN)], [low])
    assert plan.upserts == [(None, low)]
    assert plan.superseded == {5: None}


# --- order and batching independence -------------------------------------------------


def _evaluate_batch(
    readings: dict[int, float], stored: dict[int, Episode], next_id: list[int], batch: list[int]
) -> None:
    """What ingest.evaluate does for one committed batch, on in-memory state."""
    min_t, max_t = min(batch), max(batch)
    overlapping = [
        e for e in stored.values() if e.start <= max_t and (e.end is None or e.end >= min_t)
    ]
    lo0 = min([min_t] + [e.start for e in overlapping])
    open_ = any(e.end is None for e in overlapping)
    hi0 = max([max_t] + [e.end for e in overlapping if e.end is not None])
    times = sorted(readings)
    values = [readings[t] for t in times]
    lo, hi = affected_window(times, values, P, min_t=lo0, max_t=2**62 if open_ else hi0)
    window = [t for t in times if (lo is None or t >= lo) and (hi is None or t <= hi)]
    fresh = detect(window, [readings[t] for t in window], P)
    inside = [
        StoredEpisode(i, e.kind, e.start, e.end)
        for i, e in stored.items()
        if (lo is None or e.end is None or e.end > lo) and (hi is None or e.start < hi)
    ]
    plan = reconcile(inside, fresh)
    for gone in plan.superseded:
        del stored[gone]
    for sid, ep in plan.upserts:
        key = sid
        if key is None:
            key = next_id[0]
            next_id[0] += 1
        stored[key] = ep


readings_st = st.dictionaries(
    keys=st.integers(0, 200).map(lambda m: m * 30_000),
    values=st.sampled_from([-1.0, 1.0, 2.0, 5.0, 8.0, 8.5, 12.0, 16.0]),
    min_size=1,
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(readings=readings_st, data=st.data())
def test_episodes_do_not_depend_on_arrival_order_or_batching(readings, data):
    order = data.draw(st.permutations(sorted(readings)))
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(order) - 1)), max_size=8)))
    batches = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=False)]
    redeliver = data.draw(st.booleans())
    stored: dict[int, Episode] = {}
    seen: dict[int, float] = {}
    next_id = [1]
    for b in [x for x in batches if x]:
        for t in b:
            seen.setdefault(t, readings[t])
        _evaluate_batch(seen, stored, next_id, b)
        if redeliver:  # an at-least-once re-delivery of the same batch changes nothing
            before = dict(stored)
            _evaluate_batch(seen, stored, next_id, b)
            assert stored == before
    times = sorted(readings)
    expected = detect(times, [readings[t] for t in times], P)
    assert sorted(stored.values(), key=lambda e: e.start) == expected


@settings(max_examples=200, deadline=None)
@given(readings=readings_st)
def test_time_out_of_range_equals_the_sum_of_episode_durations(readings):
    times = sorted(readings)
    values = [readings[t] for t in times]
    total = sum(e.duration_ms for e in detect(times, values, P))
    assert time_out_of_range_ms(times, values, P) == total


@settings(max_examples=200, deadline=None)
@given(readings=readings_st)
def test_episodes_are_disjoint_runs_of_out_of_range_readings(readings):
    times = sorted(readings)
    values = [readings[t] for t in times]
    eps = detect(times, values, P)
    out = [t for t in times if not P.in_range(readings[t])]
    assert sum(e.readings for e in eps) == len(out)
    for a, b in itertools.pairwise(eps):
        assert a.end is not None
        assert a.end <= b.start
    for e in eps:
        members = [readings[t] for t in times if e.start <= t <= e.last]
        assert all(v > P.high for v in members) or all(v < P.low for v in members)
        assert e.peak == (max(members) if e.kind == "high" else min(members))
