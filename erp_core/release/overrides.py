"""Four-eyes override of failed release rules: one QA manager proposes, another approves.

``propose_override`` signs the justification and the failed rules with their evidence
(meaning "Proposed override of failed rules") and stores a pending proposal; the lot
stays where it is. ``approve_override`` is a second, different QA manager's signed
release decision ("Approved override of failed rules") naming that proposal; only then
is the lot released. Both signers first confirm every failed rule by name, so neither
signs rules they were not shown. The database holds the same line (migration 0029):
an override decision without a proposal, or approved by its proposer, is refused even
to the application role writing SQL directly.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Any

from psycopg.types.json import Jsonb

from erp_core.audit.keys import Keyring
from erp_core.auth.models import User
from erp_core.errors import NotFoundError
from erp_core.release import records
from erp_core.release.rules import (
    OVERRIDE_APPROVED,
    OVERRIDE_PROPOSED,
    Action,
    Recommendation,
    RuleResult,
    Verdict,
    approval_refusal,
    decide,
    proposal_events,
    unconfirmed,
)
from erp_core.release.service import (
    Conn,
    ReleaseRecord,
    ReleaseRefusedError,
    Signing,
    commit_decision,
    lock_and_gather,
)
from erp_core.signatures.models import Signature
from erp_core.signatures.service import sign


class ConfirmationRequiredError(ReleaseRefusedError):
    """The signer did not confirm every failed rule by name; ``missing`` lists them."""

    def __init__(self, lot_id: int, missing: tuple[RuleResult, ...], rec: Recommendation) -> None:
        names = ", ".join(r.rule for r in missing)
        super().__init__(lot_id, f"confirm each failed rule before signing: {names}", rec)
        self.missing = missing


@dataclass(frozen=True, slots=True)
class OverrideProposal:
    """A stored, signed proposal waiting for a second QA manager."""

    id: int
    lot_id: int
    justification: str
    failed_rules: tuple[RuleResult, ...]
    signature: Signature


def _require_confirmed(lot_id: int, rec: Recommendation, confirmed: Collection[str]) -> None:
    missing = unconfirmed(rec, confirmed)
    if missing:
        raise ConfirmationRequiredError(lot_id, missing, rec)


def propose_override(  # noqa: PLR0913 - every input of a signed proposal is explicit
    conn: Conn,
    *,
    lot_id: int,
    user: User,
    justification: str,
    confirmed_rules: Collection[str],
    signing: Signing,
) -> OverrideProposal:
    """Propose, as ``user`` (a qa_manager), to release ``lot_id`` over its failed rules."""
    now = signing.now
    evidence = lock_and_gather(
        conn, lot_id=lot_id, user=user, reason=f"propose override of lot {lot_id}", now=now
    )
    decision = decide(
        evidence,
        action=Action.RELEASE,
        roles=frozenset(str(r) for r in user.roles),
        justification=justification,
    )
    rec = decision.recommendation
    if decision.verdict is Verdict.ALLOWED:
        raise ReleaseRefusedError(lot_id, "every release rule passed: nothing to override", rec)
    if decision.verdict is Verdict.REFUSED:
        raise ReleaseRefusedError(lot_id, decision.reason, rec)
    _require_confirmed(lot_id, rec, confirmed_rules)
    failed = [asdict(r) for r in rec.failed]
    proposed_at = now.isoformat()
    signature = sign(
        conn,
        user=user,
        password=signing.password,
        record_table=records.OVERRIDES,
        record_key={"lot_id": lot_id, "proposed_at": proposed_at},
        record_content=records.proposal_content(
            lot_id=lot_id, justification=justification, failed_rules=failed, proposed_at=proposed_at
        ),
        meaning=OVERRIDE_PROPOSED,
        clock=lambda: now,
        policy=signing.policy,
        record_attempt=signing.record_attempt,
        signing_key=signing.signing_key,
        comment=signing.comment,
        source=signing.source,
        keyring=signing.keyring,
    )
    row = conn.execute(
        "INSERT INTO erp.release_overrides (lot_id, justification, failed_rules, proposed_by,"
        " proposed_by_id, proposed_at, signature_id) VALUES (%s, %s, %s, %s, %s, %s, %s)"
        " RETURNING id",
        (lot_id, justification, Jsonb(failed), user.username, user.id, now, signature.id),
    ).fetchone()
    if row is None:  # pragma: no cover - INSERT … RETURNING returns its row
        raise RuntimeError("INSERT returned no row")
    return OverrideProposal(int(row[0]), lot_id, justification, rec.failed, signature)


def approve_override(
    conn: Conn,
    *,
    override_id: int,
    user: User,
    confirmed_rules: Collection[str],
    signing: Signing,
) -> ReleaseRecord:
    """Approve proposal ``override_id`` as ``user``, a second qa_manager: release the lot."""
    found = conn.execute(
        "SELECT o.lot_id, o.justification, o.failed_rules, o.proposed_by, d.id,"
        " o.proposed_at < l.status_changed_at FROM erp.release_overrides o"
        " JOIN erp.lots l ON l.id = o.lot_id"
        " LEFT JOIN erp.release_decisions d ON d.override_id = o.id WHERE o.id = %s",
        (override_id,),
    ).fetchone()
    if found is None:
        raise NotFoundError("override proposal", override_id)
    lot_id, justification, proposed_failed, proposer, approved, stale = found
    evidence = lock_and_gather(
        conn, lot_id=lot_id, user=user, reason=f"approve override of lot {lot_id}", now=signing.now
    )
    decision = decide(
        evidence,
        action=Action.RELEASE,
        roles=frozenset(str(r) for r in user.roles),
        justification=justification,
    )
    rec = decision.recommendation
    if approved is not None:
        raise ReleaseRefusedError(lot_id, f"override {override_id} is already approved", rec)
    if stale:
        raise ReleaseRefusedError(
            lot_id, f"override {override_id} predates the lot's last status change", rec
        )
    if decision.verdict is Verdict.ALLOWED:
        raise ReleaseRefusedError(
            lot_id, "every release rule passes now: release the lot without an override", rec
        )
    if decision.verdict is Verdict.REFUSED:
        raise ReleaseRefusedError(lot_id, decision.reason, rec)
    refusal = approval_refusal(
        proposer=proposer,
        approver=user.username,
        proposed_failed={str(f["rule"]) for f in proposed_failed},
        rec=rec,
        proposed_events=proposal_events(proposed_failed),
    )
    if refusal is not None:
        raise ReleaseRefusedError(lot_id, refusal, rec)
    _require_confirmed(lot_id, rec, confirmed_rules)
    return commit_decision(
        conn,
        lot_id=lot_id,
        user=user,
        action=Action.RELEASE,
        decision=decision,
        justification=justification,
        meaning=OVERRIDE_APPROVED,
        signing=signing,
        override_id=override_id,
    )


def pending_for(conn: Conn, *, lot_id: int, keyring: Keyring) -> list[dict[str, Any]]:
    """The lot's override proposals still waiting for a second QA manager, checked.

    A proposal made before the lot's last status change (a hold, a release) is void.
    """
    row = conn.execute("SELECT status_changed_at FROM erp.lots WHERE id = %s", (lot_id,)).fetchone()
    since = row[0] if row else None
    return [
        p
        for p in records.proposal_checks(conn, keyring=keyring, lot_id=lot_id)
        if p["approved_by_decision"] is None and (since is None or p["proposed_at"] >= since)
    ]


def pending_all(conn: Conn, *, limit: int) -> list[dict[str, Any]]:
    """Override proposals of any lot still waiting for a second QA manager, oldest first.

    For the lots list's banner, a pointer to the lot page (which checks each signature).
    """
    rows = conn.execute(
        "SELECT o.id, o.lot_id, l.lot_number, o.proposed_by, o.proposed_at"
        " FROM erp.release_overrides o JOIN erp.lots l ON l.id = o.lot_id"
        " LEFT JOIN erp.release_decisions d ON d.override_id = o.id"
        " WHERE d.id IS NULL AND l.status IN ('quarantine', 'on_hold')"
        " AND o.proposed_at >= l.status_changed_at ORDER BY o.proposed_at LIMIT %s",
        (limit,),
    ).fetchall()
    return [
        {"id": r[0], "lot_id": r[1], "lot_number": r[2], "proposed_by": r[3], "proposed_at": r[4]}
        for r in rows
    ]


def proposer_of(conn: Conn, *, override_id: int) -> tuple[int, str]:
    """The lot and the proposer's user name of proposal ``override_id``."""
    row = conn.execute(
        "SELECT lot_id, proposed_by FROM erp.release_overrides WHERE id = %s", (override_id,)
    ).fetchone()
    if row is None:
        raise NotFoundError("override proposal", override_id)
    return int(row[0]), str(row[1])
