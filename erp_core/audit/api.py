"""Audit trail endpoints (``/api/audit``): read the trail of a record, verify the chain.

Verification holds the chain against the external anchors (``COLDTRACE_RECORD_ANCHOR_FILE``
as the API process sees it); without them the answer says ``unanchored``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from erp_core.audit import service
from erp_core.audit.anchoring import verify_anchored
from erp_core.auth.models import User
from erp_core.deps import Connection, Records, require_roles
from erp_core.errors import InvalidArgumentError

router = APIRouter(prefix="/api/audit", tags=["audit"])

Reviewer = Annotated[User, Depends(require_roles("qa", "qa_manager", "admin"))]
Verifier = Annotated[User, Depends(require_roles("qa_manager", "admin"))]


class AuditEntryOut(BaseModel):
    """One audit entry as shown to reviewers."""

    id: int
    seq: int
    at: datetime
    table_name: str
    action: str
    row_key: dict[str, Any]
    old_values: dict[str, Any] | None
    new_values: dict[str, Any] | None
    actor: str
    reason: str | None
    hash: str
    db_role: str | None


class VerifyOut(BaseModel):
    """The result of verifying the whole chain and its external anchors."""

    ok: bool  # neither the chain nor an anchor shows a problem
    status: str  # intact, broken, or unanchored (consistent, but nothing outside to hold)
    entries: int
    head_seq: int
    head_hash: str
    broken_entry_id: int | None
    broken_seq: int | None
    problem: str | None
    anchors: int
    anchored_seq: int | None
    anchor_problems: list[str]
    notes: list[str]


@router.get("")
def audit_trail(
    user: Reviewer,
    conn: Connection,
    table: Annotated[str, Query(description="Schema-qualified table, e.g. erp.lots")],
    key: Annotated[
        str | None, Query(description='The row key as JSON, e.g. {"id": 5}; all rows if absent')
    ] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[AuditEntryOut]:
    """The newest entries of a table's (or one record's) audit trail (qa, qa_manager, admin)."""
    del user
    parsed: dict[str, Any] | None = None
    if key is not None:
        try:
            value = json.loads(key)
        except json.JSONDecodeError as err:
            raise InvalidArgumentError("key", key, "not valid JSON") from err
        if not isinstance(value, dict):
            raise InvalidArgumentError("key", key, "must be a JSON object")
        parsed = value
    entries = service.entries_for(conn, table=table, key=parsed, limit=limit)
    return [
        AuditEntryOut(
            id=e.id,
            seq=e.seq,
            at=e.at,
            table_name=e.table_name,
            action=e.action,
            row_key=e.row_key,
            old_values=e.old_values,
            new_values=e.new_values,
            actor=e.actor,
            reason=e.reason,
            hash=e.hash,
            db_role=e.db_role,
        )
        for e in entries
    ]


@router.get("/verify")
def verify_chain(user: Verifier, conn: Connection, records: Records) -> VerifyOut:
    """Walk the hash chain, check every anchor, name the first problem (qa_manager, admin)."""
    del user
    checked = verify_anchored(conn, keyring=records.keyring, anchor_file=records.anchor_file)
    result = checked.chain
    broken = result.broken
    report = checked.anchors
    newest = report.newest if report else None
    return VerifyOut(
        ok=not checked.broken,
        status=checked.status,
        anchors=len(report.anchors) if report else 0,
        anchored_seq=newest.seq if newest else None,
        anchor_problems=list(report.problems) if report else [],
        notes=[*(report.notes if report else ()), *filter(None, [checked.unanchored_reason])],
        entries=result.entries,
        head_seq=result.head.seq,
        head_hash=result.head.hash,
        broken_entry_id=broken.entry_id if broken else None,
        broken_seq=broken.seq if broken else None,
        problem=broken.problem if broken else None,
    )
