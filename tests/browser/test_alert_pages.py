"""A QA user handles an alert in real headless Chromium: acknowledge it in the inbox, open
its page (the e-mail's link), disposition it with a signature, see it closed and signed;
both pages in English and Chinese, at a desktop's and a warehouse tablet's width."""

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
from tests.browser.conftest import Browse, browse
from tests.integration.live_api import serve
from tests.integration.stock_fixtures import (
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
LOT = "L-2026-077"
REASON = "11 °C for 20 min is outside study S-14: the lot is rejected."


@dataclass(frozen=True)
class Scene:
    base_url: str
    lot_id: int
    alert: int
    deviation: int
    db_url: str


@pytest.fixture
def scene(db_url: str) -> Iterator[Scene]:
    """A fridge read every minute (5 °C, 11 °C for 20 min), a lot in it, the excursion's
    deviation on that lot, and its alert (ended, open); the app served."""
    with contextmanager(api_for)(db_url) as api:
        ids = site_with(api, ("F1", "fridge"))
        probe = sensor(db_url, "T-F1")
        assign(api, probe, ids["F1"], -60)
        product = item(api)
        lot_id = lot(api, product, LOT)
        move(api, lot_id, None, ids["F1"], 0)
        with psycopg.connect(db_url) as conn:
            conn.execute(
                "INSERT INTO telemetry.readings (time, sensor_id, value)"
                " SELECT t, %s, CASE WHEN t >= %s AND t < %s THEN 11.0 ELSE 5.0 END"
                " FROM generate_series(%s::timestamptz, %s, interval '1 minute') t",
                (probe, at(120), at(140), at(-5), NOW),
            )
            (episode,) = conn.execute(
                "INSERT INTO telemetry.excursion_episodes (sensor_id, kind, level, start_t,"
                " end_t, last_t, peak, area_c_min, readings, delay_reached, abs_breach)"
                " VALUES (%s, 'high', 'alarm', %s, %s, %s, 11.0, 60, 20, true, false)"
                " RETURNING id",
                (probe, at(120), at(140), at(139)),
            ).fetchone()
            detail = {"location": "Site S / Fridge F1", "unit": "Cel",
                      "quantity": "temperature", "profile": "eu-gdp-2-8",
                      "limits": {"low": 2.0, "high": 8.0}}  # fmt: skip
            (alert,) = conn.execute(
                "INSERT INTO telemetry.alerts (kind, severity, sensor_id, episode_id, status,"
                " started_at, ended_at, duration_s, summary, peak, detail) VALUES"
                " ('excursion_high', 'critical', %s, %s, 'open', %s, %s, 1200,"
                " 'T-F1 temperature above the upper limit', 11.0, %s) RETURNING id",
                (probe, episode, at(120), at(140), Jsonb(detail)),
            ).fetchone()
            conn.execute(
                "SELECT telemetry.alert_append_event(%s, 'opened', %s, NULL, %s)",
                (alert, at(121), Jsonb(detail)),
            )
            (deviation,) = conn.execute(
                "SELECT id FROM erp.deviations WHERE lot_id = %s", (lot_id,)
            ).fetchone()
    settings = ApiSettings(
        database_url=db_url, pool_min_size=1, pool_max_size=4, jwt_secret=SecretStr(SECRET)
    )
    with serve(create_app(settings, clock=lambda: NOW)) as base_url:
        yield Scene(base_url, lot_id, alert, deviation, db_url)


def _sign_in(tab: Browse, username: str) -> None:
    tab.open("/sign-in?next=/alerts")
    tab.page.fill("input[name=username]", username)
    tab.page.fill("input[name=password]", PASSWORD)
    tab.submit("button[type=submit]")


def _no_dialog(dialog: Dialog) -> None:
    pytest.fail(f"a script ran: {dialog.message}")


def test_qa_acknowledges_in_the_inbox_and_dispositions_with_a_signature(
    browser: Browser, scene: Scene, tmp_path: Path
) -> None:
    tab = browse(browser, scene.base_url, tmp_path / "shots")
    tab.page.on("dialog", _no_dialog)
    _sign_in(tab, "qa")
    page = tab.page
    assert page.url.endswith("/alerts")
    ack = f"form[action='/alerts/{scene.alert}/ack']"
    page.fill(f"{ack} input[name=comment]", "Product moved to fridge 2; checking the door")
    tab.submit(f"{ack} button")
    assert page.url.endswith("/alerts")
    assert page.locator(ack).count() == 0
    # one place to sign: the inbox links to the alert's page, it has no close form
    assert page.locator(f"form[action='/alerts/{scene.alert}/close']").count() == 0
    assert "Product moved to fridge 2" in page.locator("table.inbox").inner_text()
    tab.submit(f"a.button[href='/alerts/{scene.alert}']")

    assert page.url.endswith(f"/alerts/{scene.alert}")
    main = page.locator("main").inner_text()
    for fact in ("T-F1", "too warm", "peak 11.0 °C", "20 min", "Site S / Fridge F1",
                 "2–8 °C", LOT, "open"):  # fmt: skip
        assert fact in main, fact
    assert page.locator("svg.chart rect.limits").count() == 1
    # nothing preselected, the first choice has the focus, the meaning must be affirmed
    assert page.locator("input[name=disposition]:checked").count() == 0
    assert page.evaluate("document.activeElement.name") == "disposition"
    close = f"form[action='/alerts/{scene.alert}/close']"
    page.check(f"{close} input[name=disposition][value='product rejected']")
    page.fill(f"{close} textarea[name=comment]", REASON)
    page.check(f"{close} input[name=meaning]")
    page.fill(f"{close} input[name=password]", "not my password")
    with page.expect_navigation():
        page.press(f"{close} input[name=password]", "Enter")  # Enter submits
    tab.shot("wrong-password")
    assert "Not signed" in page.locator("#error-password").inner_text()
    assert page.locator(f"{close} textarea[name=comment]").input_value() == REASON
    page.check(f"{close} input[name=meaning]")
    page.fill(f"{close} input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.press(f"{close} input[name=password]", "Enter")
    tab.shot("signed")

    assert page.url.endswith(f"/alerts/{scene.alert}")
    assert page.locator(close).count() == 0
    signed = page.locator("ul.signatures").inner_text()
    assert "Signed by qa (qa)" in signed
    assert "meaning: Reviewed: alert closed" in signed
    assert "product rejected" in page.locator("#disposition + p").inner_text()
    assert "closed (reject)" in page.locator("table.lots").inner_text()
    with psycopg.connect(scene.db_url) as conn:
        row = conn.execute(
            "SELECT status, disposition FROM erp.deviations WHERE id = %s", (scene.deviation,)
        ).fetchone()
    assert row == ("closed", "reject")

    # the same pages at a warehouse tablet's width, then in Chinese at both widths
    page.set_viewport_size({"width": 768, "height": 1024})
    tab.open("/alerts")
    tab.open(f"/alerts/{scene.alert}")
    zh = browse(browser, scene.base_url, tmp_path / "shots-zh", locale="zh-CN")
    zh.page.on("dialog", _no_dialog)
    _sign_in(zh, "qa")
    for width in (1280, 768):
        zh.page.set_viewport_size({"width": width, "height": 1024})
        zh.open(f"/alerts?w={width}")
        assert "已关闭" in zh.page.locator("table.inbox").inner_text()
        zh.open(f"/alerts/{scene.alert}?w={width}")
        assert zh.page.locator("h1").inner_text() == f"警报 #{scene.alert}"
        main = zh.page.locator("main").inner_text()
        assert "产品已拒收" in main
        assert "受影响的批次" in main
        assert "2026年6月1日" in main
