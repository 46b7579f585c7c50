"""Release service: gather a lot's evidence from the database, decide, sign, record.

The request owns the transaction: the signature, the decision row, the lot's new
status and their audit entries commit together or not at all. A refused decision
raises `ReleaseRefusedError` carrying the recommendation, so the caller can show why.

Every decision shown (``decisions_for``) is checked against its signature with the
server's key ring: the database only demands that a decision row exists before a lot
is released, so a database writer could otherwise show any lot as "Signed by … meaning:
Released" by pointing a decision of their own at another lot's genuine signature.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from psycopg import Connection
from psycopg.types.json import Jsonb

from erp_core.audit.keys import Keyring, RecordKey
from erp_core.audit.service import set_actor
from erp_core.auth.models import AttemptRecorder, LoginPolicy, User
from erp_core.deviations import service as deviations
from erp_core.errors import ErpError
from erp_core.lot_history.history import lot_history
from erp_core.lot_history.models import LotHistory
from erp_core.lots.service import change_status
from erp_core.release import records
from erp_core.release.rules import (
    Action,
    Decision,
    Evidence,
    Excursion,
    Recommendation,
    Verdict,
    decide,
)
from erp_core.signatures.models import Signature
from erp_core.signatures.service import sign

Conn = Connection[Any]

_EXCURSIONS = """
SELECT e.id, s.uid, e.start_t, e.peak,
       extract(epoch FROM coalesce(e.end_t, e.last_t) - e.start_t),
       (SELECT d.disposition FROM erp.deviations d
          JOIN telemetry.excursion_episodes o ON o.id = d.episode_id
         WHERE d.lot_id = %(lot)s AND d.status = 'closed' AND o.sensor_id = e.sensor_id
           AND o.start_t <= coalesce(e.end_t, e.last_t)
           AND coalesce(o.end_t, o.last_t) >= e.start_t
         ORDER BY d.closed_at DESC LIMIT 1)
  FROM telemetry.excursion_episodes e JOIN telemetry.sensors s ON s.id = e.sensor_id
 WHERE e.id = ANY(%(ids)s) AND e.level = 'alarm' AND (e.delay_reached OR e.abs_breach)
 ORDER BY e.start_t
