"""MQTT topic scheme ``ct/v1/{site}/{gateway}/{kind}``.

Gateways publish ``readings``, ``tags``, ``scans`` and ``state``; ingest publishes the
committed watermark on ``ack``. Site and gateway ids are single topic levels, so they
may not contain ``/``, ``+``, ``#`` or start with ``$``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

PREFIX = "ct/v1"
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


class Kind(StrEnum):
    """What a message on a topic carries."""

    READINGS = "readings"
    TAGS = "tags"
    SCANS = "scans"
    STATE = "state"
    ACK = "ack"


class TopicError(ValueError):
    """A topic or topic part that is not in the scheme."""


def check_id(value: str, what: str) -> str:
    """Return ``value`` if it is a valid site/gateway id, else raise `TopicError`."""
    if not _ID_RE.match(value):
        raise TopicError(
            f"{what} {value!r} is not a valid id: use 1-64 letters, digits, '_', '.', ':' "
            "or '-', starting with a letter or digit"
        )
    return value


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed ColdTrace topic."""

    site: str
    gateway: str
    kind: Kind

    def __str__(self) -> str:
        return f"{PREFIX}/{self.site}/{self.gateway}/{self.kind}"

    @classmethod
    def build(cls, site: str, gateway: str, kind: Kind | str) -> Topic:
        """Validate the parts and build a topic."""
        return cls(check_id(site, "site"), check_id(gateway, "gateway"), Kind(kind))

    @classmethod
    def parse(cls, topic: str) -> Topic:
        """Parse ``ct/v1/{site}/{gateway}/{kind}``; raise `TopicError` with the reason."""
        parts = topic.split("/")
        if len(parts) != 5 or f"{parts[0]}/{parts[1]}" != PREFIX:
            raise TopicError(f"topic {topic!r} is not of the form {PREFIX}/<site>/<gateway>/<kind>")
        try:
            kind = Kind(parts[4])
        except ValueError:
            raise TopicError(f"topic {topic!r} has unknown kind {parts[4]!r}") from None
        return cls.build(parts[2], parts[3], kind)


def subscription(
    kind: Kind, *, site: str = "+", gateway: str = "+", share: str | None = None
) -> str:
    """Topic filter for ``kind``; with ``share``, a shared subscription ``$share/<group>/…``."""
    flt = f"{PREFIX}/{site}/{gateway}/{kind}"
    return f"$share/{share}/{flt}" if share else flt
