"""Choose the bucket width for downsampling a time range to at most N points (pure).

Widths come from a ladder of round values (1 s, 5 min, 1 h, …) and buckets are aligned
to the Unix epoch, so "the last 6 hours" refreshed a minute later keeps the same bucket
boundaries (the chart does not shimmer) and boundaries fall on clock times people read.
The first and last bucket are clipped to the range.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from erp_core.errors import InvalidArgumentError, InvalidRangeError

MIN_POINTS = 2
MAX_POINTS = 5000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_MS = timedelta(milliseconds=1)
_S = timedelta(seconds=1)
_MIN = timedelta(minutes=1)
_H = timedelta(hours=1)
_DAY = timedelta(days=1)
_LADDER: tuple[timedelta, ...] = (
    *(n * _MS for n in (1, 2, 5, 10, 20, 50, 100, 200, 500)),
    *(n * _S for n in (1, 2, 5, 10, 15, 30)),
    *(n * _MIN for n in (1, 2, 5, 10, 15, 30)),
    *(n * _H for n in (1, 2, 3, 6, 12)),
    *(n * _DAY for n in (1, 2, 7)),
)


@dataclass(frozen=True, slots=True)
class BucketPlan:
    """Buckets of ``width`` aligned to ``origin`` covering [start, end) in ``count`` buckets."""

    start: datetime
    end: datetime
    width: timedelta
    origin: datetime
    count: int

    def bounds(self, bucket_start: datetime) -> tuple[datetime, datetime]:
        """The part of the bucket beginning at ``bucket_start`` that lies inside the range."""
        # Compare instead of adding first: bucket_start + width may pass datetime.max.
        end = self.end if self.end - bucket_start <= self.width else bucket_start + self.width
        return max(bucket_start, self.start), end


def plan_buckets(*, start: datetime, end: datetime, max_points: int) -> BucketPlan:
    """The narrowest round bucket width that covers [start, end) in at most max_points."""
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidArgumentError("start/end", (start, end), "times must carry a time zone")
    if start >= end:
        raise InvalidRangeError(start, end)
    if not MIN_POINTS <= max_points <= MAX_POINTS:
        raise InvalidArgumentError(
            "max_points", max_points, f"must be between {MIN_POINTS} and {MAX_POINTS}"
        )
    for width in _candidates(end - start, max_points):
        origin = _floor(start, width)
        count = -((origin - end) // width)  # ceil((end - origin) / width)
        if count <= max_points:
            return BucketPlan(start=start, end=end, width=width, origin=origin, count=count)
    msg = "unreachable: some width always fits"  # pragma: no cover
    raise AssertionError(msg)  # pragma: no cover


def _candidates(span: timedelta, max_points: int) -> list[timedelta]:
    """Widths to try, narrowest first; the last one always fits."""
    ideal = span / max_points
    ladder = [w for w in _LADDER if w >= ideal]
    days = _ceil_days(ideal)
    # Epoch alignment adds at most one bucket, so span / (max_points - 1) always fits.
    return [*ladder, days, days + _DAY, _ceil_days(span / (max_points - 1))]


def _ceil_days(width: timedelta) -> timedelta:
    return max(1, -(-width // _DAY)) * _DAY


def _floor(t: datetime, width: timedelta) -> datetime:
    """The bucket boundary at or before ``t``; ``t`` itself near year 1 (no alignment)."""
    try:
        return EPOCH + ((t - EPOCH) // width) * width
    except OverflowError:
        return t
