"""The production rules that need no database: work-order states and material issue checks.

Pure functions of plain values, so every refusal is tested with exact inputs; the
service reads the values and calls these (``erp_core.production.service``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum


class WorkOrderStatus(StrEnum):
    """Planned → released → in progress → completed → closed."""

    PLANNED = "planned"
    RELEASED = "released"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CLOSED = "closed"


_NEXT: Mapping[WorkOrderStatus, frozenset[WorkOrderStatus]] = {
    WorkOrderStatus.PLANNED: frozenset({WorkOrderStatus.RELEASED}),
    WorkOrderStatus.RELEASED: frozenset({WorkOrderStatus.IN_PROGRESS}),
    WorkOrderStatus.IN_PROGRESS: frozenset({WorkOrderStatus.COMPLETED}),
    WorkOrderStatus.COMPLETED: frozenset({WorkOrderStatus.CLOSED}),
    WorkOrderStatus.CLOSED: frozenset(),
}

# Material may be issued to a released work order (which the first issue starts) or to
# one in progress; never before release or after completion.
ISSUE_STATES = frozenset({WorkOrderStatus.RELEASED, WorkOrderStatus.IN_PROGRESS})


def may_move(old: WorkOrderStatus, new: WorkOrderStatus) -> bool:
    """Whether a work order may go from ``old`` to ``new``."""
    return new in _NEXT[old]


class IssueRefusal(StrEnum):
    """Why a scanned component lot may not be issued (a code; pages show it as words)."""

    WORK_ORDER_NOT_OPEN = "work_order_not_open"
    LOT_NOT_RELEASED = "lot_not_released"
    LOT_ON_HOLD = "lot_on_hold"
    LOT_EXPIRED = "lot_expired"
    NOT_ON_BOM = "not_on_bom"
    OTHER_BOM_VERSION = "other_bom_version"
    OVER_ISSUE = "over_issue"


@dataclass(frozen=True, slots=True)
class BomNeed:
    """One component line of the work order's BOM version: what the order may consume."""

    line: int
    quantity_per: Decimal  # per unit of the finished item
    scrap_factor: Decimal  # 0.02: 2 % more may be issued for expected scrap

    def allowed(self, planned: Decimal) -> Decimal:
        """The most that may be issued for ``planned`` finished units."""
        return self.quantity_per * planned * (1 + self.scrap_factor)


@dataclass(frozen=True, slots=True)
class IssueRequest:
    """Everything the issue check looks at, read by the service in one transaction."""

    order_status: WorkOrderStatus
    planned: Decimal
    lot_status: str
    lot_expires_on: date
    lot_item_id: int
    today: date  # in the plant's time zone
    quantity: Decimal
    needs: Mapping[int, BomNeed]  # component item id → its line on this BOM version
    issued: Mapping[int, Decimal]  # BOM line → quantity already issued to this order
    other_version_items: frozenset[int]  # components of the same product's other versions


@dataclass(frozen=True, slots=True)
class Refused:
    """A refusal and the figures that explain it."""

    code: IssueRefusal
    detail: str


def check_issue(r: IssueRequest) -> Refused | BomNeed:  # noqa: PLR0911 - one return per rule
    """The BOM line the lot is issued against, or why it is refused (first reason wins).

    A lot is issued only to an open work order, only when released (not quarantined,
    rejected, recalled or on hold) and not expired on ``today`` (a lot expiring today is
    still usable that day), only for an item on the order's own BOM version, and never
    beyond the line's allowance (quantity per unit × planned × (1 + scrap factor)).
    """
    if r.order_status not in ISSUE_STATES:
        return Refused(IssueRefusal.WORK_ORDER_NOT_OPEN, f"the work order is {r.order_status}")
    if r.lot_status == "on_hold":
        return Refused(IssueRefusal.LOT_ON_HOLD, "the lot is on hold")
    if r.lot_status != "released":
        return Refused(IssueRefusal.LOT_NOT_RELEASED, f"the lot is {r.lot_status}")
    if r.lot_expires_on < r.today:
        return Refused(IssueRefusal.LOT_EXPIRED, f"the lot expired on {r.lot_expires_on}")
    need = r.needs.get(r.lot_item_id)
    if need is None:
        if r.lot_item_id in r.other_version_items:
            return Refused(
                IssueRefusal.OTHER_BOM_VERSION,
                "the item is a component of another version of this BOM, not of the order's",
            )
        return Refused(IssueRefusal.NOT_ON_BOM, "the item is not on the work order's BOM")
    already = r.issued.get(need.line, Decimal(0))
    allowed = need.allowed(r.planned)
    if already + r.quantity > allowed:
        return Refused(
            IssueRefusal.OVER_ISSUE,
            f"{already} issued, {r.quantity} more would pass the allowance of {allowed}",
        )
    return need
