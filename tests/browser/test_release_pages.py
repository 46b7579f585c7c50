"""QA release in real headless Chromium: the signature dialog, and the four-eyes override.

A clean lot is released by ``qa`` with the password: the page then says so (success
message), its headline is the decision (who, when, meaning), and the decision history shows
the signature. A lot with failed rules is overridden by two QA managers: ``boss`` confirms
every failed rule and signs a proposal; ``boss`` cannot approve it himself; ``boss2`` sees
it in the lots list's banner and on the lot page and approves it; the history then shows
both signatures and the justification. Screenshots at 1280 and 768 px, English and Chinese.
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
from erp_core.audit.service import set_actor
from erp_core.auth import service as auth_service
from erp_core.auth.models import Role
from erp_core.settings import ApiSettings
from tests.browser.conftest import Browse, browse
from tests.integration.access_helpers import session_keyring
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
CLEAN = "L-CLEAN-1"
WARM = "L-WARM-2"
WHY = "Stability study SR-12 covers 48 h at 15 °C; this lot saw 9 °C for 20 minutes."


@dataclass(frozen=True)
class Scene:
    base_url: str
    clean: int
    warm: int


@pytest.fixture
def scene(db_url: str) -> Iterator[Scene]:
    """F1 read at 5 °C throughout, F2 at 9 °C for 20 min; one lot in each; two QA managers."""
    with contextmanager(api_for)(db_url) as api:
        ids = site_with(api, ("F1", "fridge"), ("F2", "fridge"))
        for code in ("F1", "F2"):
            probe = sensor(db_url, f"T-{code}")
            assign(api, probe, ids[code], -60)
            with psycopg.connect(db_url) as conn:
                conn.execute(
                    "INSERT INTO telemetry.readings (time, sensor_id, value)"
                    " SELECT t, %s, CASE WHEN %s AND t >= %s AND t < %s THEN 9.0 ELSE 5.0 END"
                    " FROM generate_series(%s::timestamptz, %s, interval '1 minute') t",
                    (probe, code == "F2", at(120), at(140), at(-5), NOW),
                )
        product = item(api)
        clean, warm = lot(api, product, CLEAN), lot(api, product, WARM)
        move(api, clean, None, ids["F1"], 0)
        move(api, warm, None, ids["F2"], 0)
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="test-setup")
        for name, full in (("boss", "Li Na"), ("boss2", "Wang Fang")):
            auth_service.create_user(
                conn,
                username=name,
                full_name=full,
                password=PASSWORD,
                roles=[Role("qa_manager")],
                now=NOW,
                keyring=session_keyring(),
            )
    settings = ApiSettings(
        database_url=db_url, pool_min_size=1, pool_max_size=4, jwt_secret=SecretStr(SECRET)
    )
    with serve(create_app(settings, clock=lambda: NOW)) as base_url:
        yield Scene(base_url=base_url, clean=clean, warm=warm)


def _sign_in(tab: Browse, username: str) -> None:
    tab.open("/sign-in?next=/lots")
    tab.page.fill("input[name=username]", username)
    tab.page.fill("input[name=password]", PASSWORD)
    tab.submit("button[type=submit]")


def _narrow(tab: Browse, name: str) -> None:
    """The same page at a warehouse tablet's width, screenshotted."""
    tab.page.set_viewport_size({"width": 768, "height": 1024})
    tab.shot(name + "-768")
    tab.page.set_viewport_size({"width": 1280, "height": 900})


def test_qa_signs_a_release_and_sees_status_and_manifest(
    browser: Browser, scene: Scene, tmp_path: Path
) -> None:
    tab = browse(browser, scene.base_url, tmp_path / "shots")
    _sign_in(tab, "qa")
    page = tab.page
    # a GS1 DataMatrix pasted as the scanner types it: the lot (variable length) ends with
    # FNC1 (GS, 0x1D) before the expiry; then the same label in its bracketed printed form
    for scan in (
        f"]d201{GTIN}10{CLEAN}\x1d17280101",
        f"(01) {GTIN} (10) {CLEAN} (17) 280101",
    ):
        page.fill("input[name=q]", scan)
        tab.submit("form.search button")
        assert page.locator("table a").all_inner_texts() == [CLEAN]
    page = tab.open(f"/lots/{scene.clean}")
    assert "RELEASE RECOMMENDED" in page.locator("main").inner_text()
    form = page.locator("form#sign")
    form.locator("select[name=action]").select_option("release")
    form.locator("input[name=password]").fill("not the password")
    tab.submit("form#sign button[type=submit]")
    assert "Not signed" in page.locator("#release-error").inner_text()
    assert page.locator("span.badge", has_text="QUARANTINE").count() == 1

    form.locator("input[name=password]").fill(PASSWORD)
    tab.submit("form#sign button[type=submit]")
    assert page.url.endswith(f"/lots/{scene.clean}?signed=release")
    assert page.locator("#signed").inner_text() == "Signed: the lot is released."
    assert page.locator("span.badge", has_text="RELEASED").count() >= 1
    headline = page.locator("#decision").inner_text()
    assert "Released by qa" in headline
    assert "meaning: Released" in headline
    assert "Jun 1, 2026" in headline  # the signature's time, Babel "en"
    history = page.locator("table.decisions").inner_text()
    assert "Signed by qa (qa) on Jun 1, 2026" in history
    assert "meaning: Released" in history
    assert "RELEASE BLOCKED" not in page.locator("main").inner_text()
    assert page.locator("form#sign").count() == 0  # a decided lot has no signature form
    _narrow(tab, "released")


