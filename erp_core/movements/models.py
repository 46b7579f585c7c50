"""Value types of movements: a move of a lot, a scan at a reader, where a lot was when."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from erp_core.model_base import Frozen

MovementSource = Literal["scan", "rfid", "manual"]


class MovementIn(Frozen):
    """Some quantity of a lot moved from one location to another at a time."""

    lot_id: int
    quantity: float = Field(gt=0, allow_inf_nan=False)
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


class ScanIn(Frozen):
    """A barcode scan or tag read at a reader: the lot arrived at the reader's location."""

    reader_id: str
    time: datetime
    lot_id: int | None = None
    gtin: str | None = None
    lot_number: str | None = None
    quantity: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    reference: str | None = None


class LocationInterval(Frozen):
    """The lot was (at least partly) at ``location_id`` over [start, end); end None: still."""

    location_id: int
    start: datetime
    end: datetime | None
