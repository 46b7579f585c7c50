"""The lots an alert concerns, defined once: for the notifier's messages and the ERP alike.

* ``erp.sensor_lots(sensor, from, to)``: the lots a sensor stood for at some time in
  ``[from, to)`` — lots whose custody intervals (``erp.lot_intervals``) meet that
  sensor's assignments to the same location (``erp.lot_segments``, the lot-history
  definition). The deviation trigger of revision 0007 wrote this query inline; it now
  calls the function, so the lots a deviation opens on and the lots an e-mail names
  cannot differ.
* ``erp.alert_lots``: per alert with a sensor, the lots exposed during it — from its
  start to its end (inclusive, as the deviation trigger), or up to now while it is
  ongoing — with lot number, product name and GTIN. Read by the notifier (ingest never
  imports erp_core; it reads this view), the alert pages and the CLI.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-06

The privileges of the application and reader roles are not set here: ``coldtrace db
upgrade`` applies ``db/grants.py`` after every migration.
"""

from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None

_SENSOR_LOTS = """
-- Candidates: lots ever moved into a location the sensor was assigned to in the window;
-- the lot's segments then decide (the lot was there while the sensor stood for it).
CREATE FUNCTION erp.sensor_lots(p_sensor_id integer, p_from timestamptz, p_to timestamptz)
RETURNS TABLE (lot_id bigint)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT DISTINCT m.lot_id
      FROM erp.sensor_assignments a
      JOIN erp.stock_movements m ON m.to_location_id = a.location_id
     WHERE a.sensor_id = p_sensor_id
       AND a.valid_from < p_to
       AND coalesce(a.valid_to, 'infinity') > p_from
       AND m.moved_at < p_to
       AND EXISTS (SELECT 1 FROM erp.lot_segments(m.lot_id, p_from, p_to) g
                    WHERE g.sensor_id = p_sensor_id)
$$;
COMMENT ON FUNCTION erp.sensor_lots(integer, timestamptz, timestamptz) IS
    'The lots the sensor stood for at some time in [from, to) (lot segments, 0005)';

CREATE VIEW erp.alert_lots WITH (security_invoker = true) AS
SELECT a.id AS alert_id, l.id AS lot_id, l.lot_number, i.name AS item_name, i.gtin
  FROM telemetry.alerts a
 CROSS JOIN LATERAL erp.sensor_lots(
           a.sensor_id, a.started_at,
           coalesce(a.ended_at + interval '1 ms', 'infinity')) s
  JOIN erp.lots l ON l.id = s.lot_id
  JOIN erp.items i ON i.id = l.item_id
 WHERE a.sensor_id IS NOT NULL;
COMMENT ON VIEW erp.alert_lots IS
    'The lots exposed during each alert of a sensor (erp.sensor_lots over its span)';
"""

# The trigger of 0007 with its lot query replaced by erp.sensor_lots; otherwise unchanged.
_TRIGGER = """
CREATE OR REPLACE FUNCTION erp.open_deviations_for_episode() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ep_end timestamptz := coalesce(NEW.end_t, NEW.last_t);
    lot    record;
BEGIN
    IF NEW.status <> 'active' OR NEW.level <> 'alarm'
       OR NOT (NEW.delay_reached OR NEW.abs_breach) THEN
        RETURN NEW;
    END IF;
    IF coalesce(current_setting('coldtrace.user', true), '') = '' THEN
        PERFORM set_config('coldtrace.user', 'system:excursions', true);
        PERFORM set_config('coldtrace.reason',
                           format('excursion episode %s reached the alarm', NEW.id), true);
    END IF;
    FOR lot IN
        SELECT s.lot_id
          FROM erp.sensor_lots(NEW.sensor_id, NEW.start_t, ep_end + interval '1 ms') s
    LOOP
        CONTINUE WHEN EXISTS (
            SELECT 1 FROM erp.deviations d
              JOIN telemetry.excursion_episodes o ON o.id = d.episode_id
             WHERE d.lot_id = lot.lot_id AND o.sensor_id = NEW.sensor_id
               AND o.start_t <= ep_end AND coalesce(o.end_t, o.last_t) >= NEW.start_t);
        INSERT INTO erp.deviations (lot_id, episode_id, title, description, opened_by)
        VALUES (lot.lot_id, NEW.id,
                format('Temperature excursion (%s) on %s', NEW.kind,
                       (SELECT uid FROM telemetry.sensors WHERE id = NEW.sensor_id)),
                format('Episode %s from %s, peak %s °C%s', NEW.id, NEW.start_t,
                       round(NEW.peak::numeric, 1),
                       CASE WHEN NEW.late THEN ', found in late data' ELSE '' END),
                'system:excursions')
        ON CONFLICT (lot_id, episode_id) DO NOTHING;
    END LOOP;
    RETURN NEW;
END $$;
"""

