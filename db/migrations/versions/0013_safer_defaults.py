"""Two people by default, and sessions replaced by a new sign-in are ended on the server.

* The house default profile ``fridge-2-8`` asks for two named people per alarm, as the
  notifier required of every site before profiles set ``min_recipients``: one person
  is a single point of failure at night. Only a profile still at the shipped value 1
  is changed; a plant's own choice stays.
* ``erp.web_session_ends.reason`` gains ``replaced``: signing in again in a browser that
  holds a live session ends the old one at once, instead of at its idle time-out.
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        UPDATE telemetry.alarm_profiles
           SET spec = jsonb_set(spec, '{min_recipients}', '2')
         WHERE name = 'fridge-2-8' AND (spec ->> 'min_recipients')::int = 1;
        ALTER TABLE erp.web_session_ends DROP CONSTRAINT web_session_ends_reason_check,
            ADD CONSTRAINT web_session_ends_reason_check
                CHECK (reason IN ('signed_out', 'replaced'));
        """
    )


def downgrade() -> None:
    op.execute(
        """
        ALTER TABLE erp.web_session_ends DROP CONSTRAINT web_session_ends_reason_check,
            ADD CONSTRAINT web_session_ends_reason_check CHECK (reason IN ('signed_out'));
        UPDATE telemetry.alarm_profiles
           SET spec = jsonb_set(spec, '{min_recipients}', '1')
         WHERE name = 'fridge-2-8' AND (spec ->> 'min_recipients')::int = 2;
        """
    )
