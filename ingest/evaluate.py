"""Evaluation driven by stored data: touched ranges → excursion episodes → alerts.

The store records the (sensor, min time, max time) each batch touched in
``telemetry.eval_pending`` in the same transaction as the readings, so no range is
forgotten. After the commit (and the MQTT ack) ``evaluate_pending`` claims pending
ranges (``SKIP LOCKED``, so workers share them), skips with one vectorised query the
sensors whose new readings are all inside their pre-alarm thresholds with no stored
episode or pre-alarm nearby, and for the others, serialised per sensor by
``pg_advisory_xact_lock``, re-evaluates episodes and pre-alarms
(``ingest.eval_episodes``) and sensor conditions (``ingest.eval_conditions``). A
sensor whose evaluation fails has its ranges put back with the error, so it is
retried later and never blocks the others. ``sweep`` is the periodic part: offline
sensors, overdue calibration, stuck probes, the rolling MKT and time-out-of-range
budget (``ingest.eval_rolling``), left-over ranges.
Every function takes the caller's connection and never commits.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from ingest import eval_conditions as cond
from ingest import eval_episodes, eval_rolling
from ingest.eval_target import CONDITION_QUANTITIES, LOCK_NAMESPACE, Conn, Target, load_targets
from ingest.prealarm_alerts import ACTIVE_SQL, PRE_ALARM_KINDS, RUN_END_SQL

log = logging.getLogger(__name__)
SWEEP_ONLY_KINDS = ("calibration_overdue", eval_rolling.MKT_KIND, eval_rolling.TOR_KIND)

# Which touched ranges need a full evaluation: a value beyond the pre-alarm thresholds
# (the limits when there is no band) or a faulty one among the new readings, or as the
# reading just before them (the batch may end a run not yet long enough to be stored), a stored
# episode or pre-alarm run overlapping the range or still open, or a live alert that
# new readings may end (not those only the sweep decides: a month-long MKT alert must
# not make every batch of its sensor a full evaluation).
_PRECHECK_SQL = f"""
SELECT k.sensor_id
  FROM unnest(%s::int[], %s::timestamptz[], %s::timestamptz[]) AS k(sensor_id, lo, hi)
  JOIN telemetry.sensors s ON s.id = k.sensor_id
  LEFT JOIN telemetry.sensor_effective_profiles p ON p.sensor_id = s.id
  CROSS JOIN LATERAL (SELECT coalesce((p.spec->>'pre_alarm_band')::float8, 0) AS band) b
 WHERE s.quantity = ANY(%s)
    OR (p.spec IS NOT NULL AND EXISTS (
          SELECT 1 FROM telemetry.readings r
           WHERE r.sensor_id = k.sensor_id AND r.time BETWEEN k.lo AND k.hi
             AND NOT r.value BETWEEN (p.spec->>'low')::float8 + b.band
                                 AND (p.spec->>'high')::float8 - b.band))
    OR (p.spec IS NOT NULL AND EXISTS (
          SELECT 1 FROM (SELECT r.value FROM telemetry.readings r
                          WHERE r.sensor_id = k.sensor_id AND r.time < k.lo
                          ORDER BY r.time DESC LIMIT 1) prev
           WHERE NOT prev.value BETWEEN (p.spec->>'low')::float8 + b.band
                                    AND (p.spec->>'high')::float8 - b.band))
    OR EXISTS (SELECT 1 FROM telemetry.excursion_episodes e
                WHERE e.sensor_id = k.sensor_id AND e.status = 'active'
                  AND (e.end_t IS NULL OR e.end_t >= k.lo))
    OR EXISTS (SELECT 1 FROM telemetry.alerts al
                WHERE al.sensor_id = k.sensor_id AND al.episode_id IS NULL
                  AND al.ended_at IS NULL AND al.status <> 'closed'
                  AND NOT al.kind = ANY(%s::text[]))
    OR EXISTS (SELECT 1 FROM telemetry.alerts al
                WHERE al.sensor_id = k.sensor_id AND {ACTIVE_SQL.replace("%s", "%s::text[]")}
                  AND al.started_at <= k.hi
                  AND ({RUN_END_SQL} IS NULL OR {RUN_END_SQL} >= k.lo))
