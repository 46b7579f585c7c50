"""The lot temperature history endpoint: where the lot was, which sensors, buckets, statistics.

Any signed-in user reads it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from erp_core.deps import Connection, CurrentUser, Now
from erp_core.lot_history import history
from erp_core.lot_history.models import LotHistory
from erp_core.lots.api import NOT_FOUND, LotId
from erp_core.monitoring.buckets import MAX_POINTS, MIN_POINTS

router = APIRouter(prefix="/api", tags=["stock: lots"])


@router.get("/lots/{lot_id}/history", responses=NOT_FOUND)
def lot_history(  # noqa: PLR0913 - one parameter per query-string field
    *,
    conn: Connection,
    _user: CurrentUser,
    now: Now,
    lot_id: LotId,
    max_points: Annotated[
        int, Query(ge=MIN_POINTS, le=MAX_POINTS, description="Most buckets to return")
    ] = 500,
    max_hold_minutes: Annotated[
        float, Query(gt=0, le=24 * 60, description="Longest time one reading is taken to hold")
    ] = 15,
    min_gap_minutes: Annotated[
        float, Query(gt=0, le=24 * 60, description="Shortest gap listed on its own")
    ] = 5,
) -> LotHistory:
    """The lot's temperature history: where, which sensors, buckets and statistics."""
    return history.lot_history(
        conn,
        lot_id=lot_id,
        max_points=max_points,
        now=now,
        max_hold=timedelta(minutes=max_hold_minutes),
        min_gap=timedelta(minutes=min_gap_minutes),
    )
