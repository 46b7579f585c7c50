"""Errors of movements: a move that contradicts the lot's recorded history (409)."""

from __future__ import annotations

from erp_core.errors import ConflictError


class InsufficientStockError(ConflictError):
    """A move of more of a lot than the source location holds at that time."""

    code = "insufficient_stock"

    def __init__(self, lot_id: int, location_id: int, held: float, wanted: float) -> None:
        super().__init__(
            f"lot {lot_id} has {held:g} at location {location_id} at that time, not {wanted:g}"
        )
        self.lot_id = lot_id
        self.location_id = location_id
        self.held = held
        self.wanted = wanted


class BackdatingError(ConflictError):
    """A back-dated movement that contradicts the lot's recorded history."""

    code = "backdated"


class LotQuantityError(ConflictError):
    """A receipt that would put more of a lot in our custody than the lot's quantity."""

    code = "lot_quantity"


class ShipmentInTransitError(ConflictError):
    """A movement of a lot at a time when it was aboard a shipment under way."""

    code = "shipment_in_transit"
