"""Changing master data that regulated history already refers to: update, retire, swap.

Items, locations and sensor assignments give recorded readings and movements their
meaning: an item's storage condition is what a lot's record is judged against, a
location's kind decides storage or transport rules, an assignment decides which sensor
stood for a lot. So a change here is refused (``HistoryLockedError``, 409) when it would
silently change what recorded history means, and otherwise made in place with the
reason in the audit trail (the caller sets it with ``set_actor``). Nothing is deleted:
retiring keeps the row and its history and stops new use. The rules are listed in
docs/master-data.md. Plain functions on the caller's connection; they never commit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from erp_core.errors import InvalidArgumentError
from erp_core.masterdata.errors import HistoryLockedError, InUseError, RetiredError
from erp_core.masterdata.evidence import CLOCK_TOLERANCE, location_evidence
from erp_core.masterdata.models import Assignment, AssignmentIn, Item, Location
from erp_core.masterdata.service import (
    active_item,
    active_location,
    assign_sensor,
    check_finite,
    get_assignment,
    get_item,
    get_location,
    translate_db_errors,
)

Conn = psycopg.Connection[Any]

STORAGE_CONDITION = (
    "range_low",
    "range_high",
    "alarm_profile_id",
    "mkt_limit",
    "tor_budget_minutes",
)
"""Item fields a lot's temperature record is judged against."""
_NOT_NULL = ("name", "range_low", "range_high", "implantable", "code", "kind")
_SHOWN = 10


def _ids(rows: list[tuple[Any, ...]]) -> str:
    ids = [str(r[0]) for r in rows[:_SHOWN]]
    return ", ".join(ids) + (" …" if len(rows) > _SHOWN else "")


def _changed(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    for name, value in changes.items():
        if name in _NOT_NULL and value is None:
            raise InvalidArgumentError(name, None, "may not be empty")
    return {k: v for k, v in changes.items() if current[k] != v}


def _lock(conn: Conn, table: str, key: int) -> None:
    """Lock a master record against new references (see ``master.active_item``)."""
    conn.execute(
        sql.SQL("SELECT 1 FROM {} WHERE id = %s FOR UPDATE").format(sql.Identifier("erp", table)),
        (key,),
    )


def _update(conn: Conn, table: str, key: int, fields: dict[str, Any]) -> None:
    query = sql.SQL("UPDATE {} SET {} WHERE id = %(id)s").format(
        sql.Identifier("erp", table),
        sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in fields
        ),
    )
    conn.execute(query, {**fields, "id": key})


def _lots_held_or_pending(conn: Conn, item_id: int) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT l.id FROM erp.lots l WHERE l.item_id = %s "
        "AND (l.status IN ('quarantine', 'on_hold') "
        "     OR EXISTS (SELECT 1 FROM erp.lot_intervals(l.id) i WHERE i.valid_to IS NULL)) "
        "ORDER BY l.id",
        (item_id,),
    ).fetchall()


def update_item(conn: Conn, *, item_id: int, changes: dict[str, Any]) -> Item:
    """Change an item's fields; HistoryLockedError if it would re-judge recorded lots."""
    _lock(conn, "items", item_id)
    item = active_item(conn, item_id=item_id)
    fields = _changed(item.model_dump(), changes)
    check_finite(fields)
    low = fields.get("range_low", item.range_low)
    if low >= fields.get("range_high", item.range_high):
        raise InvalidArgumentError("range_low", low, "must be below range_high")
    if set(fields) & set(STORAGE_CONDITION):
        lots = _lots_held_or_pending(conn, item_id)
        if lots:
            raise HistoryLockedError(
                f"item {item_id}: the storage condition "
                f"({', '.join(sorted(set(fields) & set(STORAGE_CONDITION)))}) cannot change "
                f"while lots are in stock or await a QA decision (lots {_ids(lots)}); their "
                "records would be judged against a condition they were not kept under. "
                "Create a new item for the new condition."
            )
    if fields.get("implantable") is False:
        lots = conn.execute(
            "SELECT id FROM erp.lots WHERE item_id = %s ORDER BY id", (item_id,)
        ).fetchall()
        if lots:
            raise HistoryLockedError(
                f"item {item_id} has lots ({_ids(lots)}); making it non-implantable would "
                "shorten the retention of their records"
            )
    if fields:
        with translate_db_errors("item", item_id):
            _update(conn, "items", item_id, fields)
    return get_item(conn, item_id=item_id)


def retire_item(conn: Conn, *, item_id: int, now: datetime) -> Item:
    """Take an item out of use at ``now``; InUseError while lots are held or undecided."""
    _lock(conn, "items", item_id)
    active_item(conn, item_id=item_id)
    lots = _lots_held_or_pending(conn, item_id)
    if lots:
        raise InUseError(
            f"item {item_id} still has lots in stock or awaiting a QA decision ({_ids(lots)})"
        )
    _update(conn, "items", item_id, {"retired_at": now})
    return get_item(conn, item_id=item_id)


def _has_history(conn: Conn, location_id: int) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM erp.stock_movements "
        "               WHERE %(id)s IN (from_location_id, to_location_id)) "
        "    OR EXISTS (SELECT 1 FROM erp.sensor_assignments WHERE location_id = %(id)s)",
        {"id": location_id},
    ).fetchone()
    return bool(row and row[0])


