"""ERP users, roles, audit trail and electronic signatures.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

The audit trail is written by the database itself: ``erp.audit_table('erp.x')`` attaches
a row trigger to a regulated table; every INSERT/UPDATE/DELETE is appended to
``erp.audit_log`` with the application user (``SET LOCAL coldtrace.user``), the reason
(``coldtrace.reason``), old/new values and a sha256 hash chain. See docs/access-and-audit.md.

The SQL is sent through the psycopg connection directly: SQLAlchemy would read
``:MI`` in a to_char format and ``%s`` in format() as bind parameters.
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

AUDIT = """
-- The chain head: one row, locked by every append, so appends are serialised and the
-- chain cannot fork (REPEATABLE READ writers get a serialisation failure instead).
CREATE TABLE erp.audit_head (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    seq        bigint NOT NULL,
    hash       text NOT NULL
);
INSERT INTO erp.audit_head (seq, hash) VALUES (0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE erp.audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    seq         bigint NOT NULL UNIQUE,
    at          timestamptz NOT NULL,
    table_name  text NOT NULL,
    action      text NOT NULL CHECK (action IN ('INSERT', 'UPDATE', 'DELETE')),
    row_key     jsonb NOT NULL,
    old_values  jsonb,
    new_values  jsonb,
    actor       text NOT NULL,
    reason      text,
    prev_hash   text NOT NULL,
    hash        text NOT NULL
);
CREATE INDEX audit_log_record ON erp.audit_log (table_name, row_key);
CREATE INDEX audit_log_at ON erp.audit_log (at);

-- One field of the canonical serialisation: "<length>:<text>;" or "~;" for NULL.
CREATE FUNCTION erp.audit_field(v text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN v IS NULL THEN '~;' ELSE length(v)::text || ':' || v || ';' END
$$;

-- sha256 (hex) of an entry's canonical serialisation, which includes the previous hash.
-- erp_core.audit.chain computes the same thing in Python for `coldtrace audit verify`.
CREATE FUNCTION erp.audit_hash(
    p_seq bigint, p_at timestamptz, p_table text, p_action text, p_key jsonb,
    p_old jsonb, p_new jsonb, p_actor text, p_reason text, p_prev text
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
        || erp.audit_field(p_prev),
        'UTF8')), 'hex')
$$;

