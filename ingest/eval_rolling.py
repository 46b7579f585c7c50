"""Rolling-window checks: mean kinetic temperature and cumulative time out of range.

Both are sums over a sensor's readings in the profile's rolling window
(``rolling_window_days``, default 30 days): MKT against ``mkt_limit`` raises
``mkt_exceeded``, the time out of range against ``cumulative_budget_s`` raises
``tor_budget_exceeded``; each ends when the figure is back within its limit.

Why here and not per batch: a 30-day figure moves little in minutes (15 minutes at
40 °C in a month at 5 °C lift the MKT by about 0.15 °C), while summing a month of
minute readings per sensor per batch would multiply the evaluation cost by the window.
So the periodic ``sweep`` recomputes a sensor at most every ``every_s`` (900 s by
default), summing in PostgreSQL (one indexed range scan per sensor, nothing shipped
to Python), and records the figures in ``telemetry.rolling_checks``. Excursions
themselves still alarm per batch. Measured: about 60 ms per sensor for 30 days of
minute readings on a shared 2-core machine (docs/alerts.md), so one sweep handles at
most ``batch`` (100) sensors, least recently checked first.

Definitions (the pure references are ``coldchain.mkt.window_mkt`` and
``coldchain.episodes.time_out_of_range_ms``): each value holds until the next reading,
clipped to [now - window, now], the reading before the window included; faulty values
are left out. For MKT a value holds at most ``offline_after_s`` (past that nothing is
known; the offline alert covers the gap); time out of range is not capped, like
excursion episodes (no evidence of a return to range).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from coldchain.alert_kinds import AlertKind
from coldchain.mkt import DELTA_H_J_PER_MOL, GAS_CONSTANT_J_PER_MOL_K, KELVIN_OFFSET, mkt_from_sums
from coldchain.profiles import AlarmProfile
from ingest import alerts
from ingest.eval_target import CONDITION_QUANTITIES, Conn, Target

MKT_KIND = AlertKind.MKT_EXCEEDED
TOR_KIND = AlertKind.TOR_BUDGET_EXCEEDED

_SUMS_SQL = """
SELECT k.id, x.a_sum, x.w_sum, x.tor_s
  FROM unnest(%(ids)s::int[], %(starts)s::timestamptz[], %(lows)s::float8[],
              %(highs)s::float8[], %(flows)s::float8[], %(fhighs)s::float8[],
              %(caps)s::float8[]) AS k(id, start, low, high, flo, fhi, cap)
  CROSS JOIN LATERAL (
    SELECT sum(w * exp(-%(ratio)s / (value + %(kelvin)s))) AS a_sum, sum(w) AS w_sum,
           coalesce(sum(held) FILTER (WHERE value < k.low OR value > k.high), 0) AS tor_s
      FROM (
        SELECT value,
               greatest(0, extract(epoch FROM least(nxt, %(now)s) - greatest(time, k.start)))
                 AS held,
               greatest(0, extract(epoch FROM least(nxt, %(now)s,
                                                    time + k.cap * interval '1 second')
                                              - greatest(time, k.start))) AS w
          FROM (SELECT time, value, lead(time) OVER (ORDER BY time) AS nxt
                  FROM telemetry.readings
                 WHERE sensor_id = k.id AND time <= %(now)s AND value BETWEEN k.flo AND k.fhi
                   AND time >= coalesce(
                         (SELECT max(time) FROM telemetry.readings
                           WHERE sensor_id = k.id AND time < k.start
                             AND value BETWEEN k.flo AND k.fhi), k.start)) AS r
         WHERE nxt IS NOT NULL) AS steps
  ) AS x
