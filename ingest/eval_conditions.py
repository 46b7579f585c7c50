"""Sensor conditions that are not excursions: power, battery, faults, stuck and silent probes.

Each condition is one live alert per sensor and kind (``ingest.alerts.open_condition`` /
``end_condition``), decided from the stored readings by device time, so the answer
does not depend on arrival order. Power, battery and fault states are evaluated per
batch; offline, calibration and stuck probes also by the periodic ``sweep``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from coldchain.alert_kinds import AlertKind
from ingest import alerts
from ingest.eval_target import LATE_AFTER, Conn, Target


def bad_run(
    conn: Conn, *, sensor_id: int, bad_sql: str, args: tuple[Any, ...]
) -> tuple[datetime | None, datetime | None, bool]:
    """(start of the trailing bad run, first good reading after the last bad one, late).

    By device time, so the answer does not depend on arrival order.
    """
    row = conn.execute(
        f"WITH last_bad AS (SELECT max(time) AS t FROM telemetry.readings "  # noqa: S608
        f"WHERE sensor_id = %s AND {bad_sql}), "
        f"last_good AS (SELECT max(time) AS t FROM telemetry.readings "
        f"WHERE sensor_id = %s AND NOT ({bad_sql})) "
        "SELECT (SELECT min(time) FROM telemetry.readings WHERE sensor_id = %s "
        "        AND time > coalesce((SELECT t FROM last_good), '-infinity')), "
        "       (SELECT min(time) FROM telemetry.readings WHERE sensor_id = %s "
        "        AND time > (SELECT t FROM last_bad)), "
        "       (SELECT t FROM last_bad) > coalesce((SELECT t FROM last_good), '-infinity'), "
        "       (SELECT received_at - time > %s FROM telemetry.readings WHERE sensor_id = %s "
        "        AND time = (SELECT t FROM last_bad))",
        (sensor_id, *args, sensor_id, *args, sensor_id, sensor_id, LATE_AFTER, sensor_id),
    ).fetchone()
    if row is None or row[2] is None:
        return None, None, False
    bad_start, good_after, bad_now, late = row
    return (bad_start if bad_now else None), (None if bad_now else good_after), bool(late)


_CONDITIONS: dict[str, tuple[AlertKind, str]] = {
    # quantity -> (alert kind, what the message says); the severity is the kind's
    "power": (AlertKind.POWER_LOSS, "mains power lost"),
    "battery": (AlertKind.LOW_BATTERY, "battery low"),
}


def conditions(conn: Conn, *, target: Target, now: datetime) -> set[int]:
    """Power loss or low battery of a ``power``/``battery`` sensor: open or end its alert."""
    sensor = target.sensor
    kind, text = _CONDITIONS[sensor.quantity]
    args: tuple[Any, ...] = ()
    if sensor.quantity == "power":
        bad_sql = "value = 0"
    else:
        pct = target.profile.low_battery_pct if target.profile else 15.0
        bad_sql, args = "value < %s", (pct,)
    return condition(conn, target=target, kind=kind, text=text, bad=(bad_sql, args), now=now)


def condition(  # noqa: PLR0913 - the condition is described by its fields
    conn: Conn,
    *,
    target: Target,
    kind: AlertKind,
    text: str,
    bad: tuple[str, tuple[Any, ...]],
    now: datetime,
) -> set[int]:
    """Open the condition's alert while the latest readings are bad; end it once one is good."""
    sensor = target.sensor
    if not _may_change(conn, sensor_id=sensor.id, kind=kind, bad=bad):
        return set()
    started, cleared, late = bad_run(conn, sensor_id=sensor.id, bad_sql=bad[0], args=bad[1])
    if started is not None:
        info = alerts.detail(
            sensor, kind=kind, started_at=started, ended_at=None, late=late, profile=target.profile
        )
        where = sensor.location or sensor.uid
        opened = alerts.open_condition(
            conn,
            sensor=sensor,
            kind=kind,
            started_at=started,
            summary=f"{where}: {text}" + (" (late data)" if late else ""),
            info=info,
            now=now,
        )
        return {opened} if opened is not None else set()
    if cleared is not None:
        ended = alerts.end_condition(
            conn, sensor_id=sensor.id, kind=kind, ended_at=cleared, now=now
        )
        return {ended} if ended is not None else set()
    return set()


def _may_change(conn: Conn, *, sensor_id: int, kind: str, bad: tuple[str, tuple[Any, ...]]) -> bool:
    """Whether `bad_run` can lead anywhere: the latest reading is bad, or an alert is live.

    Otherwise `condition` opens nothing (the latest reading is good) and has nothing to
    end, so the answer is known without `bad_run`, whose search for the last bad reading
    reads the sensor's whole history when there is none: 10,000 rows per evaluation
    after a week of one-minute readings, half a million after a year (issue 13,
    docs/benchmarks.md). This costs two index probes.
    """
    row = conn.execute(
        f"SELECT (SELECT ({bad[0]}) FROM (SELECT value FROM telemetry.readings "  # noqa: S608
        "WHERE sensor_id = %s ORDER BY time DESC LIMIT 1) AS latest), "
        "EXISTS (SELECT 1 FROM telemetry.alerts WHERE sensor_id = %s AND kind = %s "
        "AND episode_id IS NULL AND ended_at IS NULL AND status <> 'closed')",
        (*bad[1], sensor_id, sensor_id, kind),
    ).fetchone()
    return row is not None and (bool(row[0]) or bool(row[1]))


