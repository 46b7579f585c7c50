"""A daily level above the hourly reading rollup, for year-long lot histories.

``erp.reading_days`` holds per sensor and UTC day what ``erp.reading_hours`` holds per
hour, summed from the day's hours: a year of one sensor is 365 rows instead of 8,760. A
day is used whole only when every hour in it would be (see erp_core/stock/rollup.py);
otherwise its hours are read. Derived data like the hourly rollup, so not audited. It is
kept in step with the hours by ``erp_core.stock.rollup_refresh.refresh``, which recomputes the
days of every hour range it recomputes; the upgrade fills it from the hours already there.

The refresh finds readings received since a sensor's watermark. The index on
``received_at`` alone made it walk every sensor's recent readings (all of ingest's
traffic in the last 15 minutes and more) to keep one sensor's; it is replaced by one on
(sensor_id, received_at), which ingest pays for the same way. Building it on a large
readings table blocks inserts for the build (ingest retries; gateways keep their
outbox).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_SQL = """
CREATE TABLE erp.reading_days (
    sensor_id  integer NOT NULL,
    day        timestamptz NOT NULL,
    n          integer NOT NULL,
    vmin       double precision NOT NULL,
    vmax       double precision NOT NULL,
    vsum       double precision NOT NULL,
    first_t    timestamptz NOT NULL,
    last_t     timestamptz NOT NULL,
    next_t     timestamptz,
    max_step   double precision,
    w_sum      double precision,
    wv_sum     double precision,
    wexp_sum   double precision,
    PRIMARY KEY (sensor_id, day)
);
COMMENT ON TABLE erp.reading_days IS 'erp.reading_hours summed per sensor and UTC day';

-- p_from and p_to are UTC day starts. The day's next_t is that of its last hour, and its
-- max_step is NULL when an hour's is (the sensor's last reading so far is in it), as for
-- the hours; sums skip NULL like the hourly sums do.
CREATE FUNCTION erp.refresh_reading_days(p_sensor integer, p_from timestamptz, p_to timestamptz)
RETURNS integer LANGUAGE sql AS $$
    DELETE FROM erp.reading_days
     WHERE sensor_id = p_sensor AND day >= p_from AND day < p_to;
    INSERT INTO erp.reading_days
    SELECT p_sensor, date_bin('1 day', hour, timestamptz '1970-01-01 00:00+00') AS d,
           sum(n), min(vmin), max(vmax), sum(vsum), min(first_t), max(last_t),
           CASE WHEN bool_and(next_t IS NOT NULL) THEN max(next_t) END,
           CASE WHEN bool_and(max_step IS NOT NULL) THEN max(max_step) END,
           sum(w_sum), sum(wv_sum), sum(wexp_sum)
      FROM erp.reading_hours
     WHERE sensor_id = p_sensor AND hour >= p_from AND hour < p_to
     GROUP BY d;
    SELECT 1;
$$;

CREATE INDEX readings_sensor_received ON telemetry.readings (sensor_id, received_at);
DROP INDEX telemetry.readings_received_at;

INSERT INTO erp.reading_days
SELECT sensor_id, date_bin('1 day', hour, timestamptz '1970-01-01 00:00+00') AS d,
       sum(n), min(vmin), max(vmax), sum(vsum), min(first_t), max(last_t),
       CASE WHEN bool_and(next_t IS NOT NULL) THEN max(next_t) END,
       CASE WHEN bool_and(max_step IS NOT NULL) THEN max(max_step) END,
       sum(w_sum), sum(wv_sum), sum(wexp_sum)
  FROM erp.reading_hours
 GROUP BY sensor_id, d;
"""


def upgrade() -> None:
    op.execute(_SQL)


def downgrade() -> None:
    op.execute(
        """
        DROP FUNCTION erp.refresh_reading_days(integer, timestamptz, timestamptz);
        DROP TABLE erp.reading_days;
        CREATE INDEX readings_received_at ON telemetry.readings (received_at);
        DROP INDEX telemetry.readings_sensor_received;
        """
    )