"""


class ReleaseRefusedError(ErpError):
    """The user may not take this decision now; ``reason`` and the rules say why."""

    def __init__(self, lot_id: int, reason: str, recommendation: Recommendation) -> None:
        super().__init__(f"lot {lot_id}: {reason}")
        self.lot_id = lot_id
        self.reason = reason
        self.recommendation = recommendation


@dataclass(frozen=True, slots=True)
class ReleaseRecord:
    """A committed decision with its signature."""

    decision_id: int
    lot_id: int
    action: Action
    verdict: Verdict
    new_status: str
    signature: Signature


def gather_evidence(conn: Conn, *, lot_id: int, now: datetime) -> Evidence:
    """Collect what the release rules look at for ``lot_id``."""
    history = lot_history(conn, lot_id=lot_id, max_points=2, now=now)
    return evidence_from(conn, history=history, now=now)


def evidence_from(conn: Conn, *, history: LotHistory, now: datetime) -> Evidence:
    """The release evidence of a lot whose history is read already (any ``max_points``).

    The statistics do not depend on the chart's downsampling, so a caller that also
    draws the chart (the PDF report) reads the history once and shows exactly this.
    """
    lot_id = history.lot.id
    stats = history.stats
    ids = [x.id for x in history.excursions]
    excursions = tuple(
        Excursion(int(i), str(uid), start, float(peak), float(dur), disp)
        for i, uid, start, peak, dur, disp in conn.execute(
            _EXCURSIONS, {"lot": lot_id, "ids": ids}
        ).fetchall()
    )
    counts = conn.execute(
        "SELECT count(*) FILTER (WHERE result = 'failed'),"
        " count(*) FILTER (WHERE result = 'pending') FROM erp.inspections WHERE lot_id = %s",
        (lot_id,),
    ).fetchone()
    lot = history.lot
    return Evidence(
        lot_status=lot.status,
        expiry=datetime.combine(lot.expires_on, datetime.min.time(), tzinfo=now.tzinfo),
        now=now,
        excursions=excursions,
        mkt=stats.mkt if stats else None,
        mkt_limit=stats.mkt_limit if stats else None,
        tor_cumulative_min=(stats.tor_cumulative_seconds / 60) if stats else 0.0,
        tor_budget_min=(stats.tor_budget_seconds / 60)
        if stats and stats.tor_budget_seconds is not None
        else None,
        coverage=stats.coverage_share if stats else 0.0,
        coverage_gaps=tuple((g.start, g.end) for g in stats.gaps) if stats else (),
        inspections_failed=int(counts[0]) if counts else 0,
        inspections_pending=int(counts[1]) if counts else 0,
        open_deviations=deviations.open_numbers(conn, lot_id=lot_id),
    )


def _recommendation_json(decision: Decision) -> list[dict[str, Any]]:
    return [asdict(r) for r in decision.recommendation.results]


def record_decision(  # noqa: PLR0913 - every input of a signed decision is explicit
    conn: Conn,
    *,
    lot_id: int,
    user: User,
    action: Action,
    password: str,
    justification: str | None,
    comment: str | None,
    clock: Callable[[], datetime],
    policy: LoginPolicy,
    record_attempt: AttemptRecorder,
    signing_key: RecordKey,
    source: str | None = None,
    keyring: Keyring | None = None,
) -> ReleaseRecord:
    """Decide on the lot as ``user``, sign the decision (with ``signing_key``), set its status.

    An override of failed rules is not decided here: it takes two QA managers
    (``erp_core.release.overrides``), so it is refused with that reason.
    """
    now = clock()
    evidence = lock_and_gather(
        conn, lot_id=lot_id, user=user, reason=f"{action.value} lot {lot_id}", now=now
    )
    decision = decide(
        evidence,
        action=action,
        roles=frozenset(str(r) for r in user.roles),
        justification=justification,
    )
    if decision.verdict is Verdict.REFUSED:
        raise ReleaseRefusedError(lot_id, decision.reason, decision.recommendation)
    if decision.verdict is Verdict.OVERRIDE:
        raise ReleaseRefusedError(
            lot_id,
            "rules failed: an override takes two QA managers — one proposes it with the "
            f"justification (POST /api/lots/{lot_id}/release/overrides), a second approves it",
            decision.recommendation,
        )
    meaning = "Released" if action is Action.RELEASE else "Rejected"
    return commit_decision(
        conn,
        lot_id=lot_id,
        user=user,
        action=action,
        decision=decision,
        justification=justification,
        meaning=meaning,
        signing=Signing(
            password, comment, now, policy, record_attempt, signing_key, source, keyring
        ),
    )


@dataclass(frozen=True, slots=True)
class Signing:
    """What a signature needs beyond the user and the record (``signatures.service.sign``)."""

    password: str
    comment: str | None
    now: datetime
    policy: LoginPolicy
    record_attempt: AttemptRecorder
    signing_key: RecordKey
    source: str | None
    keyring: Keyring | None


def lock_and_gather(conn: Conn, *, lot_id: int, user: User, reason: str, now: datetime) -> Evidence:
    """Set the actor, lock the lot, then read its evidence (in the caller's transaction).

    Locking first: a movement recorded meanwhile (it locks the lot too) cannot change the
    history the decision is based on.
    """
    set_actor(conn, user=user.username, reason=reason)
    conn.execute("SELECT 1 FROM erp.lots WHERE id = %s FOR NO KEY UPDATE", (lot_id,))
    return gather_evidence(conn, lot_id=lot_id, now=now)


def commit_decision(  # noqa: PLR0913 - every input of a signed decision is explicit
    conn: Conn,
    *,
    lot_id: int,
    user: User,
    action: Action,
    decision: Decision,
    justification: str | None,
    meaning: str,
    signing: Signing,
    override_id: int | None = None,
) -> ReleaseRecord:
    """Sign ``decision`` as ``user``, store it and move the lot to released/rejected."""
    now = signing.now
    recommendation = _recommendation_json(decision)
    content = records.signed_content(
        lot_id=lot_id,
        action=action.value,
        verdict=decision.verdict.value,
        justification=justification,
        recommendation=recommendation,
        decided_at=now.isoformat(),
        override_id=override_id,
    )
    signature = sign(
        conn,
        user=user,
        password=signing.password,
        record_table=records.DECISIONS,
        record_key={"lot_id": lot_id, "decided_at": now.isoformat()},
        record_content=content,
        meaning=meaning,
        clock=lambda: now,
        policy=signing.policy,
        record_attempt=signing.record_attempt,
        signing_key=signing.signing_key,
        comment=signing.comment,
        source=signing.source,
        keyring=signing.keyring,
    )
    row = conn.execute(
        "INSERT INTO erp.release_decisions (lot_id, action, verdict, justification,"
        " recommendation, signature_id, decided_by, decided_at, override_id)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            lot_id,
            action.value,
            decision.verdict.value,
            justification,
            Jsonb(recommendation),
            signature.id,
            user.username,
            now,
            override_id,
        ),
    ).fetchone()
    if row is None:  # pragma: no cover - INSERT … RETURNING returns its row
        raise RuntimeError("INSERT returned no row")
    new_status = "released" if action is Action.RELEASE else "rejected"
    change_status(conn, lot_id=lot_id, status=new_status, now=now)
    return ReleaseRecord(int(row[0]), lot_id, action, decision.verdict, new_status, signature)


def decisions_for(conn: Conn, *, lot_id: int, keyring: Keyring) -> list[dict[str, Any]]:
    """The lot's signed decisions, newest first, each with its signature's manifestation.

    ``signature_verified`` says whether that signature verifies for this very decision
    with ``keyring``; ``signature_problems`` says why not (``erp_core.release.records``).
    """
    return records.decision_checks(conn, keyring=keyring, lot_id=lot_id)
