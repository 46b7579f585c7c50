"""Records the application role cannot forge: audit entries name the database login,
readings are immutable (deleted only by the audited retention function), signatures
carry the algorithm and key that bind them.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06

* ``erp.audit_log.db_role``: the database login (``session_user``) that made the change,
  hashed into the chain after the other fields. NULL on older entries, whose hash stays
  what it was (the serialisation adds the field only when it is set), so the whole
  chain still verifies. A write by any login but the application role's is visible.
* ``telemetry.readings``: no UPDATE, no TRUNCATE, no DELETE — except inside
  ``erp.retention_delete``, which deletes what is older than the cutoff and under no
  lot's retention, and records one audit entry (cutoff, how many, which sensors, the
  time range, who, why). ``erp.retention_run(cutoff, reason)`` is the application's
  way in (SECURITY DEFINER, ``now`` fixed to the transaction's time); the application
  role itself has no DELETE privilege on readings (db/grants.py).
* ``erp.requeue_edge_event``: a person's retry of a failed scan or tag read, with its
  audit entry, in one owner function; the application role calls no audit function
  directly (it could otherwise append entries for changes that never happened).
* ``erp.signatures.algorithm`` / ``key_id``: 'hmac-sha256' with the id of the server key
  for new signatures; rows made before are 'sha256' (no key) and are reported as not
  verifiable with a key. A new row must be keyed (trigger ``signatures_keyed``).

The privileges of the application and reader roles are not set here: ``coldtrace db
upgrade`` applies ``db/grants.py`` after every migration.
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

AUDIT = """
ALTER TABLE erp.audit_log ADD COLUMN db_role text;
COMMENT ON COLUMN erp.audit_log.db_role IS
    'The database login (session_user) that made the change; NULL on entries before 0018.';

-- The chain hash with the database role as an eleventh field, written only when set:
-- an entry without it hashes exactly as erp.audit_hash of revision 0004.
CREATE FUNCTION erp.audit_hash(
    p_seq bigint, p_at timestamptz, p_table text, p_action text, p_key jsonb,
    p_old jsonb, p_new jsonb, p_actor text, p_reason text, p_prev text, p_db_role text
) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(convert_to(
        erp.audit_field(p_seq::text)
        || erp.audit_field(to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
        || erp.audit_field(p_table)
        || erp.audit_field(p_action)
        || erp.audit_field(p_key::text)
        || erp.audit_field(p_old::text)
        || erp.audit_field(p_new::text)
        || erp.audit_field(p_actor)
        || erp.audit_field(p_reason)
        || erp.audit_field(p_prev)
        || CASE WHEN p_db_role IS NULL THEN '' ELSE erp.audit_field(p_db_role) END,
        'UTF8')), 'hex')
$$;

