"""Shared reads defined once: a sensor's effective alarm profile, a lot's readings with the
value it arrived into.

* ``telemetry.sensor_effective_profiles``: per sensor that has one, the alarm profile
  that applies to it — its own (``telemetry.sensor_profiles``), else the default of its
  quantity (``telemetry.alarm_profiles.default_for_quantity``). The evaluator, the
  sweep, the notifier's coverage check and the ERP's location compliance read this view;
  before, each wrote the same four-table join.
* ``erp.lot_lead_ins(lot, from, to, max_hold)``: the value a lot finds when a segment
  starts (it arrives, a logger is swapped in, or the window starts): the segment's
  probe's last reading before the start, if the probe was already assigned to that
  location when it took it and the reading is less than ``max_hold`` old. It holds
  from the segment's start until the probe's next reading, the segment's end or
  ``max_hold`` after it was read, whichever comes first (docs/erp-stock.md).
* ``erp.lot_readings(lot, from, to, max_hold)`` replaces the three-argument function of
  revision 0005, which returned the readings without the held value at arrival: a
  Grafana panel or a report built on it disagreed with the API and the signed release
  evidence. It now returns the segment readings *and* the lead-ins (``held`` true,
  ``time`` the segment start, ``read_at`` when the probe read it), each with
  ``held_until``, the end of the span its value stands for. ``max_hold`` defaults to
  15 minutes, the API's and the release rules' default (a test keeps them equal). The
  old signature is dropped, so nothing can read the version without the held value.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-10

The privileges of the application and reader roles are not set here: ``coldtrace db
upgrade`` applies ``db/grants.py`` after every migration.
"""

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

_PROFILES = """
-- default_for_quantity is UNIQUE: at most one default per sensor. security_invoker: the
-- view grants nothing its reader could not read from the tables themselves.
CREATE VIEW telemetry.sensor_effective_profiles WITH (security_invoker = true) AS
SELECT s.id AS sensor_id,
       coalesce(a.id, d.id) AS profile_id,
       coalesce(a.name, d.name) AS profile_name,
       coalesce(a.spec, d.spec) AS spec,
       a.id IS NULL AS is_default
  FROM telemetry.sensors s
  LEFT JOIN telemetry.sensor_profiles sp ON sp.sensor_id = s.id
  LEFT JOIN telemetry.alarm_profiles a ON a.id = sp.profile_id
  LEFT JOIN telemetry.alarm_profiles d ON d.default_for_quantity = s.quantity
 WHERE a.id IS NOT NULL OR d.id IS NOT NULL;
COMMENT ON VIEW telemetry.sensor_effective_profiles IS
    'The alarm profile of each sensor that has one: its own, else the default of its quantity.';
COMMENT ON COLUMN telemetry.sensor_effective_profiles.is_default IS
    'true: the default profile of the sensor''s quantity (no profile of its own)';
"""

