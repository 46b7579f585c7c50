"""Set the acting user of a transaction, read the audit trail and verify its hash chain.

The audit entries themselves are written by the database trigger ``erp.audit_row``; a
service that changes a regulated table only calls ``set_actor`` first, in the same
transaction. The caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
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
    db_role: str | None = None


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of walking the chain (all of it, or from an anchored entry on)."""

    entries: int
    head: ChainHead
    broken: ChainBreak | None
    # The stored hash of each entry asked for (the anchored ones), if the log has it.
    hashes: dict[int, str] = field(default_factory=dict)

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
        "reason, hash, db_role FROM erp.audit_log "
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
            db_role=r[11],
        )
        for r in rows
    ]


def head(conn: Conn) -> ChainHead | None:
    """The chain head the database records (last seq and hash), None if its row is gone."""
    row = conn.execute("SELECT seq, hash FROM erp.audit_head").fetchone()
    return None if row is None else ChainHead(int(row[0]), str(row[1]))


def verify(
    conn: Conn, *, want: Collection[int] = (), after: ChainHead | None = None
) -> VerifyResult:
    """Walk the chain in sequence order and report the first broken entry, if any.

    ``want``: sequence numbers whose stored hash to return (the anchored entries).
    ``after``: start behind this entry (seq and the hash it must have), as a checkpoint
    does from the last anchor; the entry itself must still carry that hash.
    The head and the highest stored seq are read in one statement (one snapshot), and
    only entries up to that head are walked, so writers appending meanwhile do not look
    like a broken chain.
    """
    row = conn.execute(
        "SELECT h.seq, h.hash, (SELECT max(seq) FROM erp.audit_log)"
        " FROM (SELECT 1) AS one LEFT JOIN erp.audit_head AS h ON true"
    ).fetchone()
    recorded = None if row is None or row[0] is None else ChainHead(int(row[0]), str(row[1]))
    top = ChainHead(seq=-1, hash="(missing)") if recorded is None else recorded
    highest = None if row is None or row[2] is None else int(row[2])
    counted = _Counter(want)
    broken = _anchored_start(conn, after)
    if broken is None and recorded is not None and highest is not None and highest > top.seq:
        broken = ChainBreak(
            None,
            top.seq + 1,
            f"the log holds entries up to {highest} beyond the chain head {top.seq}: "
            "written around erp.audit_append",
        )
    if broken is None:
        start = None if after is None or after.seq == 0 else after
        upto = None if recorded is None else top.seq
        entries = _chain(conn, after=None if start is None else start.seq, upto=upto)
        broken = first_break(counted.wrap(entries), head=top, after=start)
    if recorded is None and broken is None:
        broken = ChainBreak(None, 0, "the chain head row erp.audit_head is missing")
    return VerifyResult(entries=counted.n, head=top, broken=broken, hashes=counted.hashes)


def _anchored_start(conn: Conn, after: ChainHead | None) -> ChainBreak | None:
    if after is None or after.seq == 0:
        return None
    stored = conn.execute(
        "SELECT id, hash FROM erp.audit_log WHERE seq = %s", (after.seq,)
    ).fetchone()
    if stored is not None and stored[1] == after.hash:
        return None
    return ChainBreak(
        None if stored is None else int(stored[0]),
        after.seq,
        "the entry differs from its anchor (missing, or the chain was rewritten)",
    )


class _Counter:
    def __init__(self, want: Collection[int]) -> None:
        self.n = 0
        self.want = frozenset(want)
        self.hashes: dict[int, str] = {}

    def wrap(self, entries: Iterator[ChainEntry]) -> Iterator[ChainEntry]:
        for entry in entries:
            self.n += 1
            if entry.seq in self.want:
                self.hashes[entry.seq] = entry.hash
            yield entry


def _chain(conn: Conn, *, after: int | None, upto: int | None) -> Iterator[ChainEntry]:
    while True:
        rows = conn.execute(
            "SELECT id, seq, at, table_name, action, row_key::text, old_values::text, "
            "new_values::text, actor, reason, prev_hash, hash, db_role FROM erp.audit_log "
            "WHERE (%(after)s::bigint IS NULL OR seq > %(after)s)"
            " AND (%(upto)s::bigint IS NULL OR seq <= %(upto)s) ORDER BY seq LIMIT %(n)s",
            {"after": after, "upto": upto, "n": _BATCH},
        ).fetchall()
        for r in rows:
            yield ChainEntry(*r)
        if len(rows) < _BATCH:
            return
        after = rows[-1][1]
