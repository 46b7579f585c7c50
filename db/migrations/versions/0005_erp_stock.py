"""ERP items, lots, locations, sensor assignments, movements, shipments, and lot history.

The lot temperature history is defined once, here, as SQL functions:
``erp.lot_intervals(lot)`` (where the lot was, from its movements),
``erp.lot_segments(lot, from, to)`` (which temperature sensor covered it when) and
``erp.lot_readings(lot, from, to)`` (the readings of those sensors in those segments).
The API, web UI, Grafana and release rules all read these.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

import logging

from alembic import op
from sqlalchemy.exc import DBAPIError

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Kept equal to erp_core.stock.status.ALLOWED (a test compares the two).
_TRANSITIONS = (
    ("quarantine", "released"),
    ("quarantine", "rejected"),
    ("quarantine", "on_hold"),
    ("released", "on_hold"),
    ("released", "recalled"),
    ("on_hold", "released"),
    ("on_hold", "rejected"),
    ("on_hold", "recalled"),
    ("on_hold", "quarantine"),
    ("recalled", "rejected"),
)


def _btree_gist() -> bool:
    """Create btree_gist (a trusted extension: a database owner may) or report that we cannot."""
    bind = op.get_bind()
    if bind.exec_driver_sql("SELECT 1 FROM pg_extension WHERE extname = 'btree_gist'").scalar():
        return True
    nested = bind.begin_nested()
    try:
        bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS btree_gist")
    except DBAPIError as err:
        nested.rollback()
        logging.getLogger("alembic").warning("btree_gist unavailable, trigger instead: %s", err)
        return False
    nested.commit()
    return True


_MASTER = """
CREATE FUNCTION erp.gtin_valid(g text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT g ~ '^([0-9]{8}|[0-9]{12,14})$'
       AND (SELECT (10 - sum(substr(g, length(g) - i, 1)::int
                             * CASE WHEN i % 2 = 1 THEN 3 ELSE 1 END) % 10) % 10
              FROM generate_series(1, length(g) - 1) AS i)
           = substr(g, length(g), 1)::int
$$;
COMMENT ON FUNCTION erp.gtin_valid(text) IS 'GS1 GTIN-8/12/13/14 with a correct check digit';

CREATE TABLE erp.items (
    id                  integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    gtin                text NOT NULL UNIQUE CHECK (erp.gtin_valid(gtin)),
    name                text NOT NULL CHECK (name <> ''),
    range_low           double precision NOT NULL,
    range_high          double precision NOT NULL,
    alarm_profile_id    integer REFERENCES telemetry.alarm_profiles (id),
    mkt_limit           double precision,
    tor_budget_minutes  integer CHECK (tor_budget_minutes >= 0),
    shelf_life_days     integer CHECK (shelf_life_days > 0),
    implantable         boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (range_low < range_high)
);

CREATE TABLE erp.lot_status_transitions (
    from_status text NOT NULL,
    to_status   text NOT NULL,
    PRIMARY KEY (from_status, to_status)
);

CREATE TABLE erp.lots (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item_id            integer NOT NULL REFERENCES erp.items (id),
    lot_number         text NOT NULL CHECK (lot_number <> ''),
    manufactured_on    date,
    expires_on         date NOT NULL,
    quantity           numeric NOT NULL CHECK (quantity >= 0),
    status             text NOT NULL DEFAULT 'quarantine'
                       CHECK (status IN ('quarantine', 'released', 'rejected', 'on_hold',
                                         'recalled')),
    status_changed_at  timestamptz NOT NULL DEFAULT now(),
    created_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (item_id, lot_number),
    CHECK (manufactured_on IS NULL OR manufactured_on <= expires_on)
);

CREATE FUNCTION erp.lots_check_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status <> 'quarantine' THEN
            RAISE EXCEPTION 'a new lot starts in quarantine, not %', NEW.status
                USING ERRCODE = 'check_violation';
        END IF;
    ELSIF NEW.status IS DISTINCT FROM OLD.status AND NOT EXISTS (
            SELECT 1 FROM erp.lot_status_transitions
             WHERE from_status = OLD.status AND to_status = NEW.status) THEN
        RAISE EXCEPTION 'lot % may not go from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER lots_status BEFORE INSERT OR UPDATE OF status ON erp.lots
    FOR EACH ROW EXECUTE FUNCTION erp.lots_check_status();

CREATE TABLE erp.locations (
    id         integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    parent_id  integer REFERENCES erp.locations (id),
    code       text NOT NULL UNIQUE CHECK (code <> ''),
    name       text NOT NULL,
    kind       text NOT NULL CHECK (kind IN ('site', 'area', 'cold_room', 'fridge', 'freezer',
                                             'dock', 'truck', 'warehouse')),
    CHECK ((kind = 'site') = (parent_id IS NULL))
);
CREATE INDEX locations_parent ON erp.locations (parent_id);

-- The tree is site → area → unit; a unit may also hang directly under a site (a truck).
CREATE FUNCTION erp.locations_check_parent() RETURNS trigger LANGUAGE plpgsql AS $$
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
CREATE TRIGGER locations_parent BEFORE INSERT OR UPDATE OF parent_id, kind ON erp.locations
    FOR EACH ROW EXECUTE FUNCTION erp.locations_check_parent();

CREATE TABLE erp.sensor_assignments (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sensor_id    integer NOT NULL REFERENCES telemetry.sensors (id),
    location_id  integer NOT NULL REFERENCES erp.locations (id),
    valid_from   timestamptz NOT NULL,
    valid_to     timestamptz,
    during       tstzrange GENERATED ALWAYS AS (tstzrange(valid_from, valid_to, '[)')) STORED,
    CHECK (valid_to IS NULL OR valid_to > valid_from)
);
CREATE INDEX sensor_assignments_location ON erp.sensor_assignments (location_id, valid_from);
COMMENT ON COLUMN erp.sensor_assignments.valid_to IS 'Exclusive; NULL while still assigned';

-- Barcode scanners and RFID readers are fixed at a location: a read there is an arrival.
CREATE TABLE erp.reader_locations (
    reader_id    text PRIMARY KEY,
    location_id  integer NOT NULL REFERENCES erp.locations (id),
    kind         text NOT NULL CHECK (kind IN ('scan', 'rfid'))
);

CREATE TABLE erp.stock_movements (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    lot_id            bigint NOT NULL REFERENCES erp.lots (id),
    quantity          numeric NOT NULL CHECK (quantity > 0),
    from_location_id  integer REFERENCES erp.locations (id),
    to_location_id    integer REFERENCES erp.locations (id),
    moved_at          timestamptz NOT NULL,
    source            text NOT NULL CHECK (source IN ('scan', 'rfid', 'manual')),
    reference         text,
    reader_id         text,
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (from_location_id IS NOT NULL OR to_location_id IS NOT NULL),
    CHECK (from_location_id IS DISTINCT FROM to_location_id)
);
CREATE INDEX stock_movements_lot ON erp.stock_movements (lot_id, moved_at);
COMMENT ON COLUMN erp.stock_movements.from_location_id IS 'NULL: goods received';
COMMENT ON COLUMN erp.stock_movements.to_location_id IS 'NULL: left our custody (delivered, consumed, destroyed)';

CREATE TABLE erp.shipments (
    id                       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    reference                text NOT NULL UNIQUE CHECK (reference <> ''),
    truck_location_id        integer NOT NULL REFERENCES erp.locations (id),
    origin_location_id       integer NOT NULL REFERENCES erp.locations (id),
    destination_location_id  integer NOT NULL REFERENCES erp.locations (id),
    departed_at              timestamptz,
    arrived_at               timestamptz,
    created_at               timestamptz NOT NULL DEFAULT now(),
    CHECK (arrived_at IS NULL OR (departed_at IS NOT NULL AND arrived_at > departed_at))
);

CREATE TABLE erp.shipment_lots (
    shipment_id  bigint NOT NULL REFERENCES erp.shipments (id),
    lot_id       bigint NOT NULL REFERENCES erp.lots (id),
    quantity     numeric NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (shipment_id, lot_id)
);

CREATE TABLE erp.shipment_loggers (
    shipment_id  bigint NOT NULL REFERENCES erp.shipments (id),
    sensor_id    integer NOT NULL REFERENCES telemetry.sensors (id),
    PRIMARY KEY (shipment_id, sensor_id)
);

CREATE TABLE erp.shipment_legs (
    shipment_id       bigint NOT NULL REFERENCES erp.shipments (id),
    seq               integer NOT NULL CHECK (seq >= 1),
    from_location_id  integer NOT NULL REFERENCES erp.locations (id),
    to_location_id    integer NOT NULL REFERENCES erp.locations (id),
    departed_at       timestamptz NOT NULL,
    arrived_at        timestamptz,
    PRIMARY KEY (shipment_id, seq),
    CHECK (arrived_at IS NULL OR arrived_at > departed_at)
);
"""

_NO_OVERLAP_GIST = """
ALTER TABLE erp.sensor_assignments ADD CONSTRAINT sensor_assignments_no_overlap
    EXCLUDE USING gist (sensor_id WITH =, during WITH &&);
"""

_NO_OVERLAP_TRIGGER = """
CREATE INDEX sensor_assignments_sensor ON erp.sensor_assignments (sensor_id, valid_from);
CREATE FUNCTION erp.sensor_assignments_no_overlap() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('erp.sensor_assignments'), NEW.sensor_id);
    IF EXISTS (SELECT 1 FROM erp.sensor_assignments a
                WHERE a.sensor_id = NEW.sensor_id AND a.id <> NEW.id
                  AND a.during && tstzrange(NEW.valid_from, NEW.valid_to, '[)')) THEN
        RAISE EXCEPTION 'sensor % is already assigned during [%, %)',
            NEW.sensor_id, NEW.valid_from, NEW.valid_to
            USING ERRCODE = 'exclusion_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER sensor_assignments_no_overlap
    BEFORE INSERT OR UPDATE ON erp.sensor_assignments
    FOR EACH ROW EXECUTE FUNCTION erp.sensor_assignments_no_overlap();
