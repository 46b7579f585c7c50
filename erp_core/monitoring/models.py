"""Value types the monitoring service returns and the API serialises (pydantic, frozen)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class SensorSummary(_Frozen):
    """One sensor with its latest reading and how many readings arrived in the last 24 h."""

    id: int
    uid: str = Field(description="Device identifier as the gateway reports it")
    quantity: str = Field(description="What is measured: temperature, humidity, …")
    unit: str = Field(description="UCUM unit code, e.g. Cel for degrees Celsius")
    gateway_id: str | None
    latest_time: datetime | None = Field(description="Device time of the newest reading")
    latest_value: float | None
    readings_24h: int = Field(description="Readings with a device time in the 24 h before now")


class ReadingBucket(_Frozen):
    """Readings of one time bucket: [start, end), with their count, min, max and mean."""

    start: datetime
    end: datetime
    count: int
    min: float
    max: float
    mean: float


class ReadingSeries(_Frozen):
    """A sensor's readings in [start, end), downsampled to at most ``max_points`` buckets.

    Buckets without readings are left out, so a gap in the data stays a gap.
    """

    sensor: SensorSummary
    start: datetime
    end: datetime
    max_points: int
    bucket_seconds: float = Field(description="Width of one bucket")
    buckets: list[ReadingBucket]


class StreamWatermark(_Frozen):
    """Ingest's committed watermark for one outbox stream of a gateway."""

    stream: str
    committed_seq: int = Field(description="Every sequence number up to this one is stored")
    updated_at: datetime
    pending_ranges: int = Field(
        description="Stored ranges above the watermark, waiting for a gap to be filled"
    )


class SourceHealth(_Frozen):
    """Health of one gateway source (a device or reader) from the gateway's last state."""

    name: str
    ok: bool
    error: str | None = None


class GatewaySummary(_Frozen):
    """One gateway: liveness, last contact and the watermark of each of its streams."""

    id: str
    site: str
    status: str = Field(description="online, offline or unknown (from birth/last-will messages)")
    first_seen: datetime
    last_seen: datetime
    outbox_depth: int | None = Field(description="Messages waiting in the gateway's outbox")
    sources: list[SourceHealth]
    streams: list[StreamWatermark]


class DeadLetter(_Frozen):
    """A message or item ingest could not store, with the reason and a preview of its bytes."""

    id: int
    received_at: datetime = Field(description="When it first arrived")
    last_received_at: datetime = Field(description="When it last arrived (re-sends)")
    topic: str
    gateway_id: str | None
    stream: str | None
    seq: int | None
    item_index: int | None
    reason: str
    payload: str = Field(description="The first 2 kB of the payload, as text or as hex")
    payload_encoding: Literal["utf-8", "hex"]
    payload_bytes: int = Field(description="Size of the whole payload")
    payload_truncated: bool
    payload_sha256: str = Field(description="sha256 of the whole payload, hex")
    times_received: int = Field(description="How often it arrived (re-sends add no row)")


class DeadLetterCounts(_Frozen):
    """How many dead letters there are, in all and since a given time."""

    total: int
    recent: int
    since: datetime


class OpenMatters(_Frozen):
    """What is still open for people to deal with: alerts not closed, lots with a deviation."""

    alerts: int
    lots_with_deviation: int
