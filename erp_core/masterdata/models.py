"""Value types of master data: items, locations, sensor assignments, reader mappings."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from erp_core.model_base import Frozen

LocationKind = Literal[
    "site",
    "area",
    "cold_room",
    "fridge",
    "freezer",
    "dock",
    "truck",
    "warehouse",
    "cleanroom",
    "work_center",
]


class ItemIn(Frozen):
    """A product with its storage condition."""

    gtin: str = Field(
        description="GTIN-8/12/13/14 with a valid GS1 check digit; stored and shown as GTIN-14"
    )
    name: str = Field(min_length=1)
    range_low: float = Field(description="Lowest allowed storage temperature, °C")
    range_high: float = Field(description="Highest allowed storage temperature, °C")
    alarm_profile_id: int | None = Field(default=None, description="telemetry.alarm_profiles id")
    mkt_limit: float | None = Field(default=None, description="Highest allowed MKT, °C")
    tor_budget_minutes: int | None = Field(
        default=None, ge=0, description="Time out of refrigeration allowed over the lot's life"
    )
    shelf_life_days: int | None = Field(default=None, gt=0)
    implantable: bool = Field(default=False, description="Longer record retention applies")


class Item(ItemIn):
    """A stored item; ``retired_at`` set: out of use since then (its history is kept)."""

    id: int
    retired_at: datetime | None = None


class ItemUpdate(Frozen):
    """Fields of an item to change (None: unchanged), and why (kept in the audit trail).

    The GTIN is the item's identity and cannot change. The storage condition (range,
    alarm profile, MKT limit, TOR budget) is locked while lots are held or await a
    decision; see docs/master-data.md.
    """

    reason: str = Field(min_length=3, description="Why; recorded in the audit trail")
    name: str | None = Field(default=None, min_length=1)
    range_low: float | None = None
    range_high: float | None = None
    alarm_profile_id: int | None = None
    mkt_limit: float | None = None
    tor_budget_minutes: int | None = Field(default=None, ge=0)
    shelf_life_days: int | None = Field(default=None, gt=0)
    implantable: bool | None = None


class ReasonIn(Frozen):
    """Why a master-data change is made (kept in the audit trail)."""

    reason: str = Field(min_length=3, description="Why; recorded in the audit trail")


class LocationIn(Frozen):
    """A place stock can be: site → area → unit (cold room, fridge, truck, …)."""

    code: str = Field(min_length=1)
    name: str
    kind: LocationKind
    parent_id: int | None = None


class Location(LocationIn):
    """A stored location; ``retired_at`` set: out of use since then (its history is kept)."""

    id: int
    retired_at: datetime | None = None


class LocationUpdate(Frozen):
    """Fields of a location to change (None: unchanged), and why (kept in the audit trail).

    The kind is locked once the location has any movement or sensor assignment.
    """

    reason: str = Field(min_length=3, description="Why; recorded in the audit trail")
    code: str | None = Field(default=None, min_length=1)
    name: str | None = None
    kind: LocationKind | None = None
    parent_id: int | None = None


class AssignmentIn(Frozen):
    """A sensor standing for a location over [valid_from, valid_to)."""

    sensor_id: int
    location_id: int
    valid_from: datetime
    valid_to: datetime | None = None


class Assignment(AssignmentIn):
    """A stored sensor assignment."""

    id: int


class AssignmentEndIn(Frozen):
    """When an open assignment ends (exclusive), and why (kept in the audit trail)."""

    valid_to: datetime
    reason: str = Field(min_length=3, description="Why; recorded in the audit trail")


class SwapIn(Frozen):
    """Replace an assignment's logger by another one at ``time``, and why."""

    sensor_id: int = Field(description="The logger that takes over")
    time: datetime
    reason: str = Field(min_length=3, description="Why; recorded in the audit trail")


class SwapOut(Frozen):
    """The assignment a swap ended and the one it started."""

    ended: Assignment
    started: Assignment


class ReaderIn(Frozen):
    """Where a fixed barcode scanner or RFID reader stands."""

    location_id: int
    kind: Literal["scan", "rfid"]


class Reader(ReaderIn):
    """A stored reader mapping."""

    reader_id: str
