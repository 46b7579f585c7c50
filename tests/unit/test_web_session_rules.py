"""Pure web-session rules: cookie round trip, sliding expiry, audiences, CSRF tokens, next URLs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erp_core.auth import session, tokens
from erp_core.auth.errors import InvalidTokenError
from erp_core.web.session import safe_next

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
SECRET = "unit-test-secret-0123456789abcdef0123"
IDLE = timedelta(minutes=15)


def open_session(*, username: str, secret: str, now: datetime, idle: timedelta) -> str:
    return session.renew(
        session.new_session(username=username, now=now), secret=secret, now=now, idle=idle
    )


def test_session_roundtrip_and_idle_boundary() -> None:
    cookie = open_session(username="lena", secret=SECRET, now=T0, idle=IDLE)
    found = session.read_session(cookie, secret=SECRET, now=T0 + IDLE - timedelta(seconds=1))
    assert (found.username, found.started_at) == ("lena", T0)
    with pytest.raises(InvalidTokenError, match="expired"):
        session.read_session(cookie, secret=SECRET, now=T0 + IDLE)


def test_renewal_slides_the_expiry_but_keeps_id_and_start() -> None:
    cookie = open_session(username="lena", secret=SECRET, now=T0, idle=IDLE)
    first = session.read_session(cookie, secret=SECRET, now=T0)
    later = T0 + timedelta(minutes=14)
    renewed = session.renew(first, secret=SECRET, now=later, idle=IDLE)
    again = session.read_session(renewed, secret=SECRET, now=later + timedelta(minutes=14))
    assert again == first
    with pytest.raises(InvalidTokenError):
        session.read_session(renewed, secret=SECRET, now=later + IDLE)


def test_each_sign_in_is_a_new_session_with_its_own_csrf_token() -> None:
    a = session.read_session(
        open_session(username="lena", secret=SECRET, now=T0, idle=IDLE),
        secret=SECRET,
        now=T0,
    )
    b = session.read_session(
        open_session(username="lena", secret=SECRET, now=T0, idle=IDLE),
        secret=SECRET,
        now=T0,
    )
    assert a.sid != b.sid
    token = session.csrf_token(a, secret=SECRET)
    assert session.tokens_match(token, session.csrf_token(a, secret=SECRET))
    assert not session.tokens_match(token, session.csrf_token(b, secret=SECRET))
    assert not session.tokens_match(token, session.csrf_token(a, secret=SECRET + "x"))
    assert not session.tokens_match(token, None)
    assert not session.tokens_match(token, "")


def test_api_tokens_and_session_cookies_are_not_interchangeable() -> None:
    api = tokens.issue(username="lena", secret=SECRET, now=T0, lifetime=IDLE)
    cookie = open_session(username="lena", secret=SECRET, now=T0, idle=IDLE)
    with pytest.raises(InvalidTokenError):
        session.read_session(api, secret=SECRET, now=T0)
    with pytest.raises(InvalidTokenError):
        tokens.subject(cookie, secret=SECRET, now=T0)


def test_a_web_audience_token_without_session_claims_is_refused() -> None:
    bare = tokens.issue(
        username="lena", secret=SECRET, now=T0, lifetime=IDLE, audience=session.AUDIENCE
    )
    with pytest.raises(InvalidTokenError, match="not a web session"):
        session.read_session(bare, secret=SECRET, now=T0)


@given(st.text(max_size=40))
def test_tampered_cookies_are_refused(noise: str) -> None:
    cookie = open_session(username="lena", secret=SECRET, now=T0, idle=IDLE)
    header, payload, sig = cookie.split(".")
    forged = f"{header}.{payload}{noise}.{sig}" if noise else f"{header}.{payload}.{sig[::-1]}"
    if forged == cookie:
        return
    with pytest.raises(InvalidTokenError):
        session.read_session(forged, secret=SECRET, now=T0)


@given(st.text(max_size=60))
def test_next_is_always_a_local_path(url: str) -> None:
    target = safe_next(url)
    assert target.startswith("/")
    assert not target.startswith("//")
    assert "\\" not in target
    assert not any(c.isspace() or not c.isprintable() for c in target)
    assert target in (url, "/")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/lots/5?x=1", "/lots/5?x=1"),
        ("//evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("/\t/evil.example", "/"),
        ("/lots\n", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_next_examples(url: str | None, expected: str) -> None:
    assert safe_next(url) == expected
