"""Signature errors, under the ERP root; the API answers 403 for a refusal, 409 otherwise."""

from __future__ import annotations

from erp_core.errors import ErpError


class SignatureError(ErpError):
    """Root of the electronic-signature errors."""


class SignatureRefusedError(SignatureError):
    """The signature was not made: wrong password, or the signer is not the acting user."""

    def __init__(self, username: str, reason: str) -> None:
        super().__init__(f"signature by {username} refused: {reason}")
        self.username = username
        self.reason = reason


class UnsignableContentError(SignatureError):
    """Record content with a value that has no canonical form (naive time, NaN, bytes...)."""

    def __init__(self, value: object) -> None:
        super().__init__(f"record content cannot be signed: {value!r} has no canonical form")
        self.value = value
