"""Production: BOM versions, work orders, material issues, and the lot genealogy.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-06

* ``erp.locations.kind`` also ``cleanroom`` and ``work_center`` (where components are
  issued and finished lots are received); a work centre may stand in a cleanroom.
* ``erp.boms``: one version of a product's bill of materials. A version is a draft
  until a QA manager approves it with an electronic signature (``approved_signature_id``,
  meaning "Approved BOM version"); approving makes it effective from that moment and
  supersedes the product's previous effective version. Its lines (``erp.bom_lines``:
  component item, quantity per unit, unit, scrap factor, lot or serial tracking) can be
  written only while it is a draft (trigger ``bom_lines_frozen``).
* ``erp.work_orders``: planned → released → in_progress → completed → closed, on one
  effective BOM version; the finished lot it made (``output_lot_id``, unique).
* ``erp.material_issues``: a component lot consumed by a work order — append-only, each
  one the stock movement (``movement_id``) that took it out of the work centre.
* **Genealogy, one definition**: ``erp.genealogy_edges`` (component lot → finished lot,
  through a work order) and ``erp.lot_genealogy(lot, direction)``, which walks it
  backward (what went into a lot) or forward (where a lot went) through any number of
  levels. The API, the pages and later the recall scope read it; nothing else walks the
  tree.

Every table is audited (``erp.audit_table``). Privileges: ``db/grants.py``.
"""

from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

