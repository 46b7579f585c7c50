"""The hash chain of the audit trail, recomputed in Python: pure, no database access.

Each entry's hash is sha256 over a canonical serialisation of its fields and the previous
entry's hash. Each field is written as ``<length>:<text>;`` (``~;`` for NULL), so no
choice of values can make two different entries serialise alike. The same serialisation
is ``erp.audit_hash`` in migrations 0004 and 0018; the jsonb fields are hashed in
PostgreSQL's own text form (``jsonb::text``), which is deterministic for a stored value.
Since 0018 an entry also names the database login that wrote it (``db_role``), written
as an eleventh field after the previous hash; entries from before carry none and hash
as they always did, so one chain holds both.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

GENESIS_HASH = "0" * 64


@dataclass(frozen=True, slots=True)
class ChainEntry:
    """One audit entry as stored: jsonb fields in their PostgreSQL text form."""

    id: int
    seq: int
    at: datetime
    table_name: str
    action: str
    row_key: str
    old_values: str | None
    new_values: str | None
    actor: str
    reason: str | None
    prev_hash: str
    hash: str
    db_role: str | None = None


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """The first entry where the chain does not hold, and what is wrong with it."""

    entry_id: int | None
    seq: int
    problem: str


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The chain head the database keeps: the last sequence number and its hash."""

    seq: int
    hash: str


def field(value: str | None) -> str:
    """One field of the canonical serialisation."""
    return "~;" if value is None else f"{len(value)}:{value};"


def utc_text(at: datetime) -> str:
    """``at`` in UTC with microseconds, as the database writes it into the hash."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(entry: ChainEntry, *, prev_hash: str) -> str:
    """The hash ``entry`` must carry if it follows an entry hashed ``prev_hash``."""
    text = "".join(
        field(v)
        for v in (
            str(entry.seq),
            utc_text(entry.at),
            entry.table_name,
            entry.action,
            entry.row_key,
            entry.old_values,
            entry.new_values,
            entry.actor,
            entry.reason,
            prev_hash,
        )
    )
    if entry.db_role is not None:
        text += field(entry.db_role)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def first_break(
    entries: Iterable[ChainEntry], *, head: ChainHead, after: ChainHead | None = None
) -> ChainBreak | None:
    """The first broken entry of a chain given in ``seq`` order, or None if it is intact.

    Checks, in order: sequence numbers without gaps (a deleted entry), the link to the
    previous hash (a deleted or re-ordered entry), the entry's own hash (an edited
    entry), and finally that the last entry is the head the database recorded (deleted
    entries at the end). ``after`` starts the walk behind a known entry (an anchor):
    ``entries`` then begin at ``after.seq + 1`` and must link to ``after.hash``.
    """
    expected_seq = 1 if after is None else after.seq + 1
    prev = GENESIS_HASH if after is None else after.hash
    for entry in entries:
        if entry.seq != expected_seq:
            missing = (
                f"entries {expected_seq}..{entry.seq - 1} are missing before it"
                if entry.seq > expected_seq
                else f"sequence number {entry.seq} repeats or goes back (expected {expected_seq})"
            )
            return ChainBreak(entry.id, entry.seq, f"sequence broken: {missing}")
        if entry.prev_hash != prev:
            return ChainBreak(
                entry.id, entry.seq, "previous-hash link broken: it does not name the entry before"
            )
        recomputed = entry_hash(entry, prev_hash=prev)
        if recomputed != entry.hash:
            return ChainBreak(
                entry.id, entry.seq, "content altered: its hash does not match its fields"
            )
        prev = entry.hash
        expected_seq += 1
    last_seq = expected_seq - 1
    if head.seq != last_seq or head.hash != prev:
        return ChainBreak(
            None,
            last_seq + 1,
            f"chain head says entry {head.seq} is last, but the log ends at entry {last_seq}"
            if head.seq != last_seq
            else "chain head hash does not match the last entry",
        )
    return None
