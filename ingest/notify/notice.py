"""Merge an alert event's detail over its alert's columns into one `AlertNotice`.

The alert evaluation writes what it knows into ``alert_events.detail``; every key is
optional, so each fact falls back to the ``alerts`` row (and the sensor row) and, failing
that, stays unknown. Pure: the caller passes the rows as mappings.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ingest.notify.models import AlertNotice, ExposedLot


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        # epoch milliseconds, as on the wire
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def build_notice(
    event: Mapping[str, Any],
    alert: Mapping[str, Any],
    sensor: Mapping[str, Any] | None,
    lots: tuple[ExposedLot, ...] | None = None,
) -> AlertNotice:
    """The notice of one event: detail keys first, then alert columns, then the sensor row.

    ``lots``: the lots exposed during the alert, read by the caller (None: unknown).
    """
    raw = event.get("detail")
    detail: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    sensor = sensor or {}
    late = detail.get("late")
    started = _first(_time(detail.get("started_at")), _time(alert.get("started_at")))
    return AlertNotice(
        event_id=int(event["id"]),
        alert_id=int(event["alert_id"]),
        event=str(event["event"]),
        level=int(event.get("level") or 0),
        at=_time(event.get("at")) or started or datetime.fromtimestamp(0, UTC),
        actor=_text(event.get("actor")),
        kind=str(alert.get("kind") or "alert"),
        severity=str(alert.get("severity") or "critical"),
        status=str(alert.get("status") or "open"),
        summary=str(_first(_text(detail.get("summary")), alert.get("summary"), "")),
        site=_text(_first(detail.get("site"), alert.get("site"))),
        location=_text(_first(detail.get("location"), detail.get("location_name"))),
        sensor=_text(_first(detail.get("sensor_uid"), detail.get("sensor"), sensor.get("uid"))),
        quantity=_text(_first(detail.get("quantity"), sensor.get("quantity"))),
        unit=_text(_first(detail.get("unit"), sensor.get("unit"))),
        peak=_first(_number(detail.get("peak")), _number(alert.get("peak"))),
        duration_s=_first(_number(detail.get("duration_s")), _number(alert.get("duration_s"))),
        late=bool(late) if isinstance(late, bool) else bool(alert.get("late")),
        started_at=started or datetime.fromtimestamp(0, UTC),
        ended_at=_first(_time(detail.get("ended_at")), _time(alert.get("ended_at"))),
        limits=detail.get("limits"),
        lots=lots,
    )
