"""JSON endpoints of the monitoring domain (``/api/...``): HTTP in, service call, model out.

Every endpoint needs a signed-in user (any role, a bearer token), as the web pages
showing the same data need a session.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BeforeValidator

from erp_core.deps import Connection, Now, get_current_user
from erp_core.errors import InvalidArgumentError
from erp_core.monitoring import service
from erp_core.monitoring.buckets import MAX_POINTS, MIN_POINTS
from erp_core.monitoring.models import DeadLetter, GatewaySummary, ReadingSeries, SensorSummary

DEFAULT_SPAN = timedelta(hours=24)

router = APIRouter(prefix="/api", tags=["monitoring"], dependencies=[Depends(get_current_user)])


def iso_only(value: object) -> object:
    """Refuse a bare number where an ISO 8601 time belongs.

    pydantic reads ``start=0.0`` as Unix seconds (1970), an answer to a question nobody
    asked; the document says date-time, and schemathesis found the difference.
    """
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return value
        raise ValueError("an ISO 8601 time (e.g. 2026-06-01T12:00:00Z), not a number")
    return value


QueryTime = Annotated[datetime, BeforeValidator(iso_only)]


def as_utc(t: datetime) -> datetime:
    """A query-string time with no offset is taken as UTC, like every time in ColdTrace."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


@router.get("/sensors")
def list_sensors(conn: Connection, now: Now) -> list[SensorSummary]:
    """Every sensor with its gateway, newest reading and number of readings in the last 24 h."""
    return service.list_sensors(conn, now=now)


@router.get(
    "/sensors/{sensor_id}/readings",
    responses={404: {"description": "No sensor with this id"}},
)
def sensor_readings(  # noqa: PLR0913 - one parameter per query-string field
    *,
    conn: Connection,
    now: Now,
    sensor_id: Annotated[int, Path(description="The sensor's id from /api/sensors")],
    start: Annotated[
        QueryTime | None,
        Query(description="Inclusive; ISO 8601, UTC when no offset is given. Default: end - 24 h"),
    ] = None,
    end: Annotated[
        QueryTime | None,
        Query(description="Exclusive; ISO 8601, UTC when no offset is given. Default: now"),
    ] = None,
    max_points: Annotated[
        int, Query(ge=MIN_POINTS, le=MAX_POINTS, description="Most buckets to return")
    ] = 500,
) -> ReadingSeries:
    """A sensor's readings in [start, end), downsampled to min/max/mean/count buckets."""
    end_t = as_utc(end) if end is not None else now
    try:
        start_t = as_utc(start) if start is not None else end_t - DEFAULT_SPAN
    except OverflowError as err:
        raise InvalidArgumentError("end", end, "too early for the default 24 h range") from err
    return service.sensor_readings(
        conn, sensor_id=sensor_id, start=start_t, end=end_t, max_points=max_points, now=now
    )


@router.get("/gateways")
def list_gateways(conn: Connection) -> list[GatewaySummary]:
    """Every gateway: status, last contact and the committed watermark of each stream."""
    return service.list_gateways(conn)


@router.get("/dead-letters")
def list_dead_letters(
    conn: Connection,
    limit: Annotated[
        int, Query(ge=1, le=service.MAX_DEAD_LETTERS, description="How many, newest first")
    ] = 100,
) -> list[DeadLetter]:
    """The newest dead letters with their reason and a 2 kB preview of the raw payload."""
    return service.list_dead_letters(conn, limit=limit)
