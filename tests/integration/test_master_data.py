"""Master data changes over HTTP against a real PostgreSQL: update and retire items and
locations, end and swap sensor assignments, with reasons in the audit trail, role
refusals, and the refusals that protect recorded history (docs/master-data.md).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import date, datetime

import psycopg
import pytest

from erp_core.audit.service import set_actor
from erp_core.errors import ErpError
from erp_core.lots.models import LotIn
from erp_core.lots.service import create_lot
from erp_core.masterdata import changes
from erp_core.masterdata.models import AssignmentIn
from erp_core.movements import service as movements
from erp_core.movements.models import MovementIn
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

OTHER_GTIN = "09506000134369"


@pytest.fixture
def api(db_url: str) -> Iterator[StockApi]:
    yield from api_for(db_url)


def test_item_update_needs_admin_and_a_reason_that_lands_in_the_audit_trail(
    api: StockApi,
) -> None:
    item_id = item(api)
    change = {"name": "Coronary stent", "reason": "name as on the new IFU"}
    for who in ("wh", "qa", "op"):
        api.patch(who, f"/api/items/{item_id}", change, 403)
    api.patch("admin", f"/api/items/{item_id}", {"name": "Coronary stent"}, 422)  # no reason
    api.patch("admin", f"/api/items/{item_id}", {"name": "x", "reason": ""}, 422)
    api.patch("admin", f"/api/items/{item_id}", {"gtin": OTHER_GTIN, "reason": "typo"}, 422)
    out = api.patch("admin", f"/api/items/{item_id}", change)
    assert out["name"] == "Coronary stent"
    assert api.get("op", f"/api/items/{item_id}")["name"] == "Coronary stent"
    update = [e for e in api.audit("erp.items", {"id": item_id}) if e["action"] == "UPDATE"]
    assert len(update) == 1
    assert update[0]["reason"] == "name as on the new IFU"
    assert update[0]["actor"] == "admin"
    assert update[0]["old_values"]["name"] == "Stent"
    assert update[0]["new_values"]["name"] == "Coronary stent"


def test_storage_condition_is_locked_while_lots_are_held_or_undecided(
    api: StockApi, db_url: str
) -> None:
    ids = site_with(api, ("FR", "fridge"))
    item_id = item(api)
    change = {"range_high": 10, "reason": "new stability data"}
    api.patch("admin", f"/api/items/{item_id}", change)  # no lots yet: allowed
    assert api.get("op", f"/api/items/{item_id}")["range_high"] == 10
    lot_id = lot(api, item_id)
    move(api, lot_id, None, ids["FR"], 0)
    refused = api.patch("admin", f"/api/items/{item_id}", {**change, "range_high": 12}, 409)
    assert refused["code"] == "history_locked"
    assert f"lots {lot_id}" in refused["detail"]
    assert "range_high" in refused["detail"]
    assert api.get("op", f"/api/items/{item_id}")["range_high"] == 10
    # A released lot that has left our custody no longer blocks the change.
    decide(db_url, lot_id, action="release", when=at(10))
    move(api, lot_id, ids["FR"], None, 20)
    api.patch("admin", f"/api/items/{item_id}", {**change, "range_high": 12})
    # Shortening record retention of existing lots is refused either way.
    implant = item(api, OTHER_GTIN, implantable=True)
    lot(api, implant, "L9")
    off = {"implantable": False, "reason": "reclassified"}
    assert api.patch("admin", f"/api/items/{implant}", off, 409)["code"] == "history_locked"
    assert api.patch("admin", f"/api/items/{implant}", {"name": "Ok", "reason": "rename"})


def test_retired_item_takes_no_new_lots_and_keeps_its_history(api: StockApi) -> None:
    item_id = item(api)
    pending = lot(api, item_id)
    retire = {"reason": "product discontinued"}
    api.post("wh", f"/api/items/{item_id}/retire", retire, 403)
    api.post("admin", f"/api/items/{item_id}/retire", {}, 422)
    busy = api.post("admin", f"/api/items/{item_id}/retire", retire, 409)
    assert busy["code"] == "in_use"
    assert str(pending) in busy["detail"]
    spare = item(api, OTHER_GTIN)
    out = api.post("admin", f"/api/items/{spare}/retire", retire, 200)
    assert out["retired_at"] is not None
    body = {"item_id": spare, "lot_number": "N1", "expires_on": "2028-01-01", "quantity": 1}
    assert api.post("wh", "/api/lots", body, 409)["code"] == "retired"
    assert api.post("admin", f"/api/items/{spare}/retire", retire, 409)["code"] == "retired"
    assert api.patch("admin", f"/api/items/{spare}", {"name": "y", **retire}, 409)
    assert [i["id"] for i in api.get("op", "/api/items")] == [item_id, spare]
    trail = api.audit("erp.items", {"id": spare})
    assert any(e["reason"] == "product discontinued" for e in trail)


def test_location_kind_locked_once_used_and_rename_audited(api: StockApi, db_url: str) -> None:
    ids = site_with(api, ("FR", "fridge"), ("CR", "cold_room"))
    patch = {"kind": "freezer", "reason": "re-qualified at -20"}
    assert api.patch("admin", f"/api/locations/{ids['CR']}", patch)["kind"] == "freezer"
    api.patch("wh", f"/api/locations/{ids['FR']}", patch, 403)
    assign(api, sensor(db_url, "p1"), ids["FR"], 0)
    refused = api.patch("admin", f"/api/locations/{ids['FR']}", patch, 409)
    assert refused["code"] == "history_locked"
    assert "fridge" in refused["detail"]
    rename = {"name": "Fridge 1 (lab)", "reason": "room renumbered"}
    assert api.patch("admin", f"/api/locations/{ids['FR']}", rename)["kind"] == "fridge"
    entry = next(
        e
        for e in api.audit("erp.locations", {"id": ids["FR"]})
        if e["action"] == "UPDATE" and "name" in (e["new_values"] or {})
    )
    assert entry["reason"] == "room renumbered"
    assert entry["old_values"]["name"] == "FR"
    # A duplicate code is a 409 like on create.
    dup = api.patch("admin", f"/api/locations/{ids['FR']}", {"code": "CR", "reason": "x-y"}, 409)
    assert dup["code"] == "duplicate"


def test_retired_location_refuses_use_but_keeps_history(api: StockApi, db_url: str) -> None:
    ids = site_with(api, ("FR", "fridge"), ("F2", "fridge"))
    probe = sensor(db_url, "p1")
    assignment = assign(api, probe, ids["FR"], 0)
    lot_id = lot(api, item(api))
    move(api, lot_id, None, ids["FR"], 10)
    retire = {"reason": "fridge decommissioned"}
    path = f"/api/locations/{ids['FR']}/retire"
    assert api.post("admin", path, retire, 409)["code"] == "in_use"  # holds the lot
    move(api, lot_id, ids["FR"], ids["F2"], 60)
    busy = api.post("admin", path, retire, 409)  # the probe is still assigned
    assert "sensor assignments" in busy["detail"]
    end = {"valid_to": iso(90), "reason": "probe removed with the fridge"}
    api.post("admin", f"/api/sensor-assignments/{assignment}/end", end, 200)
    out = api.post("admin", path, retire, 200)
    assert datetime.fromisoformat(out["retired_at"]) == NOW
    # No new use of any kind ...
    assert move(api, lot_id, ids["F2"], ids["FR"], 120, status=409)["code"] == "retired"
    new = {"sensor_id": sensor(db_url, "p2"), "location_id": ids["FR"], "valid_from": iso(100)}
    assert api.post("admin", "/api/sensor-assignments", new, 409)["code"] == "retired"
    child = {"code": "X", "name": "x", "kind": "fridge", "parent_id": ids["FR"]}
    api.post("admin", "/api/locations", child, 409)
    # ... also by a direct SQL write (the database holds the line).
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="direct-sql")
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                "INSERT INTO erp.stock_movements (lot_id, quantity, from_location_id, "
                "to_location_id, moved_at, source) VALUES (%s, 1, %s, %s, %s, 'manual')",
                (lot_id, ids["F2"], ids["FR"], at(130)),
            )
    # The history through the retired fridge is intact.
    history = api.get("op", f"/api/lots/{lot_id}/history")
    assert [(i["location_id"]) for i in history["intervals"]] == [ids["FR"], ids["F2"]]
    assert segments(db_url, lot_id) == [(probe, at(10), at(60))]


def test_swap_logger_splits_the_history_between_the_two_loggers(api: StockApi, db_url: str) -> None:
    ids = site_with(api, ("FR", "fridge"))
    old, new = sensor(db_url, "old"), sensor(db_url, "new")
    assignment = assign(api, old, ids["FR"], 0)
    lot_id = lot(api, item(api))
    move(api, lot_id, None, ids["FR"], 10)
    swap = {"sensor_id": new, "time": iso(120), "reason": "calibration swap"}
    api.post("wh", f"/api/sensor-assignments/{assignment}/swap", swap, 403)
    api.post("admin", f"/api/sensor-assignments/{assignment}/swap", {**swap, "reason": ""}, 422)
    out = api.post("admin", f"/api/sensor-assignments/{assignment}/swap", swap, 200)
    assert datetime.fromisoformat(out["ended"]["valid_to"]) == at(120)
    assert out["started"]["sensor_id"] == new
    assert segments(db_url, lot_id) == [(old, at(10), at(120)), (new, at(120), NOW)]
    # The ended assignment is not moved again, neither by end nor by swap.
    again = {"valid_to": iso(200), "reason": "second try"}
    refused = api.post("admin", f"/api/sensor-assignments/{assignment}/end", again, 409)
    assert refused["code"] == "history_locked"
    assert api.post("admin", f"/api/sensor-assignments/{assignment}/swap", swap, 409)
    trail = api.audit("erp.sensor_assignments", {"id": assignment})
    assert trail[0]["reason"] == "calibration swap"
    assert trail[0]["old_values"]["valid_to"] is None


def test_past_assignment_change_refused_when_it_alters_release_evidence(
    api: StockApi, db_url: str
) -> None:
    ids = site_with(api, ("FR", "fridge"))
    old, new = sensor(db_url, "old"), sensor(db_url, "new")
    assignment = assign(api, old, ids["FR"], 0)
    lot_id = lot(api, item(api))
    move(api, lot_id, None, ids["FR"], 10)
    decide(db_url, lot_id, action="release", when=at(300))
    swap = {"sensor_id": new, "time": iso(120), "reason": "logger was swapped earlier"}
    refused = api.post("admin", f"/api/sensor-assignments/{assignment}/swap", swap, 409)
    assert refused["code"] == "release_evidence"
    assert "on hold" in refused["detail"]
    assert segments(db_url, lot_id) == [(old, at(10), NOW)]
    extra = {"sensor_id": new, "location_id": ids["FR"], "valid_from": iso(100)}
    refused = api.post("admin", "/api/sensor-assignments", extra, 409)
    assert refused["code"] == "release_evidence"
    # After the decision, the same swap changes nothing that was signed.
    later = {**swap, "time": iso(310)}
    api.post("admin", f"/api/sensor-assignments/{assignment}/swap", later, 200)
    # QA puts the lot on hold: the record is open again and may be corrected.
    api.post("qa", f"/api/lots/{lot_id}/status", {"status": "on_hold", "reason": "review"}, 200)
    end = {"valid_to": iso(340), "reason": "logger removed"}
    started = api.get("op", f"/api/sensor-assignments?location_id={ids['FR']}")[-1]["id"]
    api.post("admin", f"/api/sensor-assignments/{started}/end", end, 200)


def _in_thread(
    db_url: str, outcome: list[object], action: Callable[[psycopg.Connection], object]
) -> threading.Thread:
    def run() -> None:
        with psycopg.connect(db_url) as conn:
            set_actor(conn, user="admin", reason="race test")
            try:
                action(conn)
                outcome.append("done")
            except ErpError as err:
                outcome.append(getattr(err, "code", type(err).__name__))

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_retiring_an_item_waits_for_a_lot_being_created_and_then_refuses(
    api: StockApi, db_url: str
) -> None:
    item_id = item(api)
    outcome: list[object] = []
    with psycopg.connect(db_url) as first:
        set_actor(first, user="wh")
        new_lot = LotIn(item_id=item_id, lot_number="L9", expires_on=date(2028, 1, 1), quantity=5)
        create_lot(first, lot=new_lot, now=NOW)
        thread = _in_thread(
            db_url, outcome, lambda c: changes.retire_item(c, item_id=item_id, now=NOW)
        )
        thread.join(0.5)
        assert thread.is_alive()
    thread.join(10)
    assert outcome == ["in_use"]


def test_a_move_into_a_location_being_retired_waits_and_is_refused(
    api: StockApi, db_url: str
) -> None:
    ids = site_with(api, ("FR", "fridge"), ("F2", "fridge"))
    lot_id = lot(api, item(api))
    move(api, lot_id, None, ids["FR"], 0)
    outcome: list[object] = []
    movement = MovementIn(
        lot_id=lot_id, quantity=100, from_location_id=ids["FR"], to_location_id=ids["F2"],
        moved_at=at(60),
    )  # fmt: skip
    with psycopg.connect(db_url) as first:
        set_actor(first, user="admin", reason="fridge decommissioned")
        changes.retire_location(first, location_id=ids["F2"], now=NOW)
        thread = _in_thread(
            db_url, outcome, lambda c: movements.record_movement(c, movement=movement, now=NOW)
        )
        thread.join(0.5)
        assert thread.is_alive()
    thread.join(10)
    assert outcome == ["retired"]
    assert [m["to_location_id"] for m in api.get("op", f"/api/lots/{lot_id}/movements")] == [
        ids["FR"]
    ]


def test_a_past_assignment_change_waits_for_a_release_being_signed_and_is_refused(
    api: StockApi, db_url: str
) -> None:
    ids = site_with(api, ("FR", "fridge"))
    old, new = sensor(db_url, "old"), sensor(db_url, "new")
    assign(api, old, ids["FR"], 0)
    lot_id = lot(api, item(api))
    move(api, lot_id, None, ids["FR"], 10)
    outcome: list[object] = []
    extra = AssignmentIn(sensor_id=new, location_id=ids["FR"], valid_from=at(100))
    with psycopg.connect(db_url) as release:
        # What the release service does: lock the lot, read its evidence, sign, decide.
        set_actor(release, user="qa", reason="release")
        release.execute("SELECT 1 FROM erp.lots WHERE id = %s FOR NO KEY UPDATE", (lot_id,))
        # (the lots were registered at NOW; this story is told in the hours before it)
        release.execute(
            "UPDATE erp.lots SET status_changed_at = %s WHERE id = %s", (at(300), lot_id)
        )
        release.execute(
            "INSERT INTO erp.release_decisions (lot_id, action, verdict, recommendation, "
            "signature_id, decided_by, decided_at) VALUES (%s, 'release', 'allowed', '{}', 0, "
            "'qa', %s)",
            (lot_id, at(300)),
        )
        release.execute(
            "UPDATE erp.lots SET status = 'released', status_changed_at = %s WHERE id = %s",
            (at(300), lot_id),
        )
        thread = _in_thread(
            db_url, outcome, lambda c: changes.add_assignment(c, assignment=extra, now=NOW)
        )
        thread.join(0.5)
        assert thread.is_alive()
    thread.join(10)
    assert outcome == ["release_evidence"]
    assert segments(db_url, lot_id) == [(old, at(10), NOW)]
