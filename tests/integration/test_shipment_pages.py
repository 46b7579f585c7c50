"""The shipments pages on a real database: order of the list, the detail's parts, the forms."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import psycopg
import pytest

from tests.integration.shipment_scene import Shipments, make_shipments
from tests.integration.stock_fixtures import NOW, StockApi, api_for
from tests.integration.web_helpers import csrf_of, sign_in

PASSWORD = "Long-enough-Pass-4711!"
_ROW_LINK = re.compile(r'<a href="/shipments/(\d+)">')


@pytest.fixture
def scene(db_url: str) -> Iterator[tuple[StockApi, Shipments]]:
    with contextmanager(api_for)(db_url) as api:
        yield api, make_shipments(api, db_url)


def test_the_list_puts_the_shipment_in_transit_first_with_its_lots_and_open_alert(
    scene: tuple[StockApi, Shipments],
) -> None:
    api, sh = scene
    sign_in(api.client, "qa", PASSWORD)
    r = api.client.get("/shipments")
    assert r.status_code == 200, r.text
    assert [int(x) for x in _ROW_LINK.findall(r.text)] == [sh.in_transit, sh.planned, sh.arrived]
    first_row = r.text.split("<tbody>")[1].split("</tr>")[0]
    assert "IN TRANSIT" in first_row
    assert "L-TRIP-1, L-TRIP-2" in first_row
    assert "FR</span> → <span" in first_row
    assert '<span class="badge alarm">1</span>' in first_row  # the logger's open alert
    assert "Jun 1, 2026" in first_row  # departed, Babel's "en" date
    done_row = r.text.split("</tr>")[-2]
    assert "ARRIVED" in done_row
    assert '<td class="num">0</td>' in done_row


def test_the_detail_shows_lots_logger_chart_with_band_alert_and_report_link(
    scene: tuple[StockApi, Shipments],
) -> None:
    api, sh = scene
    sign_in(api.client, "qa", PASSWORD)
    r = api.client.get(f"/shipments/{sh.in_transit}")
    assert r.status_code == 200, r.text
    text = r.text
    for lot_number in ("L-TRIP-1", "L-TRIP-2"):
        assert f'<a href="/lots/{sh.lots[lot_number]}">{lot_number}</a>' in text
    assert "QUARANTINE" in text  # each lot's release status
    assert f'<a href="/sensors/{sh.logger}">LOGGER-1</a>' in text
    assert text.count('<svg class="chart"') == 1
    assert 'class="limits"' in text  # the allowed band of the logger's profile
    assert "allowed 2–8 °C (profile truck-2-8)" in text
    assert 'id="out-of-range-logger-0"' in text
    assert f"/api/shipments/{sh.in_transit}/report.pdf" in text
    assert "Truck above 8 °C for 20 min" in text
    assert f"#{sh.alert}" in text
    assert "Not arrived yet." in text
    # qa may read, not depart or arrive
    assert 'action="/shipments/' not in text
    assert "recorded by the role warehouse" in text


def test_warehouse_arrives_the_shipment_and_the_checks_show_what_was_recorded(
    scene: tuple[StockApi, Shipments], db_url: str
) -> None:
    api, sh = scene
    sign_in(api.client, "wh", PASSWORD)
    page = api.client.get(f"/shipments/{sh.in_transit}")
    assert f'action="/shipments/{sh.in_transit}/arrive"' in page.text
    token = csrf_of(page.text)
    # a time that is not one: shown next to the field, nothing recorded
    bad = api.client.post(
        f"/shipments/{sh.in_transit}/arrive", data={"csrf_token": token, "time": "yesterday"}
    )
    assert bad.status_code == 422
    assert 'class="field-error"' in bad.text
    assert 'aria-invalid="true"' in bad.text
    # before the departure: the service's reason, next to the field
    early = api.client.post(
        f"/shipments/{sh.in_transit}/arrive",
        data={"csrf_token": token, "time": "2026-06-01T06:30"},
    )
    assert early.status_code == 422
    assert "must be after the departure" in early.text
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT arrived_at FROM erp.shipments WHERE id = %s", (sh.in_transit,)
        ).fetchone()
    assert row == (None,)
    # no CSRF token: refused, nothing done
    forged = api.client.post(f"/shipments/{sh.in_transit}/arrive", data={"time": ""})
    assert forged.status_code == 403
    done = api.client.post(
        f"/shipments/{sh.in_transit}/arrive",
        data={"csrf_token": token, "time": ""},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT arrived_at FROM erp.shipments WHERE id = %s", (sh.in_transit,)
        ).fetchone()
    assert row == (NOW,)
    after = api.client.get(f"/shipments/{sh.in_transit}").text
    assert "Lot L-TRIP-1 received at DK at Jun 1, 2026" in after
    assert "Logger LOGGER-1 taken off the truck at" in after
    assert "✗" not in after
    assert f'action="/shipments/{sh.in_transit}/arrive"' not in after  # nothing left to do
    # arriving twice is out of order: a clear refusal with the reason, not a 500
    again = api.client.post(
        f"/shipments/{sh.in_transit}/arrive", data={"csrf_token": token, "time": ""}
    )
    assert again.status_code == 409
    assert f"Not done: shipment {sh.in_transit} is not under way" in again.text


def test_warehouse_departs_the_planned_shipment_at_the_time_typed(
    scene: tuple[StockApi, Shipments], db_url: str
) -> None:
    api, sh = scene
    sign_in(api.client, "wh", PASSWORD)
    page = api.client.get(f"/shipments/{sh.planned}").text
    assert f'action="/shipments/{sh.planned}/depart"' in page
    assert 'name="time" type="datetime-local"' in page
    r = api.client.post(
        f"/shipments/{sh.planned}/depart",
        data={"csrf_token": csrf_of(page), "time": "2026-06-01T11:30"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    with psycopg.connect(db_url) as conn:
        departed = conn.execute(
            "SELECT departed_at FROM erp.shipments WHERE id = %s", (sh.planned,)
        ).fetchone()
        moved = conn.execute(
            "SELECT l.code FROM erp.stock_movements m JOIN erp.locations l"
            " ON l.id = m.to_location_id WHERE m.lot_id = %s ORDER BY m.moved_at DESC LIMIT 1",
            (sh.lots["L-PLAN"],),
        ).fetchone()
    assert departed == (datetime(2026, 6, 1, 11, 30, tzinfo=UTC),)
    assert moved == ("T1",)  # the lot is on the truck
    listed = api.client.get("/shipments").text
    # now two in transit: the one on the road longest first
    assert [int(x) for x in _ROW_LINK.findall(listed)] == [sh.in_transit, sh.planned, sh.arrived]
    assert listed.count("IN TRANSIT") == 2


def test_depart_needs_the_warehouse_role(scene: tuple[StockApi, Shipments]) -> None:
    api, sh = scene
    sign_in(api.client, "qa", PASSWORD)
    token = csrf_of(api.client.get(f"/shipments/{sh.planned}").text)
    r = api.client.post(f"/shipments/{sh.planned}/depart", data={"csrf_token": token})
    assert r.status_code == 403
    assert "warehouse" in r.text


def test_the_list_in_chinese(scene: tuple[StockApi, Shipments]) -> None:
    api, _ = scene
    api.client.headers["accept-language"] = "zh-CN"
    sign_in(api.client, "qa", PASSWORD)
    text = api.client.get("/shipments").text
    assert "<h1>发货</h1>" in text
    assert "运输中" in text
    assert "2026年6月1日" in text


def test_a_page_number_out_of_range_is_a_refusal(scene: tuple[StockApi, Shipments]) -> None:
    api, _ = scene
    sign_in(api.client, "qa", PASSWORD)
    for bad in ("0", "x"):
        assert 400 <= api.client.get(f"/shipments?page={bad}").status_code < 500
