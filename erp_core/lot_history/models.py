"""What ``GET /api/lots/{id}/history`` returns: series, segments and statistics (frozen)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from erp_core.lots.models import Lot
from erp_core.movements.models import LocationInterval


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class TimeSpan(_Frozen):
    """[start, end) with its length in seconds."""

    start: datetime
    end: datetime
    seconds: float


class SensorSegment(_Frozen):
    """Sensor ``sensor_id`` stood for the lot at ``location_id`` over [start, end)."""

    sensor_id: int
    location_id: int
    start: datetime
    end: datetime


class HistoryBucket(_Frozen):
    """The lot's values in [start, end), every sensor merged: count, min, max, mean.

    The rows of ``erp.lot_readings`` whose time falls in the bucket: the readings and a
    value held at arrival (at its segment's start).
    """

    start: datetime
    end: datetime
    count: int
    min: float
    max: float
    mean: float
    sensor_ids: list[int]


class HistoryStats(_Frozen):
    """Statistics over the lot's whole life (not the downsampled buckets)."""

    readings: int = Field(description="Readings taken while the lot was there (not held values)")
    min: float | None
    max: float | None
    mean: float | None = Field(description="Time-weighted mean, °C")
    mkt: float | None = Field(description="Mean kinetic temperature (USP <1079.2>), °C")
    mkt_limit: float | None
    mkt_over_limit: bool | None
    range_low: float
    range_high: float
    tor_longest_seconds: float
    tor_cumulative_seconds: float
    out_of_range: list[TimeSpan]
    tor_budget_seconds: float | None
    tor_remaining_seconds: float | None = Field(description="Negative when the budget is overrun")
    coverage_share: float = Field(description="Share of the lot's life covered by readings, 0–1")
    covered_seconds: float
    life: TimeSpan
    gaps: list[TimeSpan] = Field(description="Uncovered periods of at least min_gap_seconds")
    min_gap_seconds: float
    short_gaps: int = Field(description="Uncovered periods shorter than min_gap_seconds")
    short_gaps_seconds: float
    max_hold_seconds: float = Field(description="Longest time one reading is taken to hold")


class ExcursionRef(_Frozen):
    """An excursion episode of a sensor that stood for the lot, overlapping its segment."""

    id: int
    sensor_id: int
    kind: str = Field(description="high or low")
    level: str = Field(description="pre_alarm or alarm")
    start: datetime
    end: datetime | None = Field(description="None while the episode is open")
    peak: float
    late: bool


class LotHistory(_Frozen):
    """A lot's temperature history from ``erp.lot_readings``: where, which sensors, what."""

    lot: Lot
    intervals: list[LocationInterval]
    segments: list[SensorSegment]
    max_points: int
    bucket_seconds: float | None
    buckets: list[HistoryBucket]
    stats: HistoryStats | None = Field(description="None when the lot never had a location")
    excursions: list[ExcursionRef]
    notes: list[str]
