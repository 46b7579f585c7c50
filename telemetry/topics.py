"""MQTT topic scheme ``ct/v1/{site}/{gateway}/{kind}``.

Gateways publish ``readings``, ``tags``, ``scans`` and ``state``; ingest publishes the
committed watermark of each outbox stream, retained, on ``ct/v1/{site}/{gateway}/ack/{stream}``
(one retained message per stream, so a restarted gateway learns every stream's
watermark at once). Site and gateway ids are single topic levels, so they may not
contain ``/``, ``+``, ``#`` or start with ``$``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

PREFIX = "ct/v1"
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_STREAM_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


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


def ack_topic(site: str, gateway: str, stream: str) -> str:
    """Topic of the retained committed watermark of one outbox ``stream``."""
    if not _STREAM_RE.match(stream):
        raise TopicError(f"stream {stream!r} is not a valid stream id ([A-Za-z0-9_-]{{1,64}})")
    return f"{Topic.build(site, gateway, Kind.ACK)}/{stream}"


def ack_filter(site: str, gateway: str) -> str:
    """Filter for the watermarks of every stream of one gateway (``…/ack/#``)."""
    return f"{Topic.build(site, gateway, Kind.ACK)}/#"
