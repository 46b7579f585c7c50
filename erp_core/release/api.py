"""HTTP views of QA release: the recommendation, the signed decision, inspections."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Request
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
from erp_core.release import overrides, service
from erp_core.release.rules import MIN_JUSTIFICATION, Action, Recommendation, recommend
from erp_core.release.signing_request import Signer
from erp_core.signatures import http as signatures

router = APIRouter(prefix="/api", tags=["release"])
QaUser = Annotated[User, Depends(require_roles("qa", "qa_manager"))]
ManagerUser = Annotated[User, Depends(require_roles("qa_manager"))]


class DecisionIn(BaseModel):
    """A QA decision; the password is re-entered for the electronic signature."""

    action: Action
    password: str = Field(min_length=1, repr=False)
    justification: str | None = Field(default=None, description="Required for an override")
    comment: str | None = None


class OverrideIn(BaseModel):
    """A QA manager's proposal to release over failed rules (a second one approves it)."""

    password: str = Field(min_length=1, repr=False)
    justification: str = Field(min_length=MIN_JUSTIFICATION)
    confirmed_rules: list[str] = Field(
        description="The name of every failed rule, confirming the signer has seen its evidence"
    )
    comment: str | None = None


class ApprovalIn(BaseModel):
    """A second QA manager's approval of a proposed override."""

    password: str = Field(min_length=1, repr=False)
    confirmed_rules: list[str] = Field(
        description="The name of every failed rule, confirming the signer has seen its evidence"
    )
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
    failed_rules: list[dict[str, Any]] = Field(
        description="The failed rules with their evidence: what an override signer confirms"
    )


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

    ``failed_rules`` is what an override's signers confirm; ``pending_overrides`` are
    proposals waiting for a second QA manager. Each decision and proposal says whether
    its signature verifies for it (``signature_verified``, ``signature_problems``): one
    a database writer made does not. An approved override shows its proposal
    (``override``: justification, failed rules, the proposer's signature).
    """
    rec = recommend(service.gather_evidence(conn, lot_id=lot_id, now=now))
    return {
        "lot_id": lot_id,
        "release_recommended": rec.release_recommended,
        "rules": [asdict(r) for r in rec.results],
        "failed_rules": [asdict(r) for r in rec.failed],
        "pending_overrides": overrides.pending_for(conn, lot_id=lot_id, keyring=records.keyring),
        "decisions": service.decisions_for(conn, lot_id=lot_id, keyring=records.keyring),
    }


def _refused(err: service.ReleaseRefusedError) -> HTTPException:
    rec: Recommendation = err.recommendation
    return HTTPException(
        409,
        {
            "message": str(err),
            "rules": [asdict(r) for r in rec.results],
            "failed_rules": [asdict(r) for r in rec.failed],
        },
    )


@router.post("/lots/{lot_id}/release/overrides", status_code=201, responses=REFUSED)
def propose_override(
    conn: Connection, user: ManagerUser, lot_id: LotId, body: OverrideIn, signer: Signer
) -> dict[str, Any]:
    """Propose to release the lot over its failed rules, signed (qa_manager); pending.

    The lot is released only when a second, different qa_manager approves the proposal
    (``POST /api/release/overrides/{id}/approval``). ``confirmed_rules`` must name every
    failed rule; otherwise the 409 lists them with their evidence.
    """
    try:
        made = overrides.propose_override(
            conn,
            lot_id=lot_id,
            user=user,
            justification=body.justification,
            confirmed_rules=body.confirmed_rules,
            signing=signer.signing(body.password, body.comment),
        )
    except service.ReleaseRefusedError as err:
        raise _refused(err) from err
    except signatures.REFUSALS as err:
        raise signatures.refused(err) from err
    return {
        "override_id": made.id,
        "lot_id": lot_id,
        "status": "pending: a second qa_manager approves it",
        "justification": made.justification,
        "failed_rules": [asdict(r) for r in made.failed_rules],
        "signature": made.signature.manifestation,
    }


@router.post("/release/overrides/{override_id}/approval", responses=REFUSED)
def approve_override(
    conn: Connection,
    user: ManagerUser,
    override_id: Annotated[int, Path(ge=1)],
    body: ApprovalIn,
    signer: Signer,
) -> dict[str, Any]:
    """Approve a proposed override as a second, different qa_manager: the lot is released."""
    try:
        record = overrides.approve_override(
            conn,
            override_id=override_id,
            user=user,
            confirmed_rules=body.confirmed_rules,
            signing=signer.signing(body.password, body.comment),
        )
    except service.ReleaseRefusedError as err:
        raise _refused(err) from err
    except signatures.REFUSALS as err:
        raise signatures.refused(err) from err
    return {
        "decision_id": record.decision_id,
        "override_id": override_id,
        "lot_id": record.lot_id,
        "action": record.action,
        "verdict": record.verdict,
        "status": record.new_status,
        "signature": record.signature.manifestation,
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
        raise _refused(err) from err
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