CREATE OR REPLACE FUNCTION erp.audit_append(
    p_table text, p_action text, p_key jsonb, p_old jsonb, p_new jsonb,
    p_actor text, p_reason text
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_seq   bigint;
    v_prev  text;
    v_at    timestamptz := clock_timestamp();
    v_role  text := session_user;  -- the login, not the definer this function runs as
    v_hash  text;
    v_id    bigint;
BEGIN
    IF p_actor IS NULL OR p_actor = '' THEN
        RAISE EXCEPTION 'audit entry without a user'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT seq, hash INTO v_seq, v_prev FROM erp.audit_head FOR UPDATE;
    v_seq := v_seq + 1;
    v_hash := erp.audit_hash(v_seq, v_at, p_table, p_action, p_key, p_old, p_new,
                             p_actor, p_reason, v_prev, v_role);
    INSERT INTO erp.audit_log
        (seq, at, table_name, action, row_key, old_values, new_values, actor, reason,
         prev_hash, hash, db_role)
    VALUES (v_seq, v_at, p_table, p_action, p_key, p_old, p_new, p_actor, p_reason,
            v_prev, v_hash, v_role)
    RETURNING id INTO v_id;
    UPDATE erp.audit_head SET seq = v_seq, hash = v_hash;
    RETURN v_id;
END
$$;
"""

READINGS = """
-- Readings are the primary record: never changed, deleted only by retention.
CREATE FUNCTION erp.readings_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('coldtrace.retention', true) = 'running' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '% on telemetry.readings is not allowed: readings are immutable and '
                    'deleted only by erp.retention_run (audited)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER readings_immutable BEFORE UPDATE OR DELETE ON telemetry.readings
    FOR EACH ROW EXECUTE FUNCTION erp.readings_guard();
DO $$ BEGIN
    CREATE TRIGGER readings_no_truncate BEFORE TRUNCATE ON telemetry.readings
        FOR EACH STATEMENT EXECUTE FUNCTION
        erp.forbid('readings are deleted only by erp.retention_run (audited)');
EXCEPTION WHEN OTHERS THEN  -- a hypertable may refuse statement triggers; TRUNCATE is not granted
    RAISE WARNING 'no TRUNCATE trigger on telemetry.readings: %', SQLERRM;
END $$;

DROP FUNCTION erp.retention_run(timestamptz, timestamptz);

-- Delete readings older than the cutoff that belong to no lot under retention, and
-- record what went in one audit entry. Owner only: p_now decides what is protected.
CREATE FUNCTION erp.retention_delete(p_cutoff timestamptz, p_reason text, p_now timestamptz)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_actor    text := nullif(current_setting('coldtrace.user', true), '');
    v_n        bigint;
    v_first    timestamptz;
    v_last     timestamptz;
    v_sensors  jsonb;
BEGIN
    IF v_actor IS NULL THEN
        RAISE EXCEPTION 'deleting readings without a user: set_actor() first'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF coalesce(btrim(p_reason), '') = '' THEN
        RAISE EXCEPTION 'deleting readings needs a reason'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_cutoff > p_now THEN
        RAISE EXCEPTION 'retention cutoff % is after now (%)', p_cutoff, p_now
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM set_config('coldtrace.retention', 'running', true);
    WITH gone AS (
        DELETE FROM telemetry.readings r
         WHERE r.time < p_cutoff
           AND NOT EXISTS (
               SELECT 1 FROM erp.protected_ranges p
                WHERE p.sensor_id = r.sensor_id
                  AND r.time >= p.segment_start AND r.time < p.segment_end
                  AND p.retained_until > p_now)
        RETURNING r.sensor_id, r.time
    ), per_sensor AS (
        SELECT sensor_id, count(*) AS n, min(time) AS first_t, max(time) AS last_t
          FROM gone GROUP BY sensor_id
    )
    SELECT coalesce(sum(n), 0), min(first_t), max(last_t),
           coalesce(jsonb_object_agg(sensor_id::text, jsonb_build_object(
               'n', n, 'first', first_t, 'last', last_t)), '{}')
      INTO v_n, v_first, v_last, v_sensors
      FROM per_sensor;
    PERFORM set_config('coldtrace.retention', '', true);
    PERFORM erp.audit_append(
        'telemetry.readings', 'DELETE',
        jsonb_build_object('cutoff', p_cutoff, 'now', p_now),
        jsonb_build_object('deleted', v_n, 'first', v_first, 'last', v_last,
                           'sensors', v_sensors),
        NULL, v_actor, p_reason);
    RETURN v_n;
END
$$;

-- The retention job's way in: the cutoff and reason are the caller's, "now" is not.
CREATE FUNCTION erp.retention_run(p_cutoff timestamptz, p_reason text) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
    SELECT erp.retention_delete(p_cutoff, p_reason, now())
$$;
"""

SIGNATURES = """
ALTER TABLE erp.signatures
    ADD COLUMN algorithm text NOT NULL DEFAULT 'sha256',
    ADD COLUMN key_id text,
    ADD CONSTRAINT signatures_algorithm CHECK (
        (algorithm = 'sha256' AND key_id IS NULL)
        OR (algorithm = 'hmac-sha256' AND key_id ~ '^[A-Za-z0-9._-]{1,64}$'));
ALTER TABLE erp.signatures ALTER COLUMN algorithm DROP DEFAULT;
COMMENT ON COLUMN erp.signatures.algorithm IS
    'hmac-sha256: signature_hash is an HMAC with the server key key_id; sha256: made before 0018, no key';

CREATE FUNCTION erp.signatures_keyed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.algorithm IS DISTINCT FROM 'hmac-sha256' THEN
        RAISE EXCEPTION 'a new signature must be bound with the server key (hmac-sha256), not %',
            NEW.algorithm USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER signatures_keyed BEFORE INSERT ON erp.signatures
    FOR EACH ROW EXECUTE FUNCTION erp.signatures_keyed();
"""


EDGE_RETRY = """
-- Queue a failed scan or tag read again and record who did it and what the failure was.
CREATE FUNCTION erp.requeue_edge_event(p_source text, p_event_id bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    o record;
BEGIN
    SELECT source, event_id, outcome, reason, processed_at INTO o
      FROM erp.edge_event_outcomes
     WHERE source = p_source AND event_id = p_event_id AND outcome = 'failed';
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO erp.edge_event_queue (source, event_id) VALUES (p_source, p_event_id)
        ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN false;  -- already queued
    END IF;
    PERFORM erp.audit_append(
        'erp.edge_event_outcomes', 'UPDATE',
        jsonb_build_object('source', o.source, 'event_id', o.event_id),
        jsonb_build_object('outcome', o.outcome, 'reason', o.reason,
                           'processed_at', o.processed_at),
        jsonb_build_object('outcome', 'queued again'),
        nullif(current_setting('coldtrace.user', true), ''),
        nullif(current_setting('coldtrace.reason', true), ''));
    RETURN true;
END
$$;
"""


def _run(sql: str) -> None:
    op.get_bind().connection.driver_connection.execute(sql)


def upgrade() -> None:
    _run(AUDIT)
    _run(READINGS)
    _run(SIGNATURES)
    _run(EDGE_RETRY)


def downgrade() -> None:
    _run(
        """
        DROP FUNCTION erp.requeue_edge_event(text, bigint);
        DROP TRIGGER signatures_keyed ON erp.signatures;
        DROP FUNCTION erp.signatures_keyed();
        ALTER TABLE erp.signatures DROP CONSTRAINT signatures_algorithm,
            DROP COLUMN algorithm, DROP COLUMN key_id;
        DROP FUNCTION erp.retention_run(timestamptz, text);
        DROP FUNCTION erp.retention_delete(timestamptz, text, timestamptz);
        DROP TRIGGER readings_immutable ON telemetry.readings;
        DROP TRIGGER IF EXISTS readings_no_truncate ON telemetry.readings;
        DROP FUNCTION erp.readings_guard();
        """
    )
    # Revision 0007's retention_run and 0004's audit_append come back as they were.
    _run(_OLD_RETENTION_RUN)
    _run(_OLD_AUDIT_APPEND)
    _run(
        "DROP FUNCTION erp.audit_hash(bigint, timestamptz, text, text, jsonb, jsonb, jsonb,"
        " text, text, text, text); ALTER TABLE erp.audit_log DROP COLUMN db_role;"
    )


_OLD_RETENTION_RUN = """
CREATE FUNCTION erp.retention_run(p_cutoff timestamptz, p_now timestamptz DEFAULT now())
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    DELETE FROM telemetry.readings r
     WHERE r.time < p_cutoff
       AND NOT EXISTS (
           SELECT 1 FROM erp.protected_ranges p
            WHERE p.sensor_id = r.sensor_id
              AND r.time >= p.segment_start AND r.time < p.segment_end
              AND p.retained_until > p_now);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
"""

_OLD_AUDIT_APPEND = """
CREATE OR REPLACE FUNCTION erp.audit_append(
    p_table text, p_action text, p_key jsonb, p_old jsonb, p_new jsonb,
    p_actor text, p_reason text
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_seq  bigint;
    v_prev text;
    v_at   timestamptz := clock_timestamp();
    v_hash text;
    v_id   bigint;
BEGIN
    IF p_actor IS NULL OR p_actor = '' THEN
        RAISE EXCEPTION 'audit entry without a user'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT seq, hash INTO v_seq, v_prev FROM erp.audit_head FOR UPDATE;
    v_seq := v_seq + 1;
    v_hash := erp.audit_hash(v_seq, v_at, p_table, p_action, p_key, p_old, p_new,
                             p_actor, p_reason, v_prev);
    INSERT INTO erp.audit_log
        (seq, at, table_name, action, row_key, old_values, new_values, actor, reason,
         prev_hash, hash)
    VALUES (v_seq, v_at, p_table, p_action, p_key, p_old, p_new, p_actor, p_reason,
            v_prev, v_hash)
    RETURNING id INTO v_id;
    UPDATE erp.audit_head SET seq = v_seq, hash = v_hash;
    RETURN v_id;
END
$$;
"""
