"""The material issue check and the work-order states, with exact values."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from erp_core.production.rules import (
    BomNeed,
    IssueRefusal,
    IssueRequest,
    Refused,
    WorkOrderStatus,
    check_issue,
    may_move,
)

TODAY = date(2026, 12, 6)
TIP = BomNeed(line=2, quantity_per=Decimal(2), scrap_factor=Decimal("0.05"))


def request(**changes: object) -> IssueRequest:
    base: dict[str, object] = {
        "order_status": WorkOrderStatus.RELEASED,
        "planned": Decimal(10),
        "lot_status": "released",
        "lot_expires_on": TODAY,
        "lot_item_id": 7,
        "today": TODAY,
        "quantity": Decimal(1),
        "needs": {7: TIP},
        "issued": {},
        "other_version_items": frozenset({9}),
    }
    return IssueRequest(**{**base, **changes})  # type: ignore[arg-type]


def code(r: IssueRequest) -> IssueRefusal | None:
    verdict = check_issue(r)
    return verdict.code if isinstance(verdict, Refused) else None


def test_a_released_lot_of_a_bom_item_is_issued_against_its_line() -> None:
    assert check_issue(request()) == TIP


def test_each_refusal() -> None:
    assert code(request(order_status=WorkOrderStatus.PLANNED)) is IssueRefusal.WORK_ORDER_NOT_OPEN
    assert code(request(order_status=WorkOrderStatus.COMPLETED)) is IssueRefusal.WORK_ORDER_NOT_OPEN
    assert code(request(lot_status="on_hold")) is IssueRefusal.LOT_ON_HOLD
    for status in ("quarantine", "rejected", "recalled"):
        assert code(request(lot_status=status)) is IssueRefusal.LOT_NOT_RELEASED
    assert code(request(lot_expires_on=TODAY - timedelta(days=1))) is IssueRefusal.LOT_EXPIRED
    assert code(request(lot_item_id=9)) is IssueRefusal.OTHER_BOM_VERSION
    assert code(request(lot_item_id=8)) is IssueRefusal.NOT_ON_BOM


def test_the_allowance_is_per_unit_times_planned_plus_scrap() -> None:
    # 2 per unit x 10 planned x 1.05 = 21: exactly 21 may go in, not 21.000001
    assert code(request(quantity=Decimal(21))) is None
    assert code(request(quantity=Decimal("21.000001"))) is IssueRefusal.OVER_ISSUE
    assert code(request(quantity=Decimal(1), issued={2: Decimal(20)})) is None
    assert code(request(quantity=Decimal(2), issued={2: Decimal(20)})) is IssueRefusal.OVER_ISSUE
    assert code(request(quantity=Decimal(5), issued={3: Decimal(100)})) is None  # other line


def test_a_lot_on_hold_that_also_expired_is_refused_as_on_hold() -> None:
    assert code(request(lot_status="on_hold", lot_expires_on=date(2000, 1, 1))) is (
        IssueRefusal.LOT_ON_HOLD
    )


amounts = st.decimals(min_value=Decimal("0.001"), max_value=Decimal(1000), places=3)


@given(
    status=st.sampled_from(list(WorkOrderStatus)),
    lot_status=st.sampled_from(["quarantine", "released", "rejected", "on_hold", "recalled"]),
    days=st.integers(-3, 3),
    item=st.integers(6, 10),
    quantity=amounts,
    already=amounts,
    planned=amounts,
)
def test_an_accepted_issue_breaks_no_rule(
    status: WorkOrderStatus,
    lot_status: str,
    days: int,
    item: int,
    quantity: Decimal,
    already: Decimal,
    planned: Decimal,
) -> None:
    r = request(
        order_status=status,
        lot_status=lot_status,
        lot_expires_on=TODAY + timedelta(days=days),
        lot_item_id=item,
        quantity=quantity,
        issued={2: already},
        planned=planned,
    )
    verdict = check_issue(r)
    if isinstance(verdict, Refused):
        return
    assert status in {WorkOrderStatus.RELEASED, WorkOrderStatus.IN_PROGRESS}
    assert lot_status == "released"
    assert days >= 0
    assert item == 7
    assert already + quantity <= Decimal(2) * planned * Decimal("1.05")


def test_work_orders_move_one_step_forward_only() -> None:
    order = list(WorkOrderStatus)
    for i, old in enumerate(order):
        for j, new in enumerate(order):
            assert may_move(old, new) == (j == i + 1), (old, new)
