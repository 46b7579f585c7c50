"""Password hashing with argon2id (argon2-cffi); the only module that sees hashes."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` with a fresh salt."""
    return PasswordHasher().hash(password)


def check_password(password_hash: str, password: str) -> bool:
    """True if ``password`` matches ``password_hash``; False for a mismatch or a bad hash."""
    try:
        return PasswordHasher().verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def burn_time(password: str) -> None:
    """Spend the time of one check, so unknown usernames answer as slowly as known ones."""
    check_password(_dummy_hash(), password)


@cache
def _dummy_hash() -> str:
    return hash_password("not-a-real-password-for-timing")
