"""Pre-alarms, rolling MKT and cumulative time-out-of-range alerts (alert gaps of issue 4).

New alert kinds need no schema: ``telemetry.alerts.kind`` is free text. This adds the
state of the periodic rolling checks (``ingest/eval_rolling.py``): when each sensor's
mean kinetic temperature and time out of range over its profile's rolling window were
last computed, and the values, so the sweep recomputes a sensor at most every
``rolling_every_s`` and people can see the current figures. It also gives the shipped
profiles (seeded by 0002) the new fields ``pre_alarm_delay_s`` and
``rolling_window_days`` where a plant has not set them.

Revision ID: 0009
Revises: 0007
"""

import json

from alembic import op
from sqlalchemy import text

from coldchain.profiles import default_profiles

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

NEW_FIELDS = ("pre_alarm_delay_s", "rolling_window_days")


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE telemetry.rolling_checks (
            sensor_id     integer PRIMARY KEY REFERENCES telemetry.sensors (id),
            checked_at    timestamptz NOT NULL,
            window_start  timestamptz NOT NULL,
            mkt           double precision,
            tor_s         double precision NOT NULL,
            held_s        double precision NOT NULL
        );
        COMMENT ON TABLE telemetry.rolling_checks IS
            'Last rolling-window MKT and time out of range per sensor (ingest sweep).';
        """
    )
    bind = op.get_bind()
    for profile in default_profiles():
        shipped = {k: getattr(profile, k) for k in NEW_FIELDS}
        bind.execute(
            text(
                "UPDATE telemetry.alarm_profiles SET spec = CAST(:new AS jsonb) || spec, "
                "updated_at = now() WHERE name = :name"
            ),
            {"name": profile.name, "new": json.dumps(shipped)},
        )


def downgrade() -> None:
    op.execute("DROP TABLE telemetry.rolling_checks")
    op.execute(
        "UPDATE telemetry.alarm_profiles SET spec = spec - 'pre_alarm_delay_s' "
        "- 'rolling_window_days'"
    )
