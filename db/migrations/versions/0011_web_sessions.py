"""Web-UI sessions on the server, so that signing out really ends a session.

The session cookie is a signed JWT (erp_core/auth/session.py); on its own it stays valid
until its idle expiry even after sign-out. ``erp.web_sessions`` records each session
opened by a password entry and ``erp.web_session_ends`` each one ended (signed out); a
cookie whose session is unknown or ended is refused. Both tables are append-only like
``erp.login_attempts`` (a security log, not a regulated record, so not in the audit
chain): a session is ended by adding a row, never by changing one.

Revision ID: 0011
Revises: 0007
Create Date: 2026-11-25
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_SQL = """
CREATE TABLE erp.web_sessions (
    sid         text PRIMARY KEY CHECK (length(sid) >= 16),
    user_id     integer NOT NULL REFERENCES erp.users (id),
    username    text NOT NULL,
    started_at  timestamptz NOT NULL,
    source      text
);
CREATE INDEX web_sessions_user_started ON erp.web_sessions (username, started_at);
CREATE TRIGGER web_sessions_append_only BEFORE UPDATE OR DELETE ON erp.web_sessions
    FOR EACH ROW EXECUTE FUNCTION erp.forbid('web sessions are append-only');
-- UPDATE stays granted (the trigger refuses it): the foreign key of web_session_ends
-- checks its parent row with SELECT ... FOR KEY SHARE, which needs the UPDATE privilege.
REVOKE DELETE, TRUNCATE ON erp.web_sessions FROM PUBLIC, CURRENT_USER;

CREATE TABLE erp.web_session_ends (
    sid       text PRIMARY KEY REFERENCES erp.web_sessions (sid),
    ended_at  timestamptz NOT NULL,
    reason    text NOT NULL CHECK (reason IN ('signed_out'))
);
CREATE TRIGGER web_session_ends_append_only BEFORE UPDATE OR DELETE ON erp.web_session_ends
    FOR EACH ROW EXECUTE FUNCTION erp.forbid('web session ends are append-only');
REVOKE UPDATE, DELETE, TRUNCATE ON erp.web_session_ends FROM PUBLIC, CURRENT_USER;
"""


def upgrade() -> None:
    op.execute(_SQL)


def downgrade() -> None:
    op.execute("DROP TABLE erp.web_session_ends, erp.web_sessions;")
