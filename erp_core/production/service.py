"""Production services: BOM versions, work orders, material issue by scan, completion.

Plain functions taking the caller's connection; they never commit (the request owns the
transaction, so an issue and its stock movement and audit rows commit together). The
rules themselves are pure (``erp_core.production.rules``); this module reads what they
need and writes what they allow.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import class_row

from erp_core.audit.keys import Keyring, RecordKey
from erp_core.audit.service import set_actor
from erp_core.auth.models import AttemptRecorder, LoginPolicy, User
from erp_core.errors import InvalidArgumentError, NotFoundError
from erp_core.lots import service as lots
from erp_core.lots.models import Lot, LotIn
from erp_core.masterdata.service import active_item, active_location
from erp_core.movements.models import MovementIn
from erp_core.movements.service import record_movement
from erp_core.production.errors import ProductionConflictError
from erp_core.production.models import (
    Bom,
    BomIn,
    BomLine,
    CompleteIn,
    IssueIn,
    MaterialIssue,
    WorkOrder,
    WorkOrderIn,
)
from erp_core.production.rules import (
    BomNeed,
    IssueRequest,
    Refused,
    WorkOrderStatus,
    check_issue,
    may_move,
)
from erp_core.signatures.service import sign
from identifiers.gtin import to_gtin14
from identifiers.udi import BarcodeError, decode_label

Conn = psycopg.Connection[Any]
APPROVE_MEANING = "Approved BOM version"
BOMS = "erp.boms"

_LINES = (
    "SELECT bl.line, bl.component_item_id, i.gtin AS component_gtin, i.name AS component_name,"
    " bl.quantity_per, bl.unit, bl.scrap_factor, bl.tracking"
    " FROM erp.bom_lines bl JOIN erp.items i ON i.id = bl.component_item_id"
    " WHERE bl.bom_id = %s ORDER BY bl.line"
)
_WO = (
    "SELECT w.id, w.number, w.bom_id, b.item_id, w.work_center_id, w.quantity_planned,"
    " w.quantity_good, w.quantity_scrap, w.status, w.output_lot_id, w.created_at,"
    " w.released_at, w.completed_at FROM erp.work_orders w JOIN erp.boms b ON b.id = w.bom_id"
)


def _scalar(conn: Conn, query: str, args: tuple[object, ...]) -> Any:
    """The first column of the one row ``query`` returns."""
    row = conn.execute(query, args).fetchone()
    assert row is not None, query
    return row[0]


# ----------------------------------------------------------------------------------- BOMs


def create_bom(conn: Conn, *, bom: BomIn, user: str) -> Bom:
    """A new draft version of the product's BOM, numbered after its last version."""
    set_actor(conn, user=user, reason="new BOM version")
    active_item(conn, item_id=bom.item_id)
    for line in bom.lines:
        active_item(conn, item_id=line.component_item_id)
    components = [line.component_item_id for line in bom.lines]
    if len(set(components)) != len(components):
        raise InvalidArgumentError("lines", components, "a component is listed twice")
    conn.execute("SELECT 1 FROM erp.items WHERE id = %s FOR UPDATE", (bom.item_id,))
    version = _scalar(
        conn,
        "SELECT coalesce(max(version), 0) + 1 FROM erp.boms WHERE item_id = %s",
        (bom.item_id,),
    )
    bom_id = _scalar(
        conn,
        "INSERT INTO erp.boms (item_id, version, note) VALUES (%s, %s, %s) RETURNING id",
        (bom.item_id, version, bom.note),
    )
    for n, line in enumerate(bom.lines, start=1):
        conn.execute(
            "INSERT INTO erp.bom_lines (bom_id, line, component_item_id, quantity_per, unit,"
            " scrap_factor, tracking) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (bom_id, n, line.component_item_id, line.quantity_per, line.unit,
             line.scrap_factor, line.tracking),
        )  # fmt: skip
    return get_bom(conn, bom_id=bom_id)


