"""A QA user in real headless Chromium: sign in, find a lot, read its chart, in two languages."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import Browser, Dialog
from psycopg.types.json import Jsonb
from pydantic import SecretStr

from erp_core.app import create_app
from erp_core.settings import ApiSettings
from identifiers.gs1 import encode_gs1
from tests.browser.conftest import Browse, browse
from tests.integration.live_api import serve
from tests.integration.stock_fixtures import (
    GTIN,
    NOW,
    SECRET,
    api_for,
    assign,
    at,
    item,
    lot,
    move,
    sensor,
    site_with,
)

PASSWORD = "Long-enough-Pass-4711!"
LOT = "L-2026-001"
HOSTILE = "<script>alert(1)</script>"


@dataclass(frozen=True)
class Scene:
    base_url: str
    lot_id: int
    hostile_lot_id: int
    probe: int
    alert: int


@pytest.fixture
def scene(db_url: str) -> Iterator[Scene]:
    """A fridge read every minute (5 °C, 9 °C for 20 min), two lots in it; the app served."""
    with contextmanager(api_for)(db_url) as api:
        ids = site_with(api, ("F1", "fridge"))
        probe = sensor(db_url, "T-F1")
        assign(api, probe, ids["F1"], -60)
        with psycopg.connect(db_url) as conn:
            conn.execute(
                "INSERT INTO telemetry.readings (time, sensor_id, value)"
                " SELECT t, %s, CASE WHEN t >= %s AND t < %s THEN 9.0 ELSE 5.0 END"
                " FROM generate_series(%s::timestamptz, %s, interval '1 minute') t",
                (probe, at(120), at(140), at(-5), NOW),
            )
            # the probe's own alarm profile: 0-12 °C with 1 °C pre-alarm strips
            spec = {"name": "wide-0-12", "low": 0.0, "high": 12.0, "pre_alarm_band": 1.0}
            conn.execute(
                "WITH p AS (INSERT INTO telemetry.alarm_profiles (name, spec)"
                " VALUES ('wide-0-12', %s) RETURNING id)"
                " INSERT INTO telemetry.sensor_profiles (sensor_id, profile_id)"
                " SELECT %s, id FROM p",
                (Jsonb(spec), probe),
            )
            (alert,) = conn.execute(
                "INSERT INTO telemetry.alerts (kind, severity, sensor_id, status, started_at,"
                " ended_at, summary, peak) VALUES ('excursion_high', 'critical', %s, 'open',"
                " %s, %s, 'Fridge F1 above 8 °C for 20 min', 9.0) RETURNING id",
                (probe, at(120), at(140)),
            ).fetchone()
        product = item(api)
        first = lot(api, product, LOT)
        hostile = lot(api, product, HOSTILE)
        for lot_id in (first, hostile):
            move(api, lot_id, None, ids["F1"], 0)
    settings = ApiSettings(
        database_url=db_url, pool_min_size=1, pool_max_size=4, jwt_secret=SecretStr(SECRET)
    )
    with serve(create_app(settings, clock=lambda: NOW)) as base_url:
        yield Scene(
            base_url=base_url, lot_id=first, hostile_lot_id=hostile, probe=probe, alert=alert
        )


def _sign_in(tab: Browse, username: str) -> None:
    tab.open("/sign-in?next=/lots")
    tab.page.fill("input[name=username]", username)
    tab.page.fill("input[name=password]", PASSWORD)
    tab.submit("button[type=submit]")


def _band_values(tab: Browse, css: str = "limits") -> list[tuple[float, float]]:
    """(bottom, top) of each ``rect.<css>`` of the chart, as values read off its axis."""
    found = tab.page.evaluate(
        """(css) => {
        const svg = document.querySelector('svg.chart');
        const ticks = [...svg.querySelectorAll('text.tick[text-anchor=end]')]
            .map(t => [parseFloat(t.textContent), parseFloat(t.getAttribute('y'))]);
        const rects = [...svg.querySelectorAll('rect.' + css)]
            .map(r => [+r.getAttribute('y'), +r.getAttribute('height')]);
        return {ticks, rects};
    }""",
        css,
    )
    (v0, y0), (v1, y1) = found["ticks"][0], found["ticks"][-1]

    def value(y: float) -> float:
        return round(v0 + (y - y0) * (v1 - v0) / (y1 - y0), 2)

    return sorted((value(y + h), value(y)) for y, h in found["rects"])


def test_qa_finds_a_lot_and_its_chart_shows_the_items_band(
    browser: Browser, scene: Scene, tmp_path: Path
) -> None:
    tab = browse(browser, scene.base_url, tmp_path / "shots")
    dialogs: list[Dialog] = []
    tab.page.on("dialog", lambda d: (dialogs.append(d), d.dismiss()))
    _sign_in(tab, "qa")
    page = tab.page
    assert page.url.endswith("/lots")
    assert page.locator("span.who").inner_text().startswith("Signed in:")
    # the hostile lot number is shown as text, and no script ran
    assert page.get_by_role("link", name=HOSTILE).count() == 1

    page.fill("input[name=q]", "2026-001")
    tab.submit("form.search button")
    links = page.locator("table a")
    assert links.all_inner_texts() == [LOT]

    # a GS1 DataMatrix as a scanner types it: symbology identifier, GTIN, expiry, lot (last,
    # so no FNC1 separator: the app refuses control characters in a query string)
    page.fill("input[name=q]", encode_gs1(gtin=GTIN, expiry="280101", lot=LOT))
    tab.submit("form.search button")
    assert links.all_inner_texts() == [LOT]
    assert "Jan 1, 2028" in page.locator("table").inner_text()  # the expiry, Babel "en"

    with page.expect_navigation():
        links.first.click()
    tab.shot("lot")
    assert page.locator("h1").inner_text() == f"Lot {LOT}"
    assert _band_values(tab) == [(2.0, 8.0)]  # the item's storage range, 2 to 8 °C
    assert page.locator("svg.chart .alarm-band").count() >= 1  # the 9 °C stretch

    # a sensor's chart draws its own alarm profile: 0-12 °C, pre-alarm 1 °C inside each limit
    tab.open(f"/sensors/{scene.probe}?hours=24")
    assert _band_values(tab) == [(0.0, 12.0)]
    assert _band_values(tab, "pre-alarm") == [(0.0, 1.0), (11.0, 12.0)]
    assert "wide-0-12" in page.locator("svg.chart").inner_html()

    tab.open(f"/lots/{scene.hostile_lot_id}")
    assert HOSTILE in page.locator("h1").inner_text()
    assert dialogs == []
    assert len(tab.taken) == 7


def test_a_chinese_browser_gets_chinese_labels_and_dates(
    browser: Browser, scene: Scene, tmp_path: Path
) -> None:
    tab = browse(browser, scene.base_url, tmp_path / "shots", locale="zh-CN")
    tab.open("/sign-in")
    assert tab.page.locator("button[type=submit]").inner_text() == "登录"
    _sign_in(tab, "qa")
    page = tab.page
    assert page.locator("h1").inner_text() == "批次"
    assert page.locator("header nav").inner_text().startswith("总览")
    table = page.locator("table").inner_text()
    assert "2028年1月1日" in table  # the expiry, formatted for zh_CN
    assert "隔离" in table  # quarantine, in words
    assert page.locator("html").get_attribute("lang") == "zh-CN"

    tab.open(f"/lots/{scene.lot_id}")
    assert page.locator("h1").inner_text() == f"批次 {LOT}"
    main = page.locator("main").inner_text()
    assert "有效期至 2028年1月1日" in main  # "expiry", the date formatted for zh_CN
    assert "批次存续期统计" in main  # "Statistics over the lot's life"
    assert "禁止放行" in main  # "RELEASE BLOCKED": 20 min out of range, none allowed
    assert "允许范围 2–8 °C" in page.locator("svg.chart").inner_html()


def test_qa_acknowledges_an_alert_from_the_inbox(
    browser: Browser, scene: Scene, tmp_path: Path, db_url: str
) -> None:
    tab = browse(browser, scene.base_url, tmp_path / "shots")
    _sign_in(tab, "qa")
    page = tab.open("/alerts")
    form = page.locator(f"form[action='/alerts/{scene.alert}/ack']")
    form.locator("input[name=comment]").fill("Checking the fridge door and the product")
    tab.submit(f"form[action='/alerts/{scene.alert}/ack'] button")
    assert page.url.endswith("/alerts")
    assert page.locator(f"form[action='/alerts/{scene.alert}/ack']").count() == 0
    # the close is signed on the alert's page: the inbox links there
    assert page.locator(f"a.button[href='/alerts/{scene.alert}']").count() == 1
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT status, acknowledged_by FROM telemetry.alerts WHERE id = %s", (scene.alert,)
        ).fetchone()
    assert row == ("acknowledged", "qa")


def test_the_users_language_setting_beats_the_browsers(
    browser: Browser, scene: Scene, tmp_path: Path
) -> None:
    tab = browse(browser, scene.base_url, tmp_path / "shots")  # an English browser
    _sign_in(tab, "qa")
    page = tab.open(f"/lots/{scene.lot_id}")
    assert page.locator("h1").inner_text() == f"Lot {LOT}"
    page.select_option("form.language select", "zh_CN")
    tab.submit("form.language button")
    assert page.url.endswith(f"/lots/{scene.lot_id}")  # back on the same page, in Chinese
    assert page.locator("h1").inner_text() == f"批次 {LOT}"
    assert "有效期至 2028年1月1日" in page.locator("main").inner_text()

    again = browse(browser, scene.base_url, tmp_path / "later")  # another day, same browser
    _sign_in(again, "qa")
    assert again.page.locator("h1").inner_text() == "批次"
    again.page.select_option("form.language select", "")
    again.submit("form.language button")
    assert again.page.locator("h1").inner_text() == "Lots"  # as the browser asks again