_LOT_READINGS = """
DROP FUNCTION erp.lot_readings(bigint, timestamptz, timestamptz);

-- One row per segment whose start is covered by the probe's previous reading. The
-- assignment valid at the segment's start must have begun at or before that reading.
CREATE FUNCTION erp.lot_lead_ins(p_lot_id bigint, p_from timestamptz, p_to timestamptz,
                                 p_max_hold interval DEFAULT interval '15 minutes')
RETURNS TABLE (sensor_id integer, location_id integer, segment_start timestamptz,
               segment_end timestamptz, read_at timestamptz, value double precision,
               held_until timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT g.sensor_id, g.location_id, g.segment_start, g.segment_end, p.time, p.value,
           h.until
      FROM erp.lot_segments(p_lot_id, p_from, p_to) g
      JOIN erp.sensor_assignments a
        ON a.sensor_id = g.sensor_id AND a.location_id = g.location_id
       AND a.valid_from <= g.segment_start
       AND (a.valid_to IS NULL OR a.valid_to > g.segment_start)
     CROSS JOIN LATERAL (
           SELECT x.time, x.value FROM telemetry.readings x
            WHERE x.sensor_id = g.sensor_id AND x.time < g.segment_start
              AND x.time >= greatest(a.valid_from, g.segment_start - p_max_hold)
            ORDER BY x.time DESC LIMIT 1) AS p
      LEFT JOIN LATERAL (
           SELECT y.time FROM telemetry.readings y
            WHERE y.sensor_id = g.sensor_id
              AND y.time >= g.segment_start AND y.time < g.segment_end
            ORDER BY y.time LIMIT 1) AS f ON true
     CROSS JOIN LATERAL (
           SELECT least(g.segment_end, p.time + p_max_hold,
                        coalesce(f.time, g.segment_end)) AS until) AS h
     WHERE h.until > g.segment_start
$$;

-- The lot's readings in [p_from, p_to): each segment's sensor's readings inside the
-- segment, and the value held at each segment's start (held). held_until: the next
-- reading of the segment, its end or max_hold after the reading, whichever is first.
-- LATERAL ... OFFSET 0: one walk of the (sensor_id, time) primary key per segment (the
-- walk is in time order, so lead() sorts nothing); without OFFSET 0 the planner may
-- flatten the subquery into a hash join over a scan of the whole readings table.
CREATE FUNCTION erp.lot_readings(p_lot_id bigint, p_from timestamptz, p_to timestamptz,
                                 p_max_hold interval DEFAULT interval '15 minutes')
RETURNS TABLE (sensor_id integer, location_id integer, segment_start timestamptz,
               segment_end timestamptz, "time" timestamptz, value double precision,
               held boolean, read_at timestamptz, held_until timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT g.sensor_id, g.location_id, g.segment_start, g.segment_end, r.time, r.value,
           false, r.time, least(r.next_t, g.segment_end, r.time + p_max_hold)
      FROM erp.lot_segments(p_lot_id, p_from, p_to) g
     CROSS JOIN LATERAL (
           SELECT x.time, x.value, lead(x.time) OVER (ORDER BY x.time) AS next_t
             FROM telemetry.readings x
            WHERE x.sensor_id = g.sensor_id
              AND x.time >= g.segment_start AND x.time < g.segment_end
           OFFSET 0) AS r
    UNION ALL
    SELECT l.sensor_id, l.location_id, l.segment_start, l.segment_end, l.segment_start,
           l.value, true, l.read_at, l.held_until
      FROM erp.lot_lead_ins(p_lot_id, p_from, p_to, p_max_hold) l
$$;
COMMENT ON FUNCTION erp.lot_readings(bigint, timestamptz, timestamptz, interval) IS
    'The lot''s readings with the value held at each segment''s start (docs/erp-stock.md)';
"""

_OLD_LOT_READINGS = """
CREATE FUNCTION erp.lot_readings(p_lot_id bigint, p_from timestamptz, p_to timestamptz)
RETURNS TABLE (sensor_id integer, location_id integer, segment_start timestamptz,
               segment_end timestamptz, "time" timestamptz, value double precision)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT g.sensor_id, g.location_id, g.segment_start, g.segment_end, r.time, r.value
      FROM erp.lot_segments(p_lot_id, p_from, p_to) g
     CROSS JOIN LATERAL (
           SELECT x.time, x.value FROM telemetry.readings x
            WHERE x.sensor_id = g.sensor_id
              AND x.time >= g.segment_start AND x.time < g.segment_end
           OFFSET 0) AS r
$$;
"""


def _run(sql: str) -> None:
    """Through psycopg directly: SQLAlchemy would read ``:name`` as a bind parameter."""
    op.get_bind().connection.driver_connection.execute(sql)


def upgrade() -> None:
    _run(_PROFILES)
    _run(_LOT_READINGS)


def downgrade() -> None:
    _run(
        "DROP FUNCTION erp.lot_readings(bigint, timestamptz, timestamptz, interval);"
        " DROP FUNCTION erp.lot_lead_ins(bigint, timestamptz, timestamptz, interval);"
        " DROP VIEW telemetry.sensor_effective_profiles;"
    )
    _run(_OLD_LOT_READINGS)
