"""What the shipments pages show beyond the stored shipment: its state, places, lots, alerts.

The shipments service keeps the record (plan, depart, arrive); this module answers the
questions a logistics or QA person asks of it on a page — which shipments are on the
road now, which lots are aboard and in what release status, which alerts fired on the
truck during the trip, and what the arrival recorded. It reads only and never commits.

"Alerts during the trip" are the alerts of every sensor assigned to the truck while it
was under way (the shipment's loggers are assigned to it at departure), whose span meets
the trip: the same sensors the lot-history definition uses for the lots aboard.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import psycopg

from erp_core.shipments.models import Shipment
from erp_core.shipments.service import get_shipment

Conn = psycopg.Connection[Any]
State = Literal["in_transit", "planned", "arrived"]

# The sensors that stood for the truck during the trip of shipment ``s``.
_TRIP_SENSORS = """
SELECT g.sensor_id FROM erp.sensor_assignments g
 WHERE g.location_id = s.truck_location_id
   AND g.valid_from < coalesce(s.arrived_at, %(now)s)
   AND coalesce(g.valid_to, 'infinity') > s.departed_at
UNION SELECT lg.sensor_id FROM erp.shipment_loggers lg WHERE lg.shipment_id = s.id
"""

# In transit first (longest on the road first), then planned (oldest plan first), then
# arrived (latest arrival first): the order a dispatcher works through them.
_LIST = """
WITH s AS (
  SELECT sh.*,
         CASE WHEN sh.departed_at IS NULL THEN 'planned'
              WHEN sh.arrived_at IS NULL THEN 'in_transit'
              ELSE 'arrived' END AS state
    FROM erp.shipments sh
)
SELECT s.id, s.reference, s.state, s.departed_at, s.arrived_at,
       o.code, o.name, d.code, d.name, t.code, t.name,
       (SELECT coalesce(array_agg(l.lot_number ORDER BY l.lot_number), '{}')
          FROM erp.shipment_lots x JOIN erp.lots l ON l.id = x.lot_id
         WHERE x.shipment_id = s.id),
       (SELECT count(*) FROM telemetry.alerts a
         WHERE a.status <> 'closed' AND s.departed_at IS NOT NULL
           AND a.sensor_id IN (TRIP_SENSORS)
           AND a.started_at < coalesce(s.arrived_at, %(now)s)
           AND coalesce(a.ended_at, 'infinity') >= s.departed_at)
  FROM s
  JOIN erp.locations o ON o.id = s.origin_location_id
  JOIN erp.locations d ON d.id = s.destination_location_id
  JOIN erp.locations t ON t.id = s.truck_location_id
 ORDER BY CASE s.state WHEN 'in_transit' THEN 0 WHEN 'planned' THEN 1 ELSE 2 END,
          CASE WHEN s.state = 'in_transit' THEN s.departed_at END ASC,
          CASE WHEN s.state = 'planned' THEN s.id END ASC,
          s.arrived_at DESC, s.id DESC
 LIMIT %(limit)s OFFSET %(offset)s
""".replace("TRIP_SENSORS", _TRIP_SENSORS)

_ALERTS = """
SELECT a.id, a.kind, a.severity, a.status, a.started_at, a.ended_at, a.peak, a.summary,
       sn.uid, sn.unit
  FROM erp.shipments s
  JOIN telemetry.alerts a ON a.sensor_id IN (TRIP_SENSORS)
  JOIN telemetry.sensors sn ON sn.id = a.sensor_id
 WHERE s.id = %(id)s AND s.departed_at IS NOT NULL
   AND a.started_at < coalesce(s.arrived_at, %(now)s)
   AND coalesce(a.ended_at, 'infinity') >= s.departed_at
 ORDER BY a.started_at, a.id