UPGRADE = """
-- Where production happens: a work centre (a line, a machine) and the cleanroom around it.
ALTER TABLE erp.locations DROP CONSTRAINT locations_kind_check;
ALTER TABLE erp.locations ADD CONSTRAINT locations_kind_check CHECK (kind IN ('site', 'area',
    'cold_room', 'fridge', 'freezer', 'dock', 'truck', 'warehouse', 'cleanroom', 'work_center'));
-- ... and a work centre may stand in a cleanroom (site → area → cleanroom → work centre).
CREATE OR REPLACE FUNCTION erp.locations_check_parent() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    parent_kind text;
BEGIN
    IF NEW.parent_id IS NULL THEN
        RETURN NEW;
    END IF;
    SELECT kind INTO parent_kind FROM erp.locations WHERE id = NEW.parent_id;
    IF parent_kind IS NULL THEN
        RETURN NEW;  -- the foreign key reports it
    END IF;
    IF (NEW.kind = 'area' AND parent_kind <> 'site')
       OR (NEW.kind NOT IN ('site', 'area') AND parent_kind NOT IN ('site', 'area')
           AND NOT (NEW.kind = 'work_center' AND parent_kind = 'cleanroom')) THEN
        RAISE EXCEPTION 'a % may not be placed under a %', NEW.kind, parent_kind
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TABLE erp.boms (
    id                    integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item_id               integer NOT NULL REFERENCES erp.items (id),
    version               integer NOT NULL CHECK (version > 0),
    status                text NOT NULL DEFAULT 'draft'
                          CHECK (status IN ('draft', 'effective', 'superseded')),
    effective_from        timestamptz,
    approved_signature_id bigint,   -- erp.signatures(id), meaning 'Approved BOM version'
    note                  text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (item_id, version),
    CHECK ((status = 'draft') = (approved_signature_id IS NULL)),
    CHECK ((status = 'draft') = (effective_from IS NULL))
);
CREATE UNIQUE INDEX boms_one_effective ON erp.boms (item_id) WHERE status = 'effective';
COMMENT ON TABLE erp.boms IS
    'Versions of a product''s bill of materials; effective only through a signed approval '
    '(erp_core.production)';

CREATE TABLE erp.bom_lines (
    bom_id            integer NOT NULL REFERENCES erp.boms (id),
    line              integer NOT NULL CHECK (line > 0),
    component_item_id integer NOT NULL REFERENCES erp.items (id),
    quantity_per      numeric NOT NULL CHECK (quantity_per > 0),
    unit              text NOT NULL DEFAULT 'pcs' CHECK (unit <> ''),
    scrap_factor      numeric NOT NULL DEFAULT 0 CHECK (scrap_factor >= 0 AND scrap_factor < 1),
    tracking          text NOT NULL DEFAULT 'lot' CHECK (tracking IN ('lot', 'serial')),
    PRIMARY KEY (bom_id, line),
    UNIQUE (bom_id, component_item_id)
);

CREATE FUNCTION erp.bom_lines_frozen() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_bom integer := CASE WHEN TG_OP = 'DELETE' THEN OLD.bom_id ELSE NEW.bom_id END;
    v_item integer;
BEGIN
    IF (SELECT status FROM erp.boms WHERE id = v_bom) <> 'draft' THEN
        RAISE EXCEPTION 'BOM % is approved: its lines cannot change (make a new version)', v_bom
            USING ERRCODE = 'check_violation';
    END IF;
    IF TG_OP <> 'DELETE' THEN
        SELECT item_id INTO v_item FROM erp.boms WHERE id = NEW.bom_id;
        IF NEW.component_item_id = v_item THEN
            RAISE EXCEPTION 'a product cannot be a component of itself'
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
$$;
CREATE TRIGGER bom_lines_frozen BEFORE INSERT OR UPDATE OR DELETE ON erp.bom_lines
    FOR EACH ROW EXECUTE FUNCTION erp.bom_lines_frozen();

CREATE TABLE erp.work_orders (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number           text NOT NULL UNIQUE CHECK (number <> ''),
    bom_id           integer NOT NULL REFERENCES erp.boms (id),
    work_center_id   integer NOT NULL REFERENCES erp.locations (id),
    quantity_planned numeric NOT NULL CHECK (quantity_planned > 0),
    quantity_good    numeric NOT NULL DEFAULT 0 CHECK (quantity_good >= 0),
    quantity_scrap   numeric NOT NULL DEFAULT 0 CHECK (quantity_scrap >= 0),
    status           text NOT NULL DEFAULT 'planned' CHECK (status IN
                     ('planned', 'released', 'in_progress', 'completed', 'closed')),
    output_lot_id    bigint REFERENCES erp.lots (id),
    created_at       timestamptz NOT NULL,
    released_at      timestamptz,
    completed_at     timestamptz,
    CHECK (status NOT IN ('completed', 'closed') OR output_lot_id IS NOT NULL)
);
-- one order per finished lot; INCLUDE: the genealogy's backward step reads the index only
CREATE UNIQUE INDEX work_orders_output_lot ON erp.work_orders (output_lot_id) INCLUDE (id);

CREATE FUNCTION erp.work_orders_effective_bom() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT status FROM erp.boms WHERE id = NEW.bom_id) <> 'effective' THEN
        RAISE EXCEPTION 'BOM % is not the effective version: a work order needs an approved BOM',
            NEW.bom_id USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER work_orders_effective_bom BEFORE INSERT ON erp.work_orders
    FOR EACH ROW EXECUTE FUNCTION erp.work_orders_effective_bom();

CREATE TABLE erp.material_issues (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    work_order_id bigint NOT NULL REFERENCES erp.work_orders (id),
    lot_id        bigint NOT NULL REFERENCES erp.lots (id),
    bom_id        integer NOT NULL,
    bom_line      integer NOT NULL,
    quantity      numeric NOT NULL CHECK (quantity > 0),
    movement_id   bigint NOT NULL UNIQUE REFERENCES erp.stock_movements (id),
    issued_at     timestamptz NOT NULL,
    issued_by     text NOT NULL,
    scanned       text,
    FOREIGN KEY (bom_id, bom_line) REFERENCES erp.bom_lines (bom_id, line)
);
-- the genealogy's two steps (forward by lot, backward by order), index-only
CREATE INDEX material_issues_lot ON erp.material_issues (lot_id) INCLUDE (work_order_id);
CREATE INDEX material_issues_order ON erp.material_issues (work_order_id) INCLUDE (lot_id);

-- One definition of the genealogy: a component lot went into a finished lot through a
-- work order (one row per issue: a lot issued twice to one order is two rows). Issues to
-- an order not yet completed have no finished lot yet. A plain join, so the planner
-- pushes a lot id into it and walks the indexes level by level (no DISTINCT here: it
-- would make every step of the walk read the whole view).
CREATE VIEW erp.genealogy_edges AS
SELECT mi.lot_id AS component_lot_id, wo.output_lot_id AS product_lot_id,
       wo.id AS work_order_id
  FROM erp.material_issues mi
  JOIN erp.work_orders wo ON wo.id = mi.work_order_id
 WHERE wo.output_lot_id IS NOT NULL;

-- Backward: every lot that went into p_lot, at any depth (depth 1: its direct
-- components). Forward: every lot p_lot went into. via_lot_id is the lot one level
-- closer to p_lot; a lot reached along two paths is listed once, at its smallest depth.
CREATE FUNCTION erp.lot_genealogy(p_lot bigint, p_direction text)
RETURNS TABLE (lot_id bigint, via_lot_id bigint, work_order_id bigint, depth integer)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF p_direction = 'backward' THEN
        RETURN QUERY
        WITH RECURSIVE walk (lot_id, via_lot_id, work_order_id, depth) AS (
            SELECT e.component_lot_id, e.product_lot_id, e.work_order_id, 1
              FROM erp.genealogy_edges e WHERE e.product_lot_id = p_lot
            UNION
            SELECT e.component_lot_id, e.product_lot_id, e.work_order_id, w.depth + 1
              FROM walk w JOIN erp.genealogy_edges e ON e.product_lot_id = w.lot_id
             WHERE w.depth < 100
        )
        SELECT DISTINCT ON (w.lot_id) w.lot_id, w.via_lot_id, w.work_order_id, w.depth
          FROM walk w ORDER BY w.lot_id, w.depth, w.via_lot_id;
    ELSIF p_direction = 'forward' THEN
        RETURN QUERY
        WITH RECURSIVE walk (lot_id, via_lot_id, work_order_id, depth) AS (
            SELECT e.product_lot_id, e.component_lot_id, e.work_order_id, 1
              FROM erp.genealogy_edges e WHERE e.component_lot_id = p_lot
            UNION
            SELECT e.product_lot_id, e.component_lot_id, e.work_order_id, w.depth + 1
              FROM walk w JOIN erp.genealogy_edges e ON e.component_lot_id = w.lot_id
             WHERE w.depth < 100
        )
        SELECT DISTINCT ON (w.lot_id) w.lot_id, w.via_lot_id, w.work_order_id, w.depth
          FROM walk w ORDER BY w.lot_id, w.depth, w.via_lot_id;
    ELSE
        RAISE EXCEPTION 'direction must be backward or forward, not %', p_direction
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

SELECT erp.audit_table('erp.boms');
SELECT erp.audit_table('erp.bom_lines');
SELECT erp.audit_table('erp.work_orders');
SELECT erp.audit_table('erp.material_issues');
"""