"""  # noqa: S608 - constant SQL fragments


@dataclass
class EvalSummary:
    """What one evaluation pass did."""

    ranges: int = 0
    sensors: int = 0
    skipped: int = 0
    failed: list[int] = field(default_factory=list)
    alerts: set[int] = field(default_factory=set)


CLAIM = 5000  # pending ranges claimed per evaluation transaction


def evaluate_pending(
    conn: Conn, *, now: datetime, limit: int = CLAIM, retry_after_s: float = 30.0
) -> EvalSummary:
    """Claim up to ``limit`` pending ranges and evaluate their sensors (caller commits).

    A range that failed n times waits n × ``retry_after_s`` (at most 20×) before the next try.
    """
    rows = conn.execute(
        "WITH c AS (SELECT id FROM telemetry.eval_pending "
        "WHERE attempts = 0 OR enqueued_at + least(attempts, 20) * %s * interval '1 second' "
        "<= now() ORDER BY id FOR UPDATE SKIP LOCKED LIMIT %s) "
        "DELETE FROM telemetry.eval_pending p USING c WHERE p.id = c.id "
        "RETURNING p.sensor_id, p.min_t, p.max_t, p.attempts",
        (retry_after_s, limit),
    ).fetchall()
    summary = EvalSummary(ranges=len(rows))
    if not rows:
        return summary
    spans: dict[int, tuple[datetime, datetime, int]] = {}
    for sid, lo, hi, attempts in rows:
        old = spans.get(sid)
        spans[sid] = (
            (min(old[0], lo), max(old[1], hi), max(old[2], attempts)) if old else (lo, hi, attempts)
        )
    ids = sorted(spans)
    # lock first (in id order: no deadlock between workers), so the pre-check below sees
    # what another worker's evaluation of the same sensors committed
    conn.execute(
        "SELECT count(pg_advisory_xact_lock(%s, s)) FROM "
        "(SELECT s FROM unnest(%s::int[]) AS s ORDER BY s) AS q",
        (LOCK_NAMESPACE, ids),
    )
    hot = {
        int(r[0])
        for r in conn.execute(
            _PRECHECK_SQL,
            (
                ids,
                [spans[i][0] for i in ids],
                [spans[i][1] for i in ids],
                list(CONDITION_QUANTITIES),
                list(SWEEP_ONLY_KINDS),
                list(PRE_ALARM_KINDS),
            ),
        )
    }
    summary.skipped = len(ids) - len(hot)
    targets = load_targets(conn, sorted(hot)) if hot else {}
    for sid in sorted(hot):
        lo, hi, attempts = spans[sid]
        target = targets.get(sid)
        if target is None:
            continue
        try:
            with conn.transaction():  # a savepoint: one sensor's failure spares the others
                summary.alerts |= evaluate_sensor(conn, target=target, lo=lo, hi=hi, now=now)
        except psycopg.OperationalError:
            raise  # the connection is gone: the whole claim rolls back and is retried
        except Exception as err:
            log.exception("evaluating sensor %s failed; will retry", sid)
            summary.failed.append(sid)
            conn.execute(
                "INSERT INTO telemetry.eval_pending (sensor_id, min_t, max_t, attempts, "
                "last_error) VALUES (%s, %s, %s, %s, %s)",
                (sid, lo, hi, attempts + 1, str(err)[:2000]),
            )
        summary.sensors += 1
    return summary


def evaluate_sensor(
    conn: Conn, *, target: Target, lo: datetime, hi: datetime, now: datetime
) -> set[int]:
    """Re-evaluate one sensor for readings touched in [lo, hi]; returns the alerts touched."""
    if target.profile_error is not None:
        raise target.profile_error
    sensor = target.sensor
    conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, sensor.id))
    touched: set[int] = set()
    if sensor.quantity in CONDITION_QUANTITIES:
        touched |= cond.conditions(conn, target=target, now=now)
    elif target.profile is not None:
        touched |= eval_episodes.episodes(conn, target=target, lo=lo, hi=hi, now=now)
        touched |= cond.fault(conn, target=target, now=now)
        touched |= cond.stuck(conn, target=target, now=now)
    touched |= cond.back_online(conn, target=target, now=now)
    return touched


def sweep(
    conn: Conn, *, now: datetime, rolling_every_s: float = 900.0, pending: bool = True
) -> EvalSummary:
    """The periodic job: left-over ranges, offline, calibration, stuck and rolling checks.

    The rolling MKT and time-out-of-range budget of a sensor are recomputed at most
    every ``rolling_every_s`` (they move slowly; see ``ingest.eval_rolling``). With
    ``pending=False`` the caller has drained the left-over ranges itself, in a
    transaction of their own, so their sensor locks are not held through the slow part.
    """
    summary = evaluate_pending(conn, now=now, retry_after_s=0) if pending else EvalSummary()
    rows = conn.execute(
        "SELECT s.id FROM telemetry.sensors s "
        "LEFT JOIN telemetry.sensor_effective_profiles p ON p.sensor_id = s.id "
        "WHERE p.sensor_id IS NOT NULL OR s.calibration_due IS NOT NULL ORDER BY s.id"
    ).fetchall()
    targets = load_targets(conn, [int(r[0]) for r in rows]) if rows else {}
    for target in targets.values():
        if target.profile_error is not None:
            log.error("sensor %s: %s", target.sensor.uid, target.profile_error)
            continue
        summary.alerts |= cond.offline(conn, target=target, now=now)
        summary.alerts |= cond.calibration(conn, target=target, now=now)
        if target.sensor.quantity not in CONDITION_QUANTITIES:
            # in-range readings skip evaluation, so a stuck probe is found here
            summary.alerts |= cond.stuck(conn, target=target, now=now)
    summary.alerts |= eval_rolling.check_due(
        conn, targets=list(targets.values()), now=now, every_s=rolling_every_s
    )
    return summary