def fault(conn: Conn, *, target: Target, now: datetime) -> set[int]:
    """A physically impossible value opens a sensor-fault alert; a valid one after it ends it."""
    p = target.profile
    assert p is not None  # checked by the caller
    return condition(
        conn,
        target=target,
        kind=AlertKind.SENSOR_FAULT,
        text="sensor fault (impossible value)",
        bad=("NOT value BETWEEN %s AND %s", (p.fault_low, p.fault_high)),
        now=now,
    )


def stuck(conn: Conn, *, target: Target, now: datetime) -> set[int]:
    """The same value for ``stuck_after_s`` from a reporting probe: a stuck sensor."""
    p, sensor = target.profile, target.sensor
    if p is None or p.stuck_after_s is None:
        return set()
    row = conn.execute(
        "WITH last AS (SELECT time, value FROM telemetry.readings WHERE sensor_id = %s "
        "ORDER BY time DESC LIMIT 1), "
        "changed AS (SELECT max(r.time) AS t FROM telemetry.readings r, last "
        "WHERE r.sensor_id = %s AND r.value <> last.value) "
        "SELECT (SELECT time FROM last), (SELECT min(r.time) FROM telemetry.readings r "
        "WHERE r.sensor_id = %s AND r.time > coalesce((SELECT t FROM changed), '-infinity')), "
        "(SELECT value FROM last)",
        (sensor.id, sensor.id, sensor.id),
    ).fetchone()
    if row is None or row[0] is None:
        return set()
    last_t, run_start, value = row
    if last_t - run_start >= timedelta(seconds=p.stuck_after_s):
        info = alerts.detail(
            sensor,
            kind="sensor_stuck",
            started_at=run_start,
            ended_at=None,
            late=False,
            profile=p,
            extra={"value": value, "stuck_after_s": p.stuck_after_s},
        )
        opened = alerts.open_condition(
            conn,
            sensor=sensor,
            kind=AlertKind.SENSOR_STUCK,
            started_at=run_start,
            summary=f"{sensor.location or sensor.uid}: value stuck at {value:g}",
            info=info,
            now=now,
        )
        return {opened} if opened is not None else set()
    ended = alerts.end_condition(
        conn, sensor_id=sensor.id, kind="sensor_stuck", ended_at=run_start, now=now
    )
    return {ended} if ended is not None else set()


def back_online(conn: Conn, *, target: Target, now: datetime) -> set[int]:
    """End a live offline alert once a reading newer than the offline threshold is stored."""
    offline_s = target.profile.offline_after_s if target.profile else None
    if offline_s is None:
        return set()
    row = conn.execute(
        "SELECT max(time) FROM telemetry.readings WHERE sensor_id = %s", (target.sensor.id,)
    ).fetchone()
    last = row[0] if row else None
    if last is None or now - last > timedelta(seconds=offline_s):
        return set()
    ended = alerts.end_condition(
        conn, sensor_id=target.sensor.id, kind="offline", ended_at=last, now=now
    )
    return {ended} if ended is not None else set()


def offline(conn: Conn, *, target: Target, now: datetime) -> set[int]:
    """No reading for ``offline_after_s``: open an offline alert (end it when data is back)."""
    if target.profile is None:
        return set()
    sensor = target.sensor
    row = conn.execute(
        "SELECT max(time) FROM telemetry.readings WHERE sensor_id = %s", (sensor.id,)
    ).fetchone()
    last = row[0] if row else None
    if last is None:
        return set()
    limit = timedelta(seconds=target.profile.offline_after_s)
    if now - last <= limit:
        return back_online(conn, target=target, now=now)
    info = alerts.detail(
        sensor,
        kind="offline",
        started_at=last,
        ended_at=None,
        late=False,
        profile=target.profile,
        extra={"last_reading_at": last.isoformat(), "offline_after_s": limit.total_seconds()},
    )
    where = sensor.location or sensor.uid
    opened = alerts.open_condition(
        conn,
        sensor=sensor,
        kind=AlertKind.OFFLINE,
        started_at=last,
        summary=f"{where}: no data since {last:%Y-%m-%d %H:%M} UTC",
        info=info,
        now=now,
    )
    return {opened} if opened is not None else set()


def calibration(conn: Conn, *, target: Target, now: datetime) -> set[int]:
    """``sensors.calibration_due`` in the past: open a calibration alert; end it when renewed."""
    sensor = target.sensor
    row = conn.execute(
        "SELECT calibration_due FROM telemetry.sensors WHERE id = %s", (sensor.id,)
    ).fetchone()
    due = row[0] if row else None
    if due is None or due >= now.date():
        ended = alerts.end_condition(
            conn, sensor_id=sensor.id, kind="calibration_overdue", ended_at=now, now=now
        )
        return {ended} if ended is not None else set()
    started = datetime.combine(due, datetime.min.time(), tzinfo=now.tzinfo)
    info = alerts.detail(
        sensor,
        kind="calibration_overdue",
        started_at=started,
        ended_at=None,
        late=False,
        profile=target.profile,
        extra={"calibration_due": due.isoformat()},
    )
    opened = alerts.open_condition(
        conn,
        sensor=sensor,
        kind=AlertKind.CALIBRATION_OVERDUE,
        started_at=started,
        summary=f"{sensor.location or sensor.uid}: calibration overdue since {due.isoformat()}",
        info=info,
        now=now,
    )
    return {opened} if opened is not None else set()
