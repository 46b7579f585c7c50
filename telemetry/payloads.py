"""Payload types of wire version 1 (see docs/wire-contract.md).

Field names are short but whole words; times are integer milliseconds since the Unix
epoch (UTC), taken from the device where it has a clock and from the gateway's poll
otherwise. Unknown fields are ignored so a version can grow without breaking readers.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import msgspec

VERSION = 1

SensorId = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[!-~]+$")]
GatewayId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
StreamId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Millis = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
Seq = Annotated[int, msgspec.Meta(ge=1, le=2**62)]

# quantity -> the units it may be reported in (UCUM codes)
UNITS: dict[str, frozenset[str]] = {
    "temperature": frozenset({"Cel"}),
    "humidity": frozenset({"%"}),
    "battery": frozenset({"%", "V"}),
    "pressure": frozenset({"hPa"}),
    "door": frozenset({"1"}),
    "power": frozenset({"1"}),
}


class Reading(msgspec.Struct, frozen=True):
    """One measurement of one quantity by one sensor at one device time."""

    t: Millis
    sensor: SensorId
    qty: str
    value: float
    unit: str
    flags: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 0


class ReadingBatch(msgspec.Struct, frozen=True):
    """Readings of one gateway; item ``i`` carries gateway sequence number ``seq[0] + i``."""

    v: int
    gateway: GatewayId
    stream: StreamId
    seq: tuple[Seq, Seq]
    sent: Millis
    items: list[Reading]


class Ack(msgspec.Struct, frozen=True):
    """Ingest's committed watermark for one gateway stream: every seq <= committed is stored."""

    v: int
    gateway: GatewayId
    stream: StreamId
    committed: Annotated[int, msgspec.Meta(ge=0)]
    t: Millis


class Status(StrEnum):
    """Gateway liveness as shown on the state topic."""

    ONLINE = "online"
    OFFLINE = "offline"


class SourceState(msgspec.Struct, frozen=True):
    """Health of one gateway source (one device or reader)."""

    name: str
    ok: bool
    last_seen: Millis | None = None
    error: str | None = None


class GatewayState(msgspec.Struct, frozen=True):
    """Birth, death (MQTT last will) and periodic state of a gateway."""

    v: int
    gateway: GatewayId
    status: Status
    t: Millis
    outbox_depth: int | None = None
    sources: list[SourceState] = []
