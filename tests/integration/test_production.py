"""Production over HTTP against a real PostgreSQL: BOM versions approved with a signature,
work orders that consume scanned component lots, and the genealogy through a sub-assembly.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest

from erp_core.audit.service import set_actor
from identifiers.gtin import check_digit
from tests.integration.stock_fixtures import (
    NOW,
    StockApi,
    api_for,
    decide,
    location,
)

PASSWORD = "Long-enough-Pass-4711!"
GS = "\x1d"


def gtin(n: int) -> str:
    body = f"0950600{n:06d}"
    return body + str(check_digit(body))


def label(gtin14: str, lot: str, expiry: str = "281231") -> str:
    """A GS1 DataMatrix as a scanner sends it: symbology id, AIs 01, 17, 10."""
    return f"]d201{gtin14}17{expiry}10{lot}"


@pytest.fixture
def api(db_url: str) -> Iterator[StockApi]:
    yield from api_for(db_url)


class Plant:
    """Items, a cleanroom with a work centre, and helpers on one API."""

    def __init__(self, api: StockApi, db_url: str) -> None:
        self.api, self.db_url = api, db_url
        site = location(api, "S", "site", None)
        area = location(api, "PROD", "area", site)
        room = location(api, "CR-1", "cleanroom", area)
        self.wc = location(api, "WC-1", "work_center", room)
        self.items: dict[str, tuple[int, str]] = {}

    def item(self, name: str, n: int) -> int:
        g = gtin(n)
        body = {"gtin": g, "name": name, "range_low": 15, "range_high": 25}
        self.items[name] = (int(self.api.post("admin", "/api/items", body)["id"]), g)
        return self.items[name][0]

    def bom(
        self, product: str, lines: list[tuple[str, float, float]], *, approve: bool = True
    ) -> int:
        body = {
            "item_id": self.items[product][0],
            "lines": [
                {"component_item_id": self.items[c][0], "quantity_per": q, "scrap_factor": s}
                for c, q, s in lines
            ],
        }
        bom = self.api.post("qa", "/api/boms", body)
        if approve:
            done = self.api.post(
                "qam", f"/api/boms/{bom['id']}/approval", {"password": PASSWORD}, 200
            )
            assert done["status"] == "effective"
        return int(bom["id"])

    def released_lot_at_wc(self, item_name: str, number: str, qty: float = 100) -> int:
        """A released component lot, received at the work centre."""
        body = {
            "item_id": self.items[item_name][0],
            "lot_number": number,
            "expires_on": "2028-12-31",
            "quantity": qty,
        }
        lot = int(self.api.post("wh", "/api/lots", body)["id"])
        move = {
            "lot_id": lot,
            "quantity": qty,
            "to_location_id": self.wc,
            "moved_at": (NOW - timedelta(hours=2)).isoformat(),
        }
        self.api.post("wh", "/api/movements", move)
        decide(self.db_url, lot, action="release", when=NOW - timedelta(hours=1))
        return lot

    def order(self, number: str, product: str, qty: float) -> int:
        body = {"number": number, "item_id": self.items[product][0], "work_center_id": self.wc,
                "quantity_planned": qty}  # fmt: skip
        wo = self.api.post("op", "/api/work-orders", body)
        assert wo["status"] == "planned"
        released = self.api.post("op", f"/api/work-orders/{wo['id']}/release", {}, 200)
        assert released["status"] == "released"
        return int(wo["id"])

    def issue(self, wo: int, item_name: str, lot: str, qty: float, status: int = 201) -> object:
        body = {"scanned": label(self.items[item_name][1], lot), "quantity": qty}
        return self.api.post("op", f"/api/work-orders/{wo}/issues", body, status)

    def complete(self, wo: int, lot_number: str, good: float) -> int:
        body = {"lot_number": lot_number, "expires_on": "2029-06-30", "quantity_good": good}
        return int(self.api.post("op", f"/api/work-orders/{wo}/complete", body, 200)["id"])


@pytest.fixture
def plant(api: StockApi, db_url: str) -> Plant:
    p = Plant(api, db_url)
    for n, name in enumerate(("catheter", "balloon", "shaft", "hub", "tip"), start=1):
        p.item(name, n)
    p.bom("balloon", [("shaft", 1, 0), ("tip", 2, 0.05)])  # the sub-assembly
    p.bom("catheter", [("balloon", 1, 0), ("hub", 1, 0)])  # the finished device
    return p


def _genealogy(api: StockApi, lot: int, direction: str) -> set[tuple[str, int, str]]:
    rows = api.get("qa", f"/api/lots/{lot}/genealogy?direction={direction}")
    return {(r["lot_number"], r["depth"], r["work_order_number"]) for r in rows}


def test_two_levels_of_scanned_components_give_the_exact_genealogy(plant: Plant) -> None:
    api = plant.api
    shaft = plant.released_lot_at_wc("shaft", "SH-1")
    tip = plant.released_lot_at_wc("tip", "TP-1")
    hub = plant.released_lot_at_wc("hub", "HB-1")
    unrelated = plant.released_lot_at_wc("hub", "HB-2")

    wo1 = plant.order("WO-SUB-1", "balloon", 10)
    plant.issue(wo1, "shaft", "SH-1", 10)
    plant.issue(wo1, "tip", "TP-1", 20)
    balloon = plant.complete(wo1, "BL-1", 10)
    decide(plant.db_url, balloon, action="release", when=NOW)

    wo2 = plant.order("WO-FIN-1", "catheter", 10)
    plant.issue(wo2, "balloon", "BL-1", 10)
    plant.issue(wo2, "hub", "HB-1", 10)
    catheter = plant.complete(wo2, "CT-1", 10)

    assert _genealogy(api, catheter, "backward") == {
        ("BL-1", 1, "WO-FIN-1"),
        ("HB-1", 1, "WO-FIN-1"),
        ("SH-1", 2, "WO-SUB-1"),
        ("TP-1", 2, "WO-SUB-1"),
    }
    assert _genealogy(api, shaft, "forward") == {("BL-1", 1, "WO-SUB-1"), ("CT-1", 2, "WO-FIN-1")}
    assert _genealogy(api, tip, "forward") == _genealogy(api, shaft, "forward")
    assert _genealogy(api, hub, "forward") == {("CT-1", 1, "WO-FIN-1")}
    assert _genealogy(api, unrelated, "forward") == set()
    assert _genealogy(api, shaft, "backward") == set()
    # the consumed stock left the work centre through ordinary movements
    with psycopg.connect(plant.db_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM erp.stock_movements m JOIN erp.material_issues i"
            " ON i.movement_id = m.id WHERE m.from_location_id = %s AND m.to_location_id IS NULL",
            (plant.wc,),
        ).fetchone()
    assert row == (4,)
    order = api.get("qa", f"/api/work-orders/{wo2}")
    assert (order["status"], order["output_lot_id"]) == ("completed", catheter)
    finished = api.get("qa", f"/api/lots/{catheter}")
    assert finished["status"] == "quarantine"


def test_refusals_at_scan_name_their_reason(plant: Plant) -> None:
    api = plant.api
    plant.released_lot_at_wc("shaft", "SH-OK")
    plant.released_lot_at_wc("tip", "TP-OK")
    held = plant.released_lot_at_wc("shaft", "SH-HOLD")
    api.post("qa", f"/api/lots/{held}/status", {"status": "on_hold", "reason": "complaint"}, 200)
    expired = plant.released_lot_at_wc("tip", "TP-OLD")
    with psycopg.connect(plant.db_url) as conn:
        set_actor(conn, user="test-setup", reason="an expired lot")
        conn.execute("UPDATE erp.lots SET expires_on = %s WHERE id = %s",
                     ((NOW - timedelta(days=1)).date(), expired))  # fmt: skip
    # quarantined: received but never released
    body = {"item_id": plant.items["shaft"][0], "lot_number": "SH-Q", "expires_on": "2028-12-31",
            "quantity": 5}  # fmt: skip
    api.post("wh", "/api/lots", body)
    plant.released_lot_at_wc("hub", "HB-X")  # not a component of the balloon
    wo = plant.order("WO-R", "balloon", 10)

    def refused(item_name: str, lot: str, qty: float) -> str:
        answer = plant.issue(wo, item_name, lot, qty, status=409)
        assert isinstance(answer, dict)
        return str(answer["code"])

    assert refused("shaft", "SH-HOLD", 1) == "lot_on_hold"
    assert refused("tip", "TP-OLD", 1) == "lot_expired"
    assert refused("shaft", "SH-Q", 1) == "lot_not_released"
    assert refused("hub", "HB-X", 1) == "not_on_bom"
    # the allowance for tips: 2 per balloon x 10 x 1.05 = 21
    plant.issue(wo, "tip", "TP-OK", 20)
    assert refused("tip", "TP-OK", 1.5) == "over_issue"
    plant.issue(wo, "tip", "TP-OK", 1)
    with psycopg.connect(plant.db_url) as conn:
        issued = conn.execute(
            "SELECT count(*), sum(quantity) FROM erp.material_issues WHERE work_order_id = %s",
            (wo,),
        ).fetchone()
    assert issued is not None
    assert (issued[0], float(issued[1])) == (2, 21.0)


def test_a_component_of_another_bom_version_is_refused_as_such(plant: Plant) -> None:
    plant.item("coating", 9)
    plant.bom("balloon", [("shaft", 1, 0), ("tip", 2, 0.05), ("coating", 1, 0)])  # v2
    plant.released_lot_at_wc("coating", "CO-1")
    wo = plant.order("WO-V2", "balloon", 5)  # made on v2
    plant.issue(wo, "coating", "CO-1", 5)
    plant.bom("balloon", [("shaft", 1, 0), ("tip", 2, 0.05)])  # v3 drops the coating
    wo3 = plant.order("WO-V3", "balloon", 5)
    answer = plant.issue(wo3, "coating", "CO-1", 1, status=409)
    assert isinstance(answer, dict)
    assert answer["code"] == "other_bom_version"


def test_a_bom_takes_effect_only_through_a_signed_approval(plant: Plant) -> None:
    api = plant.api
    plant.item("sheath", 11)
    draft = plant.bom("sheath", [("shaft", 1, 0)], approve=False)
    body = {"number": "WO-D", "item_id": plant.items["sheath"][0], "work_center_id": plant.wc,
            "quantity_planned": 1}  # fmt: skip
    refused = api.post("op", "/api/work-orders", body, 409)
    assert refused["code"] == "no_effective_bom"
    api.post("qa", f"/api/boms/{draft}/approval", {"password": PASSWORD}, 403)  # role
    api.post("qam", f"/api/boms/{draft}/approval", {"password": "wrong"}, 403)
    approved = api.post("qam", f"/api/boms/{draft}/approval", {"password": PASSWORD}, 200)
    assert approved["status"] == "effective"
    with psycopg.connect(plant.db_url) as conn:
        sig = conn.execute(
            "SELECT s.meaning, s.username FROM erp.boms b JOIN erp.signatures s"
            " ON s.id = b.approved_signature_id WHERE b.id = %s",
            (draft,),
        ).fetchone()
        assert sig == ("Approved BOM version", "qam")
        set_actor(conn, user="someone", reason="edit an approved BOM")
        with pytest.raises(psycopg.errors.CheckViolation, match="approved"):
            conn.execute("UPDATE erp.bom_lines SET quantity_per = 2 WHERE bom_id = %s", (draft,))
    api.post("op", "/api/work-orders", body)


def test_completion_needs_every_component_and_an_open_order(plant: Plant) -> None:
    plant.released_lot_at_wc("shaft", "SH-C")
    wo = plant.order("WO-C", "balloon", 2)
    plant.issue(wo, "shaft", "SH-C", 2)
    body = {"lot_number": "BL-C", "expires_on": "2029-06-30", "quantity_good": 2}
    answer = plant.api.post("op", f"/api/work-orders/{wo}/complete", body, 409)
    assert answer["code"] == "components_missing"
    planned = plant.api.post(
        "op", "/api/work-orders",
        {"number": "WO-P", "item_id": plant.items["balloon"][0], "work_center_id": plant.wc,
         "quantity_planned": 1},
    )  # fmt: skip
    answer = plant.issue(int(planned["id"]), "shaft", "SH-C", 1, status=409)
    assert isinstance(answer, dict)
    assert answer["code"] == "work_order_not_open"
