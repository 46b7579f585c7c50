"""The release records held against their signatures: what a database writer cannot fake.

The database lets a lot become ``released`` when a decision row exists, and closes a
deviation when its row says so; it cannot check an HMAC (the key is not in it). A
database writer — the application role's password is enough — could therefore point a
decision of their own at another lot's genuine "Released" signature, or write a
signature row, and every page showed "Signed by … meaning: Released" (red team, issue
9). Everything here recomputes what each signature covers from the record as stored
and checks it with the server's key ring: the lot page and API show the result per
decision (``decision_checks``), and ``coldtrace audit verify`` sweeps every decision and
every closed deviation (``forged_records``; the deviations' own check is
``erp_core.deviations.records``).
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
LEGACY = "not verifiable with a key"  # how `check` starts the note on a pre-0018 signature

_DECISIONS = (
    "SELECT d.id, d.action, d.verdict, d.justification, d.decided_at, d.recommendation,"
    " d.signature_id, d.lot_id FROM erp.release_decisions d"
    " WHERE (%(lot)s::bigint IS NULL OR d.lot_id = %(lot)s) ORDER BY d.id DESC"
)


def signed_content(  # noqa: PLR0913 - the signed fields, each explicit
    *,
    lot_id: int,
    action: str,
    verdict: str,
    justification: str | None,
    recommendation: list[dict[str, Any]],
    decided_at: str,
) -> dict[str, Any]:
    """What a release decision's signature covers (its record content)."""
    return {
        "lot_id": lot_id,
        "action": action,
        "verdict": verdict,
        "justification": justification,
        "recommendation": recommendation,
        "decided_at": decided_at,
    }


def _decision_problems(row: tuple[Any, ...], signature: Signature, keyring: Keyring) -> list[str]:
    """Why ``signature`` does not sign the decision ``row`` ([] if it does)."""
    decided_at: datetime = row[4]
    lot_id: int = row[7]
    # The key names the decision time as the signer's clock wrote it; any other text of
    # the same instant is the same decision (a key for another instant: another record).
    signed_text = signature.record_key.get("decided_at")
    text = decided_at.astimezone(UTC).isoformat()
    if isinstance(signed_text, str):
        try:
            if datetime.fromisoformat(signed_text) == decided_at:
                text = signed_text
        except ValueError:
            pass
    content = signed_content(
        lot_id=lot_id,
        action=row[1],
        verdict=row[2],
        justification=row[3],
        recommendation=row[5],
        decided_at=text,
    )
    found = check(
        signature,
        record_table=DECISIONS,
        record_key={"lot_id": lot_id, "decided_at": text},
        record_content=content,
        keyring=keyring,
    )
    return list(found.problems)


def decision_checks(
    conn: Conn, *, keyring: Keyring, lot_id: int | None = None
) -> list[dict[str, Any]]:
    """Release decisions (of ``lot_id``, or all), newest first, each checked.

    Each carries its signature's manifestation (``signature``), ``signature_verified``
    and ``signature_problems``.
    """
    out = []
    for r in conn.execute(_DECISIONS, {"lot": lot_id}).fetchall():
        signature = named_signature(conn, r[6])
        problems = [MISSING] if signature is None else _decision_problems(r, signature, keyring)
        shown = (
            "(no signature)"
            if signature is None
            else manifestation(
                full_name=signature.full_name,
                username=signature.username,
                signed_at=signature.signed_at,
                meaning=signature.meaning,
            )
        )
        out.append(
            {
                "id": r[0],
                "lot_id": r[7],
                "action": r[1],
                "verdict": r[2],
                "justification": r[3],
                "decided_at": r[4],
                "signature": shown,
                # the manifestation's parts, for printouts that show them apart (§11.50)
                "signed_by": None if signature is None else signature.full_name,
                "signed_by_username": None if signature is None else signature.username,
                "signed_at": None if signature is None else signature.signed_at,
                "meaning": None if signature is None else signature.meaning,
                "signature_verified": not problems,
                "signature_problems": problems,
            }
        )
    return out


def forged_records(conn: Conn, *, keyring: Keyring) -> tuple[list[str], int]:
    """Release decisions and closed deviations whose signature does not verify.

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
