"""The items and locations pages against a real PostgreSQL: forms, reasons, refusals, audit.

Signed in through the real sign-in form; every form POST carries the page's CSRF token.
Also: the API's 409 refusals and 422 checks in English and in Simplified Chinese.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import psycopg
import pytest

from tests.integration.stock_fixtures import (
    GTIN,
    StockApi,
    api_for,
    assign,
    item,
    location,
    lot,
    move,
    sensor,
    site_with,
)
from tests.integration.web_helpers import csrf_of, sign_in

PASSWORD = "Long-enough-Pass-4711!"
OTHER_GTIN = "09506000134369"  # valid check digit
BAD_GTIN = "09506000134368"  # the same with a wrong check digit


@pytest.fixture
def api(db_url: str) -> Iterator[StockApi]:
    yield from api_for(db_url)


def _admin(api: StockApi) -> str:
    """Sign the app's client in as the administrator; a CSRF token of the session."""
    sign_in(api.client, "admin", PASSWORD)
    return csrf_of(api.client.get("/items/new").text)


def _audit(db_url: str, table: str, key: int) -> list[tuple[str, str, str | None]]:
    with psycopg.connect(db_url) as conn:
        return [
            (r[0], r[1], r[2])
            for r in conn.execute(
                "SELECT action, actor, nullif(reason, '') FROM erp.audit_log"
                " WHERE table_name = %s AND row_key = jsonb_build_object('id', %s::int)"
                " ORDER BY seq",
                (table, key),
            )
        ]


def _field_error(html: str, name: str) -> str:
    found = re.search(rf'<span class="field-error" id="e-{name}"[^>]*>([^<]*)</span>', html)
    assert found is not None, f"no error next to {name}"
    return found.group(1)


ITEM_FORM = {
    "name": "Stent XL",
    "range_low": "2",
    "range_high": "8",
    "mkt_limit": "8",
    "tor_budget_minutes": "120",
    "shelf_life_days": "",
    "alarm_profile_id": "",
}


def test_an_admin_creates_an_item_a_bad_gtin_is_refused_next_to_its_field(
    api: StockApi, db_url: str
) -> None:
    csrf = _admin(api)
    bad = api.client.post("/items/new", data={**ITEM_FORM, "gtin": BAD_GTIN, "csrf_token": csrf})
    assert bad.status_code == 422
    assert "check digit" in _field_error(bad.text, "gtin")
    assert f'value="{BAD_GTIN}"' in bad.text  # what was typed is kept
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM erp.items").fetchone() == (0,)

    made = api.client.post(
        "/items/new",
        data={**ITEM_FORM, "gtin": OTHER_GTIN, "csrf_token": csrf},
        follow_redirects=False,
    )
    assert made.status_code == 303
    page = api.client.get(made.headers["location"])
    assert page.status_code == 200
    assert OTHER_GTIN in page.text
    assert "2.0 – 8.0 °C" in page.text
    assert "2 h" in page.text or "120 min" in page.text  # the TOR budget as a duration
    item_id = int(made.headers["location"].split("/")[2].split("?")[0])
    assert _audit(db_url, "erp.items", item_id) == [("INSERT", "admin", None)]
    listing = api.client.get("/items?q=XL")
    assert f'href="/items/{item_id}"' in listing.text


def test_an_item_change_needs_a_reason_and_lands_in_the_audit_trail(
    api: StockApi, db_url: str
) -> None:
    item_id = item(api)
    csrf = _admin(api)
    form = {**ITEM_FORM, "name": "Stent renamed", "csrf_token": csrf}
    no_reason = api.client.post(f"/items/{item_id}/edit", data={**form, "reason": ""})
    assert no_reason.status_code == 422
    assert _field_error(no_reason.text, "reason")
    assert [a for a, _w, _r in _audit(db_url, "erp.items", item_id)] == ["INSERT"]

    done = api.client.post(
        f"/items/{item_id}/edit",
        data={**form, "reason": "Name as on the new label"},
        follow_redirects=False,
    )
    assert done.status_code == 303
    page = api.client.get(done.headers["location"]).text
    assert "Stent renamed" in page
    assert "Name as on the new label" in page  # the change history shows the reason
    assert _audit(db_url, "erp.items", item_id)[-1] == (
        "UPDATE",
        "admin",
        "Name as on the new label",
    )