def update_location(conn: Conn, *, location_id: int, changes: dict[str, Any]) -> Location:
    """Change a location's code, name, parent or kind; the kind is locked once used."""
    _lock(conn, "locations", location_id)
    location = active_location(conn, location_id=location_id)
    fields = _changed(location.model_dump(), changes)
    if "kind" in fields and _has_history(conn, location_id):
        raise HistoryLockedError(
            f"location {location_id} ({location.code}) has recorded movements or sensor "
            f"assignments; its kind ({location.kind}) decides how they are judged (storage "
            "or transport) and cannot change. Create a new location and retire this one."
        )
    if fields.get("parent_id") is not None:
        active_location(conn, location_id=fields["parent_id"])
    if fields:
        with translate_db_errors("location", fields.get("code", location_id)):
            _update(conn, "locations", location_id, fields)
    return get_location(conn, location_id=location_id)


def retire_location(conn: Conn, *, location_id: int, now: datetime) -> Location:
    """Take a location out of use at ``now``; InUseError while anything still uses it."""
    _lock(conn, "locations", location_id)
    active_location(conn, location_id=location_id)
    uses = {
        "holds lots": "SELECT lot_id FROM erp.stock_movements "
        "WHERE %(id)s IN (from_location_id, to_location_id) GROUP BY lot_id "
        "HAVING sum(CASE WHEN to_location_id = %(id)s THEN quantity ELSE -quantity END) > 0 "
        "ORDER BY lot_id",
        "has active child locations": "SELECT id FROM erp.locations "
        "WHERE parent_id = %(id)s AND retired_at IS NULL ORDER BY id",
        "has sensor assignments not ended (end them first)": "SELECT id "
        "FROM erp.sensor_assignments WHERE location_id = %(id)s "
        "AND (valid_to IS NULL OR valid_to > %(now)s) ORDER BY id",
        "has readers mapped to it": "SELECT reader_id FROM erp.reader_locations "
        "WHERE location_id = %(id)s ORDER BY reader_id",
        "is used by shipments not arrived": "SELECT reference FROM erp.shipments "
        "WHERE arrived_at IS NULL AND %(id)s IN "
        "(truck_location_id, origin_location_id, destination_location_id) ORDER BY id",
    }
    for what, query in uses.items():
        rows = conn.execute(query, {"id": location_id, "now": now}).fetchall()
        if rows:
            raise InUseError(f"location {location_id} {what}: {_ids(rows)}")
    _update(conn, "locations", location_id, {"retired_at": now})
    return get_location(conn, location_id=location_id)


def _open_at(assignment: Assignment, time: datetime) -> None:
    if assignment.valid_to is not None and assignment.valid_to <= time:
        raise HistoryLockedError(
            f"sensor assignment {assignment.id} already ended at "
            f"{assignment.valid_to.isoformat()}; an ended assignment is not moved"
        )
    if time <= assignment.valid_from:
        raise InvalidArgumentError(
            "valid_to", time.isoformat(), "must be after the assignment's valid_from"
        )


def _guard_past(conn: Conn, location_id: int, time: datetime, now: datetime) -> None:
    if time < now - CLOCK_TOLERANCE:
        location_evidence(conn, location_id=location_id, since=time)


def add_assignment(conn: Conn, *, assignment: AssignmentIn, now: datetime) -> Assignment:
    """Assign a sensor to a location; guarded like an end when it starts in the past."""
    _guard_past(conn, assignment.location_id, assignment.valid_from, now)
    return assign_sensor(conn, assignment=assignment)


def end_assignment(
    conn: Conn, *, assignment_id: int, valid_to: datetime, now: datetime
) -> Assignment:
    """Close an open assignment at ``valid_to`` (exclusive); guarded if in the past."""
    assignment = get_assignment(conn, assignment_id=assignment_id)
    _open_at(assignment, valid_to)
    _guard_past(conn, assignment.location_id, valid_to, now)
    conn.execute(
        "UPDATE erp.sensor_assignments SET valid_to = %s WHERE id = %s", (valid_to, assignment_id)
    )
    return get_assignment(conn, assignment_id=assignment_id)


def swap_logger(
    conn: Conn, *, assignment_id: int, sensor_id: int, time: datetime, now: datetime
) -> tuple[Assignment, Assignment]:
    """End an assignment at ``time`` and let ``sensor_id`` take over the same location."""
    old = get_assignment(conn, assignment_id=assignment_id)
    if sensor_id == old.sensor_id:
        raise InvalidArgumentError("sensor_id", sensor_id, "is the logger being replaced")
    _open_at(old, time)
    location = get_location(conn, location_id=old.location_id)
    if location.retired_at is not None:
        raise RetiredError("location", location.id, location.retired_at)
    _guard_past(conn, old.location_id, time, now)
    conn.execute("UPDATE erp.sensor_assignments SET valid_to = %s WHERE id = %s", (time, old.id))
    new = assign_sensor(
        conn,
        assignment=AssignmentIn(
            sensor_id=sensor_id,
            location_id=old.location_id,
            valid_from=time,
            valid_to=old.valid_to,
        ),
    )
    return get_assignment(conn, assignment_id=old.id), new
