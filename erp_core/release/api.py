"""HTTP views of QA release: the recommendation, the signed decision, inspections."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from erp_core.audit.service import set_actor
from erp_core.auth.models import User
from erp_core.deps import (
    AttemptLog,
    Connection,
    CurrentUser,
    LoginLimits,
    Now,
    Records,
    SigningKey,
    require_roles,
)
from erp_core.lots.api import KnownLotId as LotId
from erp_core.release import service
from erp_core.release.rules import Action, recommend
from erp_core.signatures import http as signatures

router = APIRouter(prefix="/api", tags=["release"])
QaUser = Annotated[User, Depends(require_roles("qa", "qa_manager"))]


class DecisionIn(BaseModel):
    """A QA decision; the password is re-entered for the electronic signature."""

    action: Action
    password: str = Field(min_length=1, repr=False)
    justification: str | None = Field(default=None, description="Required for an override")
    comment: str | None = None


class InspectionIn(BaseModel):
    """An inspection of a lot and, once done, its result."""

    kind: str = Field(min_length=1)
    result: Literal["pending", "passed", "failed"] = "pending"
    notes: str | None = None


class RefusalDetail(BaseModel):
    """Why the release rules refuse a decision, with each rule's result."""

    message: str
    rules: list[dict[str, Any]]


class RefusalOut(BaseModel):
    """The 409 answer of a refused release decision."""

    detail: RefusalDetail


REFUSED: dict[int | str, dict[str, Any]] = {
    409: {"model": RefusalOut, "description": "The release rules refuse this decision"}
}


@router.get("/lots/{lot_id}/release")
def release_panel(
    conn: Connection, _user: CurrentUser, now: Now, records: Records, lot_id: LotId
) -> dict[str, Any]:
    """The release recommendation with each rule's evidence, and the decisions so far.

    Each decision says whether its signature verifies for it (``signature_verified``,
    ``signature_problems``): a decision a database writer made does not.
    """
    rec = recommend(service.gather_evidence(conn, lot_id=lot_id, now=now))
    return {
        "lot_id": lot_id,
        "release_recommended": rec.release_recommended,
        "rules": [asdict(r) for r in rec.results],
        "decisions": service.decisions_for(conn, lot_id=lot_id, keyring=records.keyring),
    }


@router.post("/lots/{lot_id}/release", responses=REFUSED)
def decide_lot(  # noqa: PLR0913, PLR0917 - FastAPI dependencies
    conn: Connection,
    user: QaUser,
    request: Request,
    policy: LoginLimits,
    attempts: AttemptLog,
    now: Now,
    lot_id: LotId,
    body: DecisionIn,
    key: SigningKey,
    records: Records,
) -> dict[str, Any]:
    """Release or reject the lot with an electronic signature (qa; overrides qa_manager)."""
    try:
        record = service.record_decision(
            conn,
            lot_id=lot_id,
            user=user,
            action=body.action,
            password=body.password,
            justification=body.justification,
            comment=body.comment,
            clock=lambda: now,
            policy=policy,
            record_attempt=attempts,
            signing_key=key,
            source=request.client.host if request.client else None,
            keyring=records.keyring,
        )
    except service.ReleaseRefusedError as err:
        rules = [asdict(r) for r in err.recommendation.results]
        raise HTTPException(409, {"message": str(err), "rules": rules}) from err
    except signatures.REFUSALS as err:
        raise signatures.refused(err) from err
    return {
        "decision_id": record.decision_id,
        "lot_id": lot_id,
        "action": record.action,
        "verdict": record.verdict,
        "status": record.new_status,
        "signature": record.signature.manifestation,
    }


@router.post("/lots/{lot_id}/inspections", status_code=201)
def add_inspection(
    conn: Connection, user: QaUser, now: Now, lot_id: LotId, body: InspectionIn
) -> dict[str, Any]:
    """Record an inspection of the lot (qa)."""
    set_actor(conn, user=user.username, reason=f"inspection of lot {lot_id}")
    done = body.result != "pending"
    row = conn.execute(
        "INSERT INTO erp.inspections (lot_id, kind, result, inspected_by, inspected_at, notes)"
        " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
        (
            lot_id,
            body.kind,
            body.result,
            user.username if done else None,
            now if done else None,
            body.notes,
        ),
    ).fetchone()
    return {
        "id": row[0] if row else None,
        "lot_id": lot_id,
        "result": body.result,
        "at": now if done else None,
    }
