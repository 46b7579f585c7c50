"""What the fleet-health dashboard may see of the notifier: failed deliveries per hour.

``telemetry.notify_failures_hourly``: per hour and channel, how many deliveries of
alert notifications failed for good (``status = 'failed'``, by ``failed_at``). The
notifier's own tables hold people's names and addresses, so the read-only role
``coldtrace_reader`` (Grafana) gets none of them (db/grants.py); this view gives it the
counts and nothing else. A view runs with its owner's privileges, so the reader needs
no grant on ``telemetry.notify_deliveries``.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06

The privileges of the application and reader roles are not set here: ``coldtrace db
upgrade`` applies ``db/grants.py`` after every migration.
"""

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE VIEW telemetry.notify_failures_hourly AS
        SELECT date_trunc('hour', failed_at) AS hour, channel, count(*) AS failures
          FROM telemetry.notify_deliveries
         WHERE status = 'failed' AND failed_at IS NOT NULL
         GROUP BY 1, 2
        """
    )


def downgrade() -> None:
    op.execute("DROP VIEW telemetry.notify_failures_hourly")
