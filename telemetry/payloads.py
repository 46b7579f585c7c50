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

# Printable ASCII without spaces; checked in codec.check_reading, which is several
# times cheaper per reading than a regex pattern here.
SensorId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
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


class Reading(msgspec.Struct, frozen=True, gc=False):  # scalars only: no cycles to collect
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


# --- edge events: RFID tag reads and barcode scans (see docs/wire-contract.md) ---

DeviceId = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[!-~]+$")]
EpcHex = Annotated[str, msgspec.Meta(pattern=r"^(?:[0-9A-F]{2}){1,62}$")]
Code = Annotated[str, msgspec.Meta(max_length=128)]
IsoDate = Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")]


class TagItem(msgspec.Struct, frozen=True, omit_defaults=True):
    """One (collapsed) read of one RFID tag by one reader antenna; decoded ids if known."""

    t: Millis
    reader: DeviceId
    antenna: Annotated[int, msgspec.Meta(ge=0, le=255)]
    epc: EpcHex
    rssi: float | None = None
    scheme: Code | None = None
    uri: Code | None = None
    gtin: Code | None = None
    serial: Code | None = None
    sscc: Code | None = None


class ScanItem(msgspec.Struct, frozen=True, omit_defaults=True):
    """One barcode scan: the raw data, and either the decoded label or why it was rejected."""

    t: Millis
    scanner: DeviceId
    data: Annotated[str, msgspec.Meta(max_length=1024)]
    ok: bool
    reason: Annotated[str, msgspec.Meta(max_length=512)] | None = None
    scheme: Code | None = None
    di: Code | None = None
    gtin: Code | None = None
    sscc: Code | None = None
    lot: Code | None = None
    serial: Code | None = None
    expiry: IsoDate | None = None
    production: IsoDate | None = None


class TagBatch(msgspec.Struct, frozen=True):
    """Tag reads of one gateway stream; item ``i`` carries seq ``seq[0] + i``."""

    v: int
    gateway: GatewayId
    stream: StreamId
    seq: tuple[Seq, Seq]
    sent: Millis
    items: list[TagItem]


class ScanBatch(msgspec.Struct, frozen=True):
    """Barcode scans of one gateway stream; item ``i`` carries seq ``seq[0] + i``."""

    v: int
    gateway: GatewayId
    stream: StreamId
    seq: tuple[Seq, Seq]
    sent: Millis
    items: list[ScanItem]
