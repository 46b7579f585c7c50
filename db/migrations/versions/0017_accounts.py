"""Accounts: forced password change, password checks in progress, throttling by source.

* ``erp.users.must_change_password``: set by an administrator's reset (and for new
  accounts); until the user sets a password of their own they may do nothing else. The
  column is audited with the row (the hash stays redacted).
* ``erp.login_checks``: one row per password check admitted and not finished yet, so
  concurrent wrong passwords count before their argon2 check ends and the lock lets
  exactly its limit through (``erp_core.auth.attempts``). Rows live for seconds; a row
  left by a killed process is ignored after a minute.
* ``erp.login_attempts``: channel ``password_change`` (the current password re-entered
  to change it), outcome ``expired`` (a temporary password used after its lifetime),
  and an index by source for the per-source throttle.
* ``erp.web_session_ends.reason``: ``password_changed`` (a password change or reset ends
  the user's other web sessions).
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE erp.users ADD COLUMN must_change_password boolean NOT NULL DEFAULT false;

        CREATE TABLE erp.login_checks (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            username    text NOT NULL,
            source      text,
            started_at  timestamptz NOT NULL
        );
        CREATE INDEX login_checks_username ON erp.login_checks (username);
        CREATE INDEX login_checks_source ON erp.login_checks (source);

        ALTER TABLE erp.login_attempts DROP CONSTRAINT login_attempts_channel_check,
            ADD CONSTRAINT login_attempts_channel_check
                CHECK (channel IN ('login', 'signature', 'password_change')),
            DROP CONSTRAINT login_attempts_outcome_check,
            ADD CONSTRAINT login_attempts_outcome_check
                CHECK (outcome IN ('success', 'bad_password', 'unknown_user', 'disabled',
                                   'locked', 'expired'));
        CREATE INDEX login_attempts_source_at ON erp.login_attempts (source, at);

        ALTER TABLE erp.web_session_ends DROP CONSTRAINT web_session_ends_reason_check,
            ADD CONSTRAINT web_session_ends_reason_check
                CHECK (reason IN ('signed_out', 'replaced', 'password_changed'));
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE erp.web_session_ends DROP CONSTRAINT web_session_ends_reason_check,
            ADD CONSTRAINT web_session_ends_reason_check
                CHECK (reason IN ('signed_out', 'replaced'));
        DROP INDEX erp.login_attempts_source_at;
        ALTER TABLE erp.login_attempts DROP CONSTRAINT login_attempts_channel_check,
            ADD CONSTRAINT login_attempts_channel_check
                CHECK (channel IN ('login', 'signature')),
            DROP CONSTRAINT login_attempts_outcome_check,
            ADD CONSTRAINT login_attempts_outcome_check
                CHECK (outcome IN ('success', 'bad_password', 'unknown_user', 'disabled',
                                   'locked'));
        DROP TABLE erp.login_checks;
        ALTER TABLE erp.users DROP COLUMN must_change_password;
        """
    )