""".replace("TRIP_SENSORS", _TRIP_SENSORS)


@dataclass(frozen=True, slots=True)
class Place:
    """A location as people name it: its code and its name."""

    code: str
    name: str


@dataclass(frozen=True, slots=True)
class ShipmentRow:
    """One line of the shipments list."""

    id: int
    reference: str
    state: State
    departed_at: datetime | None
    arrived_at: datetime | None
    origin: Place
    destination: Place
    truck: Place
    lot_numbers: list[str]
    open_alerts: int


@dataclass(frozen=True, slots=True)
class LotAboard:
    """A lot on board: what it is, how much travels, its release status now."""

    lot_id: int
    lot_number: str
    item_name: str
    quantity: float
    status: str


@dataclass(frozen=True, slots=True)
class TripAlert:
    """An alert of a sensor on the truck whose span met the trip."""

    id: int
    kind: str
    severity: str
    status: str
    started_at: datetime
    ended_at: datetime | None
    peak: float | None
    summary: str
    sensor_uid: str
    unit: str


@dataclass(frozen=True, slots=True)
class ArrivalCheck:
    """One thing the arrival recorded: a lot received at the destination, a logger taken off.

    ``done`` is False when the record is missing (the arrival did not complete that step).
    """

    kind: Literal["lot", "logger"]
    what: str
    done: bool
    at: datetime | None


@dataclass(frozen=True, slots=True)
class ShipmentView:
    """A shipment with everything its page shows."""

    shipment: Shipment
    state: State
    origin: Place
    destination: Place
    truck: Place
    places: dict[int, Place]  # every location its legs name
    lots: list[LotAboard]
    alerts: list[TripAlert]
    arrival: list[ArrivalCheck]


def state_of(shipment: Shipment) -> State:
    """Planned until it departs, in transit until it arrives, then arrived."""
    if shipment.departed_at is None:
        return "planned"
    return "in_transit" if shipment.arrived_at is None else "arrived"


def list_page(conn: Conn, *, now: datetime, limit: int, offset: int) -> list[ShipmentRow]:
    """One page of shipments: in transit first, then planned, then arrived."""
    rows = conn.execute(_LIST, {"now": now, "limit": limit, "offset": offset}).fetchall()
    return [
        ShipmentRow(
            id=r[0],
            reference=r[1],
            state=r[2],
            departed_at=r[3],
            arrived_at=r[4],
            origin=Place(r[5], r[6]),
            destination=Place(r[7], r[8]),
            truck=Place(r[9], r[10]),
            lot_numbers=list(r[11]),
            open_alerts=int(r[12]),
        )
        for r in rows
    ]


def shipment_view(conn: Conn, *, shipment_id: int, now: datetime) -> ShipmentView:
    """The shipment's page data; NotFoundError if there is no such shipment."""
    shipment = get_shipment(conn, shipment_id=shipment_id)
    ids = {shipment.origin_location_id, shipment.destination_location_id}
    ids |= {shipment.truck_location_id}
    ids |= {leg.from_location_id for leg in shipment.legs}
    ids |= {leg.to_location_id for leg in shipment.legs}
    places = {
        r[0]: Place(r[1], r[2])
        for r in conn.execute(
            "SELECT id, code, name FROM erp.locations WHERE id = ANY(%s)", (sorted(ids),)
        )
    }
    lots = [
        LotAboard(lot_id=r[0], lot_number=r[1], item_name=r[2], quantity=r[3], status=r[4])
        for r in conn.execute(
            "SELECT l.id, l.lot_number, i.name, x.quantity::float8, l.status"
            " FROM erp.shipment_lots x JOIN erp.lots l ON l.id = x.lot_id"
            " JOIN erp.items i ON i.id = l.item_id"
            " WHERE x.shipment_id = %s ORDER BY l.lot_number",
            (shipment_id,),
        )
    ]
    alerts = [
        TripAlert(*r) for r in conn.execute(_ALERTS, {"id": shipment_id, "now": now}).fetchall()
    ]
    return ShipmentView(
        shipment=shipment,
        state=state_of(shipment),
        origin=places[shipment.origin_location_id],
        destination=places[shipment.destination_location_id],
        truck=places[shipment.truck_location_id],
        places=places,
        lots=lots,
        alerts=alerts,
        arrival=_arrival_checks(conn, shipment, lots),
    )


def _arrival_checks(conn: Conn, shipment: Shipment, lots: list[LotAboard]) -> list[ArrivalCheck]:
    """What ``arrive`` wrote: each lot's move truck → destination, each logger's assignment end."""
    if shipment.arrived_at is None:
        return []
    moved = {
        r[0]: r[1]
        for r in conn.execute(
            "SELECT lot_id, moved_at FROM erp.stock_movements"
            " WHERE lot_id = ANY(%s) AND from_location_id = %s AND to_location_id = %s"
            " AND moved_at = %s",
            (
                [lot.lot_id for lot in lots],
                shipment.truck_location_id,
                shipment.destination_location_id,
                shipment.arrived_at,
            ),
        )
    }
    ended = {
        r[0]: (r[1], r[2])
        for r in conn.execute(
            "SELECT a.sensor_id, s.uid, a.valid_to FROM erp.sensor_assignments a"
            " JOIN telemetry.sensors s ON s.id = a.sensor_id"
            " WHERE a.sensor_id = ANY(%s) AND a.location_id = %s AND a.valid_from = %s",
            (shipment.logger_sensor_ids, shipment.truck_location_id, shipment.departed_at),
        )
    }
    checks = [
        ArrivalCheck("lot", lot.lot_number, lot.lot_id in moved, moved.get(lot.lot_id))
        for lot in lots
    ]
    for sensor_id in shipment.logger_sensor_ids:
        uid, valid_to = ended.get(sensor_id, (str(sensor_id), None))
        checks.append(ArrivalCheck("logger", uid, valid_to == shipment.arrived_at, valid_to))
    return checks
