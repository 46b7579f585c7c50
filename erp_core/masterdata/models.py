"""Value types of the stock domain: request bodies (``…In``) and records (pydantic, frozen)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from erp_core.stock.status import LotStatus

LocationKind = Literal[
    "site", "area", "cold_room", "fridge", "freezer", "dock", "truck", "warehouse"
]
MovementSource = Literal["scan", "rfid", "manual"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ItemIn(_Frozen):
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


class ItemUpdate(_Frozen):
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


class ReasonIn(_Frozen):
    """Why a master-data change is made (kept in the audit trail)."""

    reason: str = Field(min_length=3, description="Why; recorded in the audit trail")


class LotIn(_Frozen):
    """A new lot of an item; it starts in quarantine."""

    item_id: int
    lot_number: str = Field(min_length=1)
    expires_on: date
    manufactured_on: date | None = None
    quantity: float = Field(ge=0)


class Lot(_Frozen):
    """A stored lot with its release status."""

    id: int
    item_id: int
    gtin: str
    lot_number: str
    expires_on: date
    manufactured_on: date | None
    quantity: float
    status: LotStatus
    status_changed_at: datetime


class StatusChangeIn(_Frozen):
    """The status a lot should go to, and why (kept in the audit trail)."""

    status: LotStatus
    reason: str | None = None


class LocationIn(_Frozen):
    """A place stock can be: site → area → unit (cold room, fridge, truck, …)."""

    code: str = Field(min_length=1)
    name: str
    kind: LocationKind
    parent_id: int | None = None


class Location(LocationIn):
    """A stored location; ``retired_at`` set: out of use since then (its history is kept)."""

    id: int
    retired_at: datetime | None = None


class LocationUpdate(_Frozen):
    """Fields of a location to change (None: unchanged), and why (kept in the audit trail).

    The kind is locked once the location has any movement or sensor assignment.
    """

    reason: str = Field(min_length=3, description="Why; recorded in the audit trail")
    code: str | None = Field(default=None, min_length=1)
    name: str | None = None
    kind: LocationKind | None = None
    parent_id: int | None = None


class AssignmentIn(_Frozen):
    """A sensor standing for a location over [valid_from, valid_to)."""

    sensor_id: int
    location_id: int
    valid_from: datetime
    valid_to: datetime | None = None


class Assignment(AssignmentIn):
    """A stored sensor assignment."""

    id: int


class AssignmentEndIn(_Frozen):
    """When an open assignment ends (exclusive), and why (kept in the audit trail)."""

    valid_to: datetime
    reason: str = Field(min_length=3, description="Why; recorded in the audit trail")


class SwapIn(_Frozen):
    """Replace an assignment's logger by another one at ``time``, and why."""

    sensor_id: int = Field(description="The logger that takes over")
    time: datetime
    reason: str = Field(min_length=3, description="Why; recorded in the audit trail")


class SwapOut(_Frozen):
    """The assignment a swap ended and the one it started."""

    ended: Assignment
    started: Assignment


class ReaderIn(_Frozen):
    """Where a fixed barcode scanner or RFID reader stands."""

    location_id: int
    kind: Literal["scan", "rfid"]


class Reader(ReaderIn):
    """A stored reader mapping."""

    reader_id: str


class MovementIn(_Frozen):
    """Some quantity of a lot moved from one location to another at a time."""

    lot_id: int
    quantity: float = Field(gt=0)
    from_location_id: int | None = Field(default=None, description="None: goods received")
    to_location_id: int | None = Field(default=None, description="None: left our custody")
    moved_at: datetime
    source: MovementSource = "manual"
    reference: str | None = None


class MovementRequest(MovementIn):
    """A movement recorded through the API, with an optional reason for the audit trail."""

    reason: str | None = Field(
        default=None, description="Why (e.g. a late scan or a correction); audit trail"
    )


class Movement(MovementIn):
    """A stored movement."""

    id: int
    reader_id: str | None


class ScanIn(_Frozen):
    """A barcode scan or tag read at a reader: the lot arrived at the reader's location."""

    reader_id: str
    time: datetime
    lot_id: int | None = None
    gtin: str | None = None
    lot_number: str | None = None
    quantity: float | None = Field(default=None, gt=0)
    reference: str | None = None


class LocationInterval(_Frozen):
    """The lot was (at least partly) at ``location_id`` over [start, end); end None: still."""

    location_id: int
    start: datetime
    end: datetime | None


class ShipmentLotIn(_Frozen):
    """A lot on board and how much of it."""

    lot_id: int
    quantity: float = Field(gt=0)


class ShipmentIn(_Frozen):
    """A shipment: a truck (a location), where it leaves and goes, lots and loggers on board."""

    reference: str = Field(min_length=1)
    truck_location_id: int
    origin_location_id: int
    destination_location_id: int
    lots: list[ShipmentLotIn] = Field(min_length=1)
    logger_sensor_ids: list[int] = Field(default_factory=list)


class LegIn(_Frozen):
    """One leg of a shipment's route."""

    from_location_id: int
    to_location_id: int
    departed_at: datetime
    arrived_at: datetime | None = None


class Leg(LegIn):
    """A stored leg, numbered from 1."""

    seq: int


class Shipment(_Frozen):
    """A stored shipment with its lots, loggers and legs."""

    id: int
    reference: str
    truck_location_id: int
    origin_location_id: int
    destination_location_id: int
    departed_at: datetime | None
    arrived_at: datetime | None
    lots: list[ShipmentLotIn]
    logger_sensor_ids: list[int]
    legs: list[Leg]


class TimeIn(_Frozen):
    """When a step (departure, arrival) happened."""

    time: datetime
