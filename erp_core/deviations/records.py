"""A closed deviation held against its disposition signature: what a database writer cannot fake.

The database closes a deviation when its row says so; it cannot check an HMAC (the key
is not in it). So the disposition a closed deviation shows is recomputed from the row as
stored and checked with the server's key ring (``disposition_checks``); ``coldtrace audit
verify`` reports every one that does not verify (``erp_core.release.records``).
"""

from __future__ import annotations

from typing import Any

from psycopg import Connection

from erp_core.audit.keys import Keyring
from erp_core.signatures.service import MISSING, check, named_signature

Conn = Connection[Any]

DEVIATIONS = "erp.deviations"


def disposition_content(
    disposition: str, comment: str | None, capa_ref: str | None
) -> dict[str, Any]:
    """What a deviation disposition's signature covers."""
    return {"disposition": disposition, "comment": comment, "capa_ref": capa_ref}


def disposition_checks(conn: Conn, *, keyring: Keyring) -> list[tuple[int, list[str]]]:
    """Closed deviations whose disposition signature does not verify: (id, problems)."""
    rows = conn.execute(
        "SELECT id, disposition, closing_comment, capa_ref, signature_id FROM erp.deviations"
        " WHERE status = 'closed' ORDER BY id"
    ).fetchall()
    out = []
    for dev_id, disposition, comment, capa_ref, signature_id in rows:
        signature = named_signature(conn, signature_id)
        if signature is None:
            out.append((dev_id, [MISSING]))
            continue
        found = check(
            signature,
            record_table=DEVIATIONS,
            record_key={"id": dev_id},
            record_content=disposition_content(disposition, comment, capa_ref),
            keyring=keyring,
        )
        if found.problems:
            out.append((dev_id, list(found.problems)))
    return out
