"""The coldchain error tree: one root, structured subclasses."""

from __future__ import annotations


class ColdchainError(Exception):
    """Root of every error the cold-chain math raises on purpose."""


class ProfileError(ColdchainError):
    """An alarm profile that is inconsistent or malformed; ``profile`` names it."""

    def __init__(self, profile: str, reason: str) -> None:
        super().__init__(f"alarm profile {profile!r}: {reason}")
        self.profile = profile
        self.reason = reason


class ReadingsError(ColdchainError):
    """Readings handed to the math that break its preconditions (lengths, order)."""
