"""Every SQL text the dashboards send, with the columns its panel reads — one place, tested.

Each query is written for Grafana's PostgreSQL data source: it may use Grafana's macros
(``$__timeFilter``, ``$__timeFrom()``, ``$__interval_ms`` …, expanded by
``dashboards.macros``) and the dashboard variables ``$location`` and ``$lot`` (ids). It
reads only what the read-only role ``coldtrace_reader`` may read (db/grants.py) and the
shared reads of the schema — ``telemetry.sensor_effective_profiles`` for a sensor's
band, ``erp.lot_readings`` for a lot's history (the held value at arrival included,
as the release decision counts it) — never a copy of their SQL.

**Downsampling.** Charts group by ``date_bin`` with Grafana's interval
(``$__interval_ms``; ``$__interval`` is text such as ``20m`` and is never cast). Once
the interval is a whole number of hours the location chart reads the hourly rollup
``erp.reading_hours``, and from a whole number of days the daily one
``erp.reading_days`` (docs/erp-stock.md), so a year is a few hundred rows per sensor.
The unused branches are constant-false and cost nothing. A rollup row counts when its
hour (day) overlaps the sensor's time at the location: at those widths the chart's
edge buckets may include a partial hour (day) of the sensor elsewhere.

``tests/integration/test_dashboard_queries.py`` expands every query of the generated
dashboards as Grafana does and runs it, as the reader role, on a database filled by the
demo seed and the fridge simulator, checking these columns and at least one row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Format = Literal["time_series", "table"]


@dataclass(frozen=True, slots=True)
class Query:
    """One panel (or annotation, or variable) query and the columns its panel reads."""

    key: str
    sql: str
    columns: tuple[str, ...]
    format: Format = "table"


def bucket(column: str) -> str:
    """``column`` binned by the panel's interval (Grafana's ``$__interval_ms``)."""
    return f"date_bin($__interval_ms * interval '1 ms', {column}, timestamptz '2000-01-01')"


_WHOLE_HOURS = "$__interval_ms % 3600000 = 0"
_WHOLE_DAYS = "$__interval_ms % 86400000 = 0"

# A sensor's band from its effective alarm profile (the shared view).
_BAND = """(p.spec->>'low')::float8 AS low, (p.spec->>'high')::float8 AS high,
       coalesce((p.spec->>'pre_alarm_band')::float8, 0) AS pre_band"""

# The newest reading of each sensor ``s`` (walks the primary key backwards once).
_LAST = """LEFT JOIN LATERAL (
    SELECT r.time, r.value FROM telemetry.readings r
     WHERE r.sensor_id = s.id ORDER BY r.time DESC LIMIT 1) last ON true"""

# --- variables -------------------------------------------------------------------------

LOCATIONS = Query(
    "var_location",
    "SELECT code || ' — ' || name AS __text, id AS __value FROM erp.locations"
    " WHERE retired_at IS NULL AND kind NOT IN ('site', 'area') ORDER BY code",
    ("__text", "__value"),
)
LOTS = Query(
    "var_lot",
    "SELECT lot_number AS __text, id AS __value FROM erp.lots ORDER BY created_at DESC",
    ("__text", "__value"),
)

# --- cold-chain overview ---------------------------------------------------------------

CURRENT = Query(
    "overview_current",
    f"""SELECT l.code AS location, l.name, s.uid AS sensor, last.time, last.value, low, high,
       CASE WHEN last.time IS NULL OR last.time < now() - make_interval(
                 secs => coalesce((b.spec->>'offline_after_s')::float8, 1800)) THEN 'offline'
            WHEN last.value < low OR last.value > high THEN 'alarm'
            WHEN last.value < low + pre_band OR last.value > high - pre_band THEN 'pre-alarm'
            ELSE 'ok' END AS status
  FROM erp.sensor_assignments a
  JOIN erp.locations l ON l.id = a.location_id
  JOIN telemetry.sensors s ON s.id = a.sensor_id AND s.quantity = 'temperature'
  JOIN LATERAL (SELECT p.spec, {_BAND} FROM telemetry.sensor_effective_profiles p
                 WHERE p.sensor_id = s.id) b ON true
  {_LAST}
 WHERE a.valid_to IS NULL AND l.retired_at IS NULL
 ORDER BY l.code, s.uid""",
    ("location", "name", "sensor", "time", "value", "low", "high", "status"),
)
OPEN_ALERTS = Query(
    "overview_open_alerts",
    "SELECT severity, count(*) AS alerts FROM telemetry.alerts WHERE status <> 'closed'"
    " GROUP BY severity ORDER BY array_position(ARRAY['critical', 'warning', 'info'], severity)",
    ("severity", "alerts"),
)
OFFLINE = Query(
    "overview_offline",
    f"""SELECT count(*) FILTER (WHERE last.time IS NULL OR last.time < now() - make_interval(
              secs => coalesce((p.spec->>'offline_after_s')::float8, 1800))) AS offline,
       count(*) AS sensors
  FROM telemetry.sensors s
  JOIN telemetry.sensor_effective_profiles p ON p.sensor_id = s.id
  {_LAST}""",
    ("offline", "sensors"),
)
LOW_BATTERY = Query(
    "overview_low_battery",
    f"""SELECT s.gateway_id AS gateway, s.uid AS sensor, last.value AS battery, s.unit, last.time
  FROM telemetry.sensors s
  LEFT JOIN telemetry.sensor_effective_profiles p ON p.sensor_id = s.id
  {_LAST}
 WHERE s.quantity = 'battery' AND s.unit = '%'
   AND last.value < coalesce((p.spec->>'low_battery_pct')::float8, 15)
 ORDER BY last.value""",
    ("gateway", "sensor", "battery", "unit", "time"),
)
CALIBRATION_DUE = Query(
    "overview_calibration_due",
    """SELECT s.gateway_id AS gateway, s.uid AS sensor, s.quantity, s.calibration_due,
       l.code AS location
  FROM telemetry.sensors s
  LEFT JOIN erp.sensor_assignments a ON a.sensor_id = s.id AND a.valid_to IS NULL
  LEFT JOIN erp.locations l ON l.id = a.location_id
 WHERE s.calibration_due < current_date + 30
 ORDER BY s.calibration_due""",
    ("gateway", "sensor", "quantity", "calibration_due", "location"),
)

# --- location --------------------------------------------------------------------------

# The temperature sensors assigned to $location during the range, each clipped to it.
_AT_LOCATION = """WITH a AS (
    SELECT a.sensor_id, s.uid,
           greatest(a.valid_from, $__timeFrom()::timestamptz) AS f,
           least(coalesce(a.valid_to, 'infinity'), $__timeTo()::timestamptz) AS t
      FROM erp.sensor_assignments a
      JOIN telemetry.sensors s ON s.id = a.sensor_id AND s.quantity = 'temperature'
     WHERE a.location_id = $location
       AND a.during && tstzrange($__timeFrom(), $__timeTo(), '[]'))"""

LOCATION_HISTORY = Query(
    "location_history",
    f"""{_AT_LOCATION}
