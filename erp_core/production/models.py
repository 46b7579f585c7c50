"""Request bodies and records of production (pydantic, frozen)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import Field

from erp_core.model_base import Frozen
from erp_core.production.rules import WorkOrderStatus

Direction = Literal["backward", "forward"]


class BomLineIn(Frozen):
    """One component of a BOM version."""

    component_item_id: int
    quantity_per: Decimal = Field(gt=0, max_digits=18, decimal_places=6)
    unit: str = Field(default="pcs", min_length=1, max_length=20)
    scrap_factor: Decimal = Field(default=Decimal(0), ge=0, lt=1, decimal_places=4)
    tracking: Literal["lot", "serial"] = "lot"


class BomIn(Frozen):
    """A new draft version of a product's BOM (the next version number is given)."""

    item_id: int
    lines: list[BomLineIn] = Field(min_length=1, max_length=500)
    note: str | None = Field(default=None, max_length=2000)


class BomLine(Frozen):
    """A stored component line."""

    line: int
    component_item_id: int
    component_gtin: str
    component_name: str
    quantity_per: Decimal
    unit: str
    scrap_factor: Decimal
    tracking: str


class Bom(Frozen):
    """A stored BOM version and its lines."""

    id: int
    item_id: int
    version: int
    status: Literal["draft", "effective", "superseded"]
    effective_from: datetime | None
    approved_signature_id: int | None
    note: str | None
    lines: list[BomLine]


class WorkOrderIn(Frozen):
    """A work order for the product's effective BOM version."""

    number: str = Field(min_length=1, max_length=60)
    item_id: int
    work_center_id: int
    quantity_planned: Decimal = Field(gt=0, max_digits=18, decimal_places=6)


class WorkOrder(Frozen):
    """A stored work order."""

    id: int
    number: str
    bom_id: int
    item_id: int
    work_center_id: int
    quantity_planned: Decimal
    quantity_good: Decimal
    quantity_scrap: Decimal
    status: WorkOrderStatus
    output_lot_id: int | None
    created_at: datetime
    released_at: datetime | None
    completed_at: datetime | None


class IssueIn(Frozen):
    """A component label scanned at the work centre, and how much of the lot is used."""

    scanned: str = Field(min_length=1, max_length=7089)
    quantity: Decimal = Field(gt=0, max_digits=18, decimal_places=6)


class MaterialIssue(Frozen):
    """A component lot consumed by a work order."""

    id: int
    work_order_id: int
    lot_id: int
    lot_number: str
    bom_line: int
    quantity: Decimal
    issued_at: datetime
    issued_by: str


class CompleteIn(Frozen):
    """The finished lot a work order made."""

    lot_number: str = Field(min_length=1, max_length=60)
    expires_on: date
    quantity_good: Decimal = Field(gt=0, max_digits=18, decimal_places=6)
    quantity_scrap: Decimal = Field(default=Decimal(0), ge=0, max_digits=18, decimal_places=6)


class GenealogyNode(Frozen):
    """One lot in a lot's genealogy, ``depth`` levels away, reached through ``via_lot_id``."""

    lot_id: int
    lot_number: str
    gtin: str
    item_name: str
    status: str
    via_lot_id: int
    work_order_id: int
    work_order_number: str
    depth: int
