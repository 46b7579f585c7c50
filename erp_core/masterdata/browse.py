"""What the master-data pages read: a page of items, the location tree, a place's sensors.

The API's ``service`` reads whole tables (``list_items``, ``list_locations``); a page
shows one page of rows (``erp_core.web.paging``: ``limit`` is one more than shown) with
what a person needs next to them: the alarm profile's name, the location's depth in the
site → area → unit tree, the sensors' names. Plain reads on the caller's connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from erp_core.masterdata.models import Item, Location
from erp_core.masterdata.service import get_item

Conn = psycopg.Connection[Any]


@dataclass(frozen=True, slots=True)
class ItemRow:
    """An item with the name of its alarm profile (None: no profile of its own)."""

    item: Item
    profile: str | None


@dataclass(frozen=True, slots=True)
class TreeRow:
    """A location at its place in the tree: ``depth`` 0 for a site."""

    location: Location
    depth: int


@dataclass(frozen=True, slots=True)
class SensorAt:
    """A sensor assignment of a location, with the sensor's name."""

    id: int
    sensor_id: int
    sensor_uid: str
    valid_from: datetime
    valid_to: datetime | None


@dataclass(frozen=True, slots=True)
class Profile:
    """An alarm profile an item may point to."""

    id: int
    name: str


_ITEM_COLS = (
    "i.id, i.gtin, i.name, i.range_low, i.range_high, i.alarm_profile_id, i.mkt_limit, "
    "i.tor_budget_minutes, i.shelf_life_days, i.implantable, i.retired_at"
)
_ITEM_FIELDS = tuple(c.removeprefix("i.") for c in _ITEM_COLS.split(", "))
_LOC_FIELDS = ("id", "code", "name", "kind", "parent_id", "retired_at")


def items_page(conn: Conn, *, limit: int, offset: int, search: str = "") -> list[ItemRow]:
    """Items by name (``search``: part of the name or GTIN), with their profile's name."""
    rows = conn.execute(
        f"SELECT {_ITEM_COLS}, p.name FROM erp.items i "  # noqa: S608 - fixed column list
        "LEFT JOIN telemetry.alarm_profiles p ON p.id = i.alarm_profile_id "
        "WHERE %(q)s = '' OR strpos(lower(i.name), lower(%(q)s)) > 0 OR strpos(i.gtin, %(q)s) > 0 "
        "ORDER BY i.retired_at IS NOT NULL, i.name, i.id LIMIT %(limit)s OFFSET %(offset)s",
        {"q": search, "limit": limit, "offset": offset},
    ).fetchall()
    return [
        ItemRow(item=Item(**dict(zip(_ITEM_FIELDS, r[:-1], strict=True))), profile=r[-1])
        for r in rows
    ]


def item_row(conn: Conn, *, item_id: int) -> ItemRow:
    """One item with its profile's name; NotFoundError if there is none."""
    item = get_item(conn, item_id=item_id)
    row = conn.execute(
        "SELECT name FROM telemetry.alarm_profiles WHERE id = %s", (item.alarm_profile_id,)
    ).fetchone()
    return ItemRow(item=item, profile=None if row is None else str(row[0]))


def profiles(conn: Conn) -> list[Profile]:
    """Every alarm profile, by name (the choices of the item form)."""
    rows = conn.execute("SELECT id, name FROM telemetry.alarm_profiles ORDER BY name, id")
    return [Profile(id=r[0], name=r[1]) for r in rows]


_TREE_PAGE = """
WITH RECURSIVE tree AS (
    SELECT l.*, 0 AS depth, ARRAY[l.code::text] AS path
    FROM erp.locations l WHERE l.parent_id IS NULL
  UNION ALL
    SELECT c.*, t.depth + 1, t.path || c.code::text
    FROM erp.locations c JOIN tree t ON c.parent_id = t.id
    WHERE t.depth < 32
)
SELECT id, code, name, kind, parent_id, retired_at, depth FROM tree
ORDER BY path LIMIT %s OFFSET %s
"""


def tree_page(conn: Conn, *, limit: int, offset: int) -> list[TreeRow]:
    """Locations depth first (each site, then what is under it, by code), one page of them."""
    rows = conn.execute(_TREE_PAGE, (limit, offset)).fetchall()
    return [
        TreeRow(location=Location(**dict(zip(_LOC_FIELDS, r[:-1], strict=True))), depth=r[-1])
        for r in rows
    ]


def path_to(conn: Conn, *, location_id: int) -> list[Location]:
    """The location's ancestors, site first, then the location itself."""
    rows = conn.execute(
        "WITH RECURSIVE up AS ("
        "  SELECT l.*, 0 AS n FROM erp.locations l WHERE l.id = %s"
        "  UNION ALL SELECT p.*, up.n + 1 FROM erp.locations p JOIN up ON p.id = up.parent_id"
        "  WHERE up.n < 32"
        ") SELECT id, code, name, kind, parent_id, retired_at FROM up ORDER BY n DESC",
        (location_id,),
    ).fetchall()
    return [Location(**dict(zip(_LOC_FIELDS, r, strict=True))) for r in rows]


def children(conn: Conn, *, location_id: int) -> list[Location]:
    """The locations directly under ``location_id``, by code."""
    rows = conn.execute(
        "SELECT id, code, name, kind, parent_id, retired_at FROM erp.locations "
        "WHERE parent_id = %s ORDER BY code LIMIT 500",
        (location_id,),
    ).fetchall()
    return [Location(**dict(zip(_LOC_FIELDS, r, strict=True))) for r in rows]


def parents(conn: Conn) -> list[Location]:
    """Locations that can take a child (active, not a unit), by code: the form's choices."""
    rows = conn.execute(
        "SELECT id, code, name, kind, parent_id, retired_at FROM erp.locations "
        "WHERE retired_at IS NULL AND kind IN ('site', 'area') "
        "ORDER BY code LIMIT 1000"
    ).fetchall()
    return [Location(**dict(zip(_LOC_FIELDS, r, strict=True))) for r in rows]


def sensors_at(conn: Conn, *, location_id: int) -> list[SensorAt]:
    """The location's sensor assignments, newest first, with the sensors' names."""
    rows = conn.execute(
        "SELECT a.id, a.sensor_id, s.uid, a.valid_from, a.valid_to "
        "FROM erp.sensor_assignments a JOIN telemetry.sensors s ON s.id = a.sensor_id "
        "WHERE a.location_id = %s ORDER BY a.valid_from DESC, a.id DESC LIMIT 200",
        (location_id,),
    ).fetchall()
    return [SensorAt(*r) for r in rows]
