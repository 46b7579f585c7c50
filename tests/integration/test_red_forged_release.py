"""Red team (issue 9): a release decision forged by a database writer must not show as signed.

Someone with the application role's database password cannot mint a signature (the
HMAC key is not in the database) — but nothing that shows a release decision checked
its signature. So they could copy a genuine "Released" decision's signature id onto a
decision of their own for another lot, set that lot released (the database only
demands that a decision row exists), and the lot page and the API showed "Signed by
… meaning: Released". Each shown decision is now checked against its signature.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from typer.testing import CliRunner

from coldtrace.cli import app as cli
from erp_core.audit.service import set_actor
from tests.integration.test_release import PASSWORD, Api, api, fridge_with_lot  # noqa: F401
from tests.integration.web_helpers import sign_in


def _forge_release(db_url: str, *, lot: int, signature_id: int) -> None:
    """As the application role: a decision for ``lot`` naming another lot's signature."""
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="qa", reason="released")
        conn.execute(
            "INSERT INTO erp.release_decisions (lot_id, action, verdict, recommendation,"
            " signature_id, decided_by, decided_at)"
            " SELECT %s, action, verdict, recommendation, signature_id, decided_by, now()"
            " FROM erp.release_decisions WHERE signature_id = %s",
            (lot, signature_id),
        )
        conn.execute("UPDATE erp.lots SET status = 'released' WHERE id = %s", (lot,))


def test_a_decision_borrowing_another_lots_signature_does_not_show_as_signed(
    api: Api,  # noqa: F811 - the fixture
    db_url: str,
) -> None:
    good, _ = fridge_with_lot(api, db_url, code="FG", lot_number="GOOD-1")
    api.post("qa", f"/api/lots/{good}/release", {"action": "release", "password": PASSWORD}, 200)
    with psycopg.connect(db_url) as conn:
        (signature_id,) = conn.execute(
            "SELECT signature_id FROM erp.release_decisions WHERE lot_id = %s", (good,)
        ).fetchone()
    forged, _ = fridge_with_lot(api, db_url, code="FF", lot_number="FORGED-1")
    _forge_release(db_url, lot=forged, signature_id=signature_id)
    assert api.get("op", f"/api/lots/{forged}")["status"] == "released"  # the database let it

    genuine = api.get("op", f"/api/lots/{good}/release")["decisions"]
    assert [d["signature_verified"] for d in genuine] == [True]
    assert genuine[0]["signature_problems"] == []
    shown = api.get("op", f"/api/lots/{forged}/release")["decisions"]
    assert [d["signature_verified"] for d in shown] == [False]
    assert "another record" in " ".join(shown[0]["signature_problems"])

    sign_in(api.client, "op", PASSWORD)
    page = api.client.get(f"/lots/{forged}").text
    assert "SIGNATURE DOES NOT VERIFY" in page
    assert "SIGNATURE DOES NOT VERIFY" not in api.client.get(f"/lots/{good}").text


def test_a_decision_with_a_signature_row_written_in_the_database_does_not_verify(
    api: Api,  # noqa: F811 - the fixture
    db_url: str,
) -> None:
    lot, _ = fridge_with_lot(api, db_url, code="FR", lot_number="ROW-1")
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="qa", reason="released")
        (user_id,) = conn.execute("SELECT id FROM erp.users WHERE username = 'qa'").fetchone()
        (sig,) = conn.execute(
            "INSERT INTO erp.signatures (user_id, username, full_name, signed_at, meaning,"
            " record_table, record_key, record_hash, signature_hash, algorithm, key_id)"
            " VALUES (%s, 'qa', 'Qa Person', now(), 'Released', 'erp.release_decisions',"
            " '{}', repeat('0', 64), repeat('1', 64), 'hmac-sha256', 'test-1') RETURNING id",
            (user_id,),
        ).fetchone()
        conn.execute(
            "INSERT INTO erp.release_decisions (lot_id, action, verdict, recommendation,"
            " signature_id, decided_by, decided_at)"
            " VALUES (%s, 'release', 'allowed', '[]', %s, 'qa', now())",
            (lot, sig),
        )
        conn.execute("UPDATE erp.lots SET status = 'released' WHERE id = %s", (lot,))
    shown = api.get("op", f"/api/lots/{lot}/release")["decisions"]
    assert [d["signature_verified"] for d in shown] == [False]
    assert any("server key" in p for p in shown[0]["signature_problems"])


def test_audit_verify_names_every_signed_record_that_does_not_verify(
    api: Api,  # noqa: F811 - the fixture
    db_url: str,
    record_key_file: Path,
    tmp_path: Path,
) -> None:
    """The periodic check catches what nobody looks at: ``coldtrace audit verify`` sweeps
    every release decision and closed deviation (exit 1 when one does not verify)."""
    env = {
        "COLDTRACE_DATABASE_URL": db_url,
        "COLDTRACE_RECORD_KEY_FILE": str(record_key_file),
        "COLDTRACE_RECORD_ANCHOR_FILE": str(tmp_path / "anchors.jsonl"),
        "COLUMNS": "300",
    }
    good, _ = fridge_with_lot(api, db_url, code="FV", lot_number="GOOD-2")
    api.post("qa", f"/api/lots/{good}/release", {"action": "release", "password": PASSWORD}, 200)
    clean = CliRunner().invoke(cli, ["audit", "verify"], env=env)
    assert clean.exit_code == 3, clean.output  # consistent, not anchored: no forgery found
    assert "NOT VERIFY" not in clean.output

    with psycopg.connect(db_url) as conn:
        (signature_id,) = conn.execute(
            "SELECT signature_id FROM erp.release_decisions WHERE lot_id = %s", (good,)
        ).fetchone()
    forged, _ = fridge_with_lot(api, db_url, code="FW2", lot_number="FORGED-2")
    _forge_release(db_url, lot=forged, signature_id=signature_id)
    dangling, _ = fridge_with_lot(api, db_url, code="FD", lot_number="DANGLING-1")
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="qa", reason="released")
        conn.execute(
            "INSERT INTO erp.release_decisions (lot_id, action, verdict, recommendation,"
            " signature_id, decided_by, decided_at)"
            " VALUES (%s, 'release', 'allowed', '[]', 999999, 'qa', now())",
            (dangling,),
        )
    # a decision naming no existing signature is shown, not hidden (nor a 404)
    shown = api.get("op", f"/api/lots/{dangling}/release")["decisions"]
    assert [d["signature_verified"] for d in shown] == [False]
    assert shown[0]["signature_problems"] == ["the signature it names does not exist"]

    found = CliRunner().invoke(cli, ["audit", "verify"], env=env)
    assert found.exit_code == 1, found.output
    assert f"of lot {forged} (release): the signature belongs to another record" in found.output
    assert f"of lot {dangling} (release): the signature it names does not exist" in found.output
    assert f"of lot {good} " not in found.output
