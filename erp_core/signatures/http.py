"""How an endpoint that signs answers a refused signature: 403 with the reason."""

from __future__ import annotations

from fastapi import HTTPException

from erp_core.auth.errors import AccountLockedError
from erp_core.signatures.errors import SignatureRefusedError

REFUSALS = (SignatureRefusedError, AccountLockedError)
"""What ``service.sign`` raises when the password is wrong or the account is locked."""


def refused(err: SignatureRefusedError | AccountLockedError) -> HTTPException:
    """The 403 answer for a signature ``sign`` refused."""
    return HTTPException(403, f"signature refused: {err}")