SELECT {bucket("r.time")} AS time, a.uid AS metric, avg(r.value) AS mean, max(r.value) AS max
  FROM a JOIN telemetry.readings r ON r.sensor_id = a.sensor_id AND r.time >= a.f AND r.time < a.t
 WHERE NOT ({_WHOLE_HOURS})
 GROUP BY 1, 2
UNION ALL
SELECT {bucket("h.hour")}, a.uid, sum(h.vsum) / sum(h.n), max(h.vmax)
  FROM a JOIN erp.reading_hours h ON h.sensor_id = a.sensor_id
                           AND h.hour > a.f - interval '1 hour' AND h.hour < a.t
 WHERE {_WHOLE_HOURS} AND NOT ({_WHOLE_DAYS})
 GROUP BY 1, 2
UNION ALL
SELECT {bucket("d.day")}, a.uid, sum(d.vsum) / sum(d.n), max(d.vmax)
  FROM a JOIN erp.reading_days d ON d.sensor_id = a.sensor_id
                          AND d.day > a.f - interval '1 day' AND d.day < a.t
 WHERE {_WHOLE_DAYS}
 GROUP BY 1, 2
 ORDER BY 1""",
    ("time", "metric", "mean", "max"),
    "time_series",
)
LOCATION_BAND = Query(
    "location_band",
    f"""SELECT v.time, low, high, low + pre_band AS pre_low, high - pre_band AS pre_high
  FROM (SELECT {_BAND}
          FROM erp.sensor_assignments a
          JOIN telemetry.sensors s ON s.id = a.sensor_id AND s.quantity = 'temperature'
          JOIN telemetry.sensor_effective_profiles p ON p.sensor_id = s.id
         WHERE a.location_id = $location
         ORDER BY a.valid_to IS NULL DESC, a.valid_from DESC LIMIT 1) band
 CROSS JOIN (VALUES ($__timeFrom()::timestamptz), ($__timeTo()::timestamptz)) AS v(time)
 ORDER BY 1""",
    ("time", "low", "high", "pre_low", "pre_high"),
    "time_series",
)
# Each reading weighs the time until the sensor's next one, at most 15 min (the API's
# max_hold) and not past the range. Long ranges read the hourly rollup as the lot history
# does (docs/erp-stock.md): an hour is *clean* when it lies inside the range (its last
# step too), has a rollup row, no step above 15 min and every value inside the band;
# its step-weighted sums stand for its readings, exactly. Every other hour (the edges,
# excursions, hours the rollup has not reached yet) is read raw.
LOCATION_STATS = Query(
    "location_stats",
    f"""{_AT_LOCATION},
