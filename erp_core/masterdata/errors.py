"""Errors of the stock domain, under the ERP root; ``api.install`` maps conflicts to 409.

Validation problems reuse ``InvalidArgumentError`` (422, naming the field); a request that
is well formed but clashes with the records (a forbidden status change, an overlapping
sensor assignment, a duplicate key, not enough stock) is a ``StockConflictError``.
"""

from __future__ import annotations

from erp_core.errors import ErpError, InvalidArgumentError


class InvalidGtinError(InvalidArgumentError):
    """A GTIN that is not 8, 12, 13 or 14 digits with a correct GS1 check digit."""

    def __init__(self, gtin: str, reason: str) -> None:
        super().__init__("gtin", gtin, f"not a GTIN-8/12/13/14 with a valid check digit: {reason}")


class StockConflictError(ErpError):
    """The request clashes with the stored records; ``code`` names the rule."""

    code = "conflict"


class StatusTransitionError(StockConflictError):
    """A lot status change that the release workflow does not allow."""

    code = "status_transition"

    def __init__(self, lot_id: int, old: str, new: str) -> None:
        super().__init__(f"lot {lot_id} may not go from {old} to {new}")
        self.lot_id = lot_id
        self.old = old
        self.new = new


class OverlappingAssignmentError(StockConflictError):
    """A sensor assigned to two locations (or twice) over overlapping times."""

    code = "overlapping_assignment"

    def __init__(self, sensor_id: int) -> None:
        super().__init__(f"sensor {sensor_id} is already assigned during part of that time")
        self.sensor_id = sensor_id


class DuplicateError(StockConflictError):
    """A record whose unique key (GTIN, lot number, location code, …) already exists."""

    code = "duplicate"

    def __init__(self, kind: str, key: object) -> None:
        super().__init__(f"{kind} {key} already exists")
        self.kind = kind
        self.key = key


class DuplicateGtinError(StockConflictError):
    """A new item whose GTIN, in any of its forms, is already an item's (one product, one item)."""

    code = "duplicate"

    def __init__(self, gtin: str, stored: str, item_id: int, name: str) -> None:
        other_form = f" ({gtin} is another form of the GTIN-14 {stored})" if gtin != stored else ""
        super().__init__(
            f"item {item_id} ({name!r}) already has GTIN {stored}{other_form}: one product is "
            "one item; use that item, or correct the GTIN"
        )
        self.gtin = stored
        self.item_id = item_id


class InsufficientStockError(StockConflictError):
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


class ShipmentStateError(StockConflictError):
    """A shipment step out of order (arrive before depart, depart twice)."""

    code = "shipment_state"


class RetiredError(StockConflictError):
    """A write that refers to a retired item or location (no new stock, movements or use)."""

    code = "retired"

    def __init__(self, kind: str, key: object, retired_at: object) -> None:
        super().__init__(f"{kind} {key} is retired since {retired_at}: it takes no new records")
        self.kind = kind
        self.key = key


class HistoryLockedError(StockConflictError):
    """A master-data change that would change what recorded history means."""

    code = "history_locked"


class InUseError(StockConflictError):
    """Retiring an item or location that still holds stock or is still in use."""

    code = "in_use"


class BackdatingError(StockConflictError):
    """A back-dated movement that contradicts the lot's recorded history."""

    code = "backdated"


class LotQuantityError(StockConflictError):
    """A receipt that would put more of a lot in our custody than the lot's quantity."""

    code = "lot_quantity"


class ShipmentInTransitError(StockConflictError):
    """A movement of a lot at a time when it was aboard a shipment under way."""

    code = "shipment_in_transit"


class ReleaseEvidenceError(StockConflictError):
    """A change that would alter the evidence of a release decision in force."""

    code = "release_evidence"