def get_bom(conn: Conn, *, bom_id: int) -> Bom:
    """One BOM version with its lines; NotFoundError if there is none."""
    row = conn.execute(
        "SELECT id, item_id, version, status, effective_from, approved_signature_id, note"
        " FROM erp.boms WHERE id = %s",
        (bom_id,),
    ).fetchone()
    if row is None:
        raise NotFoundError("bom", bom_id)
    with conn.cursor(row_factory=class_row(BomLine)) as cur:
        cur.execute(_LINES, (bom_id,))
        lines = cur.fetchall()
    keys = ("id", "item_id", "version", "status", "effective_from", "approved_signature_id")
    return Bom(**dict(zip((*keys, "note"), row, strict=True)), lines=lines)


def approve_bom(  # noqa: PLR0913 - every input of a Part 11 signature is explicit
    conn: Conn,
    *,
    bom_id: int,
    user: User,
    password: str,
    now: datetime,
    policy: LoginPolicy,
    record_attempt: AttemptRecorder,
    signing_key: RecordKey,
    keyring: Keyring | None,
    source: str | None = None,
    comment: str | None = None,
) -> Bom:
    """Make a draft BOM version effective with the approver's electronic signature.

    The product's previous effective version is superseded in the same transaction;
    work orders already made on it keep it.
    """
    set_actor(conn, user=user.username, reason=f"approve BOM version {bom_id}")
    row = conn.execute(
        "SELECT item_id, status FROM erp.boms WHERE id = %s FOR UPDATE", (bom_id,)
    ).fetchone()
    if row is None:
        raise NotFoundError("bom", bom_id)
    if row[1] != "draft":
        raise ProductionConflictError("bom_not_draft", f"BOM {bom_id} is {row[1]}, not a draft")
    bom = get_bom(conn, bom_id=bom_id)
    content = {
        "item_id": bom.item_id,
        "version": bom.version,
        "lines": [line.model_dump(mode="json") for line in bom.lines],
    }
    signature = sign(
        conn,
        user=user,
        password=password,
        record_table=BOMS,
        record_key={"id": bom_id},
        record_content=content,
        meaning=APPROVE_MEANING,
        clock=lambda: now,
        policy=policy,
        record_attempt=record_attempt,
        signing_key=signing_key,
        comment=comment,
        source=source,
        keyring=keyring,
    )
    conn.execute(
        "UPDATE erp.boms SET status = 'superseded' WHERE item_id = %s AND status = 'effective'",
        (bom.item_id,),
    )
    conn.execute(
        "UPDATE erp.boms SET status = 'effective', effective_from = %s,"
        " approved_signature_id = %s WHERE id = %s",
        (now, signature.id, bom_id),
    )
    return get_bom(conn, bom_id=bom_id)


# ---------------------------------------------------------------------------- work orders


def create_work_order(conn: Conn, *, order: WorkOrderIn, user: str, now: datetime) -> WorkOrder:
    """A planned work order on the product's effective BOM version."""
    set_actor(conn, user=user, reason=f"new work order {order.number}")
    active_location(conn, location_id=order.work_center_id)
    row = conn.execute(
        "SELECT id FROM erp.boms WHERE item_id = %s AND status = 'effective'", (order.item_id,)
    ).fetchone()
    if row is None:
        raise ProductionConflictError(
            "no_effective_bom", f"item {order.item_id} has no approved BOM version"
        )
    wo_id = _scalar(
        conn,
        "INSERT INTO erp.work_orders (number, bom_id, work_center_id, quantity_planned,"
        " created_at) VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (order.number, row[0], order.work_center_id, order.quantity_planned, now),
    )
    return get_work_order(conn, work_order_id=wo_id)


