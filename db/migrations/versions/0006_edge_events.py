"""RFID tag reads and barcode scans from gateways.

Each row keeps the gateway's outbox position (gateway, stream, seq): that is unique
for ever (a wiped outbox starts a new stream), so re-delivery is absorbed by
``ON CONFLICT DO NOTHING`` exactly as for readings. Failed scans are rows too, with
``ok = false`` and the reason: a label rejected at goods-in is part of the record.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE telemetry.tag_reads (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            time        timestamptz NOT NULL,
            gateway_id  text NOT NULL,
            stream      text NOT NULL,
            seq         bigint NOT NULL,
            reader      text NOT NULL,
            antenna     smallint NOT NULL,
            epc         text NOT NULL,
            rssi        double precision,
            scheme      text,
            uri         text,
            gtin        text,
            serial      text,
            sscc        text,
            received_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (gateway_id, stream, seq)
        );
        COMMENT ON TABLE telemetry.tag_reads IS
            'RFID reads, repeats within the reader''s collapse window already merged by the gateway.';
        CREATE INDEX tag_reads_epc_time ON telemetry.tag_reads (epc, time);
        CREATE INDEX tag_reads_gtin_serial ON telemetry.tag_reads (gtin, serial)
            WHERE gtin IS NOT NULL;
        CREATE INDEX tag_reads_sscc ON telemetry.tag_reads (sscc) WHERE sscc IS NOT NULL;

        CREATE TABLE telemetry.scans (
            id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            time        timestamptz NOT NULL,
            gateway_id  text NOT NULL,
            stream      text NOT NULL,
            seq         bigint NOT NULL,
            scanner     text NOT NULL,
            data        text NOT NULL,
            ok          boolean NOT NULL,
            reason      text,
            scheme      text,
            di          text,
            gtin        text,
            sscc        text,
            lot         text,
            serial      text,
            expiry      date,
            production  date,
            received_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (gateway_id, stream, seq),
            CHECK (ok = (reason IS NULL))
        );
        COMMENT ON TABLE telemetry.scans IS
            'Every barcode scan as scanned (data), decoded (ok) or rejected with the reason.';
        CREATE INDEX scans_time ON telemetry.scans (time);
        CREATE INDEX scans_gtin_lot ON telemetry.scans (gtin, lot) WHERE gtin IS NOT NULL;
        CREATE INDEX scans_failed ON telemetry.scans (time) WHERE NOT ok;
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE telemetry.scans; DROP TABLE telemetry.tag_reads;")
