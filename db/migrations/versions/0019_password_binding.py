"""Passwords bound to the record key; two-person resets of accounts that sign.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08

* ``erp.users.password_key_id`` / ``password_binding``: an HMAC with the record key
  (``erp_core.auth.binding``) over user id, user name, hash, when it was set, the
  one-time flag and ``password_serial``. The key is not in the database: a hash written
  by a database writer has no valid binding and is refused at sign-in and at every
  signature. NULL after this upgrade until ``coldtrace users bind-passwords`` binds the
  hashes present now (listed in ``erp.users_unbound_at_upgrade``, with their sha256).
  The binding is redacted in the audit trail like the hash.
* ``erp.users.password_serial`` and trigger ``users_password_serial``: the serial never
  goes down, and a password record (hash, binding, time, one-time flag) changes only
  with a higher serial — so an old (hash, binding) of the same user, which binds its
  old serial, cannot be written back by the application role.
* ``erp.login_attempts.outcome`` ``unbound``: the right password for a hash that is not
  bound (refused).
* ``erp.password_resets``: a reset of an account that holds a signing role is requested
  by an administrator and confirmed by a QA manager with an electronic signature; only
  then is a one-time password made, shown to the QA manager alone. The database refuses
  a confirmer who is the target or the requester, a confirmer without an active
  ``qa_manager`` role, a confirmation without the confirmer's signature of this request,
  a second confirmation, an edit of the request, and any DELETE. Audited.

The privileges of the application and reader roles are applied by ``coldtrace db
upgrade`` from ``db/grants.py``.
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

BINDING = """
ALTER TABLE erp.users
    ADD COLUMN password_key_id text
        CHECK (password_key_id ~ '^[A-Za-z0-9._-]{1,64}$'),
    ADD COLUMN password_binding text CHECK (password_binding ~ '^[0-9a-f]{64}$'),
    ADD COLUMN password_serial bigint NOT NULL DEFAULT 0 CHECK (password_serial >= 0),
    ADD CONSTRAINT users_password_bound_whole
        CHECK ((password_key_id IS NULL) = (password_binding IS NULL));
COMMENT ON COLUMN erp.users.password_binding IS
    'HMAC-SHA256 with the record key password_key_id over id, username, hash, '
    'password_changed_at, must_change_password, password_serial (erp_core.auth.binding)';

-- the binding is redacted in the audit trail like the hash
SELECT erp.audit_table('erp.users', NULL, ARRAY['password_hash', 'password_binding']);

CREATE FUNCTION erp.users_password_serial() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.password_serial < OLD.password_serial THEN
        RAISE EXCEPTION 'the password serial of user % cannot go back (% to %): an old '
                        'password record is never written back', OLD.username,
                        OLD.password_serial, NEW.password_serial
            USING ERRCODE = 'check_violation', CONSTRAINT = 'users_password_serial';
    END IF;
    IF (NEW.password_hash, NEW.password_changed_at, NEW.must_change_password,
        NEW.password_key_id, NEW.password_binding)
       IS DISTINCT FROM
       (OLD.password_hash, OLD.password_changed_at, OLD.must_change_password,
        OLD.password_key_id, OLD.password_binding)
       AND NEW.password_serial <= OLD.password_serial THEN
        RAISE EXCEPTION 'a new password record of user % needs a higher password_serial',
                        OLD.username
            USING ERRCODE = 'check_violation', CONSTRAINT = 'users_password_serial';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER users_password_serial BEFORE UPDATE ON erp.users
    FOR EACH ROW EXECUTE FUNCTION erp.users_password_serial();

-- The hashes present at this upgrade: the only ones `coldtrace users bind-passwords`
-- binds (a hash written later without a binding is not laundered by it).
CREATE TABLE erp.users_unbound_at_upgrade (
    user_id               integer PRIMARY KEY REFERENCES erp.users (id),
    password_hash_sha256  text NOT NULL,
    recorded_at           timestamptz NOT NULL DEFAULT now()
);
INSERT INTO erp.users_unbound_at_upgrade (user_id, password_hash_sha256)
SELECT id, encode(sha256(convert_to(password_hash, 'UTF8')), 'hex') FROM erp.users;
CREATE TRIGGER users_unbound_at_upgrade_fixed BEFORE UPDATE OR DELETE ON erp.users_unbound_at_upgrade
    FOR EACH ROW EXECUTE FUNCTION erp.forbid('the list of hashes present at the upgrade is fixed');

ALTER TABLE erp.login_attempts DROP CONSTRAINT login_attempts_outcome_check,
    ADD CONSTRAINT login_attempts_outcome_check
        CHECK (outcome IN ('success', 'bad_password', 'unknown_user', 'disabled',
                           'locked', 'expired', 'unbound'));
"""

RESETS = """
CREATE TABLE erp.password_resets (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id          integer NOT NULL REFERENCES erp.users (id),
    username         text NOT NULL,
    requested_by     text NOT NULL CHECK (length(btrim(requested_by)) > 0),
    requested_at     timestamptz NOT NULL,
    reason           text NOT NULL CHECK (length(btrim(reason)) > 0),
    confirmed_by     text,
    confirmed_by_id  integer REFERENCES erp.users (id),
    confirmed_at     timestamptz,
    signature_id     bigint,  -- erp.signatures(id); no FK (the app role may not lock
                              -- signatures): the trigger checks it
    cancelled_at     timestamptz,
    CONSTRAINT password_reset_confirmer_not_target
        CHECK (confirmed_by <> username AND confirmed_by_id <> user_id),
    CONSTRAINT password_reset_confirmer_not_requester CHECK (confirmed_by <> requested_by),
    CONSTRAINT password_reset_confirmation_whole CHECK (
        (confirmed_by IS NULL) = (confirmed_by_id IS NULL)
        AND (confirmed_by IS NULL) = (confirmed_at IS NULL)
        AND (confirmed_by IS NULL) = (signature_id IS NULL)),
    CONSTRAINT password_reset_one_end CHECK (confirmed_at IS NULL OR cancelled_at IS NULL)
);
CREATE UNIQUE INDEX password_resets_one_open ON erp.password_resets (user_id)
    WHERE confirmed_at IS NULL AND cancelled_at IS NULL;