def get_work_order(conn: Conn, *, work_order_id: int, lock: bool = False) -> WorkOrder:
    """One work order; NotFoundError if there is none (``lock``: FOR UPDATE of the order)."""
    with conn.cursor(row_factory=class_row(WorkOrder)) as cur:
        cur.execute(
            _WO + " WHERE w.id = %s" + (" FOR UPDATE OF w" if lock else ""), (work_order_id,)
        )
        row = cur.fetchone()
    if row is None:
        raise NotFoundError("work order", work_order_id)
    return row


def _move(conn: Conn, order: WorkOrder, new: WorkOrderStatus, **stamps: datetime) -> None:
    if not may_move(order.status, new):
        raise ProductionConflictError(
            "work_order_status", f"work order {order.number} is {order.status}, cannot be {new}"
        )
    sets = "".join(f", {column} = %s" for column in stamps)
    conn.execute(
        f"UPDATE erp.work_orders SET status = %s{sets} WHERE id = %s",  # noqa: S608 - our columns
        (new.value, *stamps.values(), order.id),
    )


def release_work_order(conn: Conn, *, work_order_id: int, user: str, now: datetime) -> WorkOrder:
    """Release a planned work order to the shop floor."""
    set_actor(conn, user=user, reason="release work order")
    order = get_work_order(conn, work_order_id=work_order_id, lock=True)
    _move(conn, order, WorkOrderStatus.RELEASED, released_at=now)
    return get_work_order(conn, work_order_id=work_order_id)


# ------------------------------------------------------------------------ material issue


def _scanned_lot(conn: Conn, scanned: str) -> Lot:
    """The lot a component label names (GS1, or HIBC/MA carrying a GTIN and a lot)."""
    try:
        label = decode_label(scanned)
    except BarcodeError as err:
        raise InvalidArgumentError("scanned", scanned[:80], str(err)) from err
    if label.gtin is None or label.lot is None:
        raise InvalidArgumentError(
            "scanned", scanned[:80], "the label carries no GTIN and lot number (AI 01 and 10)"
        )
    return lots.find_lot(conn, gtin=to_gtin14(label.gtin), lot_number=label.lot)


def issue_by_scan(
    conn: Conn, *, work_order_id: int, issue: IssueIn, user: str, now: datetime
) -> MaterialIssue:
    """Consume the scanned component lot for the work order, or refuse with the reason.

    The order is locked, so two scans at once cannot both pass the allowance. The stock
    leaves the work centre through the movement rules every other movement obeys (no
    negative stock, not before receipt, not during a shipment).
    """
    set_actor(conn, user=user, reason="material issue by scan")
    order = get_work_order(conn, work_order_id=work_order_id, lock=True)
    lot = _scanned_lot(conn, issue.scanned)
    needs = {
        int(item): BomNeed(line=int(line), quantity_per=per, scrap_factor=scrap)
        for line, item, per, scrap in conn.execute(
            "SELECT line, component_item_id, quantity_per, scrap_factor FROM erp.bom_lines"
            " WHERE bom_id = %s",
            (order.bom_id,),
        )
    }
    issued = {
        int(line): Decimal(total)
        for line, total in conn.execute(
            "SELECT bom_line, sum(quantity) FROM erp.material_issues WHERE work_order_id = %s"
            " GROUP BY bom_line",
            (order.id,),
        )
    }
    others = frozenset(
        int(r[0])
        for r in conn.execute(
            "SELECT bl.component_item_id FROM erp.bom_lines bl JOIN erp.boms b ON b.id = bl.bom_id"
            " WHERE b.item_id = %s AND b.id <> %s",
            (order.item_id, order.bom_id),
        )
    )
    verdict = check_issue(
        IssueRequest(
            order_status=order.status,
            planned=order.quantity_planned,
            lot_status=lot.status,
            lot_expires_on=lot.expires_on,
            lot_item_id=lot.item_id,
            today=now.date(),
            quantity=issue.quantity,
            needs=needs,
            issued=issued,
            other_version_items=others,
        )
    )
    if isinstance(verdict, Refused):
        raise ProductionConflictError(
            verdict.code.value, f"lot {lot.lot_number} refused: {verdict.detail}"
        )
    movement = record_movement(
        conn,
        movement=MovementIn(
            lot_id=lot.id,
            quantity=float(issue.quantity),
            from_location_id=order.work_center_id,
            to_location_id=None,
            moved_at=now,
            source="scan",
            reference=f"work order {order.number}",
        ),
        now=now,
    )
    if order.status is WorkOrderStatus.RELEASED:
        _move(conn, order, WorkOrderStatus.IN_PROGRESS)
    issue_id = _scalar(
        conn,
        "INSERT INTO erp.material_issues (work_order_id, lot_id, bom_id, bom_line, quantity,"
        " movement_id, issued_at, issued_by, scanned) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " RETURNING id",
        (order.id, lot.id, order.bom_id, verdict.line, issue.quantity, movement.id, now, user,
         issue.scanned),
    )  # fmt: skip
    return MaterialIssue(
        id=issue_id,
        work_order_id=order.id,
        lot_id=lot.id,
        lot_number=lot.lot_number,
        bom_line=verdict.line,
        quantity=issue.quantity,
        issued_at=now,
        issued_by=user,
    )


