"""Value types of scan/tag-read processing: tag registrations and event outcomes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from telemetry.gtin import to_gtin14


class LotTagIn(BaseModel):
    """An RFID-tagged pallet (SSCC) or case (GTIN + serial) holding a lot."""

    model_config = ConfigDict(frozen=True, extra="forbid")

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


class EdgeOutcome(BaseModel):
    """What the ERP made of one scan or tag read."""

    model_config = ConfigDict(frozen=True)

    source: Literal["scan", "rfid"]
    event_id: int
    time: datetime
    reader_id: str
    data: str = Field(description="The scanned text or the tag's EPC")
    processed_at: datetime
    outcome: Literal["moved", "repeat", "ignored", "failed"]
    lot_id: int | None
    movement_id: int | None
    reason: str | None
