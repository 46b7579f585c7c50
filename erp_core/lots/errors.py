"""Errors of lots: a status change the release workflow does not allow (409)."""

from __future__ import annotations

from erp_core.errors import ConflictError


class StatusTransitionError(ConflictError):
    """A lot status change that the release workflow does not allow."""

    code = "status_transition"

    def __init__(self, lot_id: int, old: str, new: str) -> None:
        super().__init__(f"lot {lot_id} may not go from {old} to {new}")
        self.lot_id = lot_id
        self.old = old
        self.new = new
