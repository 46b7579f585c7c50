"""The release records held against their signatures: what a database writer cannot fake.

The database lets a lot become ``released`` when a decision row exists, and closes a
deviation when its row says so; it cannot check an HMAC (the key is not in it). A
database writer — the application role's password is enough — could therefore point a
decision of their own at another lot's genuine "Released" signature, or write a
signature row, and every page showed "Signed by … meaning: Released" (red team, issue
9). Everything here recomputes what each signature covers from the record as stored
and checks it with the server's key ring: the lot page and API show the result per
decision (``decision_checks``) and per override proposal (``proposal_checks``; an
approved override carries its proposal, so both signatures are checked), and ``coldtrace
audit verify`` sweeps every decision, pending proposal and closed deviation
(``forged_records``; the deviations' own check is ``erp_core.deviations.records``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from psycopg import Connection

from erp_core.audit.keys import Keyring
from erp_core.deviations import records as deviation_records
from erp_core.signatures.canonical import manifestation
from erp_core.signatures.models import Signature
from erp_core.signatures.service import MISSING, check, named_signature

Conn = Connection[Any]

DECISIONS = "erp.release_decisions"
OVERRIDES = "erp.release_overrides"
LEGACY = "not verifiable with a key"  # how `check` starts the note on a pre-0018 signature

_DECISIONS = (
    "SELECT d.id, d.action, d.verdict, d.justification, d.decided_at, d.recommendation,"
    " d.signature_id, d.lot_id, d.override_id FROM erp.release_decisions d"
    " WHERE (%(lot)s::bigint IS NULL OR d.lot_id = %(lot)s) ORDER BY d.id DESC"
)
_PROPOSALS = (
    "SELECT o.id, o.lot_id, o.justification, o.failed_rules, o.proposed_by, o.proposed_at,"
    " o.signature_id, d.id FROM erp.release_overrides o"
    " LEFT JOIN erp.release_decisions d ON d.override_id = o.id"
    " WHERE (%(lot)s::bigint IS NULL OR o.lot_id = %(lot)s)"
    " AND (%(id)s::bigint IS NULL OR o.id = %(id)s) ORDER BY o.id DESC"
)


def signed_content(  # noqa: PLR0913 - the signed fields, each explicit
    *,
    lot_id: int,
    action: str,
    verdict: str,
    justification: str | None,
    recommendation: list[dict[str, Any]],
    decided_at: str,
    override_id: int | None = None,
) -> dict[str, Any]:
    """What a release decision's signature covers (its record content).

    An approved override also covers the proposal it approves; a decision without one
    covers exactly what it did before revision 0029, so older signatures still verify.
    """
    content: dict[str, Any] = {
        "lot_id": lot_id,
        "action": action,
        "verdict": verdict,
        "justification": justification,
        "recommendation": recommendation,
        "decided_at": decided_at,
    }
    if override_id is not None:
        content["override_id"] = override_id
    return content


def proposal_content(
    *, lot_id: int, justification: str, failed_rules: list[dict[str, Any]], proposed_at: str
) -> dict[str, Any]:
    """What the signature of an override proposal covers (its record content)."""
    return {
        "lot_id": lot_id,
        "justification": justification,
        "failed_rules": failed_rules,
        "proposed_at": proposed_at,
    }


def _signed_time(signature: Signature, name: str, stored: datetime) -> str:
    """The text of ``stored`` as the signature's key names it (the signer's clock wrote it).

    Any other text of the same instant is the same record; a key for another instant
    names another record, so the stored time's own text is used and the check fails.
    """
    signed_text = signature.record_key.get(name)
    if isinstance(signed_text, str):
        try:
            if datetime.fromisoformat(signed_text) == stored:
                return signed_text
        except ValueError:
            pass
    return stored.astimezone(UTC).isoformat()


def _decision_problems(row: tuple[Any, ...], signature: Signature, keyring: Keyring) -> list[str]:
    """Why ``signature`` does not sign the decision ``row`` ([] if it does)."""
    lot_id: int = row[7]
    text = _signed_time(signature, "decided_at", row[4])
    content = signed_content(
        lot_id=lot_id,
        action=row[1],
        verdict=row[2],
        justification=row[3],
        recommendation=row[5],
        decided_at=text,
        override_id=row[8],
    )
    found = check(
        signature,
        record_table=DECISIONS,
        record_key={"lot_id": lot_id, "decided_at": text},
        record_content=content,
        keyring=keyring,
    )
    return list(found.problems)


def _shown(signature: Signature | None) -> str:
    if signature is None:
        return "(no signature)"
    return manifestation(
        full_name=signature.full_name,
        username=signature.username,
        signed_at=signature.signed_at,
        meaning=signature.meaning,
    )


def _proposal_problems(row: tuple[Any, ...], signature: Signature, keyring: Keyring) -> list[str]:
    """Why ``signature`` does not sign the override proposal ``row`` ([] if it does)."""
    text = _signed_time(signature, "proposed_at", row[5])
    found = check(
        signature,
        record_table=OVERRIDES,
        record_key={"lot_id": row[1], "proposed_at": text},
        record_content=proposal_content(
            lot_id=row[1], justification=row[2], failed_rules=row[3], proposed_at=text
        ),
        keyring=keyring,
    )
    return list(found.problems)


def proposal_checks(
    conn: Conn, *, keyring: Keyring, lot_id: int | None = None, override_id: int | None = None
) -> list[dict[str, Any]]:
    """Override proposals (of ``lot_id``, or ``override_id``, or all), newest first, checked.

    Each carries the justification, the failed rules with their evidence as the proposer
    confirmed them, ``approved_by_decision`` (the decision's id, None while pending) and
    its signature's manifestation with ``signature_verified`` / ``signature_problems``.
    """
    out = []
    for r in conn.execute(_PROPOSALS, {"lot": lot_id, "id": override_id}).fetchall():
        signature = named_signature(conn, r[6])
        problems = [MISSING] if signature is None else _proposal_problems(r, signature, keyring)
        out.append(
            {
                "id": r[0],
                "lot_id": r[1],
                "justification": r[2],
                "failed_rules": r[3],
                "proposed_by": r[4],
                "proposed_at": r[5],
                "approved_by_decision": r[7],
                "signature": _shown(signature),
                "signed_by": None if signature is None else signature.full_name,
                "signed_by_username": None if signature is None else signature.username,
                "signed_at": None if signature is None else signature.signed_at,
                "meaning": None if signature is None else signature.meaning,
                "signature_verified": not problems,
                "signature_problems": problems,
            }
        )
    return out


def decision_checks(
    conn: Conn, *, keyring: Keyring, lot_id: int | None = None
) -> list[dict[str, Any]]:
    """Release decisions (of ``lot_id``, or all), newest first, each checked.

    Each carries its signature's manifestation (``signature``), ``signature_verified``
    and ``signature_problems``. An approved override also carries the proposal it
    approves (``override``: justification, failed rules, the proposer's signature); a
    proposal that does not verify makes the decision not verify either.
    """
    out = []
    for r in conn.execute(_DECISIONS, {"lot": lot_id}).fetchall():
        signature = named_signature(conn, r[6])
        problems = [MISSING] if signature is None else _decision_problems(r, signature, keyring)
        proposal = None
        if r[8] is not None:
            proposal = proposal_checks(conn, keyring=keyring, override_id=r[8])[0]
            problems += [f"override proposal: {p}" for p in proposal["signature_problems"]]
        out.append(
            {
                "id": r[0],
                "lot_id": r[7],
                "action": r[1],
                "verdict": r[2],
                "justification": r[3],
                "decided_at": r[4],
                "signature": _shown(signature),
                # the manifestation's parts, for printouts that show them apart (§11.50)
                "signed_by": None if signature is None else signature.full_name,
                "signed_by_username": None if signature is None else signature.username,
                "signed_at": None if signature is None else signature.signed_at,
                "meaning": None if signature is None else signature.meaning,
                "signature_verified": not problems,
                "signature_problems": problems,
                "override": proposal,
            }
        )
    return out


def forged_records(conn: Conn, *, keyring: Keyring) -> tuple[list[str], int]:
    """Decisions, pending override proposals and closed deviations that do not verify.

    Returns (the problems, how many records carry only an unkeyed signature from before
    keyed signatures — not verifiable, which is reported but is no forgery).
    """
    named: list[tuple[str, list[str]]] = [
        (
            f"release decision {d['id']} of lot {d['lot_id']} ({d['action']})",
            d["signature_problems"],
        )
        for d in decision_checks(conn, keyring=keyring)
        if not d["signature_verified"]
    ]
    named += [
        (f"override proposal {p['id']} of lot {p['lot_id']} (pending)", p["signature_problems"])
        for p in proposal_checks(conn, keyring=keyring)
        if p["approved_by_decision"] is None and not p["signature_verified"]
    ]
    named += [
        (f"deviation {dev_id} closed", problems)
        for dev_id, problems in deviation_records.disposition_checks(conn, keyring=keyring)
    ]
    legacy = sum(1 for _, problems in named if all(p.startswith(LEGACY) for p in problems))
    found = [
        f"{what}: " + "; ".join(problems)
        for what, problems in named
        if not all(p.startswith(LEGACY) for p in problems)
    ]
    return found, legacy
