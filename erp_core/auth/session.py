"""Web-UI sessions: a JWT in a cookie, with a sliding inactivity time-out and a CSRF token.

Pure (no HTTP, no database). The session reuses the API's JWT machinery with its own
audience, so a session cookie is verified on the server like a bearer token: signature,
audience and expiry; ``erp_core.auth.web_sessions`` adds that it was not ended. ``exp``
is the last activity plus the idle time-out; each real request re-issues the cookie
(``renew``), so the session ends after that much inactivity. ``sid`` is a random
session id that never changes while the session lives; the CSRF token of every form is
an HMAC of it, which a page of another site can neither read nor compute. The sign-in
form, which has no session yet, gets the same protection from a random nonce in a
short-lived cookie (``signin_token``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from erp_core.auth import tokens
from erp_core.auth.errors import InvalidTokenError

AUDIENCE = "coldtrace-web"


@dataclass(frozen=True, slots=True)
class WebSession:
    """A verified session: who, its id, and when it was opened by a password entry."""

    username: str
    sid: str
    started_at: datetime


def new_session(*, username: str, now: datetime) -> WebSession:
    """A new session with a fresh random id for ``username``, who has just signed in."""
    return WebSession(username=username, sid=secrets.token_urlsafe(24), started_at=now)


def renew(session: WebSession, *, secret: str, now: datetime, idle: timedelta) -> str:
    """The cookie value of ``session`` valid for ``idle`` from ``now`` (the sliding time-out)."""
    return tokens.issue(
        username=session.username,
        secret=secret,
        now=now,
        lifetime=idle,
        audience=AUDIENCE,
        extra={"sid": session.sid, "started": int(session.started_at.timestamp())},
    )


def read_session(cookie: str, *, secret: str, now: datetime) -> WebSession:
    """The session a valid, unexpired cookie carries; InvalidTokenError otherwise."""
    found = tokens.claims(cookie, secret=secret, now=now, audience=AUDIENCE)
    sid, started = found.get("sid"), found.get("started")
    if not isinstance(sid, str) or not sid or not isinstance(started, int):
        raise InvalidTokenError("not a web session")
    return WebSession(
        username=str(found["sub"]),
        sid=sid,
        started_at=datetime.fromtimestamp(started, tz=now.tzinfo),
    )


def csrf_token(session: WebSession, *, secret: str) -> str:
    """The token every form of ``session`` carries in a hidden field."""
    return _mac(secret, f"csrf:{session.sid}")


def signin_token(nonce: str, *, secret: str) -> str:
    """The hidden-field token of a sign-in form whose browser holds ``nonce`` in a cookie."""
    return _mac(secret, f"signin:{nonce}")


def new_nonce() -> str:
    """A random nonce for the sign-in form's cookie."""
    return secrets.token_urlsafe(24)


def tokens_match(expected: str, given: str | None) -> bool:
    """Constant-time comparison; a missing token never matches."""
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def _mac(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
