"""Secrets out of log lines and stored error texts (webhook URLs, tokens, SMTP passwords).

A webhook URL often *is* the credential (a chat service's incoming-webhook path, a
``?token=`` query), so it is shown as its scheme and host with a short fingerprint:
``https://hooks.example.org/…#3f9c2a1b`` — enough to tell two recipients apart and to
find the route, useless to post with. Pure functions; the channels and the notifier
apply them to every text that may hold one (error messages of HTTP and SMTP libraries
quote the URL or the server's answer).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, unquote, urlsplit

SHOWN_CHANNELS_AS_IS = frozenset({"email", "sms", "voice", "mqtt"})
_MASK = "(secret)"
# A shorter "secret" would mask ordinary words of the text.
MIN_SECRET = 4
# Path segments this long may be tokens (a chat webhook's /services/T0/B0/XYZ...).
MIN_SEGMENT = 8


def fingerprint(secret: str) -> str:
    """A short, stable, one-way tag of ``secret`` (8 hex digits of its SHA-256)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:8]


def redact_url(url: str) -> str:
    """``url`` with everything but scheme, host and port replaced by a fingerprint."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not even a URL: show nothing of it
        return f"…#{fingerprint(url)}"
    if not parts.scheme or not host:
        return f"…#{fingerprint(url)}"
    return f"{parts.scheme}://{host}{port}/…#{fingerprint(url)}"


def shown_address(channel: str, address: str) -> str:
    """How a delivery address may appear in logs and stored errors.

    E-mail addresses, phone numbers and topics are shown (they say who was told);
    anything else — webhook URLs — is redacted.
    """
    return address if channel in SHOWN_CHANNELS_AS_IS else redact_url(address)


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret (also percent-encoded or -decoded) replaced.

    URLs become ``redact_url``; their parts that may carry a credential (path and
    query, each query value, long path segments, the userinfo) and other secrets
    (tokens, passwords) become ``(secret)`` — servers' error pages quote the path.
    """
    masks: dict[str, str] = {}
    for secret in (s for s in secrets if s):
        if "://" in secret:
            masks[secret] = redact_url(secret)
            masks.update(dict.fromkeys(_url_parts(secret), _MASK))
        else:
            masks[secret] = _MASK
    for secret in sorted(masks, key=len, reverse=True):
        for form in {secret, unquote(secret), quote(secret, safe=":/?&=")}:
            if len(form) >= MIN_SECRET:
                text = text.replace(form, masks[secret])
    return text


def _url_parts(url: str) -> set[str]:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return set()
    found = {parts.path + (f"?{parts.query}" if parts.query else ""), parts.query}
    found |= {value for _, value in parse_qsl(parts.query, keep_blank_values=True)}
    found |= {seg for seg in parts.path.split("/") if len(seg) >= MIN_SEGMENT}
    if password:
        found.add(password)
    return {p for p in found if len(p) >= MIN_SECRET}
