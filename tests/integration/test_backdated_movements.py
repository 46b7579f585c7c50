"""Back-dated movements over HTTP against a real PostgreSQL: a late scan or a manual
correction is checked against the lot's whole recorded history (docs/master-data.md),
and the lot's intervals and sensor segments are right afterwards.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest

from erp_core.audit.service import set_actor
from erp_core.errors import ConflictError
from erp_core.masterdata import service as master
from erp_core.masterdata.models import ReaderIn
from erp_core.movements import service as movements
from erp_core.movements.models import MovementIn
from erp_core.shipments import service as shipments
from erp_core.shipments.errors import ShipmentStateError
from tests.integration.stock_fixtures import (
    NOW,
    StockApi,
    api_for,
    assign,
    at,
    decide,
    iso,
    item,
    lot,
    move,
    segments,
    sensor,
    site_with,
)


@pytest.fixture
def api(db_url: str) -> Iterator[StockApi]:
    yield from api_for(db_url)


def movements_of(api: StockApi, lot_id: int) -> list[tuple[int | None, int | None, float]]:
    rows = api.get("op", f"/api/lots/{lot_id}/movements")
    return [(m["from_location_id"], m["to_location_id"], m["quantity"]) for m in rows]


def test_future_beyond_the_clock_tolerance_is_refused(api: StockApi) -> None:
    ids = site_with(api, ("FR", "fridge"))
    lot_id = lot(api, item(api))
    body = {"lot_id": lot_id, "quantity": 100, "to_location_id": ids["FR"]}
    late = (NOW + timedelta(minutes=30)).isoformat()
    refused = api.post("wh", "/api/movements", {**body, "moved_at": late}, 422)
    assert "future" in str(refused)
    api.post("op", "/api/movements", {**body, "moved_at": iso(0)}, 403)
    api.post("wh", "/api/movements", {**body, "moved_at": (NOW + timedelta(minutes=2)).isoformat()})


def test_nothing_leaves_a_location_before_the_lot_was_received(api: StockApi) -> None:
    ids = site_with(api, ("FR", "fridge"), ("F2", "fridge"))
    lot_id = lot(api, item(api))
    move(api, lot_id, None, ids["FR"], 60)
    refused = move(api, lot_id, ids["FR"], ids["F2"], 30, status=409)
    assert refused["code"] == "backdated"
    assert "received" in refused["detail"]
    assert movements_of(api, lot_id) == [(None, ids["FR"], 100)]


def test_source_must_not_go_negative_at_any_later_time(api: StockApi) -> None:
    ids = site_with(api, ("FR", "fridge"), ("F2", "fridge"), ("F3", "fridge"))
    lot_id = lot(api, item(api))
    move(api, lot_id, None, ids["FR"], 0)
    move(api, lot_id, ids["FR"], ids["F2"], 120, qty=60)  # 40 stay in FR
    # Late scan: 50 left FR at 60 min. FR holds 100 then, but only 40 after the later move.
    refused = move(api, lot_id, ids["FR"], ids["F3"], 60, qty=50, status=409)
    assert refused["code"] == "backdated"
    assert "would hold -10" in refused["detail"]
    # 40 fit, before and after the other move.
    move(api, lot_id, ids["FR"], ids["F3"], 60, qty=40)
    assert move(api, lot_id, ids["FR"], ids["F3"], 90, qty=1, status=409)["code"] == "backdated"
    # Plain shortage at the time itself keeps its own code.
    short = move(api, lot_id, ids["F2"], ids["F3"], 100, qty=10, status=409)
    assert short["code"] == "insufficient_stock"


def test_move_while_aboard_a_shipment_under_way_is_refused(api: StockApi) -> None:
    ids = site_with(api, ("FR", "fridge"), ("DK", "dock"), ("T1", "truck"))
    lot_id = lot(api, item(api))
    move(api, lot_id, None, ids["FR"], 0)
    shipment = api.post(
        "wh",
        "/api/shipments",
        {
            "reference": "SH-1",
            "truck_location_id": ids["T1"],
            "origin_location_id": ids["FR"],
            "destination_location_id": ids["DK"],
            "lots": [{"lot_id": lot_id, "quantity": 100}],
        },
    )
    api.post("wh", f"/api/shipments/{shipment['id']}/depart", {"time": iso(60)}, 200)
    refused = move(api, lot_id, ids["T1"], ids["DK"], 90, status=409)
    assert refused["code"] == "shipment_in_transit"
    assert "SH-1" in refused["detail"]
    api.post("wh", f"/api/shipments/{shipment['id']}/arrive", {"time": iso(180)}, 200)
    assert move(api, lot_id, ids["T1"], ids["DK"], 90, status=409)["code"] == (
        "shipment_in_transit"
    )
    move(api, lot_id, ids["DK"], ids["FR"], 200)  # after arrival: a normal move


def test_released_lot_history_is_locked_until_qa_puts_it_on_hold(
    api: StockApi, db_url: str
) -> None:
    ids = site_with(api, ("FR", "fridge"), ("F2", "fridge"))
    lot_id = lot(api, item(api))
    move(api, lot_id, None, ids["FR"], 0)
    decide(db_url, lot_id, action="release", when=at(200))
    body = {
        "lot_id": lot_id,
        "quantity": 100,
        "from_location_id": ids["FR"],
        "to_location_id": ids["F2"],
        "moved_at": iso(100),
        "reason": "late scan from the offline dock reader",
    }
    refused = api.post("wh", "/api/movements", body, 409)
    assert refused["code"] == "release_evidence"
    assert "on hold" in refused["detail"]
    # After the decision: an ordinary move, evidence untouched.
    api.post("wh", "/api/movements", {**body, "moved_at": iso(250), "quantity": 1})
    api.post("qa", f"/api/lots/{lot_id}/status", {"status": "on_hold", "reason": "review"}, 200)
    corrected = api.post("wh", "/api/movements", {**body, "quantity": 99})  # FR: 100, 1, 0
    trail = api.audit("erp.stock_movements", {"id": corrected["id"]})
    assert trail[0]["reason"] == "late scan from the offline dock reader"
    assert segments(db_url, lot_id) == []  # no sensors here: only the intervals matter
    history = api.get("op", f"/api/lots/{lot_id}/history")
    assert [(i["location_id"], i["start"]) for i in history["intervals"]] == [
        (ids["FR"], iso(0).replace("+00:00", "Z")),
        (ids["F2"], iso(100).replace("+00:00", "Z")),
    ]


def test_rejected_lot_history_is_closed(api: StockApi, db_url: str) -> None:
    ids = site_with(api, ("FR", "fridge"), ("F2", "fridge"))
    lot_id = lot(api, item(api))
    move(api, lot_id, None, ids["FR"], 0)
    decide(db_url, lot_id, action="reject", when=at(200))
    refused = move(api, lot_id, ids["FR"], ids["F2"], 100, status=409)
    assert refused["code"] == "release_evidence"
    assert "closed" in refused["detail"]


def test_history_is_stitched_from_the_right_sensors_after_a_late_move(
    api: StockApi, db_url: str
) -> None:
    ids = site_with(api, ("FR", "fridge"), ("CR", "cold_room"), ("F2", "fridge"))
    fridge, room, other = sensor(db_url, "fr"), sensor(db_url, "cr"), sensor(db_url, "f2")
    assign(api, fridge, ids["FR"], 0)
    assign(api, room, ids["CR"], 0)
    assign(api, other, ids["F2"], 0)
    whole = lot(api, item(api), "W")
    move(api, whole, None, ids["FR"], 10)
    assert segments(db_url, whole) == [(fridge, at(10), NOW)]
    # A gateway that was offline uploads the scan of the lot entering the cold room at 2 h.
    api.post(
        "wh",
        "/api/movements",
        {
            "lot_id": whole,
            "quantity": 100,
            "from_location_id": ids["FR"],
            "to_location_id": ids["CR"],
            "moved_at": iso(120),
            "source": "scan",
        },
    )
    assert segments(db_url, whole) == [(fridge, at(10), at(120)), (room, at(120), NOW)]
    # A split lot: 60 of 100 went FR → CR at 4 h (recorded); late: 30 went FR → F2 at 1 h.
    # FR then holds 100, 70, 10: never negative; the lot is in three places at the end.
    split = lot(api, item(api, "09506000134369"), "S")
    move(api, split, None, ids["FR"], 10)
    move(api, split, ids["FR"], ids["CR"], 240, qty=60)
    move(api, split, ids["FR"], ids["F2"], 60, qty=30)
    assert segments(db_url, split) == [
        (fridge, at(10), NOW),
        (other, at(60), NOW),
        (room, at(240), NOW),
    ]
    history = api.get("op", f"/api/lots/{split}/history")
    assert {s["sensor_id"] for s in history["segments"]} == {fridge, other, room}
    assert [i["location_id"] for i in history["intervals"]] == [ids["FR"], ids["F2"], ids["CR"]]


def test_late_move_into_a_past_excursion_opens_its_deviation(api: StockApi, db_url: str) -> None:
    ids = site_with(api, ("FR", "fridge"), ("CR", "cold_room"))
    fridge, room = sensor(db_url, "fr"), sensor(db_url, "cr")
    assign(api, fridge, ids["FR"], 0)
    assign(api, room, ids["CR"], 0)
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="test-setup")
        episode = conn.execute(
            "INSERT INTO telemetry.excursion_episodes (sensor_id, kind, level, start_t, end_t, "
            "last_t, peak, area_c_min, readings, delay_reached, abs_breach) VALUES "
            "(%s, 'high', 'alarm', %s, %s, %s, 12.5, 40, 20, true, false) RETURNING id",
            (room, at(180), at(200), at(199)),
        ).fetchone()[0]  # type: ignore[index]
    lot_id = lot(api, item(api))
    move(api, lot_id, None, ids["FR"], 10)
    assert deviations(db_url, lot_id) == []  # the lot was not in the cold room then
    move(api, lot_id, ids["FR"], ids["CR"], 150)  # late scan: it was, from 2.5 h on
    assert deviations(db_url, lot_id) == [episode]
    move(api, lot_id, ids["CR"], ids["FR"], 300)  # a second move opens no second one
    assert deviations(db_url, lot_id) == [episode]


def deviations(db_url: str, lot_id: int) -> list[int]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT episode_id FROM erp.deviations WHERE lot_id = %s ORDER BY id", (lot_id,)
        ).fetchall()
    return [int(r[0]) for r in rows]


def test_movements_of_one_lot_are_serialised(api: StockApi, db_url: str) -> None:
    ids = site_with(api, ("FR", "fridge"), ("F2", "fridge"), ("F3", "fridge"))
    lot_id = lot(api, item(api))
    move(api, lot_id, None, ids["FR"], 0)

    def out_of_fridge(to: int, minutes: float) -> MovementIn:
        return MovementIn(
            lot_id=lot_id, quantity=100, from_location_id=ids["FR"], to_location_id=to,
            moved_at=at(minutes),
        )  # fmt: skip

    outcome: list[object] = []

    def second_writer() -> None:
        with psycopg.connect(db_url) as second:
            set_actor(second, user="wh")
            try:
                movements.record_movement(second, movement=out_of_fridge(ids["F3"], 50), now=NOW)
                outcome.append("stored")
            except ConflictError as err:
                outcome.append(err.code)

    with psycopg.connect(db_url) as first:
        set_actor(first, user="wh")
        movements.record_movement(first, movement=out_of_fridge(ids["F2"], 100), now=NOW)
        # Alone, the second move would pass the stock check; it must wait for the first
        # and then see that FR no longer holds the lot at 100 min.
        thread = threading.Thread(target=second_writer)
        thread.start()
        thread.join(0.5)
        assert thread.is_alive()
    thread.join(10)
    assert outcome == ["backdated"]


def _shipment(api: StockApi, ids: dict[str, int], lot_id: int, loggers: list[int]) -> int:
    body = {
        "reference": "SH-9",
        "truck_location_id": ids["T1"],
        "origin_location_id": ids["FR"],
        "destination_location_id": ids["DK"],
        "lots": [{"lot_id": lot_id, "quantity": 40}],
        "logger_sensor_ids": loggers,
    }
    return int(api.post("wh", "/api/shipments", body)["id"])


def test_a_shipment_departs_once_when_two_departures_race(api: StockApi, db_url: str) -> None:
    ids = site_with(api, ("FR", "fridge"), ("DK", "dock"), ("T1", "truck"))
    lot_id = lot(api, item(api))
    move(api, lot_id, None, ids["FR"], 0)  # FR holds 100: enough for two loads of 40
    shipment_id = _shipment(api, ids, lot_id, [])
    outcome: list[object] = []

    def second_departure() -> None:
        with psycopg.connect(db_url) as second:
            set_actor(second, user="wh")
            try:
                shipments.depart(second, shipment_id=shipment_id, time=at(61), now=NOW)
                outcome.append("departed")
            except ShipmentStateError as err:
                outcome.append(err.code)

    with psycopg.connect(db_url) as first:
        set_actor(first, user="wh")
        shipments.depart(first, shipment_id=shipment_id, time=at(60), now=NOW)
        thread = threading.Thread(target=second_departure)
        thread.start()
        thread.join(0.5)
        assert thread.is_alive()
    thread.join(10)
    assert outcome == ["shipment_state"]
    assert movements_of(api, lot_id) == [(None, ids["FR"], 100), (ids["FR"], ids["T1"], 40)]


def test_a_past_departure_may_not_take_a_logger_from_a_decided_lots_history(
    api: StockApi, db_url: str
) -> None:
    ids = site_with(api, ("FR", "fridge"), ("DK", "dock"), ("T1", "truck"))
    logger = sensor(db_url, "logger")
    assign(api, logger, ids["FR"], 0)
    released = lot(api, item(api), "R")
    move(api, released, None, ids["FR"], 10)
    decide(db_url, released, action="release", when=at(200))
    shipped = lot(api, item(api, "09506000134369"), "S")
    move(api, shipped, None, ids["FR"], 10)
    shipment_id = _shipment(api, ids, shipped, [logger])
    # The logger stood for FR, so for the released lot, up to the decision at 200 min.
    refused = api.post("wh", f"/api/shipments/{shipment_id}/depart", {"time": iso(100)}, 409)
    assert refused["code"] == "release_evidence"
    assert segments(db_url, released) == [(logger, at(10), NOW)]
    api.post("wh", f"/api/shipments/{shipment_id}/depart", {"time": iso(300)}, 200)
    assert segments(db_url, released) == [(logger, at(10), at(300))]


def test_a_scan_waits_for_a_concurrent_move_and_starts_where_it_left_the_lot(
    api: StockApi, db_url: str
) -> None:
    ids = site_with(api, ("FR", "fridge"), ("F2", "fridge"), ("F3", "fridge"))
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="admin")
        reader = ReaderIn(location_id=ids["F3"], kind="scan")
        master.set_reader(conn, reader_id="dock-3", reader=reader)
    lot_id = lot(api, item(api))
    move(api, lot_id, None, ids["FR"], 0)
    outcome: list[object] = []

    def scan() -> None:
        with psycopg.connect(db_url) as second:
            set_actor(second, user="wh")
            try:
                moved = movements.movement_from_scan(
                    second, reader_id="dock-3", time=at(120), lot_id=lot_id, now=NOW
                )
                outcome.append(moved and moved.from_location_id)
            except ConflictError as err:
                outcome.append(err.code)

    with psycopg.connect(db_url) as first:
        set_actor(first, user="wh")
        movement = MovementIn(
            lot_id=lot_id,
            quantity=100,
            from_location_id=ids["FR"],
            to_location_id=ids["F2"],
            moved_at=at(60),
        )
        movements.record_movement(first, movement=movement, now=NOW)
        thread = threading.Thread(target=scan)
        thread.start()
        thread.join(0.5)
        assert thread.is_alive()
    thread.join(10)
    assert outcome == [ids["F2"]]


def test_receipts_never_hold_more_than_the_lot_at_any_time(api: StockApi) -> None:
    ids = site_with(api, ("FR", "fridge"), ("F2", "fridge"))
    lot_id = lot(api, item(api))  # 100
    move(api, lot_id, None, ids["FR"], 100, qty=60)
    move(api, lot_id, None, ids["F2"], 50, qty=40)  # earlier, partial: 40 then 100 in custody
    assert move(api, lot_id, None, ids["F2"], 10, qty=1, status=409)["code"] == "lot_quantity"
    assert move(api, lot_id, None, ids["F2"], 120, qty=1, status=409)["code"] == "lot_quantity"
    move(api, lot_id, ids["FR"], None, 200, qty=60)  # shipped to a customer
    move(api, lot_id, None, ids["FR"], 300, qty=60)  # and returned
    assert movements_of(api, lot_id)[-1] == (None, ids["FR"], 60)
