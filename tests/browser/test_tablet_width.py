"""Every page at a warehouse tablet's width (768 px): no sideways scrolling, a usable menu.

``PAGES`` is the one list of the pages visited: a helper or module that adds a page adds
its URL there (``{name}`` fields are filled from ``Scene.ids``). Each page is opened in
English and in Chinese at 768 px (and screenshotted under the test's tmp folder), then
checked: the document is not wider than the viewport, and every menu entry is on screen
and leads to its page.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import Browser
from pydantic import SecretStr

from erp_core.app import create_app
from erp_core.settings import ApiSettings
from tests.browser.conftest import Browse
from tests.integration.live_api import serve
from tests.integration.stock_fixtures import (
    NOW,
    SECRET,
    api_for,
    assign,
    at,
    iso,
    item,
    location,
    lot,
    move,
    sensor,
    site_with,
)

PASSWORD = "Long-enough-Pass-4711!"
TABLET = {"width": 768, "height": 1024}

# Every page of the UI, as (name, URL): add new pages here.
PAGES: tuple[tuple[str, str], ...] = (
    ("overview", "/"),
    ("sensor", "/sensors/{probe}"),
    ("lots", "/lots"),
    ("lots-filtered", "/lots?expiry=180&status=quarantine"),
    ("lot", "/lots/{lot}"),
    ("alerts", "/alerts"),
    ("alert", "/alerts/{alert}"),
    ("scans", "/scans"),
    ("dead-letters", "/dead-letters"),
    ("account", "/account/password"),
    ("shipments", "/shipments"),
    ("shipment", "/shipments/{shipment}"),
    ("devices", "/devices"),
    ("items", "/items"),
    ("item", "/items/{item}"),
    ("locations", "/locations"),
    ("location", "/locations/{fridge}"),
)


@dataclass(frozen=True)
class Scene:
    base_url: str
    ids: dict[str, int]


@pytest.fixture
def scene(db_url: str) -> Iterator[Scene]:
    """A fridge with a probe, a lot in it, an open alert, a dead letter and a failed scan."""
    with contextmanager(api_for)(db_url) as api:
        ids = site_with(api, ("F1", "fridge"))
        ids_f1 = ids["F1"]
        probe = sensor(db_url, "T-F1-LONG-DEVICE-IDENTIFIER-0001")
        assign(api, probe, ids["F1"], -60)
        product = item(api, name="Drug-eluting coronary stent 3.0 × 18 mm")
        first = lot(api, product, "L-2026-001")
        move(api, first, None, ids["F1"], 0)
        on_board = lot(api, product, "L-2026-002")
        move(api, on_board, None, ids["F1"], 0)
        truck = location(api, "TRK-SHANGHAI-PUDONG-01", "truck", ids["S"])
        dock = location(api, "DOCK-B", "dock", ids["S"])
        trip = {
            "reference": "SHP-2026-000123-PUDONG",
            "truck_location_id": truck,
            "origin_location_id": ids["F1"],
            "destination_location_id": dock,
            "lots": [{"lot_id": on_board, "quantity": 100}],
            "logger_sensor_ids": [probe],
        }
        shipment = api.post("wh", "/api/shipments", trip)["id"]
        api.post("wh", f"/api/shipments/{shipment}/depart", {"time": iso(30)}, 200)
        with psycopg.connect(db_url) as conn:
            conn.execute(
                "INSERT INTO telemetry.readings (time, sensor_id, value)"
                " SELECT t, %s, CASE WHEN t >= %s AND t < %s THEN 9.0 ELSE 5.0 END"
                " FROM generate_series(%s::timestamptz, %s, interval '1 minute') t",
                (probe, at(120), at(140), at(-5), NOW),
            )
            (alert,) = conn.execute(
                "INSERT INTO telemetry.alerts (kind, severity, sensor_id, status, started_at,"
                " summary, peak) VALUES ('excursion_high', 'critical', %s, 'open', %s,"
                " 'Fridge F1 above 8 °C for 20 min', 9.0) RETURNING id",
                (probe, at(120)),
            ).fetchone()
            payload = b'{"sensor": "T-F1", "value": "warm", "unit": "Cel", "t": 1780000000000}' * 4
            conn.execute(
                "INSERT INTO telemetry.dead_letters (topic, gateway_id, reason, payload,"
                " payload_size, payload_sha256) VALUES"
                " ('ct/v1/site-with-a-long-name/gw-1/readings', 'gw-1', %s, %s, %s, sha256(%s))",
                (
                    "value is not a number: expected a float at $.value",
                    payload,
                    len(payload),
                    payload,
                ),
            )
            conn.execute(
                "INSERT INTO telemetry.scans (time, gateway_id, stream, seq, scanner, data, ok,"
                " reason, gtin, lot) VALUES (%s, 'gw-1', 'scans', 1, 'scan-unknown', %s, true,"
                " NULL, '09506000134352', 'L-NONE')",
                (at(10), "]d20109506000134352172801011 0L-NONE"),
            )
        settings = ApiSettings(
            database_url=db_url,
            pool_min_size=1,
            pool_max_size=4,
            jwt_secret=SecretStr(SECRET),
            site_timezone="Asia/Shanghai",
        )
        with serve(create_app(settings, clock=lambda: NOW)) as base_url:
            found = {"probe": probe, "lot": first, "alert": alert, "shipment": shipment}
            yield Scene(base_url=base_url, ids={**found, "item": product, "fridge": ids_f1})


@pytest.mark.parametrize("locale", ["en-GB", "zh-CN"])
def test_every_page_fits_a_tablet_and_its_menu_works(
    browser: Browser, scene: Scene, tmp_path: Path, locale: str
) -> None:
    context = browser.new_context(locale=locale, viewport=TABLET)
    shots = tmp_path / "shots"
    shots.mkdir()
    tab = Browse(context.new_page(), scene.base_url, shots)
    tab.open("/sign-in")
    tab.page.fill("input[name=username]", "wh")
    tab.page.fill("input[name=password]", PASSWORD)
    tab.submit("button[type=submit]")
    too_wide = {}
    for name, template in PAGES:
        page = tab.open(template.format(**scene.ids))
        assert "/sign-in" not in page.url, name
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > TABLET["width"]:
            too_wide[name] = width
        # the menu: every entry inside the screen, none hidden
        boxes = page.eval_on_selector_all(
            "header.top nav a",
            "els => els.map(a => { const r = a.getBoundingClientRect();"
            " return [a.getAttribute('href'), r.left, r.right, r.width, r.height]; })",
        )
        assert len(boxes) >= 5, name
        for href, left, right, w, h in boxes:
            assert w > 0, (name, href)
            assert h > 0, (name, href)
            assert left >= 0, (name, href, left)
            assert right <= TABLET["width"], (name, href, right)
    assert too_wide == {}, f"pages wider than {TABLET['width']} px: {too_wide}"
    # the menu leads where it says, and the language form is reachable by its label
    tab.page.click("header.top nav a[href='/lots']")
    tab.page.wait_for_url("**/lots")
    tab.page.click("header.top nav a[href='/scans']")
    tab.page.wait_for_url("**/scans")
    label = "语言" if locale == "zh-CN" else "Language"
    assert tab.page.get_by_label(label).is_visible()
    assert len(tab.taken) == len(PAGES) + 2
    context.close()
