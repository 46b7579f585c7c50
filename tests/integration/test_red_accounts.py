"""Red team (issue 9): what an administrator or a database writer can do with an account that signs.

Both were strict xfails on the merged issue 9 work; they pass since passwords are bound
to the record key (``erp_core.auth.binding``) and accounts that sign are reset by two
people (``erp_core.auth.resets``).
"""

from __future__ import annotations

import psycopg
import pytest
from argon2 import PasswordHasher

from erp_core.audit.service import set_actor
from tests.integration.test_release import PASSWORD, Api, api, fridge_with_lot  # noqa: F401

ADMIN_CHOSEN = "Admin-Knows-This-One-7"


def test_an_administrator_cannot_sign_as_a_qa_user_after_resetting_the_password(
    api: Api,  # noqa: F811 - the fixture
    db_url: str,
) -> None:
    """Before: the reset handed qa's one-time password to the administrator, who used it
    first, chose the "final" password and signed a release as qa."""
    lot, _ = fridge_with_lot(api, db_url, code="FX", lot_number="ADMIN-1")
    client = api.client
    admin = client.post("/api/auth/token", data={"username": "admin", "password": PASSWORD})
    as_admin = {"Authorization": f"Bearer {admin.json()['access_token']}"}
    reset = client.post(
        "/api/users/qa/reset-password", json={"reason": "ticket 7"}, headers=as_admin
    )
    assert reset.status_code == 200, reset.text
    temporary = reset.json()["temporary_password"]
    assert temporary is None, "the administrator was shown qa's one-time password"
    assert reset.json()["confirmation_required"] is True
    # ... nor may the administrator choose it, or confirm the request themselves
    chosen = client.post(
        "/api/users/qa/reset-password",
        json={"reason": "ticket 7", "temporary_password": ADMIN_CHOSEN},
        headers=as_admin,
    )
    assert chosen.status_code == 409
    confirmed = client.post(
        f"/api/password-resets/{reset.json()['reset_id']}/confirm",
        json={"password": PASSWORD},
        headers=as_admin,
    )
    assert confirmed.status_code == 403
    # ... nor make a QA manager of their own to confirm it: it gets no password from them
    helper = {"username": "helper", "full_name": "Hel Per", "roles": ["qa_manager"]}
    refused = client.post("/api/users", json={**helper, "password": ADMIN_CHOSEN}, headers=as_admin)
    assert refused.status_code == 409
    made = client.post("/api/users", json=helper, headers=as_admin)
    assert made.status_code == 201
    assert made.json()["password_reset_id"] is not None
    # what worked before: sign in as qa with a password of the administrator's choosing
    first = client.post("/api/auth/token", data={"username": "qa", "password": ADMIN_CHOSEN})
    assert first.status_code == 401
    signed = client.post(
        f"/api/lots/{lot}/release",
        json={"action": "release", "password": ADMIN_CHOSEN},
        headers={"Authorization": f"Bearer {first.json().get('access_token')}"},
    )
    assert signed.status_code in (401, 403), f"the administrator signed as qa: {signed.json()}"


def test_a_database_writer_cannot_set_a_password_and_sign_as_that_user(
    api: Api,  # noqa: F811 - the fixture
    db_url: str,
) -> None:
    """With the application role's password (every service has it), set QA's password
    hash to one of your own, audited as "password changed by the user"; before, the API
    accepted it, and the signature it made was genuine: it verified."""
    lot, _ = fridge_with_lot(api, db_url, code="FY", lot_number="DBW-1")
    mine = "Database-Writer-Knows-1"
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="qa", reason="password changed by the user")
        with pytest.raises(psycopg.errors.CheckViolation, match="higher password_serial"):
            conn.execute(
                "UPDATE erp.users SET password_hash = %s WHERE username = 'qa'",
                (PasswordHasher().hash(mine),),
            )
    # the writer learns and moves the serial on too
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="qa", reason="password changed by the user")
        conn.execute(
            "UPDATE erp.users SET password_hash = %s, password_serial = password_serial + 1"
            " WHERE username = 'qa'",
            (PasswordHasher().hash(mine),),
        )
    token = api.client.post("/api/auth/token", data={"username": "qa", "password": mine})
    assert token.status_code == 401, "the API accepted a password hash it did not write"
    assert "not bound to this server's record key" in token.json()["detail"]
    signed = api.client.post(
        f"/api/lots/{lot}/release",
        json={"action": "release", "password": mine},
        headers={"Authorization": f"Bearer {token.json().get('access_token')}"},
    )
    assert signed.status_code in (401, 403)
