"""Master data services: create and read items, locations, reader mappings, assignments.

Changes to existing master data (update, retire, end or swap an assignment) are in
``erp_core.masterdata.changes``, with the rules that protect recorded history.

Plain functions taking the caller's connection; they never commit. Database rule
violations (unique keys, the no-overlap constraint, the location-tree trigger) are
turned into stock errors here, so callers see one error tree.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import errors as pg
from psycopg.rows import class_row

from erp_core.errors import InvalidArgumentError, NotFoundError
from erp_core.masterdata.errors import (
    DuplicateError,
    DuplicateGtinError,
    InvalidGtinError,
    OverlappingAssignmentError,
    RetiredError,
)
from erp_core.masterdata.models import (
    Assignment,
    AssignmentIn,
    Item,
    ItemIn,
    Location,
    LocationIn,
    Reader,
    ReaderIn,
)
from identifiers.gtin import GtinError, to_gtin14

Conn = psycopg.Connection[Any]

_ITEM_COLS = (
    "id, gtin, name, range_low, range_high, alarm_profile_id, mkt_limit, "
    "tor_budget_minutes, shelf_life_days, implantable, retired_at"
)
_LOCATION_COLS = "id, code, name, kind, parent_id, retired_at"
_ASSIGNMENT_COLS = "id, sensor_id, location_id, valid_from, valid_to"


@contextmanager
def translate_db_errors(kind: str, key: object) -> Iterator[None]:
    """Turn constraint violations raised inside the block into stock errors."""
    try:
        yield
    except pg.UniqueViolation as err:
        raise DuplicateError(kind, key) from err
    except pg.ExclusionViolation as err:
        raise OverlappingAssignmentError(key if isinstance(key, int) else -1) from err
    except pg.ForeignKeyViolation as err:
        detail = err.diag.message_detail or str(err)
        raise InvalidArgumentError(kind, key, f"refers to a missing record: {detail}") from err
    except pg.CheckViolation as err:
        raise InvalidArgumentError(kind, key, err.diag.message_primary or str(err)) from err


def gtin14(gtin: str) -> str:
    """The stored form (GTIN-14) of a GTIN-8/12/13/14; InvalidGtinError saying why if none."""
    try:
        return to_gtin14(gtin)
    except GtinError as err:
        raise InvalidGtinError(gtin, err.reason) from None


TEMPERATURES = ("range_low", "range_high", "mkt_limit")
NOT_FINITE = "must be a finite number"


def check_finite(fields: Mapping[str, Any]) -> None:
    """InvalidArgumentError for an infinite or NaN temperature among ``fields``.

    The models' floats take ``1e309``, ``inf`` and ``nan`` (as text or JSON's
    non-standard tokens); a double precision column stores them, and NaN even passes
    ``range_low < range_high`` in Python and in SQL: a range of 2 °C to ∞ or to NaN
    would judge every reading as in range.
    """
    for name in TEMPERATURES:
        value = fields.get(name)
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidArgumentError(name, value, NOT_FINITE)


def create_item(conn: Conn, *, item: ItemIn) -> Item:
    """Store a new item under its GTIN-14.

    InvalidGtinError for a bad GTIN; DuplicateGtinError, naming the item, when any form of
    the GTIN is already an item's. The unique constraint on the GTIN-14 decides (ON
    CONFLICT waits for a racing insert of another form and then skips), so two requests
    with two forms of one GTIN cannot both make an item.
    """
    stored = gtin14(item.gtin)
    check_finite(item.model_dump())
    if item.range_low >= item.range_high:
        raise InvalidArgumentError("range_low", item.range_low, "must be below range_high")
    fields = item.model_dump() | {"gtin": stored}
    with translate_db_errors("item", stored), conn.cursor(row_factory=class_row(Item)) as cur:
        cur.execute(
            f"INSERT INTO erp.items ({', '.join(fields)}) "  # noqa: S608 - names from the model
            f"VALUES ({', '.join('%(' + k + ')s' for k in fields)}) "
            f"ON CONFLICT (gtin) DO NOTHING RETURNING {_ITEM_COLS}",
            fields,
        )
        row = cur.fetchone()
    if row is None:
        holder = conn.execute(
            "SELECT id, name FROM erp.items WHERE gtin = %s", (stored,)
        ).fetchone()
        if holder is None:  # the holder went between the two statements
            raise DuplicateError("item", stored)
        raise DuplicateGtinError(item.gtin, stored, holder[0], holder[1])
    return row


def get_item(conn: Conn, *, item_id: int) -> Item:
    """One item; NotFoundError if there is none."""
    with conn.cursor(row_factory=class_row(Item)) as cur:
        cur.execute(f"SELECT {_ITEM_COLS} FROM erp.items WHERE id = %s", (item_id,))  # noqa: S608
        row = cur.fetchone()
    if row is None:
        raise NotFoundError("item", item_id)
    return row


def active_item(conn: Conn, *, item_id: int) -> Item:
    """One item that is not retired; RetiredError if it is.

    For a write that will refer to the item: the row is locked (KEY SHARE) until commit,
    so a retirement running meanwhile waits and then sees this write, or this one waits
    and sees the retirement.
    """
    conn.execute("SELECT 1 FROM erp.items WHERE id = %s FOR KEY SHARE", (item_id,))
    item = get_item(conn, item_id=item_id)
    if item.retired_at is not None:
        raise RetiredError("item", item_id, item.retired_at)
    return item


def list_items(conn: Conn) -> list[Item]:
    """Every item by name."""
    with conn.cursor(row_factory=class_row(Item)) as cur:
        cur.execute(f"SELECT {_ITEM_COLS} FROM erp.items ORDER BY name, id")  # noqa: S608
        return cur.fetchall()


def create_location(conn: Conn, *, location: LocationIn) -> Location:
    """Store a new location in the site → area → unit tree."""
    if (location.kind == "site") != (location.parent_id is None):
        raise InvalidArgumentError(
            "parent_id", location.parent_id, "a site has no parent; every other kind has one"
        )
    if location.parent_id is not None:
        active_location(conn, location_id=location.parent_id)
    with (
        translate_db_errors("location", location.code),
        conn.cursor(row_factory=class_row(Location)) as cur,
    ):
        cur.execute(
            "INSERT INTO erp.locations (code, name, kind, parent_id) "  # noqa: S608
            "VALUES (%(code)s, %(name)s, %(kind)s, %(parent_id)s) "
            f"RETURNING {_LOCATION_COLS}",
            location.model_dump(),
        )
        row = cur.fetchone()
    assert row is not None
    return row


def get_location(conn: Conn, *, location_id: int) -> Location:
    """One location; NotFoundError if there is none."""
    with conn.cursor(row_factory=class_row(Location)) as cur:
        cur.execute(
            f"SELECT {_LOCATION_COLS} FROM erp.locations WHERE id = %s",  # noqa: S608
            (location_id,),
        )
        row = cur.fetchone()
    if row is None:
        raise NotFoundError("location", location_id)
    return row


def active_location(conn: Conn, *, location_id: int) -> Location:
    """One location that is not retired; RetiredError if it is (locked as ``active_item``)."""
    conn.execute("SELECT 1 FROM erp.locations WHERE id = %s FOR KEY SHARE", (location_id,))
    location = get_location(conn, location_id=location_id)
    if location.retired_at is not None:
        raise RetiredError("location", location_id, location.retired_at)
    return location


def list_locations(conn: Conn) -> list[Location]:
    """Every location, parents before children."""
    with conn.cursor(row_factory=class_row(Location)) as cur:
        cur.execute(
            f"SELECT {_LOCATION_COLS} FROM erp.locations "  # noqa: S608
            "ORDER BY parent_id NULLS FIRST, code"
        )
        return cur.fetchall()


def set_reader(conn: Conn, *, reader_id: str, reader: ReaderIn) -> Reader:
    """Map a scanner or RFID reader to the location it stands at (insert or move)."""
    active_location(conn, location_id=reader.location_id)
    conn.execute(
        "INSERT INTO erp.reader_locations (reader_id, location_id, kind) VALUES (%s, %s, %s) "
        "ON CONFLICT (reader_id) DO UPDATE SET location_id = excluded.location_id, "
        "kind = excluded.kind",
        (reader_id, reader.location_id, reader.kind),
    )
    return Reader(reader_id=reader_id, location_id=reader.location_id, kind=reader.kind)


def get_reader(conn: Conn, *, reader_id: str) -> Reader:
    """Where a reader stands; NotFoundError for a reader nobody mapped."""
    row = conn.execute(
        "SELECT location_id, kind FROM erp.reader_locations WHERE reader_id = %s", (reader_id,)
    ).fetchone()
    if row is None:
        raise NotFoundError("reader", reader_id)
    return Reader(reader_id=reader_id, location_id=row[0], kind=row[1])


def assign_sensor(conn: Conn, *, assignment: AssignmentIn) -> Assignment:
    """Let a sensor stand for a location over [valid_from, valid_to); no overlaps per sensor."""
    if assignment.valid_to is not None and assignment.valid_to <= assignment.valid_from:
        raise InvalidArgumentError("valid_to", assignment.valid_to, "must be after valid_from")
    active_location(conn, location_id=assignment.location_id)
    with (
        translate_db_errors("sensor_assignment", assignment.sensor_id),
        conn.cursor(row_factory=class_row(Assignment)) as cur,
    ):
        cur.execute(
            "INSERT INTO erp.sensor_assignments (sensor_id, location_id, valid_from, valid_to) "  # noqa: S608
            "VALUES (%(sensor_id)s, %(location_id)s, %(valid_from)s, %(valid_to)s) "
            f"RETURNING {_ASSIGNMENT_COLS}",
            assignment.model_dump(),
        )
        row = cur.fetchone()
    assert row is not None
    return row


def get_assignment(conn: Conn, *, assignment_id: int) -> Assignment:
    """One sensor assignment; NotFoundError if there is none."""
    with conn.cursor(row_factory=class_row(Assignment)) as cur:
        cur.execute(
            f"SELECT {_ASSIGNMENT_COLS} FROM erp.sensor_assignments WHERE id = %s",  # noqa: S608
            (assignment_id,),
        )
        row = cur.fetchone()
    if row is None:
        raise NotFoundError("sensor assignment", assignment_id)
    return row


def list_assignments(conn: Conn, *, location_id: int | None = None) -> list[Assignment]:
    """Sensor assignments, all or of one location, oldest first."""
    with conn.cursor(row_factory=class_row(Assignment)) as cur:
        cur.execute(
            f"SELECT {_ASSIGNMENT_COLS} FROM erp.sensor_assignments "  # noqa: S608
            "WHERE %(loc)s::int IS NULL OR location_id = %(loc)s "
            "ORDER BY valid_from, sensor_id",
            {"loc": location_id},
        )
        return cur.fetchall()
