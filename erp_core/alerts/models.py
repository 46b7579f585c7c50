"""Value types of the alerts domain: alerts, their events, dispositions (pydantic, frozen)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from coldchain.alert_kinds import AlertKind
from coldchain.alert_states import Disposition, Status


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class AlertSummary(_Frozen):
    """One alert as the inbox lists it."""

    id: int
    kind: str = Field(description=", ".join(AlertKind))
    severity: str
    status: Status
    sensor_id: int | None
    sensor: str | None = Field(description="The sensor's device uid")
    site: str | None
    late: bool = Field(description="Found in data that arrived well after its device time")
    started_at: datetime
    ended_at: datetime | None = Field(description="None while the condition still lasts")
    peak: float | None
    duration_s: float | None
    summary: str
    escalation_level: int
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    ack_comment: str | None
    closed_at: datetime | None
    closed_by: str | None
    disposition: str | None
    close_comment: str | None


class AlertEvent(_Frozen):
    """One entry of an alert's append-only event log."""

    id: int
    event: str
    level: int
    at: datetime
    actor: str | None
    detail: dict[str, Any]


class AlertDetail(AlertSummary):
    """An alert with its event log, oldest first."""

    events: list[AlertEvent]


class AckBody(_Frozen):
    """Request body of an acknowledgement."""

    comment: str = Field(min_length=1, max_length=2000)


class CloseBody(_Frozen):
    """Request body of a close."""

    disposition: Disposition
    comment: str = Field(min_length=1, max_length=2000)
