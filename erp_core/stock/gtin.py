"""GS1 GTIN check-digit validation (pure); the database checks the same rule in erp.gtin_valid."""

from __future__ import annotations

GTIN_LENGTHS = frozenset({8, 12, 13, 14})


def check_digit(body: str) -> int:
    """The GS1 check digit of ``body`` (the digits before it): weights 3,1,3,… from the right."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10


def is_valid_gtin(gtin: str) -> bool:
    """True for 8, 12, 13 or 14 ASCII digits whose last digit is the right check digit."""
    if len(gtin) not in GTIN_LENGTHS or not (gtin.isascii() and gtin.isdigit()):
        return False
    return check_digit(gtin[:-1]) == int(gtin[-1])