hours AS (
    SELECT a.sensor_id, a.f, a.t, g.hour, b.low, b.high,
           h.vmin, h.vmax, h.w_sum, h.wv_sum, h.wexp_sum,
           coalesce(g.hour >= a.f AND g.hour + interval '75 minutes' <= a.t
                    AND h.max_step <= 900 AND h.vmin >= b.low AND h.vmax <= b.high,
                    false) AS clean
      FROM a
      JOIN LATERAL (SELECT {_BAND} FROM telemetry.sensor_effective_profiles p
                     WHERE p.sensor_id = a.sensor_id) b ON true
     CROSS JOIN LATERAL generate_series(date_trunc('hour', a.f), a.t, interval '1 hour') AS g(hour)
      LEFT JOIN erp.reading_hours h ON h.sensor_id = a.sensor_id AND h.hour = g.hour
     WHERE g.hour < a.t),
raw AS (
    SELECT r.value, hs.low, hs.high, extract(epoch FROM least(
               coalesce(lead(r.time) OVER (PARTITION BY hs.sensor_id, hs.hour ORDER BY r.time),
                        (SELECT n.time FROM telemetry.readings n
                          WHERE n.sensor_id = r.sensor_id AND n.time > r.time
                          ORDER BY n.time LIMIT 1)),
               r.time + interval '15 minutes', hs.t) - r.time) AS w
      FROM hours hs
     CROSS JOIN LATERAL (  -- per hour through the primary key (OFFSET 0: not flattened
           SELECT x.sensor_id, x.time, x.value FROM telemetry.readings x  -- into a scan)
            WHERE x.sensor_id = hs.sensor_id AND x.time >= greatest(hs.hour, hs.f)
              AND x.time < least(hs.hour + interval '1 hour', hs.t) OFFSET 0) r
     WHERE NOT hs.clean),
sums AS (
    SELECT w_sum AS w, wv_sum AS wv, wexp_sum AS wexp, vmin, vmax, 0::float8 AS w_out
      FROM hours WHERE clean
    UNION ALL
    SELECT w, w * value, w * exp(-10000 / (value + 273.15)), value, value,
           CASE WHEN value < low OR value > high THEN w ELSE 0 END
      FROM raw WHERE w > 0)
