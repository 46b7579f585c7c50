"""Production's refusals: each a ConflictError (409) with a code the pages show as words."""

from __future__ import annotations

from erp_core.errors import ConflictError


class ProductionConflictError(ConflictError):
    """A production rule refused the request; ``code`` names the rule."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