"""

_HISTORY = """
-- Where the lot was: per location, the maximal periods in which the lot's running
-- balance there (moves in minus moves out, summed over time) is above zero. For whole-lot
-- moves that is "from the move in until the next move out"; for partial moves the lot is
-- at every location that still holds some of it. valid_to NULL: it is still there.
CREATE FUNCTION erp.lot_intervals(p_lot_id bigint)
RETURNS TABLE (location_id integer, valid_from timestamptz, valid_to timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    WITH ev AS (
        SELECT to_location_id AS loc, moved_at AS t, quantity AS delta
          FROM erp.stock_movements
         WHERE lot_id = p_lot_id AND to_location_id IS NOT NULL
        UNION ALL
        SELECT from_location_id, moved_at, -quantity
          FROM erp.stock_movements
         WHERE lot_id = p_lot_id AND from_location_id IS NOT NULL
    ), bal AS (
        SELECT loc, t, sum(sum(delta)) OVER (PARTITION BY loc ORDER BY t) > 0 AS present
          FROM ev GROUP BY loc, t
    ), edges AS (
        SELECT loc, t, present,
               lag(present, 1, false) OVER (PARTITION BY loc ORDER BY t) AS was_present
          FROM bal
    ), changes AS (
        SELECT loc, t, present, lead(t) OVER (PARTITION BY loc ORDER BY t) AS next_t
          FROM edges WHERE present <> was_present
    )
    SELECT loc, t, next_t FROM changes WHERE present ORDER BY t, loc
$$;

-- Which temperature sensor stood for the lot when: lot intervals intersected with the
-- sensor assignments of the same location, clipped to [p_from, p_to).
CREATE FUNCTION erp.lot_segments(p_lot_id bigint, p_from timestamptz, p_to timestamptz)
RETURNS TABLE (sensor_id integer, location_id integer,
               segment_start timestamptz, segment_end timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT a.sensor_id, i.location_id, seg.s, seg.e
      FROM erp.lot_intervals(p_lot_id) i
      JOIN erp.sensor_assignments a
        ON a.location_id = i.location_id
       AND a.valid_from < coalesce(i.valid_to, 'infinity')
       AND coalesce(a.valid_to, 'infinity') > i.valid_from
      JOIN telemetry.sensors s ON s.id = a.sensor_id AND s.quantity = 'temperature'
     CROSS JOIN LATERAL (
           SELECT greatest(i.valid_from, a.valid_from, p_from) AS s,
                  least(coalesce(i.valid_to, 'infinity'), coalesce(a.valid_to, 'infinity'),
                        p_to) AS e) seg
     WHERE seg.s < seg.e
     ORDER BY seg.s, a.sensor_id
$$;

-- The lot's temperature readings in [p_from, p_to): the readings of each segment's
-- sensor inside that segment only. LATERAL ... OFFSET 0: one walk of the (sensor_id, time)
-- primary key per segment; without OFFSET 0 the planner may flatten the subquery into a
-- hash join over a scan of the whole readings table.
CREATE FUNCTION erp.lot_readings(p_lot_id bigint, p_from timestamptz, p_to timestamptz)
RETURNS TABLE (sensor_id integer, location_id integer, segment_start timestamptz,
               segment_end timestamptz, "time" timestamptz, value double precision)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT g.sensor_id, g.location_id, g.segment_start, g.segment_end, r.time, r.value
      FROM erp.lot_segments(p_lot_id, p_from, p_to) g
     CROSS JOIN LATERAL (
           SELECT x.time, x.value FROM telemetry.readings x
            WHERE x.sensor_id = g.sensor_id
              AND x.time >= g.segment_start AND x.time < g.segment_end
           OFFSET 0) AS r
$$;
"""


# Regulated records: every change goes to the hash-chained audit trail of revision 0004
# (the writer must name itself with erp_core.audit.service.set_actor).
_AUDITED = (
    "erp.items",
    "erp.lots",
    "erp.locations",
    "erp.sensor_assignments",
    "erp.reader_locations",
    "erp.stock_movements",
    "erp.shipments",
    "erp.shipment_lots",
    "erp.shipment_loggers",
    "erp.shipment_legs",
)


# A per-sensor hourly rollup of telemetry.readings that lets the lot history answer a year
# of minute readings without reading every row (see erp_core/stock/rollup.py). An hour's
# "step" sums weight every reading by the time to the sensor's next reading (next_t for
# the hour's last one). It is refreshed on read: hours holding readings received since the
# sensor's watermark (minus a margin for transactions still open then) are recomputed.
_ROLLUP = """
CREATE TABLE erp.reading_hours (
    sensor_id  integer NOT NULL,
    hour       timestamptz NOT NULL,
    n          integer NOT NULL,
    vmin       double precision NOT NULL,
    vmax       double precision NOT NULL,
    vsum       double precision NOT NULL,
    first_t    timestamptz NOT NULL,
    last_t     timestamptz NOT NULL,
    next_t     timestamptz,
    max_step   double precision,
    w_sum      double precision,
    wv_sum     double precision,
    wexp_sum   double precision,
    PRIMARY KEY (sensor_id, hour)
);
COMMENT ON COLUMN erp.reading_hours.next_t IS 'The sensor''s first reading after this hour; NULL: none yet (a later reading makes the refresh recompute this hour)';
COMMENT ON COLUMN erp.reading_hours.wexp_sum IS 'Σ step_s · exp(-ΔH/(R·T)), T in K, ΔH/R = 10,000 K';

CREATE TABLE erp.reading_hours_state (
    sensor_id       integer PRIMARY KEY,
    received_until  timestamptz NOT NULL
);

-- Finds the hours to recompute: readings received recently. An extra index on readings,
-- on an append-mostly column: the price ingest pays for a fast lot history.
CREATE INDEX readings_received_at ON telemetry.readings (received_at);

CREATE FUNCTION erp.refresh_reading_hours(p_sensor integer, p_from timestamptz, p_to timestamptz)
RETURNS integer LANGUAGE sql AS $$
    DELETE FROM erp.reading_hours
     WHERE sensor_id = p_sensor AND hour >= p_from AND hour < p_to;
    INSERT INTO erp.reading_hours
    SELECT p_sensor, date_bin('1 hour', time, timestamptz '1970-01-01 00:00+00') AS h,
           count(*), min(value), max(value), sum(value), min(time), max(time),
           CASE WHEN bool_and(nt IS NOT NULL) THEN max(nt) END,
           CASE WHEN bool_and(nt IS NOT NULL) THEN max(extract(epoch FROM nt - time)) END,
           sum(extract(epoch FROM nt - time)),
           sum(extract(epoch FROM nt - time) * value),
           sum(extract(epoch FROM nt - time)
               * exp(-(83144.0 / 8.3144) / greatest(value + 273.15, 1e-3)))
      FROM (SELECT time, value, lead(time) OVER (ORDER BY time) AS nt
              FROM (SELECT time, value FROM telemetry.readings
                     WHERE sensor_id = p_sensor AND time >= p_from AND time < p_to
                    UNION ALL
                    (SELECT time, NULL FROM telemetry.readings
                      WHERE sensor_id = p_sensor AND time >= p_to
                      ORDER BY time LIMIT 1)) AS raw) AS s
     WHERE value IS NOT NULL
     GROUP BY h;
    SELECT 1;
$$;
"""


def upgrade() -> None:
    op.execute(_MASTER)
    op.execute(
        "INSERT INTO erp.lot_status_transitions (from_status, to_status) VALUES "  # noqa: S608 - constants
        + ", ".join(f"('{a}', '{b}')" for a, b in _TRANSITIONS)
    )
    op.execute(_NO_OVERLAP_GIST if _btree_gist() else _NO_OVERLAP_TRIGGER)
    op.execute(_HISTORY)
    op.execute(_ROLLUP)
    for table in _AUDITED:
        op.execute(f"SELECT erp.audit_table('{table}')")


def downgrade() -> None:
    op.execute(
        """
        DROP FUNCTION erp.refresh_reading_hours(integer, timestamptz, timestamptz);
        DROP TABLE erp.reading_hours, erp.reading_hours_state;
        DROP INDEX telemetry.readings_received_at;
        DROP FUNCTION erp.lot_readings(bigint, timestamptz, timestamptz);
        DROP FUNCTION erp.lot_segments(bigint, timestamptz, timestamptz);
        DROP FUNCTION erp.lot_intervals(bigint);
        DROP TABLE erp.shipment_legs, erp.shipment_loggers, erp.shipment_lots, erp.shipments,
                   erp.stock_movements, erp.reader_locations, erp.sensor_assignments,
                   erp.locations, erp.lots, erp.lot_status_transitions, erp.items;
        DROP FUNCTION IF EXISTS erp.sensor_assignments_no_overlap();
        DROP FUNCTION erp.locations_check_parent();
        DROP FUNCTION erp.lots_check_status();
        DROP FUNCTION erp.gtin_valid(text);
        """
    )
