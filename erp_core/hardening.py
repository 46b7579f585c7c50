"""HTTP hardening around the whole app: body size, invalid text, security headers, proxies.

Plain ASGI middleware (no buffering), installed by ``install`` outermost, so each runs
before routing, authentication and body parsing:

* ``BodyLimitMiddleware`` — a body over ``max_bytes`` is refused with 413: at once when
  ``Content-Length`` says so, otherwise as soon as the streamed bytes pass the limit
  (chunked uploads); nothing past the limit is read or kept;
* ``InvalidTextMiddleware`` — a NUL or another control character in the path or the
  decoded query string is 400 (PostgreSQL text cannot hold NUL; file paths neither),
  except GS (0x1D, a GS1 scan's FNC1 separator) in the few search fields that take a
  pasted scan (``SCAN_FIELDS``: the lots list's ``q``);
  NUL and invalid Unicode inside bodies are caught where they would reach the database
  (``erp_core.http_errors``), whatever field they came in;
* ``SecurityHeadersMiddleware`` — every answer carries a Content-Security-Policy without
  inline script, ``frame-ancestors 'none'``, ``X-Content-Type-Options: nosniff``, a
  Referrer-Policy, and HSTS when the request came over HTTPS;
* forwarded headers (``X-Forwarded-For``/``-Proto``) are believed only from
  ``trusted_proxies`` (uvicorn's ProxyHeadersMiddleware, nothing trusted by default).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import parse_qsl, unquote_to_bytes

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

# Pages of the offline API docs: Swagger UI and ReDoc set styles from script.
DOCS_PATHS = ("/docs", "/redoc")
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
# Swagger UI and ReDoc inject <style> elements (never script): allowed there only.
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; worker-src blob:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HSTS = "max-age=31536000"
# (path, query parameter) that take a pasted barcode scan: GS (FNC1) is allowed there.
SCAN_FIELDS = frozenset({("/lots", "q")})
GS = "\x1d"
_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


def install(app: FastAPI, *, max_body_bytes: int, trusted_proxies: Iterable[str]) -> None:
    """Wrap ``app`` in the hardening middleware (call after every other middleware)."""
    app.add_middleware(InvalidTextMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(SecurityHeadersMiddleware)
    proxies = list(trusted_proxies)
    if proxies:  # outermost: client and scheme are rewritten before anything reads them
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=proxies)


class BodyLimitMiddleware:
    """413 for request bodies over ``max_bytes``, counted as they stream in.

    Past the limit the app is told the client went away (``http.disconnect``: every
    body reader stops there, whatever middleware sits between), and whatever it answers
    is replaced by the 413; the rest of the body is never read.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse a declared or streamed body over the limit; pass everything else on."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = f"request body larger than {self.max_bytes} bytes"
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _plain(send, 413, detail)
            return
        cut = _CutOff(receive, send, self.max_bytes, detail)
        try:
            await self.app(scope, cut.receive, cut.send)
        except Exception:
            if not cut.too_large:
                raise
        await cut.finish()


class _CutOff:
    """One request's body counter; past the limit the app's answer becomes the 413."""

    def __init__(self, receive: Receive, send: Send, max_bytes: int, detail: str) -> None:
        self._receive, self._send = receive, send
        self.max_bytes, self.detail = max_bytes, detail
        self.received = 0
        self.too_large = False
        self.answered = False

    async def receive(self) -> Message:
        """The next body message, or ``http.disconnect`` once the limit is passed."""
        if self.too_large:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.max_bytes:
                self.too_large = True
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: Message) -> None:
        """Pass the app's answer on, or the 413 in place of it."""
        if not self.too_large:
            self.answered = self.answered or message["type"] == "http.response.start"
            await self._send(message)
        elif not self.answered and message["type"] == "http.response.start":
            self.answered = True
            await _plain(self._send, 413, self.detail)

    async def finish(self) -> None:
        """Answer 413 if the limit was passed and nothing was answered yet."""
        if self.too_large and not self.answered:
            self.answered = True
            await _plain(self._send, 413, self.detail)


class InvalidTextMiddleware:
    """400 for NUL or other control characters in the path or query string."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Refuse a request whose path or decoded query holds a control character."""
        if scope["type"] == "http":
            problem = invalid_request_text(
                str(scope.get("path", "")), bytes(scope.get("query_string", b""))
            )
            if problem is not None:
                await _plain(send, 400, problem)
                return
        await self.app(scope, receive, send)


def invalid_request_text(path: str, query: bytes) -> str | None:
    """Why the request line may not be served, or None."""
    if _has_control(path):
        return "the path contains a control character"
    decoded = unquote_to_bytes(query.replace(b"+", b" "))
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        return "the query string is not valid UTF-8"
    if _has_control(text) and _has_control_outside_scans(path, query):
        return "the query string contains a control character"
    return None


def _has_control(text: str, allowed: str = "") -> bool:
    return any((ord(c) < 0x20 or ord(c) == 0x7F) and c not in allowed for c in text)


def _has_control_outside_scans(path: str, query: bytes) -> bool:
    """Whether a control character is anywhere but a GS in a scan field of ``path``."""
    pairs = parse_qsl(query.decode("utf-8"), keep_blank_values=True, errors="strict")
    return any(
        _has_control(key) or _has_control(value, GS if (path, key) in SCAN_FIELDS else "")
        for key, value in pairs
    )


class SecurityHeadersMiddleware:
    """Adds the security headers to every answer (keeps ones a view set itself)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Add the headers as the answer starts."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        csp = DOCS_CSP if path in DOCS_PATHS else CSP
        tls = scope.get("scheme") == "https"

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = [(b"content-security-policy", csp.encode()), *_HEADERS]
                if tls:
                    extra.append((b"strict-transport-security", HSTS.encode()))
                headers += [(n, v) for n, v in extra if n not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _plain(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
