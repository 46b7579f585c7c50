"""The record key: the secret outside the database that anchors and signatures are bound with.

A key file holds one key per line, ``<key id> <secret as 64+ hex digits>``; blank lines
and ``#`` comments are ignored. The **last** key signs; every key in the file verifies,
so rotating a key is appending a new line and keeping the old ones. Each use derives
its own key from the secret (HMAC-SHA256 of the purpose's label), so the audit anchors,
the electronic signatures and the password bindings (``erp_core.auth.binding``) never
share a MAC key although one file is kept.

Keep the file out of the database and out of its backups (docs/backup-restore.md): a
database writer who held it could mint signatures and re-anchor a rewritten chain.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from erp_core.audit.errors import RecordKeyError

KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MIN_SECRET_BYTES = 32
ANCHOR = "audit-anchor"
SIGNATURE = "signature"
PASSWORD = "password"  # noqa: S105 - the label of a purpose, not a password


@dataclass(frozen=True, slots=True)
class RecordKey:
    """One key of the key file."""

    key_id: str
    secret: bytes

    def derived(self, purpose: str) -> bytes:
        """The key for one purpose (``ANCHOR``, ``SIGNATURE``, ``PASSWORD``), from the secret."""
        return hmac.new(self.secret, f"coldtrace/{purpose}/v1".encode(), hashlib.sha256).digest()

    def mac(self, purpose: str, message: str) -> str:
        """HMAC-SHA256 (hex) of ``message`` (UTF-8) under the key for ``purpose``."""
        return hmac.new(self.derived(purpose), message.encode(), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return f"RecordKey({self.key_id!r}, <secret>)"


@dataclass(frozen=True, slots=True)
class Keyring:
    """Every key of a key file, oldest first; the newest one signs."""

    keys: tuple[RecordKey, ...]

    @property
    def current(self) -> RecordKey:
        """The key new anchors and signatures are made with."""
        return self.keys[-1]

    def get(self, key_id: str) -> RecordKey | None:
        """The key with this id, or None if the file does not hold it (any more)."""
        return next((k for k in self.keys if k.key_id == key_id), None)


def parse(text: str, *, source: str) -> Keyring:
    """The keys in a key file's text; RecordKeyError names the first bad line."""
    keys: list[RecordKey] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        where = f"{source}, line {number}"
        if len(parts) != 2 or not KEY_ID.match(parts[0]):
            raise RecordKeyError(f"{where}: expected '<key id> <hex secret>'")
        try:
            secret = bytes.fromhex(parts[1])
        except ValueError as err:
            raise RecordKeyError(f"{where}: the secret is not hex digits") from err
        if len(secret) < MIN_SECRET_BYTES:
            raise RecordKeyError(f"{where}: the secret needs {MIN_SECRET_BYTES}+ bytes")
        if any(k.key_id == parts[0] for k in keys):
            raise RecordKeyError(f"{where}: key id {parts[0]} appears twice")
        keys.append(RecordKey(parts[0], secret))
    if not keys:
        raise RecordKeyError(f"{source}: no key in the file")
    return Keyring(tuple(keys))


def load(path: Path) -> Keyring:
    """Read a key file; RecordKeyError if it is missing, unreadable or malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise RecordKeyError(f"record key file {path}: {err.strerror or err}") from err
    return parse(text, source=str(path))


def new_key_file(path: Path, *, key_id: str) -> RecordKey:
    """Add a fresh random key to ``path`` (created with mode 0600), which then signs."""
    if not KEY_ID.match(key_id):
        raise RecordKeyError(f"key id {key_id!r}: use 1-64 letters, digits, '.', '_' or '-'")
    if path.exists() and load(path).get(key_id) is not None:
        raise RecordKeyError(f"{path} already holds a key {key_id}")
    key = RecordKey(key_id, secrets.token_bytes(MIN_SECRET_BYTES))
    header = "" if path.exists() else "# ColdTrace record keys: the last line signs, all verify.\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(f"{header}{key.key_id} {key.secret.hex()}\n")
        f.flush()
        os.fsync(f.fileno())
    return key
