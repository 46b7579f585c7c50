"""Shared helpers of the access, audit and signature tests: users, clock, app client."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from erp_core.audit import keys
from erp_core.audit.service import set_actor
from erp_core.auth import binding
from erp_core.auth import service as auth_service
from erp_core.auth.models import Role, User

CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
START = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
PASSWORDS = {
    "operator": "op-Pass-4711!",
    "warehouse": "wh-Pass-4711!",
    "qa": "qa-Pass-4711!",
    "qa_manager": "qam-Pass-4711!",
    "admin": "adm-Pass-4711!",
}


@dataclass
class FakeClock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def session_keyring() -> keys.Keyring:
    """The record key of the test session (``tests/fix_services.py``), which the APIs and
    CLIs that tests start read from COLDTRACE_RECORD_KEY_FILE."""
    return keys.load(Path(os.environ["COLDTRACE_RECORD_KEY_FILE"]))


def add_user(
    db_url: str,
    username: str,
    roles: list[str],
    password: str,
    *,
    full_name: str | None = None,
    now: datetime = START,
    keyring: keys.Keyring | None = None,
) -> User:
    """A user written by SQL with a cheap argon2 hash (the parameters live in the hash, so
    checking it is cheap too), bound like the application binds it (with ``keyring``,
    default the session's record key); the service's own create_user is tested through
    the API."""
    ring = keyring if keyring is not None else session_keyring()
    hashed = CHEAP.hash(password)
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="test-setup", reason="test fixture")
        row = conn.execute(
            "INSERT INTO erp.users (username, full_name, password_hash, created_at, "
            "password_changed_at) VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (username, full_name or f"{username.title()} Person", hashed, now, now),
        ).fetchone()
        assert row is not None
        record = binding.PasswordRecord(
            user_id=int(row[0]),
            username=username,
            password_hash=hashed,
            changed_at=now,
            must_change=False,
            serial=1,
        )
        made = binding.bind(ring.current, record)
        conn.execute(
            "UPDATE erp.users SET password_serial = 1, password_key_id = %s,"
            " password_binding = %s WHERE id = %s",
            (made.key_id, made.mac, row[0]),
        )
        for role in roles:
            conn.execute(
                "INSERT INTO erp.user_roles (user_id, role, granted_at) VALUES (%s, %s, %s)",
                (row[0], Role(role), now),
            )
        return auth_service.get_user(conn, username=username)


def token_for(client: TestClient, username: str, password: str) -> str:
    r = client.post("/api/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer"
    return str(body["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
