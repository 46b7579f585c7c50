"""Errors of shipments: a step out of order (409)."""

from __future__ import annotations

from erp_core.errors import ConflictError


class ShipmentStateError(ConflictError):
    """A shipment step out of order (arrive before depart, depart twice)."""

    code = "shipment_state"
