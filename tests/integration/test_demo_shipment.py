"""The demo's seed puts a shipment on the road, so ``/shipments`` has one in transit."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from coldtrace.demo import GATEWAY
from coldtrace.seed import TRANSIT_LOT, seed_demo
from erp_core.movements.service import current_locations
from erp_core.shipments.board import list_page
from tests.integration.access_helpers import session_keyring


def test_the_demo_seed_has_a_shipment_in_transit_with_its_lot_on_the_truck(db_url: str) -> None:
    now = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO telemetry.gateways (id, site, status) VALUES (%s, 'plant', 'online')",
            (GATEWAY,),
        )
        lots = seed_demo(conn, now=now, gateway=GATEWAY, keyring=session_keyring())
        rows = list_page(conn, now=now, limit=10, offset=0)
        assert [(r.reference, r.state, r.lot_numbers) for r in rows] == [
            ("SHP-DEMO-001", "in_transit", [TRANSIT_LOT])
        ]
        assert rows[0].departed_at == now
        (lot_id,) = conn.execute(
            "SELECT id FROM erp.lots WHERE lot_number = %s", (TRANSIT_LOT,)
        ).fetchone()
        assert current_locations(conn, lot_id=lot_id, time=now) == [(lots.truck, 100.0)]