def list_issues(conn: Conn, *, work_order_id: int) -> list[MaterialIssue]:
    """The component lots issued to a work order, in order."""
    with conn.cursor(row_factory=class_row(MaterialIssue)) as cur:
        cur.execute(
            "SELECT m.id, m.work_order_id, m.lot_id, l.lot_number, m.bom_line, m.quantity,"
            " m.issued_at, m.issued_by FROM erp.material_issues m"
            " JOIN erp.lots l ON l.id = m.lot_id WHERE m.work_order_id = %s ORDER BY m.id",
            (work_order_id,),
        )
        return cur.fetchall()


# ---------------------------------------------------------------------------- completion


def complete_work_order(
    conn: Conn, *, work_order_id: int, done: CompleteIn, user: str, now: datetime
) -> Lot:
    """Record the finished lot (in quarantine, at the work centre) and complete the order.

    Every BOM line must have had material issued: a finished lot whose genealogy misses
    a component would be a device history record with a hole in it.
    """
    set_actor(conn, user=user, reason="complete work order")
    order = get_work_order(conn, work_order_id=work_order_id, lock=True)
    if order.status is not WorkOrderStatus.IN_PROGRESS:
        raise ProductionConflictError(
            "work_order_status", f"work order {order.number} is {order.status}, not in progress"
        )
    missing = _scalar(
        conn,
        "SELECT count(*) FROM erp.bom_lines bl WHERE bl.bom_id = %s AND NOT EXISTS"
        " (SELECT 1 FROM erp.material_issues m WHERE m.work_order_id = %s"
        "  AND m.bom_line = bl.line)",
        (order.bom_id, order.id),
    )
    if missing:
        raise ProductionConflictError(
            "components_missing", f"{missing} BOM line(s) of {order.number} have no material issued"
        )
    lot = lots.create_lot(
        conn,
        lot=LotIn(
            item_id=order.item_id,
            lot_number=done.lot_number,
            expires_on=done.expires_on,
            manufactured_on=now.date(),
            quantity=float(done.quantity_good),
        ),
        now=now,
    )
    record_movement(
        conn,
        movement=MovementIn(
            lot_id=lot.id,
            quantity=float(done.quantity_good),
            to_location_id=order.work_center_id,
            moved_at=now,
            reference=f"work order {order.number}",
        ),
        now=now,
    )
    conn.execute(
        "UPDATE erp.work_orders SET output_lot_id = %s, quantity_good = %s, quantity_scrap = %s"
        " WHERE id = %s",
        (lot.id, done.quantity_good, done.quantity_scrap, order.id),
    )
    _move(conn, order, WorkOrderStatus.COMPLETED, completed_at=now)
    return lot
