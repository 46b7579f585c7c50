"""Errors of master data, under the ERP root (``erp_core.http_errors`` answers them).

Validation problems reuse ``InvalidArgumentError`` (422, naming the field); a request that
is well formed but clashes with the records (an overlapping sensor assignment, a duplicate
key, a retired record, a change recorded history forbids) is a ``ConflictError`` (409).
"""

from __future__ import annotations

from erp_core.errors import ConflictError, InvalidArgumentError


class InvalidGtinError(InvalidArgumentError):
    """A GTIN that is not 8, 12, 13 or 14 digits with a correct GS1 check digit."""

    def __init__(self, gtin: str, reason: str) -> None:
        super().__init__("gtin", gtin, f"not a GTIN-8/12/13/14 with a valid check digit: {reason}")


class OverlappingAssignmentError(ConflictError):
    """A sensor assigned to two locations (or twice) over overlapping times."""

    code = "overlapping_assignment"

    def __init__(self, sensor_id: int) -> None:
        super().__init__(f"sensor {sensor_id} is already assigned during part of that time")
        self.sensor_id = sensor_id


class DuplicateError(ConflictError):
    """A record whose unique key (GTIN, lot number, location code, …) already exists."""

    code = "duplicate"

    def __init__(self, kind: str, key: object) -> None:
        super().__init__(f"{kind} {key} already exists")
        self.kind = kind
        self.key = key


class DuplicateGtinError(ConflictError):
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


class RetiredError(ConflictError):
    """A write that refers to a retired item or location (no new stock, movements or use)."""

    code = "retired"

    def __init__(self, kind: str, key: object, retired_at: object) -> None:
        super().__init__(f"{kind} {key} is retired since {retired_at}: it takes no new records")
        self.kind = kind
        self.key = key


class HistoryLockedError(ConflictError):
    """A master-data change that would change what recorded history means."""

    code = "history_locked"


class InUseError(ConflictError):
    """Retiring an item or location that still holds stock or is still in use."""

    code = "in_use"


class ReleaseEvidenceError(ConflictError):
    """A change that would alter the evidence of a release decision in force."""

    code = "release_evidence"
