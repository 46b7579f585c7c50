"""The lot status workflow (pure); migration 0005 stores the same pairs for its trigger.

quarantine → released | rejected | on_hold; released → on_hold | recalled;
on_hold → released | rejected | recalled | quarantine; recalled → rejected;
rejected is final.
"""

from __future__ import annotations

from typing import Literal

LotStatus = Literal["quarantine", "released", "rejected", "on_hold", "recalled"]
STATUSES: tuple[LotStatus, ...] = ("quarantine", "released", "rejected", "on_hold", "recalled")

ALLOWED: frozenset[tuple[str, str]] = frozenset(
    {
        ("quarantine", "released"),
        ("quarantine", "rejected"),
        ("quarantine", "on_hold"),
        ("released", "on_hold"),
        ("released", "recalled"),
        ("on_hold", "released"),
        ("on_hold", "rejected"),
        ("on_hold", "recalled"),
        ("on_hold", "quarantine"),
        ("recalled", "rejected"),
    }
)


def may_change(old: str, new: str) -> bool:
    """True if a lot in status ``old`` may be put in status ``new``."""
    return (old, new) in ALLOWED
