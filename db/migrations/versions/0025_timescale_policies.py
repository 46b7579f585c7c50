"""TimescaleDB used for what it is for: compressed old readings and a retention job that
keeps every reading a lot under retention needs. Plain PostgreSQL gets the same rule.

* ``erp.retention_policy.readings_kept``: how old a reading must be before retention may
  delete it when no lot needs it (default and floor: 5 years).
* ``erp.retention_job(job_id, config)``: one run of scheduled retention. It deletes through
  ``erp.retention_delete`` — the rule of revision 0018 (a reading in a lot's
  ``erp.protected_ranges`` stays while ``erp.lot_retained_until`` is ahead: expiry + 2
  years, 5 years without expiry, implants forever), with its audit entry, actor
  ``system:retention`` — so nothing is written twice. TimescaleDB runs it daily
  (``add_job``); on plain PostgreSQL an operator's cron may ``CALL`` it. No
  ``drop_chunks`` policy: a chunk is a week of every sensor, protected or not.
* Where TimescaleDB is in use (``db.timescale.in_use``): ``telemetry.readings`` is
  compressed, segmented by sensor and ordered by time, by a policy for chunks older than
  30 days; ``telemetry.set_compress_after(interval)`` (owner) changes the age.
  Compressed chunks still take late readings (``ON CONFLICT DO NOTHING``) and the
  retention job's deletes. Every query is the same text on both back-ends.

Revision ID: 0025
Revises: 0023 (the lead re-chains it after 0024 at merge)
Create Date: 2026-12-06
"""

from alembic import op

from db import timescale

revision = "0025"
down_revision = "0023"
branch_labels = None
depends_on = None

COMPRESS_AFTER = "30 days"

_BOTH = """
ALTER TABLE erp.retention_policy
    ADD COLUMN readings_kept interval NOT NULL DEFAULT interval '5 years'
        CHECK (readings_kept >= interval '5 years');
COMMENT ON COLUMN erp.retention_policy.readings_kept IS
    'age before scheduled retention may delete a reading no lot under retention needs';

-- One scheduled retention run: readings older than readings_kept that no lot under
-- retention needs, through the audited rule of erp.retention_delete.
CREATE PROCEDURE erp.retention_job(job_id integer, config jsonb)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_kept interval := (SELECT readings_kept FROM erp.retention_policy);
BEGIN
    PERFORM set_config('coldtrace.user', 'system:retention', true);
    PERFORM erp.retention_delete(
        now() - v_kept,
        format('scheduled retention (job %s): readings older than %s that no lot needs',
               coalesce(job_id::text, '-'), v_kept),
        now());
END
$$;
"""

_TIMESCALE = f"""
ALTER TABLE telemetry.readings SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'sensor_id',
    timescaledb.compress_orderby = 'time'
);

CREATE FUNCTION telemetry.set_compress_after(p_after interval) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM remove_compression_policy('telemetry.readings', if_exists => true);
    RETURN add_compression_policy('telemetry.readings', compress_after => p_after);
END
$$;
COMMENT ON FUNCTION telemetry.set_compress_after(interval) IS
    'compress readings chunks older than this (owner only; TimescaleDB)';
SELECT telemetry.set_compress_after(interval '{COMPRESS_AFTER}');

SELECT add_job('erp.retention_job', interval '1 day',
               initial_start => date_trunc('day', now()) + interval '1 day 3 hours');
"""


def upgrade() -> None:
    op.execute(_BOTH)
    if timescale.in_use(op.get_bind()):
        op.execute(_TIMESCALE)


def downgrade() -> None:
    if timescale.in_use(op.get_bind()):
        op.execute(
            """
            SELECT delete_job(job_id) FROM timescaledb_information.jobs
             WHERE proc_schema = 'erp' AND proc_name = 'retention_job';
            SELECT remove_compression_policy('telemetry.readings', if_exists => true);
            DROP FUNCTION telemetry.set_compress_after(interval);
            SELECT decompress_chunk(c, if_compressed => true)
              FROM show_chunks('telemetry.readings') c;
            ALTER TABLE telemetry.readings SET (timescaledb.compress = false);
            """
        )
    op.execute(
        """
        DROP PROCEDURE erp.retention_job(integer, jsonb);
        ALTER TABLE erp.retention_policy DROP COLUMN readings_kept;
        """
    )