def test_a_refused_change_shows_its_rule_next_to_the_form_in_both_languages(
    api: StockApi, db_url: str
) -> None:
    ids = site_with(api, ("F1", "fridge"))
    item_id = item(api)
    move(api, lot(api, item_id), None, ids["F1"], 0)  # a lot in stock: the range is locked
    csrf = _admin(api)
    form = {**ITEM_FORM, "range_high": "9", "reason": "Wider range", "csrf_token": csrf}
    refused = api.client.post(f"/items/{item_id}/edit", data=form)
    assert refused.status_code == 409
    assert 'data-code="history_locked"' in refused.text
    assert "alter what recorded history means" in refused.text
    assert "cannot change while lots are in stock" in refused.text  # the particulars
    assert 'value="9"' in refused.text  # what was typed is kept

    api.client.headers["accept-language"] = "zh-CN"
    chinese = api.client.post(f"/items/{item_id}/edit", data=form)
    assert chinese.status_code == 409
    assert "拒绝" in chinese.text
    assert "已记录历史" in chinese.text
    with psycopg.connect(db_url) as conn:
        assert conn.execute(
            "SELECT range_high FROM erp.items WHERE id = %s", (item_id,)
        ).fetchone() == (8.0,)
    assert [a for a, _w, _r in _audit(db_url, "erp.items", item_id)] == ["INSERT"]

    retire = api.client.post(
        f"/items/{item_id}/retire", data={"reason": "Discontinued", "csrf_token": csrf}
    )
    assert retire.status_code == 409
    assert 'data-code="in_use"' in retire.text


