"""Value types of lots: a new lot, a stored lot, a status change, an RFID tag holding a lot."""

from __future__ import annotations

from datetime import date, datetime
from typing import Self

from pydantic import Field, field_validator, model_validator

from erp_core.lots.status import LotStatus
from erp_core.model_base import Frozen
from identifiers.gtin import to_gtin14


class LotIn(Frozen):
    """A new lot of an item; it starts in quarantine."""

    item_id: int
    lot_number: str = Field(min_length=1)
    expires_on: date
    manufactured_on: date | None = None
    quantity: float = Field(ge=0, allow_inf_nan=False)


class Lot(Frozen):
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


class StatusChangeIn(Frozen):
    """The status a lot should go to, and why (kept in the audit trail)."""

    status: LotStatus
    reason: str | None = None


class LotTagIn(Frozen):
    """An RFID-tagged pallet (SSCC) or case (GTIN + serial) holding a lot."""

    lot_id: int
    sscc: str | None = Field(default=None, pattern=r"^[0-9]{18}$", description="18 digits")
    gtin: str | None = Field(
        default=None,
        description="GTIN of the tagged case (8, 12, 13 or 14 digits; kept as GTIN-14)",
    )
    serial: str | None = Field(default=None, min_length=1, max_length=20)

    @field_validator("gtin")
    @classmethod
    def _gtin14(cls, gtin: str | None) -> str | None:
        return None if gtin is None else to_gtin14(gtin)  # GtinError is a ValueError: 422

    @model_validator(mode="after")
    def _one_key(self) -> Self:
        case = self.gtin is not None and self.serial is not None
        if (self.sscc is not None) == case or (self.gtin is None) != (self.serial is None):
            msg = "give either sscc, or gtin and serial"
            raise ValueError(msg)
        return self


class LotTag(LotTagIn):
    """A stored tag registration."""

    id: int