SELECT 10000 / -ln(sum(wexp) / sum(w)) - 273.15 AS mkt, sum(wv) / sum(w) AS mean,
       min(vmin) AS min, max(vmax) AS max, sum(w_out) / 60 AS minutes_out_of_range
  FROM sums""",
    ("mkt", "mean", "min", "max", "minutes_out_of_range"),
)
LOCATION_EVENTS = Query(
    "location_events",
    """SELECT time, text FROM (
    SELECT r.time, r.value, lag(r.value) OVER (PARTITION BY r.sensor_id ORDER BY r.time) AS before,
           CASE WHEN s.quantity = 'door' AND r.value > 0 THEN 'door open'
                WHEN s.quantity = 'door' THEN 'door closed'
                WHEN r.value > 0 THEN 'power on' ELSE 'power lost' END AS text
      FROM erp.sensor_assignments a
      JOIN telemetry.sensors s ON s.id = a.sensor_id AND s.quantity IN ('door', 'power')
      JOIN telemetry.readings r ON r.sensor_id = s.id AND r.time >= a.valid_from
                               AND (a.valid_to IS NULL OR r.time < a.valid_to)
     WHERE a.location_id = $location AND $__timeFilter(r.time)) e
 WHERE before IS DISTINCT FROM value
 ORDER BY time""",
    ("time", "text"),
)
LOCATION_ALERTS = Query(
    "location_alerts",
    """SELECT al.started_at AS time, coalesce(al.ended_at, now()) AS timeend,
       al.severity || ': ' || al.summary AS text
  FROM erp.sensor_assignments a
  JOIN telemetry.alerts al ON al.sensor_id = a.sensor_id AND al.started_at >= a.valid_from
                          AND (a.valid_to IS NULL OR al.started_at < a.valid_to)
 WHERE a.location_id = $location
   AND al.started_at <= $__timeTo() AND coalesce(al.ended_at, now()) >= $__timeFrom()
 ORDER BY 1""",
    ("time", "timeend", "text"),
)

# --- batch ----------------------------------------------------------------------------

BATCH_HISTORY = Query(
    "batch_history",
    f"""SELECT {bucket("time")} AS time, min(value) AS min, avg(value) AS mean, max(value) AS max
  FROM erp.lot_readings($lot, $__timeFrom(), $__timeTo())
 GROUP BY 1 ORDER BY 1""",
    ("time", "min", "mean", "max"),
    "time_series",
)
BATCH_EXCURSIONS = Query(
    "batch_excursions",
    """SELECT e.start_t AS time, coalesce(e.end_t, e.last_t) AS timeend,
       e.level || ' ' || e.kind || ', peak ' || round(e.peak::numeric, 1) || ' °C' AS text
  FROM (SELECT DISTINCT sensor_id, segment_start, segment_end
          FROM erp.lot_segments($lot, $__timeFrom(), $__timeTo())) g
  JOIN telemetry.excursion_episodes e ON e.sensor_id = g.sensor_id AND e.status = 'active'
                                     AND e.start_t < g.segment_end
                                     AND coalesce(e.end_t, e.last_t) >= g.segment_start
 ORDER BY 1""",
    ("time", "timeend", "text"),
)
# The lot's figures over its whole life: the release evidence's own statistics (MKT, time
# out of range, coverage…), which `coldtrace erp-jobs` computes with the code of the
# release decision and keeps in erp.lot_figures (erp_core.lot_history.figures): one row,
# not a second definition in SQL. `computed_at` says how fresh the row is.
BATCH_STATS = Query(
    "batch_stats",
    """SELECT mkt, mkt_limit, mean, min, max, readings, tor_minutes, tor_budget_minutes, coverage,
       computed_at
  FROM erp.lot_figures WHERE lot_id = $lot""",
    (
        "mkt",
        "mkt_limit",
        "mean",
        "min",
        "max",
        "readings",
        "tor_minutes",
        "tor_budget_minutes",
        "coverage",
        "computed_at",
    ),
)
BATCH_RELEASE = Query(
    "batch_release",
    """SELECT l.lot_number, i.name AS item, l.status, l.expires_on,
       (SELECT d.verdict FROM erp.release_decisions d WHERE d.lot_id = l.id
         ORDER BY d.decided_at DESC LIMIT 1) AS last_decision,
       (SELECT count(*) FROM erp.deviations v WHERE v.lot_id = l.id AND v.status = 'open')
           AS open_deviations
  FROM erp.lots l JOIN erp.items i ON i.id = l.item_id
 WHERE l.id = $lot""",
    ("lot_number", "item", "status", "expires_on", "last_decision", "open_deviations"),
)

# --- shipments ------------------------------------------------------------------------

_IN_TRANSIT = "sh.departed_at IS NOT NULL AND sh.arrived_at IS NULL"

SHIPMENTS = Query(
    "shipments_in_transit",
    f"""SELECT sh.reference, t.code AS truck, o.code AS origin, d.code AS destination,
       sh.departed_at, count(sl.sensor_id) AS loggers,
       (SELECT count(*) FROM telemetry.alerts al JOIN erp.shipment_loggers x
            ON x.sensor_id = al.sensor_id
         WHERE x.shipment_id = sh.id AND al.status <> 'closed'
           AND al.started_at >= sh.departed_at) AS open_alerts
  FROM erp.shipments sh
  JOIN erp.locations t ON t.id = sh.truck_location_id
  JOIN erp.locations o ON o.id = sh.origin_location_id
  JOIN erp.locations d ON d.id = sh.destination_location_id
  LEFT JOIN erp.shipment_loggers sl ON sl.shipment_id = sh.id
 WHERE {_IN_TRANSIT}
 GROUP BY sh.id, t.code, o.code, d.code
 ORDER BY sh.departed_at""",
    ("reference", "truck", "origin", "destination", "departed_at", "loggers", "open_alerts"),
)
SHIPMENT_TEMPERATURES = Query(
    "shipment_temperatures",
    f"""SELECT {bucket("r.time")} AS time, sh.reference || ' ' || s.uid AS metric,
       avg(r.value) AS value
  FROM erp.shipments sh
  JOIN erp.shipment_loggers sl ON sl.shipment_id = sh.id
  JOIN telemetry.sensors s ON s.id = sl.sensor_id
  JOIN telemetry.readings r ON r.sensor_id = sl.sensor_id AND r.time >= sh.departed_at
 WHERE {_IN_TRANSIT} AND $__timeFilter(r.time)
 GROUP BY 1, 2 ORDER BY 1""",
    ("time", "metric", "value"),
    "time_series",
)
SHIPMENT_ALERTS = Query(
    "shipment_alerts",
    f"""SELECT sh.reference, s.uid AS logger, al.severity, al.status, al.started_at,
       al.peak, al.summary
  FROM erp.shipments sh
  JOIN erp.shipment_loggers sl ON sl.shipment_id = sh.id
  JOIN telemetry.sensors s ON s.id = sl.sensor_id
  JOIN telemetry.alerts al ON al.sensor_id = sl.sensor_id AND al.started_at >= sh.departed_at
 WHERE {_IN_TRANSIT}
 ORDER BY al.started_at DESC""",
    ("reference", "logger", "severity", "status", "started_at", "peak", "summary"),
)

# --- fleet health ---------------------------------------------------------------------

GATEWAYS = Query(
    "fleet_gateways",
    """SELECT g.id AS gateway, g.site, g.status, g.last_seen,
       extract(epoch FROM now() - g.last_seen) AS silent_s,
       (g.state->>'outbox_depth')::bigint AS outbox_depth,
       extract(epoch FROM g.last_seen) - (g.state->>'t')::float8 / 1000 AS clock_skew_s
  FROM telemetry.gateways g
 ORDER BY g.last_seen""",
    ("gateway", "site", "status", "last_seen", "silent_s", "outbox_depth", "clock_skew_s"),
)
SENSORS_LAST_SEEN = Query(
    "fleet_sensors",
    f"""SELECT s.gateway_id AS gateway, s.uid AS sensor, s.quantity, last.time AS last_reading,
       extract(epoch FROM now() - last.time) AS silent_s
  FROM telemetry.sensors s
  {_LAST}
 ORDER BY last.time NULLS FIRST""",
    ("gateway", "sensor", "quantity", "last_reading", "silent_s"),
)
SOURCES = Query(
    "fleet_sources",
    """SELECT g.id AS gateway, src->>'name' AS source, (src->>'ok')::boolean AS ok,
       to_timestamp((src->>'last_seen')::float8 / 1000) AS last_seen, src->>'error' AS error
  FROM telemetry.gateways g, jsonb_array_elements(coalesce(g.state->'sources', '[]')) AS src
 ORDER BY (src->>'ok')::boolean, g.id, src->>'name'""",
    ("gateway", "source", "ok", "last_seen", "error"),
)
INGEST_RATE = Query(
    "fleet_ingest_rate",
    f"""SELECT {bucket("received_at")} AS time,
       count(*) * 1000.0 / $__interval_ms AS readings_per_s
  FROM telemetry.readings WHERE $__timeFilter(received_at)
 GROUP BY 1 ORDER BY 1""",
    ("time", "readings_per_s"),
    "time_series",
)
DEAD_LETTERS = Query(
    "fleet_dead_letters",
    """SELECT date_bin(interval '1 hour', last_received_at, timestamptz '2000-01-01') AS time,
       sum(times_received) AS dead_letters
  FROM telemetry.dead_letters WHERE $__timeFilter(last_received_at)
 GROUP BY 1 ORDER BY 1""",
    ("time", "dead_letters"),
    "time_series",
)
NOTIFY_FAILURES = Query(
    "fleet_notify_failures",
    """SELECT hour AS time, channel AS metric, failures
  FROM telemetry.notify_failures_hourly WHERE $__timeFilter(hour)
 ORDER BY 1""",
    ("time", "metric", "failures"),
    "time_series",
)
