"""An administrator in real headless Chromium: items and locations, bad GTIN then a good one.

Screenshots of every page visited (``tmp_path/shots``), in English and Chinese, at a
desktop's width (1280 px) and a warehouse tablet's (768 px).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import Browser, Dialog
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
    item,
    lot,
    move,
    sensor,
    site_with,
)

PASSWORD = "Long-enough-Pass-4711!"
GOOD_GTIN = "09506000134369"
BAD_GTIN = "09506000134368"  # one digit off: the check digit does not match


@dataclass(frozen=True)
class Scene:
    base_url: str
    item_id: int
    fridge: int


@pytest.fixture
def scene(db_url: str) -> Iterator[Scene]:
    """A site with an area, a fridge (with a logger) and a truck; a stocked item; the app."""
    with contextmanager(api_for)(db_url) as api:
        ids = site_with(api, ("F1", "fridge"), ("TR1", "truck"))
        assign(api, sensor(db_url, "T-F1"), ids["F1"], -60)
        product = item(api)
        move(api, lot(api, product), None, ids["F1"], 0)
    settings = ApiSettings(
        database_url=db_url, pool_min_size=1, pool_max_size=4, jwt_secret=SecretStr(SECRET)
    )
    with serve(create_app(settings, clock=lambda: NOW)) as base_url:
        yield Scene(base_url=base_url, item_id=product, fridge=ids["F1"])


def _sign_in(tab: Browse, username: str) -> None:
    tab.open("/sign-in?next=/items")
    tab.page.fill("input[name=username]", username)
    tab.page.fill("input[name=password]", PASSWORD)
    tab.submit("button[type=submit]")


def test_an_admin_creates_an_item_a_bad_gtin_first_then_a_good_one(
    browser: Browser, scene: Scene, tmp_path: Path, db_url: str
) -> None:
    tab = browse(browser, scene.base_url, tmp_path / "shots")
    dialogs: list[Dialog] = []
    tab.page.on("dialog", lambda d: (dialogs.append(d), d.dismiss()))
    _sign_in(tab, "admin")
    page = tab.page
    assert page.url.endswith("/items")
    tab.open("/items/new")
    # the first field has the focus: a person (or a scanner) types the GTIN straight away
    assert page.evaluate("document.activeElement.name") == "gtin"
    page.keyboard.type(BAD_GTIN)
    page.fill("input[name=name]", "Stent XL")
    page.fill("input[name=range_low]", "2")
    page.fill("input[name=range_high]", "8")
    page.fill("input[name=tor_budget_minutes]", "90")
    with page.expect_navigation():
        page.press("input[name=range_high]", "Enter")  # Enter submits
    tab.shot("bad-gtin")
    error = page.locator("#e-gtin")
    assert "check digit" in error.inner_text()
    # next to the field: inside the GTIN's own field box, right under its input
    box = page.locator("#f-gtin").bounding_box()
    under = error.bounding_box()
    assert box is not None
    assert under is not None
    assert 0 <= under["y"] - (box["y"] + box["height"]) < 40
    assert page.locator("#f-gtin").get_attribute("aria-invalid") == "true"
    assert page.evaluate("document.activeElement.name") == "gtin"  # focus on the wrong one
    assert page.input_value("input[name=name]") == "Stent XL"  # nothing typed is lost

    page.fill("input[name=gtin]", GOOD_GTIN)
    tab.submit("form.record button[type=submit]")
    assert page.locator("h1").inner_text() == "Stent XL"
    assert page.locator("p.banner.ok").count() == 1
    table = page.locator("table.item").inner_text()
    assert GOOD_GTIN in table
    assert "1 h 30 min" in table or "90 min" in table  # the TOR budget as a duration
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT actor FROM erp.audit_log WHERE table_name = 'erp.items'"
            " AND action = 'INSERT' AND new_values->>'gtin' = %s",
            (GOOD_GTIN,),
        ).fetchone()
    assert row == ("admin",)

    # a refused change of a stocked item: the rule next to the form, the values kept
    tab.open(f"/items/{scene.item_id}/edit")
    assert page.evaluate("document.activeElement.name") == "reason"
    page.fill("input[name=reason]", "Wider range for the new label")
    page.fill("input[name=range_high]", "9")
    tab.submit("form.record button[type=submit]")
    refusal = page.locator(".refusal")
    assert refusal.get_attribute("data-code") == "history_locked"
    assert "recorded history" in refusal.inner_text()
    assert page.input_value("input[name=range_high]") == "9"
    assert dialogs == []


@pytest.mark.parametrize(("locale", "width"), [("en-GB", 768), ("zh-CN", 1280), ("zh-CN", 768)])
def test_the_pages_in_both_languages_and_at_a_tablets_width(
    browser: Browser, scene: Scene, tmp_path: Path, locale: str, width: int
) -> None:
    tab = browse(browser, scene.base_url, tmp_path / "shots", locale=locale)
    tab.page.set_viewport_size({"width": width, "height": 900})
    _sign_in(tab, "admin")
    page = tab.page
    chinese = locale == "zh-CN"
    assert page.locator("h1").inner_text() == ("物料" if chinese else "Items")
    assert "2.0 – 8.0 °C" in page.locator("table.items").inner_text()
    tab.open(f"/items/{scene.item_id}")
    tab.open("/locations")
    rows = page.locator("table.tree tbody tr").all_inner_texts()
    assert [r.split()[0].strip("└") or r.split()[1] for r in rows][:2] == ["S", "A"]
    assert ("冰箱" if chinese else "fridge") in page.locator("table.tree").inner_text()
    tab.open(f"/locations/{scene.fridge}")
    assert "T-F1" in page.locator("table.sensors").inner_text()
    page.fill("input[name=reason]", "Moving out")
    tab.submit("form.retire button")
    refusal = page.locator(".refusal")
    assert refusal.get_attribute("data-code") == "in_use"
    if chinese:
        assert "已拒绝" in refusal.inner_text()
    tab.open(f"/locations/{scene.fridge}/edit")
    tab.open("/items/new")
    # nothing is wider than the window (a tablet does not scroll sideways)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert len(tab.taken) == 8