def test_locations_show_as_a_tree_with_their_sensors_and_are_changed_with_a_reason(
    api: StockApi, db_url: str
) -> None:
    ids = site_with(api, ("F1", "fridge"), ("TR1", "truck"))
    probe = sensor(db_url, "T-F1")
    assign(api, probe, ids["F1"], -60)
    csrf = _admin(api)
    tree = api.client.get("/locations").text
    order = [tree.index(f'href="/locations/{ids[c]}"') for c in ("S", "A", "F1", "TR1")]
    assert order == sorted(order)  # the site, its area, the fridge under it, the truck
    assert 'class="depth-2"' in tree  # the fridge, two levels down

    fridge = api.client.get(f"/locations/{ids['F1']}").text
    assert "T-F1" in fridge
    assert f'href="/sensors/{probe}"' in fridge

    kind = api.client.post(
        f"/locations/{ids['F1']}/edit",
        data={
            "code": "F1",
            "name": "F1",
            "kind": "freezer",
            "parent_id": str(ids["A"]),
            "reason": "It is a freezer",
            "csrf_token": csrf,
        },
    )
    assert kind.status_code == 409
    assert 'data-code="history_locked"' in kind.text

    renamed = api.client.post(
        f"/locations/{ids['F1']}/edit",
        data={
            "code": "F1",
            "name": "Fridge one",
            "kind": "fridge",
            "parent_id": str(ids["A"]),
            "reason": "Name on the door",
            "csrf_token": csrf,
        },
        follow_redirects=False,
    )
    assert renamed.status_code == 303
    assert _audit(db_url, "erp.locations", ids["F1"])[-1] == (
        "UPDATE",
        "admin",
        "Name on the door",
    )

    to_the_top = api.client.post(
        f"/locations/{ids['TR1']}/edit",
        data={
            "code": "TR1",
            "name": "TR1",
            "kind": "truck",
            "parent_id": "",
            "reason": "No parent any more",
            "csrf_token": csrf,
        },
    )
    assert to_the_top.status_code == 422  # only a site stands at the top
    assert "site" in _field_error(to_the_top.text, "parent_id")

    busy = api.client.post(
        f"/locations/{ids['F1']}/retire", data={"reason": "Moved out", "csrf_token": csrf}
    )
    assert busy.status_code == 409
    assert 'data-code="in_use"' in busy.text

    spare = location(api, "SPARE", "fridge", ids["A"])
    gone = api.client.post(
        f"/locations/{spare}/retire",
        data={"reason": "Never used", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert gone.status_code == 303
    assert _audit(db_url, "erp.locations", spare)[-1] == ("UPDATE", "admin", "Never used")

    new = api.client.post(
        "/locations/new",
        data={
            "code": "S2",
            "name": "Second site",
            "kind": "site",
            "parent_id": "",
            "csrf_token": csrf,
        },
        follow_redirects=False,
    )
    assert new.status_code == 303
    orphan = api.client.post(
        "/locations/new",
        data={"code": "F9", "name": "", "kind": "fridge", "parent_id": "", "csrf_token": csrf},
    )
    assert orphan.status_code == 422
    assert _field_error(orphan.text, "parent_id")


def test_only_an_admin_changes_master_data_and_every_form_needs_its_csrf_field(
    api: StockApi, db_url: str
) -> None:
    item_id = item(api)
    sign_in(api.client, "qa", PASSWORD)
    page = api.client.get(f"/items/{item_id}")
    assert page.status_code == 200
    assert f'action="/items/{item_id}/retire"' not in page.text  # read only
    csrf = csrf_of(page.text)
    for url in (f"/items/{item_id}/retire", "/locations/new"):
        r = api.client.post(url, data={"reason": "Not mine to do", "csrf_token": csrf})
        assert r.status_code == 403, url
    api.client.cookies.clear()
    sign_in(api.client, "admin", PASSWORD)
    forged = api.client.post(f"/items/{item_id}/retire", data={"reason": "No token here"})
    assert forged.status_code == 403
    with psycopg.connect(db_url) as conn:
        assert conn.execute(
            "SELECT retired_at FROM erp.items WHERE id = %s", (item_id,)
        ).fetchone() == (None,)


def _with_check_digit(body: str) -> str:
    """``body`` (13 digits) and its GS1 check digit (weights 3, 1, … from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def test_the_lists_paginate(api: StockApi, db_url: str) -> None:
    assert _with_check_digit("0950600013435") == GTIN  # the helper agrees with GS1's example
    with psycopg.connect(db_url) as conn:
        conn.execute("SELECT set_config('coldtrace.user', 'test-setup', false)")
        for n in range(1, 61):
            conn.execute(
                "INSERT INTO erp.items (gtin, name, range_low, range_high) VALUES (%s, %s, 2, 8)",
                (_with_check_digit(f"0400000{n:06d}"), f"Bulk {n:03d}"),
            )
    sign_in(api.client, "qa", PASSWORD)
    first = api.client.get("/items").text
    assert first.count('<a href="/items/') == 50
    assert 'rel="next"' in first
    second = api.client.get("/items?page=2").text
    assert second.count('<a href="/items/') == 10
    assert "Rows 51–60" in second


@pytest.mark.parametrize(
    ("language", "words"),
    [("en", "cannot change while lots are in stock"), ("zh-CN", "已记录历史")],
)
def test_the_same_409_from_the_api_in_english_and_chinese(
    api: StockApi, language: str, words: str
) -> None:
    ids = site_with(api, ("F1", "fridge"))
    item_id = item(api)
    move(api, lot(api, item_id), None, ids["F1"], 0)
    r = api.client.patch(
        f"/api/items/{item_id}",
        json={"range_high": 9, "reason": "Wider range"},
        headers={**api.headers("admin"), "accept-language": language},
    )
    assert r.status_code == 409
    assert r.json()["code"] == "history_locked"  # unchanged for machines
    assert words in r.json()["detail"]
    if language == "zh-CN":
        assert f"item {item_id}" in r.json()["detail"]  # the particulars are kept


def test_the_api_validation_messages_follow_the_language_and_keep_their_shape(
    api: StockApi,
) -> None:
    body = {"gtin": GTIN, "name": "", "range_low": "warm", "range_high": 8}
    english = api.client.post("/api/items", json=body, headers=api.headers("admin"))
    chinese = api.client.post(
        "/api/items", json=body, headers={**api.headers("admin"), "accept-language": "zh-CN"}
    )
    assert english.status_code == chinese.status_code == 422
    en, zh = english.json()["detail"], chinese.json()["detail"]
    assert [(e["type"], e["loc"]) for e in en] == [(e["type"], e["loc"]) for e in zh]
    by_loc = {tuple(e["loc"]): e["msg"] for e in zh}
    assert "数字" in by_loc["body", "range_low"]  # "enter a number"
    assert all(re.search(r"[\u4e00-\u9fff]", e["msg"]) for e in zh)
    assert not any(re.search(r"[\u4e00-\u9fff]", e["msg"]) for e in en)
    bad_gtin = api.client.post(
        "/api/items",
        json={**body, "name": "X", "range_low": 2, "gtin": BAD_GTIN},
        headers={**api.headers("admin"), "accept-language": "zh-CN"},
    )
    assert bad_gtin.status_code == 422
    assert bad_gtin.json()["detail"][0]["loc"] == ["body", "gtin"]
    assert re.search(r"[\u4e00-\u9fff]", bad_gtin.json()["detail"][0]["msg"])
