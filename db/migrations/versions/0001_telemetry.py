"""Telemetry schema: gateways, sensors, readings, dead letters, committed watermarks.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from alembic import op

from db import timescale

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS telemetry")
    op.execute("CREATE SCHEMA IF NOT EXISTS erp")
    op.execute(
        """
        CREATE TABLE telemetry.gateways (
            id          text PRIMARY KEY,
            site        text NOT NULL,
            status      text NOT NULL DEFAULT 'unknown',
            state       jsonb,
            first_seen  timestamptz NOT NULL DEFAULT now(),
            last_seen   timestamptz NOT NULL DEFAULT now()
        );

        CREATE TABLE telemetry.sensors (
            id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            uid         text NOT NULL,
            quantity    text NOT NULL,
            unit        text NOT NULL,
            gateway_id  text,
            created_at  timestamptz NOT NULL DEFAULT now(),
            UNIQUE (uid, quantity)
        );
        COMMENT ON TABLE telemetry.sensors IS
            'One measured quantity of one device (a logger with temperature and humidity is two sensors).';

        -- No foreign key to sensors: it would cost every bulk insert a lookup, and sensor
        -- rows are never deleted. Unique on (sensor, time) is what makes re-delivery harmless.
        CREATE TABLE telemetry.readings (
            time         timestamptz NOT NULL,
            sensor_id    integer NOT NULL,
            value        double precision NOT NULL,
            flags        smallint NOT NULL DEFAULT 0,
            gateway_seq  bigint,
            received_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (sensor_id, time)
        );

        CREATE TABLE telemetry.dead_letters (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            received_at timestamptz NOT NULL DEFAULT now(),
            topic       text NOT NULL,
            gateway_id  text,
            stream      text,
            seq         bigint,
            item_index  integer,
            reason      text NOT NULL,
            payload     bytea NOT NULL
        );
        CREATE INDEX dead_letters_received_at ON telemetry.dead_letters (received_at);

        -- Committed watermark per gateway outbox stream: every seq <= committed_seq is
        -- stored (as a reading or a dead letter). Ranges above it wait in seq_ranges.
        CREATE TABLE telemetry.gateway_streams (
            gateway_id     text NOT NULL,
            stream         text NOT NULL,
            committed_seq  bigint NOT NULL DEFAULT 0,
            updated_at     timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (gateway_id, stream)
        );

        CREATE TABLE telemetry.seq_ranges (
            gateway_id  text NOT NULL,
            stream      text NOT NULL,
            seq_from    bigint NOT NULL,
            seq_to      bigint NOT NULL,
            PRIMARY KEY (gateway_id, stream, seq_from),
            CHECK (seq_to >= seq_from)
        );

        CREATE FUNCTION telemetry.commit_seq_ranges(
            p_gateway text, p_stream text, p_from bigint[], p_to bigint[]
        ) RETURNS bigint LANGUAGE plpgsql AS $$
        DECLARE
            wm   bigint;
            nxt  bigint;
        BEGIN
            INSERT INTO telemetry.gateway_streams (gateway_id, stream)
            VALUES (p_gateway, p_stream) ON CONFLICT DO NOTHING;
            SELECT committed_seq INTO wm FROM telemetry.gateway_streams
             WHERE gateway_id = p_gateway AND stream = p_stream FOR UPDATE;
            INSERT INTO telemetry.seq_ranges AS r (gateway_id, stream, seq_from, seq_to)
            SELECT p_gateway, p_stream, f, t FROM unnest(p_from, p_to) AS u(f, t) WHERE t > wm
            ON CONFLICT (gateway_id, stream, seq_from)
            DO UPDATE SET seq_to = greatest(r.seq_to, excluded.seq_to);
            LOOP
                SELECT max(seq_to) INTO nxt FROM telemetry.seq_ranges
                 WHERE gateway_id = p_gateway AND stream = p_stream
                   AND seq_from <= wm + 1 AND seq_to > wm;
                EXIT WHEN nxt IS NULL;
                wm := nxt;
            END LOOP;
            DELETE FROM telemetry.seq_ranges
             WHERE gateway_id = p_gateway AND stream = p_stream AND seq_to <= wm;
            UPDATE telemetry.gateway_streams SET committed_seq = wm, updated_at = now()
             WHERE gateway_id = p_gateway AND stream = p_stream;
            RETURN wm;
        END $$;
        """
    )
    if timescale.enable(op.get_bind()):
        op.execute(
            "SELECT create_hypertable('telemetry.readings', 'time', "
            "chunk_time_interval => interval '7 days')"
        )


def downgrade() -> None:
    op.execute("DROP SCHEMA telemetry CASCADE")
    op.execute("DROP SCHEMA erp CASCADE")
