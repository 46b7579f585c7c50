"""Helpers of the web-UI tests: sign in through the real form, read a page's CSRF token."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from httpx import Response

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token in the first form of a page."""
    found = _CSRF.search(html)
    assert found is not None, "no CSRF field on the page"
    return found.group(1)


def sign_in_response(
    client: TestClient, username: str, password: str, *, next_url: str = "/"
) -> Response:
    """Open the sign-in page and send its form; the raw answer (no redirect followed)."""
    form = client.get("/sign-in", params={"next": next_url})
    assert form.status_code == 200, form.text
    data = {
        "username": username,
        "password": password,
        "next": next_url,
        "csrf_token": csrf_of(form.text),
    }
    return client.post("/sign-in", data=data, follow_redirects=False)


def sign_in(client: TestClient, username: str, password: str) -> None:
    """Sign ``client`` in as ``username``; its cookie jar then holds the session."""
    r = sign_in_response(client, username, password)
    assert r.status_code == 303, r.text
