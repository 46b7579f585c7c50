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
from urllib.parse import quote, unquote, urlsplit

SHOWN_CHANNELS_AS_IS = frozenset({"email", "sms", "voice", "mqtt"})
_MASK = "(secret)"
# A shorter "secret" would mask ordinary words of the text.
MIN_SECRET = 4


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

    URLs become ``redact_url``; other secrets (tokens, passwords) ``(secret)``.
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        shown = redact_url(secret) if "://" in secret else _MASK
        for form in {secret, unquote(secret), quote(secret, safe=":/?&=")}:
            if len(form) >= MIN_SECRET:
                text = text.replace(form, shown)
    return text
