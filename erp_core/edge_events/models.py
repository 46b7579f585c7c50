"""Value types of scan/tag-read processing: what became of each event."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


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
    lot_number: str | None = Field(default=None, description="The lot's number, if any")
    movement_id: int | None
    reason: str | None