-- Append one entry to the chain; the caller's transaction holds the head row until it ends.
CREATE FUNCTION erp.audit_append(
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

-- The row trigger: TG_ARGV[0] = key columns (text[] literal), TG_ARGV[1] = redacted columns.
CREATE FUNCTION erp.audit_row() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_actor  text := nullif(current_setting('coldtrace.user', true), '');
    v_reason text := nullif(current_setting('coldtrace.reason', true), '');
    v_keys   text[] := TG_ARGV[0]::text[];
    v_redact text[] := coalesce(TG_ARGV[1], '{}')::text[];
    v_table  text := TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME;
    v_old    jsonb;
    v_new    jsonb;
    v_key    jsonb;
BEGIN
    IF v_actor IS NULL THEN
        RAISE EXCEPTION '% on % without a user: regulated changes need set_actor() '
                        '(SET LOCAL coldtrace.user) in the same transaction', TG_OP, v_table
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'erp_core.audit.service.set_actor(conn, user=..., reason=...)';
    END IF;
    IF TG_OP <> 'INSERT' THEN v_old := to_jsonb(OLD); END IF;
    IF TG_OP <> 'DELETE' THEN v_new := to_jsonb(NEW); END IF;
    SELECT jsonb_object_agg(k, coalesce(v_new, v_old) -> k) INTO v_key FROM unnest(v_keys) AS k;
    IF TG_OP = 'UPDATE' THEN
        -- Only the changed columns, plus the key.
        SELECT coalesce(jsonb_object_agg(o.key, o.value), '{}') INTO v_old
        FROM jsonb_each(to_jsonb(OLD)) AS o WHERE o.value IS DISTINCT FROM (v_new -> o.key);
        IF v_old = '{}' THEN
            RETURN NULL;  -- nothing changed, nothing to record
        END IF;
        SELECT jsonb_object_agg(n.key, n.value) INTO v_new
        FROM jsonb_each(to_jsonb(NEW)) AS n WHERE v_old ? n.key;
        v_old := v_key || v_old;
        v_new := v_key || v_new;
    END IF;
    IF cardinality(v_redact) > 0 THEN
        SELECT jsonb_object_agg(e.key, CASE WHEN e.key = ANY (v_redact)
                                            THEN '"(redacted)"'::jsonb ELSE e.value END)
        INTO v_old FROM jsonb_each(v_old) AS e;
        SELECT jsonb_object_agg(e.key, CASE WHEN e.key = ANY (v_redact)
                                            THEN '"(redacted)"'::jsonb ELSE e.value END)
        INTO v_new FROM jsonb_each(v_new) AS e;
    END IF;
    PERFORM erp.audit_append(v_table, TG_OP, v_key, v_old, v_new, v_actor, v_reason);
    RETURN NULL;
END
$$;

-- Refuses the operation; TG_ARGV[0] says why.
CREATE FUNCTION erp.forbid() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on %.% is not allowed: %', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME,
        TG_ARGV[0] USING ERRCODE = 'insufficient_privilege';
END
$$;

-- Attach the audit trail to a regulated table (call it in the migration that creates it).
-- Key columns default to the primary key; redacted columns are logged as "(redacted)".
CREATE FUNCTION erp.audit_table(
    p_table regclass, p_key_columns text[] DEFAULT NULL, p_redact text[] DEFAULT '{}'
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_keys text[] := p_key_columns;
BEGIN
    IF v_keys IS NULL THEN
        SELECT array_agg(a.attname::text ORDER BY array_position(i.indkey::int2[], a.attnum))
        INTO v_keys
        FROM pg_index AS i
        JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
        WHERE i.indrelid = p_table AND i.indisprimary;
    END IF;
    IF v_keys IS NULL OR cardinality(v_keys) = 0 THEN
        RAISE EXCEPTION 'table % has no primary key: pass p_key_columns', p_table;
    END IF;
    EXECUTE format('DROP TRIGGER IF EXISTS audit_trail ON %s', p_table);
    EXECUTE format('DROP TRIGGER IF EXISTS audit_no_truncate ON %s', p_table);
    EXECUTE format(
        'CREATE TRIGGER audit_trail AFTER INSERT OR UPDATE OR DELETE ON %s '
        'FOR EACH ROW EXECUTE FUNCTION erp.audit_row(%L, %L)',
        p_table, v_keys::text, p_redact::text);
    EXECUTE format(
        'CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON %s '
        'FOR EACH STATEMENT EXECUTE FUNCTION erp.forbid(%L)',
        p_table, 'the table is audited; delete rows so each deletion is recorded');
END
$$;

-- Append-only: the trigger stops everyone but a superuser who disables it (and verify
-- then finds the edit); the privileges stop the application role even so.
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON erp.audit_log
    FOR EACH ROW EXECUTE FUNCTION erp.forbid('the audit trail is append-only');
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON erp.audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION erp.forbid('the audit trail is append-only');
CREATE TRIGGER audit_head_keep BEFORE DELETE ON erp.audit_head
    FOR EACH ROW EXECUTE FUNCTION erp.forbid('the audit chain head is permanent');
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON erp.audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION erp.forbid('the audit chain head is permanent');
REVOKE ALL ON erp.audit_log, erp.audit_head FROM PUBLIC;
REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON erp.audit_log FROM CURRENT_USER;
REVOKE INSERT, DELETE, TRUNCATE, REFERENCES, TRIGGER ON erp.audit_head FROM CURRENT_USER;
"""

ACCESS = """
CREATE TABLE erp.users (
    id                   integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username             text NOT NULL UNIQUE
                         CHECK (username ~ '^[a-z0-9][a-z0-9._-]{1,62}$'),
    full_name            text NOT NULL CHECK (length(btrim(full_name)) > 0),
    password_hash        text NOT NULL,
    active               boolean NOT NULL DEFAULT true,
    created_at           timestamptz NOT NULL,
    password_changed_at  timestamptz NOT NULL
);
-- A user id is never deleted or reused (Part 11 §11.300(a)): disable it instead.
CREATE TRIGGER users_keep BEFORE DELETE ON erp.users
    FOR EACH ROW EXECUTE FUNCTION erp.forbid('users are disabled, never deleted');
SELECT erp.audit_table('erp.users', NULL, ARRAY['password_hash']);

CREATE TABLE erp.user_roles (
    user_id     integer NOT NULL REFERENCES erp.users (id),
    role        text NOT NULL CHECK (role IN ('operator', 'warehouse', 'qa', 'qa_manager', 'admin')),
    granted_at  timestamptz NOT NULL,
    PRIMARY KEY (user_id, role)
);
SELECT erp.audit_table('erp.user_roles');

-- Separation of duties: whoever administers accounts does not sign releases.
CREATE FUNCTION erp.check_separation_of_duties() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_conflict text[];
BEGIN
    -- Serialise role changes of one user, so two transactions cannot each add one half.
    PERFORM 1 FROM erp.users WHERE id = NEW.user_id FOR UPDATE;
    v_conflict := CASE WHEN NEW.role = 'admin' THEN ARRAY['qa', 'qa_manager']
                       WHEN NEW.role IN ('qa', 'qa_manager') THEN ARRAY['admin']
                       ELSE ARRAY[]::text[] END;
    IF EXISTS (SELECT 1 FROM erp.user_roles
               WHERE user_id = NEW.user_id AND role = ANY (v_conflict)) THEN
        RAISE EXCEPTION 'separation of duties: user % cannot hold % together with %',
            NEW.user_id, NEW.role, array_to_string(v_conflict, ' or ')
            USING ERRCODE = 'check_violation', CONSTRAINT = 'separation_of_duties';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER user_roles_separation BEFORE INSERT OR UPDATE ON erp.user_roles
    FOR EACH ROW EXECUTE FUNCTION erp.check_separation_of_duties();

CREATE TABLE erp.login_attempts (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username  text NOT NULL,
    at        timestamptz NOT NULL,
    source    text,
    channel   text NOT NULL CHECK (channel IN ('login', 'signature')),
    outcome   text NOT NULL
              CHECK (outcome IN ('success', 'bad_password', 'unknown_user', 'disabled', 'locked'))
);
CREATE INDEX login_attempts_user_at ON erp.login_attempts (username, at);
CREATE TRIGGER login_attempts_append_only BEFORE UPDATE OR DELETE ON erp.login_attempts
    FOR EACH ROW EXECUTE FUNCTION erp.forbid('login attempts are append-only');
REVOKE UPDATE, DELETE, TRUNCATE ON erp.login_attempts FROM PUBLIC, CURRENT_USER;

CREATE TABLE erp.signatures (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         integer NOT NULL REFERENCES erp.users (id),
    username        text NOT NULL,
    full_name       text NOT NULL,
    signed_at       timestamptz NOT NULL,
    meaning         text NOT NULL CHECK (length(btrim(meaning)) > 0),
    comment         text,
    record_table    text NOT NULL,
    record_key      jsonb NOT NULL,
    record_hash     text NOT NULL CHECK (record_hash ~ '^[0-9a-f]{64}$'),
    signature_hash  text NOT NULL CHECK (signature_hash ~ '^[0-9a-f]{64}$')
);
CREATE INDEX signatures_record ON erp.signatures (record_table, record_key);
SELECT erp.audit_table('erp.signatures');
CREATE TRIGGER signatures_append_only BEFORE UPDATE OR DELETE ON erp.signatures
    FOR EACH ROW EXECUTE FUNCTION erp.forbid('signatures are append-only');
REVOKE UPDATE, DELETE, TRUNCATE ON erp.signatures FROM PUBLIC, CURRENT_USER;
"""


def _run(sql: str) -> None:
    op.get_bind().connection.driver_connection.execute(sql)


def upgrade() -> None:
    _run(AUDIT)
    _run(ACCESS)


def downgrade() -> None:
    _run(
        """
        DROP TABLE erp.signatures, erp.login_attempts, erp.user_roles, erp.users,
                   erp.audit_log, erp.audit_head;
        DROP FUNCTION erp.check_separation_of_duties(), erp.audit_table(regclass, text[], text[]),
                      erp.forbid(), erp.audit_row(),
                      erp.audit_append(text, text, jsonb, jsonb, jsonb, text, text),
                      erp.audit_hash(bigint, timestamptz, text, text, jsonb, jsonb, jsonb,
                                     text, text, text),
                      erp.audit_field(text);
        """
    )
