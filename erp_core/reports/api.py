"""``GET /api/lots/{id}/report.pdf``: the lot temperature report, sealed, in one language.

Any signed-in user reads it, as the lot history. The report is made at the request's
time from the request's transaction; signatures are checked with the server's key ring.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from erp_core.deps import Connection, CurrentUser, Now, Records
from erp_core.lots.api import NOT_FOUND, LotId
from erp_core.reports.render import report_pdf
from erp_core.reports.seal import canonical_json, content_hash
from erp_core.reports.service import lot_report

router = APIRouter(prefix="/api", tags=["stock: lots"])

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
    lang: Annotated[Literal["en", "zh_CN"], Query(description="Language of the report")] = "en",
) -> Response:
    """The lot temperature report as a PDF; its content hash in ``X-Content-Hash``."""
    report = lot_report(conn, lot_id=lot_id, now=now, keyring=records.keyring)
    name = f"lot-{report.header.lot_id}-report-{lang}.pdf"
    return Response(
        report_pdf(report, locale=lang),
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Content-Hash": content_hash(canonical_json(report)),
        },
    )
