"""Value types of shipments: the shipment, its lots and loggers on board, its legs."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from erp_core.model_base import Frozen


class ShipmentLotIn(Frozen):
    """A lot on board and how much of it."""

    lot_id: int
    quantity: float = Field(gt=0, allow_inf_nan=False)


class ShipmentIn(Frozen):
    """A shipment: a truck (a location), where it leaves and goes, lots and loggers on board."""

    reference: str = Field(min_length=1)
    truck_location_id: int
    origin_location_id: int
    destination_location_id: int
    lots: list[ShipmentLotIn] = Field(min_length=1)
    logger_sensor_ids: list[int] = Field(default_factory=list)


class LegIn(Frozen):
    """One leg of a shipment's route."""

    from_location_id: int
    to_location_id: int
    departed_at: datetime
    arrived_at: datetime | None = None


class Leg(LegIn):
    """A stored leg, numbered from 1."""

    seq: int


class Shipment(Frozen):
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


class TimeIn(Frozen):
    """When a step (departure, arrival) happened."""

    time: datetime