"""


def _wanted(target: Target) -> AlarmProfile | None:
    p = target.profile
    if p is None or target.profile_error is not None:
        return None
    if target.sensor.quantity in CONDITION_QUANTITIES:
        return None
    if p.cumulative_budget_s is None and p.mkt_limit is None:
        return None
    return p


def check_due(
    conn: Conn, *, targets: list[Target], now: datetime, every_s: float, batch: int = 100
) -> set[int]:
    """Recompute the rolling figures of up to ``batch`` sensors not checked for ``every_s``.

    The least recently checked go first, so one sweep's work stays bounded and every
    sensor still comes round; returns the alerts touched.
    """
    wanted = {t.sensor.id: (t, p) for t in targets if (p := _wanted(t)) is not None}
    # a profile that no longer sets either limit (edited, or another one assigned) must
    # not leave its sensor's rolling alerts live for ever: nothing else would end them
    unwanted = [
        t.sensor.id for t in targets if t.profile_error is None and t.sensor.id not in wanted
    ]
    touched = _end_unwanted(conn, sensor_ids=unwanted, now=now)
    if not wanted:
        return touched
    checked = dict(
        conn.execute(
            "SELECT sensor_id, checked_at FROM telemetry.rolling_checks WHERE sensor_id = ANY(%s)",
            (list(wanted),),
        ).fetchall()
    )
    cutoff = now - timedelta(seconds=every_s)
    order = sorted(wanted, key=lambda i: (i in checked, checked.get(i, now), i))
    due = [wanted[i] for i in order if checked.get(i, cutoff) <= cutoff][:batch]
    if not due:
        return touched
    starts = {t.sensor.id: now - timedelta(days=p.rolling_window_days) for t, p in due}
    rows = conn.execute(
        _SUMS_SQL,
        {
            "ids": [t.sensor.id for t, _ in due],
            "starts": [starts[t.sensor.id] for t, _ in due],
            "lows": [p.low for _, p in due],
            "highs": [p.high for _, p in due],
            "flows": [p.fault_low for _, p in due],
            "fhighs": [p.fault_high for _, p in due],
            "caps": [p.offline_after_s for _, p in due],
            "ratio": DELTA_H_J_PER_MOL / GAS_CONSTANT_J_PER_MOL_K,
            "kelvin": KELVIN_OFFSET,
            "now": now,
        },
    ).fetchall()
    for sid, a_sum, w_sum, tor_s in rows:
        target, p = wanted[int(sid)]
        mkt = None
        if target.sensor.quantity == "temperature" and w_sum and a_sum:
            mkt = mkt_from_sums(float(a_sum), float(w_sum))
        conn.execute(
            "INSERT INTO telemetry.rolling_checks (sensor_id, checked_at, window_start, mkt, "
            "tor_s, held_s) VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (sensor_id) DO UPDATE "
            "SET checked_at = excluded.checked_at, window_start = excluded.window_start, "
            "mkt = excluded.mkt, tor_s = excluded.tor_s, held_s = excluded.held_s",
            (sid, now, starts[int(sid)], mkt, float(tor_s), float(w_sum or 0.0)),
        )
        touched |= _mkt(conn, target=target, profile=p, mkt=mkt, start=starts[int(sid)], now=now)
        touched |= _tor(
            conn, target=target, profile=p, tor_s=float(tor_s), start=starts[int(sid)], now=now
        )
    return touched


def _end_unwanted(conn: Conn, *, sensor_ids: list[int], now: datetime) -> set[int]:
    """End the live rolling alerts of sensors whose profile sets neither limit now."""
    if not sensor_ids:
        return set()
    live = conn.execute(
        "SELECT sensor_id, kind FROM telemetry.alerts WHERE sensor_id = ANY(%s) "
        "AND kind = ANY(%s) AND episode_id IS NULL AND ended_at IS NULL AND status <> 'closed'",
        (sensor_ids, [MKT_KIND, TOR_KIND]),
    ).fetchall()
    touched: set[int] = set()
    for sid, kind in live:
        touched |= _end(conn, sensor_id=int(sid), kind=str(kind), now=now)
    return touched


def _end(conn: Conn, *, sensor_id: int, kind: str, now: datetime) -> set[int]:
    ended = alerts.end_condition(conn, sensor_id=sensor_id, kind=kind, ended_at=now, now=now)
    return {ended} if ended is not None else set()


def _mkt(  # noqa: PLR0913 - keyword-only facts of one check
    conn: Conn,
    *,
    target: Target,
    profile: AlarmProfile,
    mkt: float | None,
    start: datetime,
    now: datetime,
) -> set[int]:
    sensor, limit = target.sensor, profile.mkt_limit
    if limit is None or mkt is None or mkt <= limit:
        ended = alerts.end_condition(
            conn, sensor_id=sensor.id, kind=MKT_KIND, ended_at=now, now=now
        )
        return {ended} if ended is not None else set()
    days = f"{profile.rolling_window_days:g}"
    extra = {"mkt": mkt, "mkt_limit": limit, "window_days": profile.rolling_window_days}
    summary = (
        f"{sensor.location or sensor.uid}: mean kinetic temperature {mkt:.2f} °C over the "
        f"last {days} days, above the {limit:g} °C limit"
    )
    return _raise(conn, target=target, kind=MKT_KIND, value=mkt, summary=summary, extra=extra,
                  start=start, now=now)  # fmt: skip


def _tor(  # noqa: PLR0913 - keyword-only facts of one check
    conn: Conn,
    *,
    target: Target,
    profile: AlarmProfile,
    tor_s: float,
    start: datetime,
    now: datetime,
) -> set[int]:
    sensor, budget = target.sensor, profile.cumulative_budget_s
    if budget is None or tor_s <= budget:
        ended = alerts.end_condition(
            conn, sensor_id=sensor.id, kind=TOR_KIND, ended_at=now, now=now
        )
        return {ended} if ended is not None else set()
    days = f"{profile.rolling_window_days:g}"
    extra: dict[str, Any] = {"tor_s": tor_s, "cumulative_budget_s": budget,
             "window_days": profile.rolling_window_days}  # fmt: skip
    summary = (
        f"{sensor.location or sensor.uid}: {tor_s / 3600:.1f} h out of range in the last "
        f"{days} days, above the {budget / 3600:g} h budget"
    )
    # the figure is in hours ("out of range 26 h" in messages), not the sensor's unit
    extra["unit"] = "h"
    return _raise(conn, target=target, kind=TOR_KIND, value=round(tor_s / 3600, 2),
                  summary=summary, extra=extra, start=start, now=now)  # fmt: skip


def _raise(  # noqa: PLR0913 - keyword-only facts of one alert
    conn: Conn,
    *,
    target: Target,
    kind: AlertKind,
    value: float,
    summary: str,
    extra: dict[str, Any],
    start: datetime,
    now: datetime,
) -> set[int]:
    """Open the condition's alert, or refresh the figures of the live one silently."""
    info = alerts.detail(
        target.sensor,
        kind=kind,
        started_at=now,
        ended_at=None,
        late=False,
        profile=target.profile,
        peak=value,
        extra={**extra, "window_start": start.isoformat(), "checked_at": now.isoformat()},
    )
    opened = alerts.open_condition(
        conn, sensor=target.sensor, kind=kind, started_at=now,
        summary=summary, info=info, now=now,
    )  # fmt: skip
    if opened is not None:
        return {opened}
    refreshed = alerts.refresh_condition(
        conn, sensor_id=target.sensor.id, kind=kind, peak=value, summary=summary, info=info, now=now
    )
    return {refreshed} if refreshed is not None else set()
