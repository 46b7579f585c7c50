"""One product, one item: every form of a GTIN (8, 12, 13, 14 digits) is one GTIN-14.

Before issue 10 the GTIN was stored as typed: ``4006381333931`` and ``04006381333931``
became two items, and ``find_lot`` took either. Now the ERP stores the GTIN-14 form, the
second form of a GTIN is refused (409 naming the item), the database refuses any other
form whatever path writes, and every form finds the one lot.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest

from erp_core.audit.service import set_actor
from erp_core.edge_events.service import EdgeEvent, lot_for
from erp_core.lots import service as lots
from erp_core.lots.models import LotIn
from erp_core.masterdata import service as master
from erp_core.masterdata.errors import DuplicateGtinError, InvalidGtinError
from erp_core.masterdata.models import ItemIn
from identifiers.gtin import is_gtin14, with_check_digit
from tests.integration.stock_fixtures import NOW, StockApi, api_for, item, lot, site_with

GRAFT_13, GRAFT_14 = "4006381333931", "04006381333931"
# one product written four ways (GS1 General Specifications Figure 3.3.2-1)
UPC_FORMS = ("036000291452", "0036000291452", "00036000291452")
EAN_8_FORMS = ("96385074", "000096385074", "0000096385074", "00000096385074")


@pytest.fixture
def api(db_url: str) -> Iterator[StockApi]:
    yield from api_for(db_url)


def new_item(gtin: str) -> dict[str, object]:
    return {"gtin": gtin, "name": "Graft", "range_low": 2, "range_high": 8}


def test_gtin13_and_gtin14_of_one_product_resolve_to_one_item(api: StockApi) -> None:
    created = api.post("admin", "/api/items", new_item(GRAFT_13))
    assert created["gtin"] == GRAFT_14  # kept in its GTIN-14 form
    refused = api.post("admin", "/api/items", new_item(GRAFT_14), status=409)
    assert refused["code"] == "duplicate"
    assert f"item {created['id']} ('Graft') already has GTIN {GRAFT_14}" in refused["detail"]
    # the same typed form again, and the other order of forms, for another product
    api.post("admin", "/api/items", new_item(GRAFT_13), status=409)
    upc = api.post("admin", "/api/items", new_item(UPC_FORMS[0]))
    for form in UPC_FORMS[1:]:
        refused = api.post("admin", "/api/items", new_item(form), status=409)
        if form != UPC_FORMS[-1]:
            assert f"{form} is another form of the GTIN-14 {UPC_FORMS[-1]}" in refused["detail"]
    items = api.get("op", "/api/items")
    assert sorted((i["id"], i["gtin"]) for i in items) == sorted(
        [(created["id"], GRAFT_14), (upc["id"], UPC_FORMS[-1])]
    )

    # a lot of the item is found by either form: a scan of a GTIN-13 label and of a
    # GTIN-14 label move the same lot
    lot_id = lot(api, created["id"], "L7", quantity=10)
    ids = site_with(api, ("FR", "fridge"), ("DK", "dock"))
    for reader, location in (("door-1", ids["FR"]), ("dock-1", ids["DK"])):
        api.client.put(
            f"/api/readers/{reader}",
            json={"location_id": location, "kind": "scan"},
            headers=api.headers("admin"),
        ).raise_for_status()
    scan = {"lot_number": "L7", "time": NOW.isoformat()}
    received = api.post("wh", "/api/scans", {**scan, "reader_id": "door-1", "gtin": GRAFT_13}, 200)
    later = {**scan, "time": (NOW + timedelta(minutes=5)).isoformat()}
    moved = api.post("wh", "/api/scans", {**later, "reader_id": "dock-1", "gtin": GRAFT_14}, 200)
    assert (received["lot_id"], received["to_location_id"]) == (lot_id, ids["FR"])
    assert (moved["lot_id"], moved["from_location_id"]) == (lot_id, ids["FR"])
    # a GTIN that is none: 422 naming the field and why (was a 404 "lot not found")
    bad = {**scan, "reader_id": "door-1", "gtin": "4006381333932"}
    detail = api.post("wh", "/api/scans", bad, 422)["detail"]
    assert detail[0]["loc"] == ["body", "gtin"]
    assert "check digit is 2, the GS1 check digit is 1" in detail[0]["msg"]


def test_find_lot_by_any_form_finds_the_one_lot(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="admin")
        ean8 = master.create_item(
            conn, item=ItemIn(gtin=EAN_8_FORMS[0], name="Vaccine", range_low=2, range_high=8)
        )
        other = master.create_item(
            conn, item=ItemIn(gtin=UPC_FORMS[1], name="Other", range_low=2, range_high=8)
        )
        wanted = lots.create_lot(conn, lot=lot_in(ean8.id, "A1"), now=NOW)
        lots.create_lot(conn, lot=lot_in(other.id, "A1"), now=NOW)  # same number, other item
        for form in EAN_8_FORMS:
            found = lots.find_lot(conn, gtin=form, lot_number="A1")
            assert (found.id, found.gtin) == (wanted.id, EAN_8_FORMS[-1])
        with pytest.raises(InvalidGtinError, match="check digit"):
            lots.find_lot(conn, gtin="96385075", lot_number="A1")


def lot_in(item_id: int, number: str) -> LotIn:
    return LotIn(item_id=item_id, lot_number=number, expires_on=NOW.date(), quantity=5)


def test_the_database_refuses_any_form_but_gtin14_whatever_path_writes(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="admin")
        master.create_item(conn, item=ItemIn(gtin=GRAFT_13, name="G", range_low=2, range_high=8))
        conn.commit()
        sql = "INSERT INTO erp.items (gtin, name, range_low, range_high) VALUES (%s, 'x', 2, 8)"
        for gtin, error in (
            (GRAFT_13, psycopg.errors.CheckViolation),  # the GTIN-13 form
            ("96385074", psycopg.errors.CheckViolation),  # a GTIN-8, even a new one
            ("04006381333932", psycopg.errors.CheckViolation),  # bad check digit
            (GRAFT_14, psycopg.errors.UniqueViolation),  # the GTIN-14 form: already there
        ):
            set_actor(conn, user="admin")
            with pytest.raises(error):
                conn.execute(sql, (gtin,))
            conn.rollback()


def test_two_forms_created_at_once_make_one_item(db_url: str) -> None:
    """The unique constraint decides a race of two forms; the loser hears who won."""
    first = psycopg.connect(db_url)
    outcome: list[BaseException | int] = []

    def create_other_form() -> None:
        with psycopg.connect(db_url) as conn:
            set_actor(conn, user="admin")
            try:
                made = master.create_item(
                    conn, item=ItemIn(gtin=GRAFT_14, name="G", range_low=2, range_high=8)
                )
                outcome.append(made.id)
            except DuplicateGtinError as err:
                outcome.append(err)

    try:
        set_actor(first, user="admin")
        winner = master.create_item(
            first, item=ItemIn(gtin=GRAFT_13, name="G", range_low=2, range_high=8)
        )
        racer = threading.Thread(target=create_other_form)
        racer.start()
        racer.join(timeout=1.0)
        assert racer.is_alive()  # waits on the first insert's uncommitted GTIN-14
        first.commit()
        racer.join(timeout=30)
    finally:
        first.close()
    assert len(outcome) == 1
    assert isinstance(outcome[0], DuplicateGtinError)
    assert outcome[0].item_id == winner.id


def test_a_tag_registered_under_any_form_is_found_by_the_read(api: StockApi, db_url: str) -> None:
    item_id = item(api, GRAFT_13)
    lot_id = lot(api, item_id, "T1")
    tag = api.post("wh", "/api/lot-tags", {"lot_id": lot_id, "gtin": GRAFT_13, "serial": "7"})
    assert tag["gtin"] == GRAFT_14
    api.post("wh", "/api/lot-tags", {"lot_id": lot_id, "gtin": GRAFT_14, "serial": "7"}, 409)
    bad = {"lot_id": lot_id, "gtin": "4006381333932", "serial": "8"}
    assert "check digit" in str(api.post("wh", "/api/lot-tags", bad, 422)["detail"])
    with psycopg.connect(db_url) as conn:
        for read in (GRAFT_14, GRAFT_13):  # an SGTIN gives the GTIN-14; a reader may not
            event = EdgeEvent("rfid", 1, NOW, "door", True, None, read, None, None, "7")
            assert lot_for(conn, event) == lot_id


def test_the_database_check_is_the_python_rule(db_url: str) -> None:
    """The SQL check digit (erp.gtin_valid) and CHECK agree with identifiers.gtin on every value."""
    rnd = random.Random(10)
    candidates = {GRAFT_14, "00000096385074", "00036000291452", "0400638133393１", "4006381333931"}
    for _ in range(400):
        length = rnd.choice([8, 12, 13, 14, 14, 14, 15])
        candidates.add("".join(rnd.choice("0123456789") for _ in range(length)))
    for _ in range(100):  # valid GTIN-14s, so both outcomes are well represented
        candidates.add(with_check_digit("".join(rnd.choice("0123456789") for _ in range(13))))
    stored = []
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="admin")
        for gtin in sorted(candidates):
            try:
                with conn.transaction():
                    conn.execute(
                        "INSERT INTO erp.items (gtin, name, range_low, range_high)"
                        " VALUES (%s, 'x', 2, 8)",
                        (gtin,),
                    )
                stored.append(gtin)
            except psycopg.errors.CheckViolation:
                assert not is_gtin14(gtin), gtin
            else:
                assert is_gtin14(gtin), gtin
    assert 100 <= len(stored) < len(candidates) - 100