DOWNGRADE = """
DROP FUNCTION erp.lot_genealogy(bigint, text);
DROP VIEW erp.genealogy_edges;
DROP TABLE erp.material_issues;
DROP TABLE erp.work_orders;
DROP FUNCTION erp.work_orders_effective_bom();
DROP TABLE erp.bom_lines;
DROP FUNCTION erp.bom_lines_frozen();
DROP TABLE erp.boms;
ALTER TABLE erp.locations DROP CONSTRAINT locations_kind_check;
ALTER TABLE erp.locations ADD CONSTRAINT locations_kind_check CHECK (kind IN ('site', 'area',
    'cold_room', 'fridge', 'freezer', 'dock', 'truck', 'warehouse'));
CREATE OR REPLACE FUNCTION erp.locations_check_parent() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    parent_kind text;
BEGIN
    IF NEW.parent_id IS NULL THEN
        RETURN NEW;
    END IF;
    SELECT kind INTO parent_kind FROM erp.locations WHERE id = NEW.parent_id;
    IF parent_kind IS NULL THEN
        RETURN NEW;  -- the foreign key reports it
    END IF;
    IF (NEW.kind = 'area' AND parent_kind <> 'site')
       OR (NEW.kind NOT IN ('site', 'area') AND parent_kind NOT IN ('site', 'area')) THEN
        RAISE EXCEPTION 'a % may not be placed under a %', NEW.kind, parent_kind
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
"""


def upgrade() -> None:
    """Create the production tables, the genealogy view and function."""
    op.execute(UPGRADE)


def downgrade() -> None:
    """Drop them."""
    op.execute(DOWNGRADE)
