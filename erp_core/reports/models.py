"""What a temperature report states: every fact printed, nothing else (frozen).

The report's content hash is the SHA-256 of this model's canonical JSON
(``erp_core.reports.seal``), so the model is the report: the PDF is one rendering of
it, in one language. A shipment report is its shipment and the lot report of each lot
on board. Statistics are the lot history's own ``HistoryStats`` and the
rule table is the release rules' ``recommend`` over the same history
(``erp_core.release.service.evidence_from``): the figures cannot differ from the ones
the release decision used.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import Field

from erp_core.lot_history.models import HistoryBucket, HistoryStats
from erp_core.model_base import Frozen

SCHEMA: Literal["coldtrace.lot-report/1"] = "coldtrace.lot-report/1"


class ProductHeader(Frozen):
    """The lot and its item's storage condition, as the header prints them."""

    lot_id: int
    lot_number: str
    gtin: str
    product: str
    expires_on: date
    manufactured_on: date | None
    quantity: float
    status: str
    range_low: float
    range_high: float
    mkt_limit: float | None
    tor_budget_minutes: int | None


class RuleLine(Frozen):
    """One release rule's outcome over the lot's evidence."""

    rule: str
    passed: bool
    evidence: str
    code: str = ""  # the evidence as code + values, worded in the report's language
    values: dict[str, Any] = Field(default_factory=dict)


class ExcursionLine(Frozen):
    """An excursion episode of a sensor that stood for the lot, and its disposition."""

    id: int
    sensor: str
    kind: str
    level: str
    start: datetime
    end: datetime | None
    peak: float
    late: bool
    disposition: str | None


class DeviationLine(Frozen):
    """A deviation of the lot: who opened and closed it, with what disposition."""

    number: str
    title: str
    status: str
    disposition: str | None
    capa_ref: str | None
    opened_at: datetime
    opened_by: str
    closed_at: datetime | None
    closed_by: str | None
    closing_comment: str | None


class CustodyLine(Frozen):
    """Where the lot was over [start, end) (end None: still there), or a shipment of it."""

    kind: str  # "location" or "shipment"
    what: str  # location "CODE — name (kind)", or shipment reference and route
    start: datetime | None
    end: datetime | None


class SignatureLine(Frozen):
    """A signed release decision as Part 11 §11.50 asks a printout to show it."""

    action: str
    verdict: str
    printed_name: str
    username: str
    signed_at: datetime | None
    meaning: str
    justification: str | None
    verified: bool
    problems: list[str]


class AuditLine(Frozen):
    """One entry of the audit trail about the lot, its deviations or its decisions."""

    seq: int
    at: datetime
    actor: str
    table: str
    action: str
    fields: list[str]
    reason: str | None
    hash: str


class LotReport(Frozen):
    """The lot temperature report: the data its content hash covers."""

    schema_id: Literal["coldtrace.lot-report/1"] = SCHEMA
    generated_at: datetime
    header: ProductHeader
    stats: HistoryStats | None
    buckets: list[HistoryBucket]
    notes: list[str]
    release_recommended: bool
    rules: list[RuleLine]
    excursions: list[ExcursionLine]
    deviations: list[DeviationLine]
    custody: list[CustodyLine]
    signatures: list[SignatureLine]
    audit: list[AuditLine]


SHIPMENT_SCHEMA: Literal["coldtrace.shipment-report/1"] = "coldtrace.shipment-report/1"


class ShipmentHeader(Frozen):
    """The shipment as its report's first page prints it."""

    shipment_id: int
    reference: str
    truck: str
    origin: str
    destination: str
    departed_at: datetime | None
    arrived_at: datetime | None
    loggers: list[str]
    legs: list[CustodyLine]
    quantities: list[float]  # of each lot on board, in the order of ``lots``


class ShipmentReport(Frozen):
    """The shipment temperature report: the shipment and the full report of each lot on it."""

    schema_id: Literal["coldtrace.shipment-report/1"] = SHIPMENT_SCHEMA
    generated_at: datetime
    shipment: ShipmentHeader
    lots: list[LotReport]


Report = LotReport | ShipmentReport
