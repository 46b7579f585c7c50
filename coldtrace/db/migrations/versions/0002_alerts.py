"""Alarm profiles, excursion episodes, alerts and their event log (issue: excursions and alerts).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The contract between alert evaluation (writes) and the notifier (reads alert_events
    # as its transactional outbox). Extend with new columns/tables; do not rename these.
    op.execute(
        """
        CREATE TABLE telemetry.alerts (
            id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            kind             text NOT NULL,
            severity         text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
            sensor_id        integer,
            gateway_id       text,
            site             text,
            status           text NOT NULL DEFAULT 'open'
                             CHECK (status IN ('open', 'acknowledged', 'closed')),
            late             boolean NOT NULL DEFAULT false,
            started_at       timestamptz NOT NULL,
            ended_at         timestamptz,
            peak             double precision,
            duration_s       double precision,
            summary          text NOT NULL,
            escalation_level integer NOT NULL DEFAULT 0,
            opened_at        timestamptz NOT NULL DEFAULT now(),
            acknowledged_at  timestamptz,
            acknowledged_by  text,
            ack_comment      text,
            closed_at        timestamptz,
            closed_by        text,
            disposition      text,
            close_comment    text,
            updated_at       timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX alerts_open ON telemetry.alerts (status) WHERE status <> 'closed';

        CREATE TABLE telemetry.alert_events (
            id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            alert_id  bigint NOT NULL REFERENCES telemetry.alerts (id),
            event     text NOT NULL
                      CHECK (event IN ('opened', 'updated', 'escalated', 'acknowledged', 'closed')),
            level     integer NOT NULL DEFAULT 0,
            at        timestamptz NOT NULL DEFAULT now(),
            actor     text,
            detail    jsonb NOT NULL DEFAULT '{}'
        );
        CREATE INDEX alert_events_alert ON telemetry.alert_events (alert_id);
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE telemetry.alert_events; DROP TABLE telemetry.alerts;")
