"""JWT access tokens (HS256, pyjwt); expiry is checked against the injected clock."""

from __future__ import annotations

from datetime import datetime, timedelta

import jwt

from erp_core.auth.errors import InvalidTokenError

ALGORITHM = "HS256"
AUDIENCE = "coldtrace-api"


def issue(*, username: str, secret: str, now: datetime, lifetime: timedelta) -> str:
    """A signed token for ``username`` valid from ``now`` for ``lifetime``."""
    claims = {
        "sub": username,
        "aud": AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def subject(token: str, *, secret: str, now: datetime) -> str:
    """The username a valid, unexpired token was issued to; InvalidTokenError otherwise."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            options={"require": ["sub", "exp", "iat"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError as err:
        raise InvalidTokenError(str(err)) from err
    exp = claims["exp"]
    if not isinstance(exp, int) or now.timestamp() >= exp:
        raise InvalidTokenError("expired")
    sub = claims["sub"]
    if not isinstance(sub, str) or not sub:
        raise InvalidTokenError("no subject")
    return sub
