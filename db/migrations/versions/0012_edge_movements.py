"""Barcode scans and RFID tag reads from gateways become stock movements.

Ingest stores scans and tag reads in ``telemetry``; a statement trigger queues each new
row in ``erp.edge_event_queue`` in the same transaction, so no event can be stored and
then forgotten. The ERP's edge-event job (``erp_core/stock/edge_movements.py``) claims the
queue, turns each event at a mapped reader into a movement and records what it did in
``erp.edge_event_outcomes``. ``erp.lot_tags`` says which lot an RFID-tagged pallet or
case (SSCC, or GTIN + serial) belongs to; it is a regulated record and audited.
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_SQL = """
CREATE TABLE erp.edge_event_queue (
    source    text NOT NULL CHECK (source IN ('scan', 'rfid')),
    event_id  bigint NOT NULL,
    PRIMARY KEY (source, event_id)
);
COMMENT ON TABLE erp.edge_event_queue IS
    'Scans and tag reads stored by ingest and not yet turned into movements.';

CREATE TABLE erp.edge_event_outcomes (
    source        text NOT NULL CHECK (source IN ('scan', 'rfid')),
    event_id      bigint NOT NULL,
    processed_at  timestamptz NOT NULL,
    outcome       text NOT NULL CHECK (outcome IN ('moved', 'repeat', 'ignored', 'failed')),
    reader_id     text NOT NULL,
    lot_id        bigint REFERENCES erp.lots (id),
    movement_id   bigint REFERENCES erp.stock_movements (id),
    reason        text,
    PRIMARY KEY (source, event_id),
    CHECK ((outcome = 'moved') = (movement_id IS NOT NULL)),
    CHECK (outcome NOT IN ('ignored', 'failed') OR reason IS NOT NULL)
);
COMMENT ON TABLE erp.edge_event_outcomes IS
    'What the ERP made of each scan or tag read: a movement, a repeat, or why not.';
CREATE INDEX edge_event_outcomes_failed ON erp.edge_event_outcomes (processed_at)
    WHERE outcome = 'failed';

CREATE TABLE erp.lot_tags (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lot_id  bigint NOT NULL REFERENCES erp.lots (id),
    sscc    text UNIQUE CHECK (sscc ~ '^[0-9]{18}$'),
    gtin    text CHECK (gtin ~ '^[0-9]{14}$'),
    serial  text,
    UNIQUE (gtin, serial),
    CHECK ((sscc IS NOT NULL) <> (gtin IS NOT NULL AND serial IS NOT NULL)),
    CHECK ((gtin IS NULL) = (serial IS NULL))
);
COMMENT ON TABLE erp.lot_tags IS
    'RFID-tagged units (a pallet''s SSCC, or a case''s GTIN + serial) and the lot they hold.';

CREATE FUNCTION erp.queue_scans() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO erp.edge_event_queue (source, event_id) SELECT 'scan', id FROM new_rows;
    PERFORM pg_notify('coldtrace_edge_events', '');
    RETURN NULL;
END $$;
CREATE FUNCTION erp.queue_tag_reads() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO erp.edge_event_queue (source, event_id) SELECT 'rfid', id FROM new_rows;
    PERFORM pg_notify('coldtrace_edge_events', '');
    RETURN NULL;
END $$;
CREATE TRIGGER scans_queue AFTER INSERT ON telemetry.scans
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION erp.queue_scans();
CREATE TRIGGER tag_reads_queue AFTER INSERT ON telemetry.tag_reads
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION erp.queue_tag_reads();

INSERT INTO erp.edge_event_queue (source, event_id)
    SELECT 'scan', id FROM telemetry.scans
    UNION ALL SELECT 'rfid', id FROM telemetry.tag_reads;
"""


def upgrade() -> None:
    op.execute(_SQL)
    op.execute("SELECT erp.audit_table('erp.lot_tags')")


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER scans_queue ON telemetry.scans;
        DROP TRIGGER tag_reads_queue ON telemetry.tag_reads;
        DROP FUNCTION erp.queue_scans(), erp.queue_tag_reads();
        DROP TABLE erp.lot_tags, erp.edge_event_outcomes, erp.edge_event_queue;
        """
    )
