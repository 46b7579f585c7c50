"""Errors of deviations (answered by ``erp_core.deviations.api``)."""

from __future__ import annotations

from erp_core.errors import ErpError


class DeviationClosedError(ErpError):
    """A disposition for a deviation that is already closed (409)."""

    def __init__(self, lot_id: int, deviation_id: int) -> None:
        super().__init__(f"lot {lot_id}: deviation {deviation_id} is already closed")
        self.lot_id = lot_id
        self.deviation_id = deviation_id
