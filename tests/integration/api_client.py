"""A TestClient wrapper for API tests: acts as a named user with a token of its own."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from erp_core.auth import tokens


class Api:
    """Calls the API as ``who`` and checks the status code it expects."""

    def __init__(self, client: TestClient, *, secret: str, now: datetime) -> None:
        self.client = client
        self.secret = secret
        self.now = now

    def headers(self, who: str) -> dict[str, str]:
        token = tokens.issue(
            username=who, secret=self.secret, now=self.now, lifetime=timedelta(hours=1)
        )
        return {"Authorization": f"Bearer {token}"}

    def post(self, who: str, path: str, body: object, status: int = 201) -> Any:
        r = self.client.post(path, json=body, headers=self.headers(who))
        assert r.status_code == status, r.text
        return r.json()

    def get(self, who: str, path: str) -> Any:
        r = self.client.get(path, headers=self.headers(who))
        assert r.status_code == 200, r.text
        return r.json()
