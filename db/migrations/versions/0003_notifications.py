"""Notification routing, deliveries and their attempts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # telemetry.alert_events (0002) is the transactional outbox; these tables record who
    # must hear about each event, over which channel, and whether they did.
    op.execute(
        """
        CREATE TABLE telemetry.recipients (
            id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            name        text NOT NULL UNIQUE,
            email       text,
            phone       text,
            webhook_url text,
            role        text NOT NULL DEFAULT 'qa',
            site        text,               -- NULL: every site
            active      boolean NOT NULL DEFAULT true,
            created_at  timestamptz NOT NULL DEFAULT now()
        );
        COMMENT ON TABLE telemetry.recipients IS
            'People (and, with role system, machine endpoints such as a webhook) that alerts reach.';

        -- Who receives what: a route names one recipient or every active recipient of a role.
        CREATE TABLE telemetry.notify_routes (
            id            integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            recipient_id  integer REFERENCES telemetry.recipients (id),
            role          text,
            site          text,             -- NULL: every site
            min_severity  text NOT NULL DEFAULT 'warning'
                          CHECK (min_severity IN ('info', 'warning', 'critical')),
            kinds         text[],           -- NULL: every alert kind
            events        text[] NOT NULL DEFAULT '{opened,escalated}',
            min_level     integer NOT NULL DEFAULT 0 CHECK (min_level >= 0),
            channel       text NOT NULL
                          CHECK (channel IN ('email', 'sms', 'voice', 'webhook', 'mqtt')),
            active        boolean NOT NULL DEFAULT true,
            created_at    timestamptz NOT NULL DEFAULT now(),
            CHECK ((recipient_id IS NULL) <> (role IS NULL))
        );

        -- One row per (event, recipient, channel): routing an event twice creates nothing.
        CREATE TABLE telemetry.notify_deliveries (
            id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            event_id        bigint NOT NULL REFERENCES telemetry.alert_events (id),
            alert_id        bigint NOT NULL REFERENCES telemetry.alerts (id),
            recipient_id    integer NOT NULL REFERENCES telemetry.recipients (id),
            channel         text NOT NULL
                            CHECK (channel IN ('email', 'sms', 'voice', 'webhook', 'mqtt')),
            address         text NOT NULL,
            status          text NOT NULL DEFAULT 'pending'
                            CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
            attempts        integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            claimed_by      text,
            claimed_until   timestamptz,
            last_error      text,
            created_at      timestamptz NOT NULL DEFAULT now(),
            sent_at         timestamptz,
            failed_at       timestamptz,
            UNIQUE (event_id, recipient_id, channel)
        );
        CREATE INDEX notify_deliveries_due ON telemetry.notify_deliveries (next_attempt_at)
            WHERE status IN ('pending', 'sending');
        CREATE INDEX notify_deliveries_alert ON telemetry.notify_deliveries (alert_id);

        CREATE TABLE telemetry.notify_attempts (
            id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            delivery_id  bigint NOT NULL REFERENCES telemetry.notify_deliveries (id),
            attempt      integer NOT NULL,
            worker       text NOT NULL,
            started_at   timestamptz NOT NULL,
            finished_at  timestamptz,
            ok           boolean,
            error        text
        );
        CREATE INDEX notify_attempts_delivery ON telemetry.notify_attempts (delivery_id);

        -- Which alert events have been routed (keyed by event id, not a max-id cursor:
        -- identity values commit out of order, a cursor would skip a slow transaction's event).
        CREATE TABLE telemetry.notify_routed (
            event_id    bigint PRIMARY KEY REFERENCES telemetry.alert_events (id),
            routed_at   timestamptz NOT NULL,
            deliveries  integer NOT NULL
        );

        -- Wake notifiers at once when an alert event commits (NOTIFY is sent on commit).
        CREATE FUNCTION telemetry.notify_alert_event() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('coldtrace_alert_events', NEW.id::text);
            RETURN NULL;
        END $$;
        CREATE TRIGGER alert_events_notify AFTER INSERT ON telemetry.alert_events
            FOR EACH ROW EXECUTE FUNCTION telemetry.notify_alert_event();

        -- Never silent: every delivery that gave up and every event that reached nobody.
        CREATE VIEW telemetry.notify_problems AS
            SELECT 'delivery failed'::text AS problem, d.alert_id, d.event_id, d.id AS delivery_id,
                   r.name AS recipient, d.channel, d.address, d.attempts, d.last_error AS error,
                   d.failed_at AS at
              FROM telemetry.notify_deliveries d
              JOIN telemetry.recipients r ON r.id = d.recipient_id
             WHERE d.status = 'failed'
            UNION ALL
            SELECT 'reached no recipient', e.alert_id, e.id, NULL, NULL, NULL, NULL, 0,
                   'no active route matched the event', n.routed_at
              FROM telemetry.notify_routed n
              JOIN telemetry.alert_events e ON e.id = n.event_id
              JOIN telemetry.alerts a ON a.id = e.alert_id
             WHERE n.deliveries = 0 AND e.event IN ('opened', 'escalated')
               AND a.severity <> 'info';
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP VIEW telemetry.notify_problems;
        DROP TRIGGER alert_events_notify ON telemetry.alert_events;
        DROP FUNCTION telemetry.notify_alert_event();
        DROP TABLE telemetry.notify_routed, telemetry.notify_attempts,
                   telemetry.notify_deliveries, telemetry.notify_routes, telemetry.recipients;
        """
    )
