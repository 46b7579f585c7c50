"""Audit trail endpoints (``/api/audit``): read the trail of a record, verify the chain."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from erp_core.audit import service
from erp_core.auth.models import User
from erp_core.deps import Connection, require_roles
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


class VerifyOut(BaseModel):
    """The result of verifying the whole chain."""

    ok: bool
    entries: int
    head_seq: int
    head_hash: str
    broken_entry_id: int | None
    broken_seq: int | None
    problem: str | None


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
        )
        for e in entries
    ]


@router.get("/verify")
def verify_chain(user: Verifier, conn: Connection) -> VerifyOut:
    """Walk the hash chain and name the first broken entry (qa_manager, admin)."""
    del user
    result = service.verify(conn)
    broken = result.broken
    return VerifyOut(
        ok=result.ok,
        entries=result.entries,
        head_seq=result.head.seq,
        head_hash=result.head.hash,
        broken_entry_id=broken.entry_id if broken else None,
        broken_seq=broken.seq if broken else None,
        problem=broken.problem if broken else None,
    )
