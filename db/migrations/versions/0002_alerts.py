"""Alarm profiles, excursion episodes, alerts and their event log (issue: excursions and alerts).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import json

from alembic import op
from sqlalchemy import text

from coldchain.profiles import DEFAULT_FOR_QUANTITY, default_profiles

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
    op.execute(
        """
        -- Alarm profiles: the spec column holds coldchain.profiles.AlarmProfile as JSON.
        CREATE TABLE telemetry.alarm_profiles (
            id                    integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            name                  text NOT NULL UNIQUE,
            spec                  jsonb NOT NULL,
            default_for_quantity  text UNIQUE,
            updated_at            timestamptz NOT NULL DEFAULT now()
        );
        COMMENT ON COLUMN telemetry.alarm_profiles.default_for_quantity IS
            'Applies to sensors of this quantity that have no profile assigned.';

        CREATE TABLE telemetry.sensor_profiles (
            sensor_id   integer PRIMARY KEY REFERENCES telemetry.sensors (id),
            profile_id  integer NOT NULL REFERENCES telemetry.alarm_profiles (id),
            assigned_at timestamptz NOT NULL DEFAULT now()
        );

        ALTER TABLE telemetry.sensors ADD COLUMN calibration_due date;

        -- Ranges of stored readings still to evaluate; written in the same transaction as
        -- the readings, deleted by the evaluation that handled them, so none is forgotten.
        CREATE TABLE telemetry.eval_pending (
            id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            sensor_id    integer NOT NULL,
            min_t        timestamptz NOT NULL,
            max_t        timestamptz NOT NULL,
            enqueued_at  timestamptz NOT NULL DEFAULT now(),
            attempts     integer NOT NULL DEFAULT 0,
            last_error   text
        );
        CREATE INDEX eval_pending_sensor ON telemetry.eval_pending (sensor_id);

        CREATE TABLE telemetry.excursion_episodes (
            id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            sensor_id      integer NOT NULL,
            profile_id     integer REFERENCES telemetry.alarm_profiles (id),
            kind           text NOT NULL CHECK (kind IN ('high', 'low')),
            level          text NOT NULL CHECK (level IN ('pre_alarm', 'alarm')),
            start_t        timestamptz NOT NULL,
            end_t          timestamptz,
            last_t         timestamptz NOT NULL,
            peak           double precision NOT NULL,
            area_c_min     double precision NOT NULL,
            readings       integer NOT NULL,
            delay_reached  boolean NOT NULL,
            abs_breach     boolean NOT NULL,
            late           boolean NOT NULL DEFAULT false,
            status         text NOT NULL DEFAULT 'active'
                           CHECK (status IN ('active', 'superseded')),
            superseded_by  bigint REFERENCES telemetry.excursion_episodes (id),
            updated_at     timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX excursion_episodes_sensor
            ON telemetry.excursion_episodes (sensor_id, start_t) WHERE status = 'active';
        COMMENT ON COLUMN telemetry.excursion_episodes.end_t IS
            'Time of the first reading back in range; NULL while the episode is open.';

        ALTER TABLE telemetry.alerts
            ADD COLUMN episode_id bigint UNIQUE REFERENCES telemetry.excursion_episodes (id),
            ADD COLUMN notified_peak double precision,
            ADD COLUMN detail jsonb NOT NULL DEFAULT '{}';
        -- one alert per episode (episode_id UNIQUE) and one live alert per sensor condition
        CREATE UNIQUE INDEX alerts_one_live_condition ON telemetry.alerts (sensor_id, kind)
            WHERE episode_id IS NULL AND ended_at IS NULL AND status <> 'closed';
        CREATE INDEX alerts_sensor ON telemetry.alerts (sensor_id, started_at);
        """
    )
    bind = op.get_bind()
    defaults = {v: k for k, v in DEFAULT_FOR_QUANTITY.items()}
    for profile in default_profiles():
        bind.execute(
            text(
                "INSERT INTO telemetry.alarm_profiles (name, spec, default_for_quantity) "
                "VALUES (:name, CAST(:spec AS jsonb), :dq)"
            ),
            {
                "name": profile.name,
                "spec": json.dumps(profile.to_dict()),
                "dq": defaults.get(profile.name),
            },
        )


def downgrade() -> None:
    op.execute(
        "DROP TABLE telemetry.alert_events; DROP TABLE telemetry.alerts; "
        "DROP TABLE telemetry.excursion_episodes; DROP TABLE telemetry.eval_pending; "
        "DROP TABLE telemetry.sensor_profiles; DROP TABLE telemetry.alarm_profiles; "
        "ALTER TABLE telemetry.sensors DROP COLUMN calibration_due;"
    )
