"""Pre-alarms, the rolling MKT and the cumulative time-out-of-range budget, on real PostgreSQL.

Readings are written straight into ``telemetry.readings`` with their ``eval_pending``
range, as the store does, and evaluated by ``evaluate_pending`` / ``sweep``.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coldchain.episodes import pre_alarms, time_out_of_range_ms
from coldchain.mkt import window_mkt
from coldchain.profiles import AlarmProfile
from ingest import eval_rolling
from ingest.alerts import escalate_due
from ingest.eval_target import load_targets
from ingest.evaluate import evaluate_pending, sweep
from ingest.notify import admin
from tests.integration.test_alerts import assign_profile, events, one, q
from tests.integration.test_notifier import add_recipient, add_route

MIN = 60_000
PRE = AlarmProfile(
    name="pre", low=2.0, high=8.0, pre_alarm_band=0.5, pre_alarm_delay_s=120,
    alarm_delay_s=600, abs_low=0.0, abs_high=15.0,
)  # fmt: skip
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
BASE = int(NOW.timestamp() * 1000) - 120 * MIN


def dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def add(db_url: str, sid: int, points: list[tuple[int, float]], *, now: datetime = NOW) -> None:
    """Store one batch the way ingest does, then evaluate it."""
    with psycopg.connect(db_url) as conn:
        conn.cursor().executemany(
            "INSERT INTO telemetry.readings (time, sensor_id, value, received_at) "
            "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [(dt(t), sid, v, dt(t)) for t, v in points],
        )
        conn.execute(
            "INSERT INTO telemetry.eval_pending (sensor_id, min_t, max_t) VALUES (%s, %s, %s)",
            (sid, dt(min(t for t, _ in points)), dt(max(t for t, _ in points))),
        )
        evaluate_pending(conn, now=now)


def pre_rows(db_url: str, sid: int) -> list[tuple]:
    return q(
        db_url,
        "SELECT kind, severity, started_at, ended_at, peak, detail->>'alarm_alert_id' IS NOT NULL "
        "FROM telemetry.alerts WHERE sensor_id = %s AND kind LIKE 'pre_alarm%%' "
        "ORDER BY started_at",
        (sid,),
    )


# minute readings: in range, 3 min in the band, in range, then out of range until the
# 10 min alarm delay is reached, back in range; finally a short visit to the band
SERIES = (
    [5.0] * 3 + [7.7, 7.8, 7.9, 7.6] + [5.0] * 3 + [7.6, 9.0, 9.5] + [10.0] * 12 + [5.0] * 3
    + [7.7, 5.0]
)  # fmt: skip
POINTS = [(BASE + i * MIN, v) for i, v in enumerate(SERIES)]


def test_pre_alarms_from_the_band_and_before_the_delay_and_the_alarm_takes_over(db_url):
    sid = assign_profile(db_url, "pre-a", PRE)
    for k in range(0, len(POINTS), 4):
        add(db_url, sid, POINTS[k : k + 4])
    band, before_alarm = pre_rows(db_url, sid)
    # the band alone: 7.7 … 7.6 for 4 min, ended by the first reading back inside
    assert band == ("pre_alarm_high", "warning", dt(BASE + 3 * MIN), dt(BASE + 7 * MIN), 7.9, False)
    # from 7.6 at minute 10 (out of range from minute 11); the alarm takes over at 11 + 10
    assert before_alarm[:4] == ("pre_alarm_high", "warning", dt(BASE + 10 * MIN),
                                dt(BASE + 21 * MIN))  # fmt: skip
    assert before_alarm[5] is True  # linked to the alarm's alert
    (alarm_id,) = q(db_url, "SELECT id FROM telemetry.alerts WHERE kind = 'excursion_high'")[0]
    linked = one(
        db_url,
        "SELECT (detail->>'alarm_alert_id')::int FROM telemetry.alerts WHERE started_at = %s",
        (dt(BASE + 10 * MIN),),
    )
    assert linked == alarm_id
    # each pre-alarm was opened once (no duplicate while it grew); the band one reached
    # its delay in the batch that also ended it, the other was told when the alarm took over
    band_id, taken_id = (r[0] for r in q(
        db_url, "SELECT id FROM telemetry.alerts WHERE kind LIKE 'pre_alarm%%' ORDER BY started_at"
    ))  # fmt: skip
    assert events(db_url, band_id) == ["opened"]
    assert events(db_url, taken_id) == ["opened", "updated"]
    told = "SELECT detail->'changes' FROM telemetry.alert_events WHERE alert_id = %s AND "
    assert one(db_url, told + "event = 'updated'", (taken_id,)) == ["alarm"]
    # the short visit at the end (1 min < 2 min delay) raised nothing
    assert len(pre_rows(db_url, sid)) == 2


def test_pre_alarms_do_not_depend_on_arrival_order(db_url):
    in_order = assign_profile(db_url, "pre-in-order", PRE)
    shuffled = assign_profile(db_url, "pre-shuffled", PRE)
    for k in range(0, len(POINTS), 4):
        add(db_url, in_order, POINTS[k : k + 4])
    batches = [POINTS[k : k + 3] for k in range(0, len(POINTS), 3)]
    for b in [*batches[1::2][::-1], *batches[::2]]:  # odd batches backwards, then the even
        add(db_url, shuffled, b)
    assert pre_rows(db_url, shuffled) == pre_rows(db_url, in_order)
    opened = (
        "SELECT count(*) FROM telemetry.alert_events e JOIN telemetry.alerts a "
        "ON a.id = e.alert_id WHERE a.sensor_id = %s AND e.event = 'opened'"
    )
    assert one(db_url, opened, (shuffled,)) == one(db_url, opened, (in_order,))


def test_a_pre_alarm_taken_over_by_an_alarm_stops_escalating_the_alarm_goes_on(db_url):
    sid = assign_profile(db_url, "pre-esc", PRE)
    add(db_url, sid, POINTS[:26])
    with psycopg.connect(db_url) as conn:
        escalated = escalate_due(conn, now=NOW + timedelta(minutes=16), after_minutes=15)
    kinds = dict(q(db_url, "SELECT id, kind FROM telemetry.alerts WHERE sensor_id = %s", (sid,)))
    # the band pre-alarm (ended on its own) and the alarm escalate; the one taken over not
    assert sorted(kinds[i] for i in escalated) == ["excursion_high", "pre_alarm_high"]
    assert len(kinds) == 3


def test_late_data_that_shows_the_alarm_came_first_withdraws_the_pre_alarm(db_url):
    sid = assign_profile(db_url, "pre-wd", PRE)
    add(db_url, sid, [(BASE, 5.0), (BASE + MIN, 9.0), (BASE + 4 * MIN, 9.0)])
    ((alert_id, ended),) = q(
        db_url, "SELECT id, ended_at FROM telemetry.alerts WHERE kind = 'pre_alarm_high'"
    )
    assert ended is None
    add(db_url, sid, [(BASE + 2 * MIN, 16.0)])  # a late reading beyond the absolute limit
    assert events(db_url, alert_id) == ["opened", "updated"]
    assert one(db_url, "SELECT detail->>'run_status' FROM telemetry.alerts WHERE id = %s",
               (alert_id,)) == "withdrawn"  # fmt: skip
    assert one(db_url, "SELECT count(*) FROM telemetry.alerts WHERE kind = 'excursion_high'") == 1


ROLL = AlarmProfile(
    name="roll", low=2.0, high=8.0, alarm_delay_s=900, mkt_limit=8.0,
    cumulative_budget_s=3 * 3600, rolling_window_days=1.0, offline_after_s=3600,
)  # fmt: skip


def _hours(start: datetime, values: list[float], step_min: int = 10) -> list[tuple[int, float]]:
    t0 = int(start.timestamp() * 1000)
    return [(t0 + i * step_min * MIN, v) for i, v in enumerate(values)]


def test_rolling_mkt_and_time_out_of_range_raise_refresh_and_end(db_url):
    sid = assign_profile(db_url, "roll-a", ROLL)
    start = NOW - timedelta(hours=30)
    # 30 h of 10-min readings: 6 °C, then 6 h at 14 °C ending 8 h before NOW, then 6 °C
    values = [6.0] * 96 + [14.0] * 36 + [6.0] * 48 + [6.0]
    points = _hours(start, values)
    add(db_url, sid, points)
    with psycopg.connect(db_url) as conn:
        sweep(conn, now=NOW)
    mkt, tor_s = q(db_url, "SELECT mkt, tor_s FROM telemetry.rolling_checks")[0]
    times, vals = [t for t, _ in points], [v for _, v in points]
    lo, hi = int((NOW - timedelta(days=1)).timestamp() * 1000), int(NOW.timestamp() * 1000)
    assert abs(mkt - window_mkt(times, vals, start=lo, end=hi, max_step=3600_000)) < 1e-6
    assert tor_s == time_out_of_range_ms(times, vals, ROLL, start=lo, end=hi) / 1000 == 6 * 3600
    assert mkt > 8.0
    kinds = dict(q(db_url, "SELECT kind, severity FROM telemetry.alerts WHERE episode_id IS NULL"))
    assert kinds == {"mkt_exceeded": "critical", "tor_budget_exceeded": "critical"}
    # new in-range readings skip the per-batch evaluation despite the live MKT alert
    with psycopg.connect(db_url) as conn:
        t = int((NOW + timedelta(minutes=1)).timestamp() * 1000)
        conn.execute(
            "INSERT INTO telemetry.readings (time, sensor_id, value) VALUES (%s, %s, 5.0)",
            (dt(t), sid),
        )
        conn.execute(
            "INSERT INTO telemetry.eval_pending (sensor_id, min_t, max_t) VALUES (%s, %s, %s)",
            (sid, dt(t), dt(t)),
        )
        assert evaluate_pending(conn, now=NOW).skipped == 1
    # within rolling_every_s nothing is recomputed
    with psycopg.connect(db_url) as conn:
        sweep(conn, now=NOW + timedelta(minutes=5))
    assert one(db_url, "SELECT checked_at FROM telemetry.rolling_checks") == NOW
    # past it, the live alerts' figures are refreshed silently (no second event)
    refresh = NOW + timedelta(minutes=20)
    with psycopg.connect(db_url) as conn:
        sweep(conn, now=refresh)
    assert one(db_url, "SELECT checked_at FROM telemetry.rolling_checks") == refresh
    rows = q(
        db_url, "SELECT id, detail->>'checked_at' FROM telemetry.alerts WHERE episode_id IS NULL"
    )
    assert {checked for _, checked in rows} == {refresh.isoformat()}
    assert all(events(db_url, alert_id) == ["opened"] for alert_id, _ in rows)
    # a day later the warm hours have left the window: both alerts end, one event each
    later = NOW + timedelta(hours=23)
    add(db_url, sid, _hours(NOW, [6.0] * 139), now=later)
    with psycopg.connect(db_url) as conn:
        sweep(conn, now=later)
    rows = q(db_url, "SELECT id, ended_at FROM telemetry.alerts WHERE episode_id IS NULL")
    assert all(ended == later for _, ended in rows)
    for alert_id, _ in rows:
        assert events(db_url, alert_id) == ["opened", "updated"]


def test_one_sweep_checks_a_bounded_batch_least_recently_checked_first(db_url):
    ids = [assign_profile(db_url, f"roll-{i}", ROLL) for i in range(3)]
    for sid in ids:
        add(db_url, sid, _hours(NOW - timedelta(hours=2), [6.0] * 13))
    checked = "SELECT sensor_id, checked_at FROM telemetry.rolling_checks ORDER BY sensor_id"
    with psycopg.connect(db_url) as conn:
        targets = list(load_targets(conn, ids).values())
        eval_rolling.check_due(conn, targets=targets, now=NOW, every_s=900, batch=2)
        assert [r[0] for r in conn.execute(checked)] == ids[:2]
        later = NOW + timedelta(minutes=1)
        eval_rolling.check_due(conn, targets=targets, now=later, every_s=900, batch=2)
        assert conn.execute(checked).fetchall() == [(ids[0], NOW), (ids[1], NOW), (ids[2], later)]
        last = NOW + timedelta(minutes=16)  # all due again: the two oldest first
        eval_rolling.check_due(conn, targets=targets, now=last, every_s=900, batch=2)
        assert [r[1] for r in conn.execute(checked)] == [last, last, later]


def test_people_required_per_site_come_from_the_profiles_min_recipients(db_url):
    with psycopg.connect(db_url) as conn:
        for site in ("plant-n", "plant-h", "plant-o"):
            conn.execute("INSERT INTO telemetry.gateways (id, site) VALUES (%s, %s)", (site, site))
            add_recipient(conn, f"QA {site}", email=f"qa@{site}.example", site=site)
        add_recipient(conn, "QA elsewhere", email="qa@x.example", site="plant-x")
        add_route(conn, "email", role="qa")
        (nmpa,) = conn.execute(
            "SELECT id FROM telemetry.alarm_profiles WHERE name = 'nmpa-md-cold-chain-2-8'"
        ).fetchone()
        for uid, gw in (
            ("cold-room-n", "plant-n"),
            ("fridge-h", "plant-h"),
            ("fridge-o", "plant-o"),
        ):
            conn.execute(
                "INSERT INTO telemetry.sensors (uid, quantity, unit, gateway_id) "
                "VALUES (%s, 'temperature', 'Cel', %s)",
                (uid, gw),
            )
        conn.execute(
            "INSERT INTO telemetry.sensor_profiles (sensor_id, profile_id) "
            "SELECT id, %s FROM telemetry.sensors WHERE uid = 'cold-room-n'",
            (nmpa,),
        )
        # a plant's own profile that accepts one person
        (one,) = conn.execute(
            "INSERT INTO telemetry.alarm_profiles (name, spec) SELECT 'one-person',"
            " jsonb_set(spec, '{min_recipients}', '1') FROM telemetry.alarm_profiles"
            " WHERE name = 'fridge-2-8' RETURNING id"
        ).fetchone()
        conn.execute(
            "INSERT INTO telemetry.sensor_profiles (sensor_id, profile_id) "
            "SELECT id, %s FROM telemetry.sensors WHERE uid = 'fridge-o'",
            (one,),
        )

    async def gaps() -> list[admin.CoverageGap]:
        async with await psycopg.AsyncConnection.connect(db_url) as conn:
            return await admin.coverage_gaps_in_db(conn)

    found = asyncio.run(gaps())
    by_site = {(g.site, g.required) for g in found}
    # NMPA sensors and the house default fridge-2-8: two people; a profile that says
    # one: one is enough; a site without profiled sensors keeps the safe default of two
    assert by_site == {("plant-n", 2), ("plant-h", 2), ("plant-x", 2)}
    assert all(len(g.people) == 1 for g in found)


_serial = itertools.count()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    readings=st.dictionaries(
        keys=st.integers(0, 90).map(lambda m: m * MIN),
        values=st.sampled_from([1.0, 2.2, 5.0, 7.6, 7.9, 8.5, 12.0, 16.0]),
        min_size=1,
        max_size=40,
    ),
    data=st.data(),
)
def test_stored_pre_alarms_equal_the_pure_ones_whatever_the_batches(db_url, readings, data):
    sid = assign_profile(db_url, f"pre-h-{next(_serial)}", PRE)
    order = data.draw(st.permutations(sorted(readings)))
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(order) - 1)), max_size=6)))
    for a, b in zip([0, *cuts], [*cuts, len(order)], strict=False):
        if order[a:b]:
            add(db_url, sid, [(BASE + t, readings[t]) for t in order[a:b]])
    times = sorted(readings)
    expected = [
        ("pre_alarm_" + r.kind, dt(BASE + r.start),
         dt(BASE + r.ended_at) if r.ended_at is not None else None, r.peak)
        for r in pre_alarms(times, [readings[t] for t in times], PRE)
        if r.raised
    ]  # fmt: skip
    stored = q(
        db_url,
        "SELECT kind, started_at, ended_at, peak FROM telemetry.alerts WHERE sensor_id = %s "
        "AND kind LIKE 'pre_alarm%%' AND detail->>'run_status' = 'active' ORDER BY started_at",
        (sid,),
    )
    assert stored == expected


def test_rolling_alerts_end_when_the_profile_no_longer_sets_their_limits(db_url):
    sid = assign_profile(db_url, "roll-drop", ROLL)
    add(db_url, sid, _hours(NOW - timedelta(hours=30), [6.0] * 96 + [14.0] * 36 + [6.0] * 49))
    with psycopg.connect(db_url) as conn:
        sweep(conn, now=NOW)
    assert one(db_url, "SELECT count(*) FROM telemetry.alerts WHERE ended_at IS NULL "
               "AND kind IN ('mkt_exceeded', 'tor_budget_exceeded')") == 2  # fmt: skip
    # the plant edits the profile: no MKT limit, no cumulative budget any more
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "UPDATE telemetry.alarm_profiles SET spec = spec - 'mkt_limit' "
            "- 'cumulative_budget_s' WHERE id = (SELECT profile_id "
            "FROM telemetry.sensor_profiles WHERE sensor_id = %s)",
            (sid,),
        )
    later = NOW + timedelta(minutes=20)
    with psycopg.connect(db_url) as conn:
        sweep(conn, now=later)
    rows = q(
        db_url,
        "SELECT id, ended_at FROM telemetry.alerts "
        "WHERE kind IN ('mkt_exceeded', 'tor_budget_exceeded')",
    )
    assert [ended for _, ended in rows] == [later, later]
    for alert_id, _ in rows:
        assert events(db_url, alert_id) == ["opened", "updated"]
