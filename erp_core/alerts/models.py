"""Value types of the alerts domain: alerts, their events, dispositions (pydantic, frozen)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from coldchain.alert_kinds import AlertKind
from coldchain.alert_states import Disposition, Status
from telemetry.units import display_unit


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


class InboxRow(AlertSummary):
    """An alert as the inbox page shows it: with the unit its figure is in."""

    unit: str | None = Field(default=None, description="UCUM code from the alert's facts")

    @property
    def shown_unit(self) -> str:
        """The unit as people write it (``°C``, not ``Cel``); empty when unknown."""
        return display_unit(self.unit) if self.unit else ""


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
    """Request body of a close: signed (password re-entered), the disposition chosen.

    No disposition is preselected. For an excursion, ``lot_disposition`` is what the
    close means for the lots it touched (their deviations are closed with it): implied
    by "no impact", "false alarm" (use as is) and "product rejected" (reject); to be
    said with "product assessed".
    """

    disposition: Disposition
    comment: str = Field(min_length=1, max_length=2000)
    password: str = Field(min_length=1, repr=False)
    lot_disposition: Literal["use_as_is", "reject"] | None = None


class ClosedAlert(AlertDetail):
    """A closed alert with the close's signature and the deviations it closed."""

    signature: str = Field(description="The close's Part 11 signature manifestation")
    deviations_closed: list[str] = Field(description="Deviation numbers closed with it")
