"""The ERP error tree: one root, structured subclasses; HTTP status codes are chosen elsewhere.

Services raise these; only the API layer (``erp_core.http_errors``) turns them into
responses, so a service can be called the same way from a job, a CLI or a test.
"""

from __future__ import annotations

from datetime import datetime


class ErpError(Exception):
    """Root of every error the ERP core raises on purpose."""


class NotFoundError(ErpError):
    """A record the caller named does not exist."""

    def __init__(self, kind: str, key: object) -> None:
        super().__init__(f"{kind} {key} not found")
        self.kind = kind
        self.key = key


class InvalidRangeError(ErpError):
    """A time range whose start is not before its end."""

    def __init__(self, start: datetime, end: datetime) -> None:
        super().__init__(f"start ({start.isoformat()}) must be before end ({end.isoformat()})")
        self.start = start
        self.end = end


class InvalidArgumentError(ErpError):
    """An argument outside the values a service accepts; ``name`` says which one."""

    def __init__(self, name: str, value: object, reason: str) -> None:
        super().__init__(f"{name}={value!r}: {reason}")
        self.name = name
        self.value = value
        self.reason = reason


class ConflictError(ErpError):
    """The request clashes with the stored records; ``code`` names the rule (409).

    Each domain's conflicts subclass it (``erp_core.masterdata.errors`` and the like),
    so one handler answers them all the same way.
    """

    code = "conflict"
