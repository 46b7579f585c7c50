"""Master data changes: items and locations can be retired, and a retired one takes no more.

Retiring keeps every row and its history (nothing is deleted); ``retired_at`` says since
when it is out of use, and the reason is in the audit trail (the tables are already
audited by 0005, so the new column is captured like any other). Triggers hold the line
whatever path writes: no new lot of a retired item, no movement touching a retired
location or a lot of a retired item, no sensor assignment or reader at a retired
location. The service checks the same first, to answer with a clear 409.

Revision ID: 0010
Revises: 0007
Create Date: 2026-11-25
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_SQL = """
ALTER TABLE erp.items ADD COLUMN retired_at timestamptz;
ALTER TABLE erp.locations ADD COLUMN retired_at timestamptz;
COMMENT ON COLUMN erp.items.retired_at IS 'Out of use since; NULL: active. History is kept.';
COMMENT ON COLUMN erp.locations.retired_at IS 'Out of use since; NULL: active. History is kept.';

CREATE FUNCTION erp.refuse_retired() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    bad text;
BEGIN
    IF TG_TABLE_NAME = 'lots' THEN
        SELECT format('item %s', id) INTO bad FROM erp.items
         WHERE id = NEW.item_id AND retired_at IS NOT NULL;
    ELSIF TG_TABLE_NAME = 'stock_movements' THEN
        SELECT format('location %s', id) INTO bad FROM erp.locations
         WHERE id IN (NEW.from_location_id, NEW.to_location_id) AND retired_at IS NOT NULL
         LIMIT 1;
        IF bad IS NULL THEN
            SELECT format('item %s', i.id) INTO bad FROM erp.lots l
              JOIN erp.items i ON i.id = l.item_id
             WHERE l.id = NEW.lot_id AND i.retired_at IS NOT NULL;
        END IF;
    ELSE  -- sensor_assignments, reader_locations
        SELECT format('location %s', id) INTO bad FROM erp.locations
         WHERE id = NEW.location_id AND retired_at IS NOT NULL;
    END IF;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION '% is retired: no new % may refer to it', bad, TG_TABLE_NAME
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER lots_not_retired BEFORE INSERT ON erp.lots
    FOR EACH ROW EXECUTE FUNCTION erp.refuse_retired();
CREATE TRIGGER stock_movements_not_retired BEFORE INSERT ON erp.stock_movements
    FOR EACH ROW EXECUTE FUNCTION erp.refuse_retired();
CREATE TRIGGER sensor_assignments_not_retired BEFORE INSERT ON erp.sensor_assignments
    FOR EACH ROW EXECUTE FUNCTION erp.refuse_retired();
CREATE TRIGGER reader_locations_not_retired BEFORE INSERT OR UPDATE ON erp.reader_locations
    FOR EACH ROW EXECUTE FUNCTION erp.refuse_retired();
"""


def upgrade() -> None:
    op.execute(_SQL)


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER reader_locations_not_retired ON erp.reader_locations;
        DROP TRIGGER sensor_assignments_not_retired ON erp.sensor_assignments;
        DROP TRIGGER stock_movements_not_retired ON erp.stock_movements;
        DROP TRIGGER lots_not_retired ON erp.lots;
        DROP FUNCTION erp.refuse_retired();
        ALTER TABLE erp.locations DROP COLUMN retired_at;
        ALTER TABLE erp.items DROP COLUMN retired_at;
        """
    )
