"""Open a shipment in transit in real headless Chromium: its lots, its logger's chart with
the band; and the devices page — in English at a desktop and Chinese at a tablet's width."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Dialog
from pydantic import SecretStr

from erp_core.app import create_app
from erp_core.settings import ApiSettings
from tests.browser.conftest import browse
from tests.browser.test_lot_pages import PASSWORD, _band_values, _sign_in
from tests.integration.live_api import serve
from tests.integration.shipment_scene import Shipments, make_shipments
from tests.integration.stock_fixtures import NOW, SECRET, api_for

HOSTILE = "<script>alert(1)</script>"


@dataclass(frozen=True)
class Scene:
    base_url: str
    shipments: Shipments


@pytest.fixture
def scene(db_url: str) -> Iterator[Scene]:
    """Three shipments (in transit, planned, arrived); a hostile lot number rides along."""
    with contextmanager(api_for)(db_url) as api:
        made = make_shipments(api, db_url, lot_prefix=f"L{HOSTILE}-")
    settings = ApiSettings(
        database_url=db_url, pool_min_size=1, pool_max_size=4, jwt_secret=SecretStr(SECRET)
    )
    with serve(create_app(settings, clock=lambda: NOW)) as base_url:
        yield Scene(base_url=base_url, shipments=made)


def test_qa_opens_the_shipment_in_transit_and_sees_its_lots_and_logger_chart(
    browser: Browser, scene: Scene, tmp_path: Path
) -> None:
    assert PASSWORD  # the scene's users share the lot pages' password
    tab = browse(browser, scene.base_url, tmp_path / "shots")
    dialogs: list[Dialog] = []
    tab.page.on("dialog", lambda d: (dialogs.append(d), d.dismiss()))
    _sign_in(tab, "qa")
    page = tab.open("/shipments")
    assert page.locator("h1").inner_text() == "Shipments"
    rows = page.locator("table.shipments tbody tr")
    assert rows.count() == 3
    assert "IN TRANSIT" in rows.first.inner_text()
    with page.expect_navigation():
        rows.first.get_by_role("link").click()
    tab.shot("shipment-in-transit")
    assert page.url.endswith(f"/shipments/{scene.shipments.in_transit}")
    assert page.locator("h1").inner_text() == "Shipment SH-TRANSIT"
    lots = page.locator("a[href^='/lots/']").all_inner_texts()
    assert lots == [f"L{HOSTILE}-TRIP-1", f"L{HOSTILE}-TRIP-2"]  # as text, no script ran
    assert page.locator("svg.chart").count() == 1
    assert _band_values(tab) == [(2.0, 8.0)]  # the logger's profile, read off the axis
    assert _band_values(tab, "pre-alarm") == [(2.0, 2.5), (7.5, 8.0)]
    assert page.locator("svg.chart .alarm-band").count() >= 1  # the 9 °C stretch
    assert "Truck above 8 °C for 20 min" in page.locator("main").inner_text()
    assert page.locator("a[href$='/report.pdf']").count() == 1

    devices = tab.open("/devices")
    assert devices.locator("h1").inner_text() == "Devices"
    assert "LOGGER-1" in devices.locator("table.sensors").inner_text()
    # the same pages at a tablet's width
    tab.page.set_viewport_size({"width": 768, "height": 1024})
    for path in ("/shipments", f"/shipments/{scene.shipments.in_transit}", "/devices"):
        assert tab.open(path).evaluate("document.documentElement.scrollWidth") <= 768, path
    assert dialogs == []


def test_a_chinese_tablet_reads_the_shipment_and_the_devices(
    browser: Browser, scene: Scene, tmp_path: Path
) -> None:
    tab = browse(browser, scene.base_url, tmp_path / "shots", locale="zh-CN")
    _sign_in(tab, "wh")
    tab.page.set_viewport_size({"width": 1280, "height": 900})  # a desktop first
    for path in (f"/shipments/{scene.shipments.in_transit}", "/devices"):
        tab.open(path)
    tab.page.set_viewport_size({"width": 768, "height": 1024})
    page = tab.open("/shipments")
    assert page.locator("h1").inner_text() == "发货"
    assert "运输中" in page.locator("table").inner_text()
    page = tab.open(f"/shipments/{scene.shipments.in_transit}")
    assert page.locator("h1").inner_text() == "发货单 SH-TRANSIT"
    assert "在车批次" in page.locator("main").inner_text()
    # the warehouse may record the arrival: the form's first field has the focus
    assert page.evaluate("document.activeElement.name") == "time"
    tab.submit("#step-form button")
    assert "已于" in page.locator("ul.checks").inner_text()
    # nothing sticks out of a tablet's width
    assert page.evaluate("document.documentElement.scrollWidth") <= 768
    page = tab.open("/devices")
    assert page.locator("h1").inner_text() == "设备"
    assert page.evaluate("document.documentElement.scrollWidth") <= 768
