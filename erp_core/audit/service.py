"""Set the acting user of a transaction, read the audit trail and verify its hash chain.

The audit entries themselves are written by the database trigger ``erp.audit_row``; a
service that changes a regulated table only calls ``set_actor`` first, in the same
transaction. The caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import pq
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from erp_core.audit.chain import ChainBreak, ChainEntry, ChainHead, first_break
from erp_core.audit.errors import MissingActorError, NoTransactionError

Conn = psycopg.Connection[TupleRow]

_BATCH = 2000


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit trail entry, for display and review."""

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


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of walking the whole chain."""

    entries: int
    head: ChainHead
    broken: ChainBreak | None

    @property
    def ok(self) -> bool:
        """True if every entry and the head check out."""
        return self.broken is None


def set_actor(conn: Conn, *, user: str, reason: str | None = None) -> None:
    """Name the user (and reason) that audited changes in this transaction are made by.

    Equivalent to ``SET LOCAL coldtrace.user``/``coldtrace.reason``: it lasts until the
    transaction ends, so the connection must be inside one.
    """
    if not user.strip():
        raise MissingActorError(user)
    conn.execute(
        "SELECT set_config('coldtrace.user', %s, true), set_config('coldtrace.reason', %s, true)",
        (user, reason or ""),
    )
    if conn.info.transaction_status != pq.TransactionStatus.INTRANS:
        raise NoTransactionError


def current_actor(conn: Conn) -> str | None:
    """The acting user set in this transaction, or None."""
    row = conn.execute("SELECT nullif(current_setting('coldtrace.user', true), '')").fetchone()
    return None if row is None or row[0] is None else str(row[0])


def entries_for(
    conn: Conn, *, table: str, key: dict[str, Any] | None = None, limit: int = 500
) -> list[AuditEntry]:
    """The newest ``limit`` entries of ``table`` (``erp.lots``), of one row if ``key`` is given."""
    rows = conn.execute(
        "SELECT id, seq, at, table_name, action, row_key, old_values, new_values, actor, "
        "reason, hash FROM erp.audit_log "
        "WHERE table_name = %s AND (%s::jsonb IS NULL OR row_key = %s::jsonb) "
        "ORDER BY seq DESC LIMIT %s",
        (table, None if key is None else Jsonb(key), None if key is None else Jsonb(key), limit),
    ).fetchall()
    return [
        AuditEntry(
            id=r[0],
            seq=r[1],
            at=r[2],
            table_name=r[3],
            action=r[4],
            row_key=r[5],
            old_values=r[6],
            new_values=r[7],
            actor=r[8],
            reason=r[9],
            hash=r[10],
        )
        for r in rows
    ]


def verify(conn: Conn) -> VerifyResult:
    """Walk the whole chain in sequence order and report the first broken entry, if any."""
    row = conn.execute("SELECT seq, hash FROM erp.audit_head").fetchone()
    head = ChainHead(seq=-1, hash="(missing)") if row is None else ChainHead(row[0], row[1])
    counted = _Counter()
    broken = first_break(counted.wrap(_chain(conn)), head=head)
    if row is None and broken is None:
        broken = ChainBreak(None, 0, "the chain head row erp.audit_head is missing")
    return VerifyResult(entries=counted.n, head=head, broken=broken)


class _Counter:
    def __init__(self) -> None:
        self.n = 0

    def wrap(self, entries: Iterator[ChainEntry]) -> Iterator[ChainEntry]:
        for entry in entries:
            self.n += 1
            yield entry


def _chain(conn: Conn) -> Iterator[ChainEntry]:
    after = None
    while True:
        rows = conn.execute(
            "SELECT id, seq, at, table_name, action, row_key::text, old_values::text, "
            "new_values::text, actor, reason, prev_hash, hash FROM erp.audit_log "
            "WHERE %s::bigint IS NULL OR seq > %s ORDER BY seq LIMIT %s",
            (after, after, _BATCH),
        ).fetchall()
        for r in rows:
            yield ChainEntry(*r)
        if len(rows) < _BATCH:
            return
        after = rows[-1][1]
