"""Canonical content and hashes of signed records, and the signature manifestation; pure.

A signature is bound to sha256 over (table, key, content) in a canonical JSON form:
keys sorted, no whitespace, UTF-8, times in UTC. The same record always hashes alike
whatever the dict order or time zone it was read in; any change of a value, the key or
the table gives another hash, so a signature cannot be moved to another record.

The signature itself (who, when, meaning, comment, the record's hash) is an HMAC-SHA256
with the server's record key (``signature_mac``, algorithm ``hmac-sha256``): the key is
not in the database, so someone who can write rows cannot make one that verifies.
Signatures made before revision 0018 carry a plain sha256 of the same fields
(``signature_hash``, algorithm ``sha256``), which anyone could have computed.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from erp_core.audit.keys import SIGNATURE, RecordKey
from erp_core.signatures.errors import UnsignableContentError

KEYED = "hmac-sha256"
LEGACY = "sha256"


def _plain(value: object) -> object:  # noqa: C901, PLR0911 - one branch per supported type
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise UnsignableContentError(value)
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise UnsignableContentError(value)
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        raise UnsignableContentError(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise UnsignableContentError(value)


def canonical_json(value: object) -> str:
    """``value`` as canonical JSON (sorted keys, compact, times in UTC)."""
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def normalise(value: Mapping[str, Any]) -> dict[str, Any]:
    """``value`` as the plain JSON object it is stored as (times as UTC strings)."""
    result = json.loads(canonical_json(value))
    assert isinstance(result, dict)
    return result


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def record_hash(*, table: str, key: Mapping[str, Any], content: Mapping[str, Any]) -> str:
    """sha256 (hex) of a record's canonical (table, key, content)."""
    return _sha256(canonical_json({"table": table, "key": key, "content": content}))


def _signed_fields(  # noqa: PLR0913 - every signed field is explicit
    *,
    user_id: int,
    username: str,
    full_name: str,
    signed_at: datetime,
    meaning: str,
    comment: str | None,
    record_table: str,
    record_key: Mapping[str, Any],
    record_hash: str,
) -> dict[str, object]:
    return {
        "user_id": user_id,
        "username": username,
        "full_name": full_name,
        "signed_at": signed_at,
        "meaning": meaning,
        "comment": comment,
        "record_table": record_table,
        "record_key": record_key,
        "record_hash": record_hash,
    }


def signature_hash(  # noqa: PLR0913 - every signed field is explicit
    *,
    user_id: int,
    username: str,
    full_name: str,
    signed_at: datetime,
    meaning: str,
    comment: str | None,
    record_table: str,
    record_key: Mapping[str, Any],
    record_hash: str,
) -> str:
    """sha256 (hex) binding who, when and why to the record hash: legacy, unkeyed."""
    return _sha256(
        canonical_json(
            _signed_fields(
                user_id=user_id,
                username=username,
                full_name=full_name,
                signed_at=signed_at,
                meaning=meaning,
                comment=comment,
                record_table=record_table,
                record_key=record_key,
                record_hash=record_hash,
            )
        )
    )


def signature_mac(  # noqa: PLR0913 - every signed field is explicit
    key: RecordKey,
    *,
    user_id: int,
    username: str,
    full_name: str,
    signed_at: datetime,
    meaning: str,
    comment: str | None,
    record_table: str,
    record_key: Mapping[str, Any],
    record_hash: str,
) -> str:
    """HMAC-SHA256 (hex) with the server key over who, when, why, the record hash and key id."""
    fields = _signed_fields(
        user_id=user_id,
        username=username,
        full_name=full_name,
        signed_at=signed_at,
        meaning=meaning,
        comment=comment,
        record_table=record_table,
        record_key=record_key,
        record_hash=record_hash,
    )
    return key.mac(SIGNATURE, canonical_json(fields | {"algorithm": KEYED, "key_id": key.key_id}))


def manifestation(*, full_name: str, username: str, signed_at: datetime, meaning: str) -> str:
    """The human-readable signature (Part 11 §11.50): shown wherever the record is shown."""
    at = signed_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"Signed by {full_name} ({username}) on {at}, meaning: {meaning}"
