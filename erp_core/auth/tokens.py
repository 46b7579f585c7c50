"""JWT tokens (HS256, pyjwt); expiry is checked against the injected clock.

Two audiences share this code: API bearer tokens (``coldtrace-api``) and web-UI session
cookies (``coldtrace-web``, see ``erp_core.auth.session``). A token of one audience is
refused as the other, so a session cookie is never a bearer token and vice versa.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import jwt

from erp_core.auth.errors import InvalidTokenError

ALGORITHM = "HS256"
AUDIENCE = "coldtrace-api"


def issue(  # noqa: PLR0913 - every claim is an explicit keyword
    *,
    username: str,
    secret: str,
    now: datetime,
    lifetime: timedelta,
    audience: str = AUDIENCE,
    extra: Mapping[str, str | int] | None = None,
) -> str:
    """A signed token for ``username`` valid from ``now`` for ``lifetime``."""
    claims: dict[str, Any] = dict(extra or {})
    claims.update(
        sub=username,
        aud=audience,
        iat=int(now.timestamp()),
        exp=int((now + lifetime).timestamp()),
    )
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def claims(token: str, *, secret: str, now: datetime, audience: str = AUDIENCE) -> dict[str, Any]:
    """The claims of a valid, unexpired token with a subject; InvalidTokenError otherwise."""
    try:
        found: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=audience,
            options={"require": ["sub", "exp", "iat"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError as err:
        raise InvalidTokenError(str(err)) from err
    exp = found["exp"]
    if not isinstance(exp, int) or now.timestamp() >= exp:
        raise InvalidTokenError("expired")
    sub = found["sub"]
    if not isinstance(sub, str) or not sub:
        raise InvalidTokenError("no subject")
    return found


def subject(token: str, *, secret: str, now: datetime) -> str:
    """The username a valid, unexpired API token was issued to; InvalidTokenError otherwise."""
    return str(claims(token, secret=secret, now=now)["sub"])