COMMENT ON TABLE erp.password_resets IS
    'Resets of accounts that sign: requested by an administrator, confirmed by a QA '
    'manager (signature_id, meaning "Password reset confirmed"); erp_core.auth.resets';

CREATE FUNCTION erp.password_resets_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_target text;
BEGIN
    SELECT username INTO v_target FROM erp.users WHERE id = NEW.user_id;
    IF v_target IS DISTINCT FROM NEW.username THEN
        RAISE EXCEPTION 'password reset: user % is not called %', NEW.user_id, NEW.username
            USING ERRCODE = 'check_violation', CONSTRAINT = 'password_reset_target';
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NEW.confirmed_at IS NOT NULL OR NEW.cancelled_at IS NOT NULL THEN
            RAISE EXCEPTION 'a password reset starts open: it is confirmed or cancelled later'
                USING ERRCODE = 'check_violation', CONSTRAINT = 'password_reset_open';
        END IF;
        RETURN NEW;
    END IF;
    IF (NEW.user_id, NEW.username, NEW.requested_by, NEW.requested_at, NEW.reason)
       IS DISTINCT FROM (OLD.user_id, OLD.username, OLD.requested_by, OLD.requested_at,
                         OLD.reason) THEN
        RAISE EXCEPTION 'password reset %: the request is not edited', OLD.id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'password_reset_fixed';
    END IF;
    IF OLD.confirmed_at IS NOT NULL OR OLD.cancelled_at IS NOT NULL THEN
        RAISE EXCEPTION 'password reset % is already %', OLD.id,
            CASE WHEN OLD.confirmed_at IS NOT NULL THEN 'confirmed' ELSE 'cancelled' END
            USING ERRCODE = 'check_violation', CONSTRAINT = 'password_reset_open';
    END IF;
    IF NEW.confirmed_at IS NOT NULL THEN
        -- the CHECK constraints say it too; here first, so it is the reason given
        IF NEW.confirmed_by_id = NEW.user_id OR NEW.confirmed_by = NEW.username THEN
            RAISE EXCEPTION 'password reset %: nobody confirms the reset of their own password',
                OLD.id
                USING ERRCODE = 'check_violation',
                      CONSTRAINT = 'password_reset_confirmer_not_target';
        END IF;
        IF NEW.confirmed_by = NEW.requested_by THEN
            RAISE EXCEPTION 'password reset %: % requested it and cannot also confirm it',
                OLD.id, NEW.confirmed_by
                USING ERRCODE = 'check_violation',
                      CONSTRAINT = 'password_reset_confirmer_not_requester';
        END IF;
        IF NOT EXISTS (
            SELECT 1 FROM erp.users AS u JOIN erp.user_roles AS r ON r.user_id = u.id
             WHERE u.id = NEW.confirmed_by_id AND u.username = NEW.confirmed_by
               AND u.active AND r.role = 'qa_manager') THEN
            RAISE EXCEPTION 'password reset %: % is not an active qa_manager', OLD.id,
                NEW.confirmed_by
                USING ERRCODE = 'check_violation', CONSTRAINT = 'password_reset_confirmer_role';
        END IF;
        IF NOT EXISTS (
            SELECT 1 FROM erp.signatures AS s
             WHERE s.id = NEW.signature_id AND s.user_id = NEW.confirmed_by_id
               AND s.record_table = 'erp.password_resets'
               AND s.record_key = jsonb_build_object('id', NEW.id)
               AND s.meaning = 'Password reset confirmed') THEN
            RAISE EXCEPTION 'password reset %: signature % is not %''s confirmation of it',
                OLD.id, NEW.signature_id, NEW.confirmed_by
                USING ERRCODE = 'check_violation',
                      CONSTRAINT = 'password_reset_confirmer_signature';
        END IF;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER password_resets_check BEFORE INSERT OR UPDATE ON erp.password_resets
    FOR EACH ROW EXECUTE FUNCTION erp.password_resets_check();
CREATE TRIGGER password_resets_keep BEFORE DELETE ON erp.password_resets
    FOR EACH ROW EXECUTE FUNCTION erp.forbid('password resets are records; they are never deleted');
SELECT erp.audit_table('erp.password_resets');
"""


def _run(sql: str) -> None:
    op.get_bind().connection.driver_connection.execute(sql)


def upgrade() -> None:
    _run(BINDING)
    _run(RESETS)


def downgrade() -> None:
    _run(
        """
        DROP TABLE erp.password_resets;
        DROP FUNCTION erp.password_resets_check();
        ALTER TABLE erp.login_attempts DROP CONSTRAINT login_attempts_outcome_check,
            ADD CONSTRAINT login_attempts_outcome_check
                CHECK (outcome IN ('success', 'bad_password', 'unknown_user', 'disabled',
                                   'locked', 'expired'));
        DROP TABLE erp.users_unbound_at_upgrade;
        DROP TRIGGER users_password_serial ON erp.users;
        DROP FUNCTION erp.users_password_serial();
        SELECT erp.audit_table('erp.users', NULL, ARRAY['password_hash']);
        ALTER TABLE erp.users DROP CONSTRAINT users_password_bound_whole,
            DROP COLUMN password_serial, DROP COLUMN password_binding,
            DROP COLUMN password_key_id;
        """
    )
