"""Signature value types and the request/response models release endpoints use."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from erp_core.signatures.canonical import manifestation


class Meaning(StrEnum):
    """The meanings a ColdTrace signature may carry (Part 11 §11.50(a)(3))."""

    RELEASED = "Released"
    REJECTED = "Rejected"
    REVIEWED = "Reviewed"
    APPROVED = "Approved"
    APPROVED_OVERRIDE = "Approved override"


@dataclass(frozen=True, slots=True)
class Signature:
    """One stored electronic signature."""

    id: int
    user_id: int
    username: str
    full_name: str
    signed_at: datetime
    meaning: str
    comment: str | None
    record_table: str
    record_key: dict[str, Any]
    record_hash: str
    signature_hash: str
    algorithm: str = "hmac-sha256"  # or "sha256": made before keyed signatures (0018)
    key_id: str | None = None

    @property
    def manifestation(self) -> str:
        """'Signed by <full name> (<username>) on <UTC time>, meaning: <meaning>'."""
        return manifestation(
            full_name=self.full_name,
            username=self.username,
            signed_at=self.signed_at,
            meaning=self.meaning,
        )


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """A signature and whether it still matches the record it is shown with.

    Valid only when keyed with a key this server holds and every check passes; an
    unkeyed (legacy) signature always carries the problem that says so.
    """

    signature: Signature
    problems: tuple[str, ...]

    @property
    def valid(self) -> bool:
        """True if the signature is bound to this record as it is now, with the server key."""
        return not self.problems


class SignatureRequest(BaseModel):
    """What a signer sends with a signed action: the password again, meaning and comment."""

    password: str = Field(min_length=1, max_length=1024, description="The signer's password")
    meaning: Meaning
    comment: str | None = Field(default=None, max_length=2000)


class SignatureOut(BaseModel):
    """A signature as shown next to the signed record."""

    id: int
    username: str
    full_name: str
    signed_at: datetime
    meaning: str
    comment: str | None
    manifestation: str
    valid: bool
    problems: list[str]

    @classmethod
    def of(cls, check: SignatureCheck) -> SignatureOut:
        """The response model for a checked signature."""
        s = check.signature
        return cls(
            id=s.id,
            username=s.username,
            full_name=s.full_name,
            signed_at=s.signed_at,
            meaning=s.meaning,
            comment=s.comment,
            manifestation=s.manifestation,
            valid=check.valid,
            problems=list(check.problems),
        )