# Revision 0007's trigger, for the downgrade only.
_OLD_TRIGGER = """
CREATE OR REPLACE FUNCTION erp.open_deviations_for_episode() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ep_end timestamptz := coalesce(NEW.end_t, NEW.last_t);
    lot    record;
BEGIN
    IF NEW.status <> 'active' OR NEW.level <> 'alarm'
       OR NOT (NEW.delay_reached OR NEW.abs_breach) THEN
        RETURN NEW;
    END IF;
    IF coalesce(current_setting('coldtrace.user', true), '') = '' THEN
        PERFORM set_config('coldtrace.user', 'system:excursions', true);
        PERFORM set_config('coldtrace.reason',
                           format('excursion episode %s reached the alarm', NEW.id), true);
    END IF;
    FOR lot IN
        SELECT DISTINCT m.lot_id
          FROM erp.sensor_assignments a
          JOIN erp.stock_movements m ON m.to_location_id = a.location_id
         WHERE a.sensor_id = NEW.sensor_id
           AND a.valid_from <= ep_end
           AND coalesce(a.valid_to, 'infinity') > NEW.start_t
           AND m.moved_at <= ep_end
    LOOP
        CONTINUE WHEN NOT EXISTS (
            SELECT 1 FROM erp.lot_segments(lot.lot_id, NEW.start_t, ep_end + interval '1 ms') g
             WHERE g.sensor_id = NEW.sensor_id);
        CONTINUE WHEN EXISTS (
            SELECT 1 FROM erp.deviations d
              JOIN telemetry.excursion_episodes o ON o.id = d.episode_id
             WHERE d.lot_id = lot.lot_id AND o.sensor_id = NEW.sensor_id
               AND o.start_t <= ep_end AND coalesce(o.end_t, o.last_t) >= NEW.start_t);
        INSERT INTO erp.deviations (lot_id, episode_id, title, description, opened_by)
        VALUES (lot.lot_id, NEW.id,
                format('Temperature excursion (%s) on %s', NEW.kind,
                       (SELECT uid FROM telemetry.sensors WHERE id = NEW.sensor_id)),
                format('Episode %s from %s, peak %s °C%s', NEW.id, NEW.start_t,
                       round(NEW.peak::numeric, 1),
                       CASE WHEN NEW.late THEN ', found in late data' ELSE '' END),
                'system:excursions')
        ON CONFLICT (lot_id, episode_id) DO NOTHING;
    END LOOP;
    RETURN NEW;
END $$;
"""


def _run(sql: str) -> None:
    """Through psycopg directly: SQLAlchemy would read ``:name`` as a bind parameter."""
    op.get_bind().connection.driver_connection.execute(sql)


def upgrade() -> None:
    _run(_SENSOR_LOTS)
    _run(_TRIGGER)


def downgrade() -> None:
    _run(_OLD_TRIGGER)
    _run(
        "DROP VIEW erp.alert_lots;"
        " DROP FUNCTION erp.sensor_lots(integer, timestamp with time zone,"
        " timestamp with time zone);"
    )
