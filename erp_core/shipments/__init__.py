"""Shipments: a truck carrying lots and loggers from an origin to a destination.

``models`` holds the value types, ``service`` plans, departs (lots onto the truck,
loggers assigned to it), arrives and adds legs, ``api`` the HTTP views. Every move is a
movement (``erp_core.movements``), so a shipped lot's history needs nothing of its own.
"""
