"""The pages' languages: every message has its Chinese, the browser's choice is read right."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from hypothesis import given
from hypothesis import strategies as st

from erp_core.web.html import Html, Viewer, page
from erp_core.web.i18n import LOCALE_DIR, LOCALES, pick_locale
from erp_core.web.templates import MENU

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 25, 14, 3, tzinfo=UTC)


def _source_messages() -> set[str]:
    """Every msgid the sources mark today, extracted as ``pybabel extract`` does."""
    with (ROOT / "babel.cfg").open() as f:
        method_map, options_map = parse_mapping_cfg(f)
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        ROOT, method_map, options_map
    ):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_every_message_of_the_sources_has_a_chinese_translation() -> None:
    with (LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        catalog = read_po(f)
    translated = {
        m.id if isinstance(m.id, str) else m.id[0]  # a plural message by its singular
        for m in catalog
        if m.id and (all(m.string) if isinstance(m.string, tuple) else m.string) and not m.fuzzy
    }
    messages = _source_messages()
    assert "Sign in" in messages  # the extraction itself works
    assert messages - translated == set(), "run pybabel update, then translate (docs/web-ui.md)"


def test_the_base_layout_is_in_the_viewers_language_and_escapes_values() -> None:
    viewer = Viewer(
        username="<b>qa</b>",
        full_name="Li Na",
        roles=("qa",),
        csrf="t",
        refresh_url="/",
        locale="zh_CN",
    )
    html = page(title="<script>x</script>", body=Html("<p>kept</p>"), now=NOW, viewer=viewer)
    assert '<html lang="zh-CN">' in html
    assert "退出登录" in html  # "Sign out"
    assert "批次" in html  # the menu's "Lots"
    assert "&lt;b&gt;qa&lt;/b&gt;" in html
    assert "<script>x</script>" not in html
    assert "<p>kept</p>" in html  # an Html fragment is markup, not text


def test_every_domains_menu_entry_is_in_the_layout() -> None:
    assert [m.split("/")[0] for m in MENU] == [
        "monitoring",
        "release",
        "shipments",
        "alerts",
        "edge_events",
        "devices",
        "masterdata",
    ]
    html = page(title="t", body=Html(""), now=NOW, locale="en")
    hrefs = ("/", "/lots", "/shipments", "/alerts", "/scans", "/devices", "/dead-letters")
    for href in (*hrefs, "/items", "/locations"):
        assert f'<a href="{href}">' in html


def test_accept_language_picks_a_translated_locale() -> None:
    assert pick_locale("zh-CN,zh;q=0.9,en;q=0.8") == "zh_CN"
    assert pick_locale("en-US,en;q=0.9,zh-CN;q=0.8") == "en"
    assert pick_locale("fr-FR, zh;q=0.5") == "zh_CN"
    assert pick_locale("en;q=0.1, zh-Hans;q=0.9") == "zh_CN"
    assert pick_locale("zh-TW") == "en"  # traditional script: not our Simplified catalog
    assert pick_locale(None) == "en"
    assert pick_locale("de;q=0, *") == "en"


@given(st.text(max_size=60))
def test_any_header_gives_a_locale_we_have(header: str) -> None:
    assert pick_locale(header) in LOCALES