def test_two_qa_managers_override_failed_rules(
    browser: Browser, scene: Scene, tmp_path: Path, db_url: str
) -> None:
    boss = browse(browser, scene.base_url, tmp_path / "boss")
    _sign_in(boss, "boss")
    page = boss.open(f"/lots/{scene.warm}")
    main = page.locator("main").inner_text()
    assert "RELEASE BLOCKED" in main
    assert page.locator("form#sign option[value=release]").count() == 0  # reject only
    with page.expect_navigation():
        page.click("a[href$='/override']")
    boss.shot("override")
    boxes = page.locator("input[name=confirmed]")
    failed = boxes.count()
    assert failed >= 1
    assert "20 min out of range" in page.locator("fieldset").inner_text()  # the evidence
    # one box left unticked: refused, the error next to the boxes, the justification kept
    for i in range(failed - 1):
        boxes.nth(i).check()
    page.fill("textarea[name=justification]", WHY)
    page.fill("input[name=password]", PASSWORD)
    boss.submit("form.override button[type=submit]")
    assert "Confirm each failed rule" in page.locator("#confirm-error").inner_text()
    assert page.locator("textarea[name=justification]").input_value() == WHY
    for i in range(failed):
        page.locator("input[name=confirmed]").nth(i).check()
    page.fill("input[name=password]", PASSWORD)
    boss.submit("form.override button[type=submit]")
    assert page.url.endswith(f"/lots/{scene.warm}?signed=proposed")
    proposal = page.locator("section.proposal").inner_text()
    assert "Proposed by Li Na (boss)" in proposal
    assert WHY in proposal
    assert "You proposed this override" in proposal
    assert page.locator("form.approve").count() == 0
    assert page.locator("span.badge", has_text="QUARANTINE").count() == 1

    boss2 = browse(browser, scene.base_url, tmp_path / "boss2")
    _sign_in(boss2, "boss2")
    banner = boss2.page.locator("#pending-overrides").inner_text()
    assert WARM in banner
    assert "boss" in banner
    with boss2.page.expect_navigation():
        boss2.page.click(f"#pending-overrides a:has-text('{WARM}')")
    page2 = boss2.page
    boss2.shot("pending")
    approve = page2.locator("form.approve")
    for i in range(approve.locator("input[name=confirmed]").count()):
        approve.locator("input[name=confirmed]").nth(i).check()
    approve.locator("input[name=password]").fill(PASSWORD)
    boss2.submit("form.approve button[type=submit]")
    assert page2.url.endswith(f"/lots/{scene.warm}?signed=approved")
    assert "override approved" in page2.locator("#signed").inner_text()
    headline = page2.locator("#decision").inner_text()
    assert "Released by Wang Fang" in headline
    assert WHY in headline
    history = page2.locator("table.decisions").inner_text()
    assert "Signed by Li Na (boss) on Jun 1, 2026" in history
    assert "meaning: Proposed override" in history
    assert "Signed by Wang Fang (boss2) on" in history
    assert "meaning: Approved override" in history
    assert WHY in history
    _narrow(boss2, "approved")
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT status FROM erp.lots WHERE id = %s", (scene.warm,)).fetchone()
    assert row == ("released",)

    # the same story in Chinese: headline, meanings and rule names in words
    zh = browse(browser, scene.base_url, tmp_path / "zh", locale="zh-CN")
    _sign_in(zh, "boss")
    page3 = zh.open(f"/lots/{scene.warm}")
    main = page3.locator("main").inner_text()
    assert "由 Wang Fang 放行" in main
    assert "批准越权放行" in main
    assert "提议越权放行" in main
    assert "禁止放行" not in main
    assert "平均动力学温度" in main  # "Mean kinetic temperature", a rule's name
    _narrow(zh, "zh")


def test_a_manager_cannot_approve_their_own_proposal(
    browser: Browser, scene: Scene, tmp_path: Path, db_url: str
) -> None:
    """The approval form is not offered to the proposer; posting it anyway is refused."""
    tab = browse(browser, scene.base_url, tmp_path / "shots")
    _sign_in(tab, "boss")
    page = tab.open(f"/lots/{scene.warm}/override")
    for box in page.locator("input[name=confirmed]").all():
        box.check()
    page.fill("textarea[name=justification]", WHY)
    page.fill("input[name=password]", PASSWORD)
    tab.submit("form.override button[type=submit]")
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT id FROM erp.release_overrides WHERE lot_id = %s", (scene.warm,)
        ).fetchone()
    assert row is not None
    csrf = page.locator("form#sign input[name=csrf_token]").input_value()
    answer = page.request.post(
        f"{scene.base_url}/release/overrides/{row[0]}/approval",
        form={"csrf_token": csrf, "password": PASSWORD, "confirmed": "x"},
    )
    assert answer.status == 409
    assert "You proposed this override, so you cannot approve it" in answer.text()
    with psycopg.connect(db_url) as conn:
        status = conn.execute("SELECT status FROM erp.lots WHERE id = %s", (scene.warm,)).fetchone()
    assert status == ("quarantine",)
