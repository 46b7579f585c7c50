"""Audit errors, under the ERP root."""

from __future__ import annotations

from erp_core.errors import ErpError


class AuditError(ErpError):
    """Root of the audit trail's errors."""


class NoTransactionError(AuditError):
    """``set_actor`` called outside a transaction: SET LOCAL would be lost at once."""

    def __init__(self) -> None:
        super().__init__(
            "set_actor needs an open transaction (autocommit connection outside "
            "conn.transaction()): the acting user would not reach the audited change"
        )


class MissingActorError(AuditError):
    """A regulated change attempted without naming the acting user."""

    def __init__(self, user: str) -> None:
        super().__init__(f"the acting user must be a non-empty name, got {user!r}")
        self.user = user


class RecordKeyError(AuditError):
    """The record key file is missing, unreadable or malformed; the message names the line."""


class AnchorError(AuditError):
    """The external anchor of the audit chain cannot be written or read as it must be."""
