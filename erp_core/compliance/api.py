"""Location compliance endpoints: is each location monitored the way its profile requires.

Readable by quality and administrators (qa, qa_manager, admin): the answer names gaps in
the monitoring set-up that an auditor would raise.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path

from erp_core.auth.models import User
from erp_core.compliance import service
from erp_core.compliance.models import LocationCompliance
from erp_core.deps import Connection, Now, require_roles

router = APIRouter(prefix="/api", tags=["compliance"])

Reviewer = Annotated[User, Depends(require_roles("qa", "qa_manager", "admin"))]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such location"}}


@router.get("/locations/{location_id}/compliance", responses=NOT_FOUND)
def location_compliance(
    conn: Connection, _user: Reviewer, now: Now, location_id: Annotated[int, Path()]
) -> LocationCompliance:
    """One location's monitoring set-up checked against the profiles that apply to it."""
    return service.check_location(conn, location_id=location_id, now=now)


@router.get("/compliance")
def all_compliance(conn: Connection, _user: Reviewer, now: Now) -> list[LocationCompliance]:
    """Every active stock-holding location, non-compliant first."""
    return service.check_all(conn, now=now)
