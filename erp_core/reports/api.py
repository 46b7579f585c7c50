"""``GET /api/lots/{id}/report.pdf`` and ``/api/shipments/{id}/report.pdf``: sealed PDFs.

Any signed-in user reads them, as the lot history and the shipments. A report is made
at the request's time in the request's transaction; signatures are checked with the
server's key ring.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from erp_core.deps import Connection, CurrentUser, Now, Records
from erp_core.lots.api import NOT_FOUND, LotId
from erp_core.reports.models import Report
from erp_core.reports.render import report_pdf
from erp_core.reports.seal import canonical_json, content_hash
from erp_core.reports.service import lot_report, shipment_report
from erp_core.shipments.api import ShipmentId

router = APIRouter(prefix="/api", tags=["reports"])
Lang = Annotated[Literal["en", "zh_CN"], Query(description="Language of the report")]

PDF: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/pdf": {}}, "description": "The sealed PDF report"}
}


@router.get("/lots/{lot_id}/report.pdf", responses={**NOT_FOUND, **PDF}, response_class=Response)
def lot_report_pdf(
    *,
    conn: Connection,
    _user: CurrentUser,
    now: Now,
    records: Records,
    lot_id: LotId,
    lang: Lang = "en",
) -> Response:
    """The lot temperature report as a PDF; its content hash in ``X-Content-Hash``."""
    report = lot_report(conn, lot_id=lot_id, now=now, keyring=records.keyring)
    return _pdf(report, f"lot-{lot_id}-report-{lang}.pdf", lang)


@router.get(
    "/shipments/{shipment_id}/report.pdf",
    responses={**NOT_FOUND, **PDF},
    response_class=Response,
)
def shipment_report_pdf(
    *,
    conn: Connection,
    _user: CurrentUser,
    now: Now,
    records: Records,
    shipment_id: ShipmentId,
    lang: Lang = "en",
) -> Response:
    """The shipment report (the shipment, then each lot on board) as a PDF."""
    report = shipment_report(conn, shipment_id=shipment_id, now=now, keyring=records.keyring)
    return _pdf(report, f"shipment-{shipment_id}-report-{lang}.pdf", lang)


def _pdf(report: Report, name: str, lang: str) -> Response:
    return Response(
        report_pdf(report, locale=lang),
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Content-Hash": content_hash(canonical_json(report)),
        },
    )
