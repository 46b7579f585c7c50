"""Pre-alarms: hand cases, their relation to alarms, and independence from arrival order."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from coldchain.episodes import (
    PreAlarm,
    StoredEpisode,
    affected_window,
    detect,
    pre_alarms,
    reconcile,
    warning_profile,
)
from coldchain.profiles import AlarmProfile

MIN = 60_000
P = AlarmProfile(
    name="t", low=2.0, high=8.0, pre_alarm_band=0.5, pre_alarm_delay_s=120,
    alarm_delay_s=600, abs_low=0.0, abs_high=15.0,
)  # fmt: skip


def minutes(values: list[float]) -> tuple[list[int], list[float]]:
    return [i * MIN for i in range(len(values))], values


def test_a_short_visit_to_the_band_does_not_warn():
    (run,) = pre_alarms(*minutes([5.0, 7.8, 5.0]), P)
    assert (run.kind, run.start, run.end) == ("high", MIN, 2 * MIN)
    assert not run.raised


def test_lasting_in_the_band_warns_and_ends_with_the_run():
    (run,) = pre_alarms(*minutes([5.0, 7.6, 7.9, 7.7, 5.0]), P)
    assert run.raised
    assert (run.start, run.ended_at, run.alarm_at, run.peak) == (MIN, 4 * MIN, None, 7.9)


def test_the_low_band_warns_too():
    (run,) = pre_alarms(*minutes([5.0, 2.4, 2.2, 2.3, 2.4, 5.0]), P)
    assert (run.kind, run.raised, run.peak) == ("low", True, 2.2)


def test_out_of_range_before_the_alarm_delay_warns_and_the_alarm_takes_over():
    values = [5.0, 9.0, 9.0, 9.0] + [9.5] * 10 + [5.0]
    (run,) = pre_alarms(*minutes(values), P)
    (alarm,) = detect(*minutes(values), P)
    assert alarm.level == "alarm"
    assert run.raised
    assert run.alarm_at == MIN + 10 * MIN  # the 10 min delay reached
    assert run.ended_at == run.alarm_at
    assert run.peak == 9.5  # readings before the alarm took over
    assert run.end == 14 * MIN


def test_an_absolute_breach_at_once_leaves_no_pre_alarm_to_raise():
    (run,) = pre_alarms(*minutes([5.0, 16.0, 16.0, 16.0, 5.0]), P)
    assert run.alarm_at == MIN
    assert not run.raised


def test_alarm_on_reaching_the_limit_warns_only_from_the_band():
    nmpa = replace(P, alarm_delay_s=0, pre_alarm_delay_s=0)
    (direct,) = pre_alarms(*minutes([5.0, 9.0, 5.0]), nmpa)
    assert not direct.raised  # the alarm and the warning would come at the same instant
    (via_band,) = pre_alarms(*minutes([5.0, 7.8, 9.0, 5.0]), nmpa)
    assert via_band.raised
    assert via_band.alarm_at == 2 * MIN


def test_no_band_means_no_pre_alarms():
    assert pre_alarms(*minutes([5.0, 9.0, 9.0, 9.0, 5.0]), replace(P, pre_alarm_band=0.0)) == []


values_st = st.sampled_from([-1.0, 1.0, 2.2, 3.0, 5.0, 7.6, 8.0, 8.5, 12.0, 16.0])
readings_st = st.dictionaries(
    keys=st.integers(0, 120).map(lambda m: m * 60_000),
    values=values_st,
    min_size=1,
    max_size=50,
)


@settings(max_examples=200, deadline=None)
@given(readings=readings_st)
def test_every_alarm_lies_in_a_pre_alarm_run_and_ends_any_warning_by_its_alarm_time(readings):
    times = sorted(readings)
    values = [readings[t] for t in times]
    runs = pre_alarms(times, values, P)
    for ep in (e for e in detect(times, values, P) if e.level == "alarm"):
        (run,) = [r for r in runs if r.start <= ep.start and (r.end is None or ep.start < r.end)]
        assert run.kind == ep.kind
        assert run.alarm_at is not None
        assert run.alarm_at <= (ep.end if ep.end is not None else ep.last)
        if run.raised:
            assert run.start + P.pre_alarm_delay_s * 1000 < run.alarm_at


def _evaluate_batch(
    readings: dict[int, float], stored: dict[int, PreAlarm], next_id: list[int], batch: list[int]
) -> None:
    """What ingest's evaluation does with pre-alarm alerts for one batch, in memory."""
    min_t, max_t = min(batch), max(batch)
    near = [e for e in stored.values() if e.start <= max_t and (e.end is None or e.end >= min_t)]
    lo0 = min([min_t] + [e.start for e in near])
    open_ = any(e.end is None for e in near)
    hi0 = max([max_t] + [e.end for e in near if e.end is not None])
    times = sorted(readings)
    values = [readings[t] for t in times]
    warn = warning_profile(P)
    lo, hi = affected_window(times, values, warn, min_t=lo0, max_t=2**62 if open_ else hi0)
    window = [t for t in times if (lo is None or t >= lo) and (hi is None or t <= hi)]
    fresh = pre_alarms(window, [readings[t] for t in window], P)
    inside = [
        StoredEpisode(i, e.kind, e.start, e.end)
        for i, e in stored.items()
        if (lo is None or e.end is None or e.end > lo) and (hi is None or e.start < hi)
    ]
    plan = reconcile(inside, fresh)
    for gone in plan.superseded:
        del stored[gone]
    for sid, run in plan.upserts:
        if not run.raised:  # only raised runs are stored (as alerts)
            if sid is not None:
                del stored[sid]
            continue
        key = sid
        if key is None:
            key = next_id[0]
            next_id[0] += 1
        stored[key] = run


@settings(max_examples=300, deadline=None)
@given(readings=readings_st, data=st.data())
def test_pre_alarms_do_not_depend_on_arrival_order_or_batching(readings, data):
    order = data.draw(st.permutations(sorted(readings)))
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(order) - 1)), max_size=8)))
    batches = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=False)]
    stored: dict[int, PreAlarm] = {}
    seen: dict[int, float] = {}
    next_id = [1]
    for b in [x for x in batches if x]:
        for t in b:
            seen.setdefault(t, readings[t])
        _evaluate_batch(seen, stored, next_id, b)
    times = sorted(readings)
    expected = [r for r in pre_alarms(times, [readings[t] for t in times], P) if r.raised]
    assert sorted(stored.values(), key=lambda r: r.start) == expected
