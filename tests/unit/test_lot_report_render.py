"""The lot report without a database: its HTML escapes every value (also inside the page
header's CSS), its content hash is a function of the data alone, every message it prints
has its Chinese, and a file whose attached data was swapped and sealed again is refused
because its pages print another hash.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from babel.messages.extract import extract
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2.ext import babel_extract
from weasyprint import HTML, Attachment

from erp_core.lot_history.models import HistoryBucket, HistoryStats, TimeSpan
from erp_core.reports import i18n
from erp_core.reports.models import LotReport, ProductHeader, SignatureLine
from erp_core.reports.render import TEMPLATES, css_string, report_html, report_pdf
from erp_core.reports.seal import ATTACHMENT, canonical_json, content_hash, seal, verify

T0 = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)
HOSTILE = '<script>alert(1)</script>"}; @page { content: "x'


def report(lot_number: str = "L-1", *, with_stats: bool = True) -> LotReport:
    """A small released lot: six hours at 5 °C, one signature."""
    life = TimeSpan(start=T0, end=T0 + timedelta(hours=6), seconds=6 * 3600)
    stats = HistoryStats(
        readings=360,
        min=5.0,
        max=5.0,
        mean=5.0,
        mkt=5.0,
        mkt_limit=8.0,
        mkt_over_limit=False,
        range_low=2.0,
        range_high=8.0,
        tor_longest_seconds=0,
        tor_cumulative_seconds=0,
        out_of_range=[],
        tor_budget_seconds=1800,
        tor_remaining_seconds=1800,
        coverage_share=1.0,
        covered_seconds=6 * 3600,
        life=life,
        gaps=[],
        min_gap_seconds=300,
        short_gaps=0,
        short_gaps_seconds=0,
        max_hold_seconds=900,
    )
    buckets = [
        HistoryBucket(
            start=T0 + timedelta(hours=h),
            end=T0 + timedelta(hours=h + 1),
            count=60,
            min=5.0,
            max=5.0,
            mean=5.0,
            sensor_ids=[1],
        )
        for h in range(6)
    ]
    return LotReport(
        generated_at=T0 + timedelta(hours=6),
        header=ProductHeader(
            lot_id=1,
            lot_number=lot_number,
            gtin="04006381333931",
            product="Graft",
            expires_on=date(2027, 6, 1),
            manufactured_on=None,
            quantity=10,
            status="released",
            range_low=2,
            range_high=8,
            mkt_limit=8,
            tor_budget_minutes=30,
        ),
        stats=stats if with_stats else None,
        buckets=buckets if with_stats else [],
        notes=[] if with_stats else ["the lot has no location interval yet"],
        release_recommended=True,
        rules=[],
        excursions=[],
        deviations=[],
        custody=[],
        signatures=[
            SignatureLine(
                action="release",
                verdict="allowed",
                printed_name="Qa Person",
                username="qa",
                signed_at=T0 + timedelta(hours=6),
                meaning="Released",
                justification=None,
                verified=True,
                problems=[],
            )
        ],
        audit=[],
    )


def test_a_hostile_lot_number_is_text_in_the_body_and_in_the_page_header_css() -> None:
    html = report_html(report(HOSTILE), locale="en")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    style = html[html.index("<style>") : html.index("</style>")]
    assert '"}; @page' not in style  # the quote cannot end the CSS string
    assert css_string(HOSTILE) in style


def test_css_string_escapes_every_character_that_could_end_the_string() -> None:
    escaped = css_string('a"b\\c\n</style>')
    assert escaped == "a\\000022b\\00005cc\\00000a\\00003c/style\\00003e"


@settings(max_examples=50, deadline=None)
@given(lot_number=st.text(min_size=1, max_size=40))
def test_the_content_hash_is_the_data_alone_and_survives_a_round_trip(lot_number: str) -> None:
    first = report(lot_number)
    data = canonical_json(first)
    again = LotReport.model_validate_json(data)
    assert canonical_json(again) == data
    assert json.loads(data)["header"]["lot_number"] == lot_number
    assert content_hash(data) == content_hash(canonical_json(report(lot_number)))
    assert content_hash(data) != content_hash(canonical_json(report(lot_number + "x")))


@pytest.mark.parametrize("locale", ["en", "zh_CN"])
def test_a_sealed_report_verifies_in_both_languages(locale: str) -> None:
    made = report("L-42")
    found = verify(report_pdf(made, locale=locale))
    assert found.ok, found.problems
    assert found.report == made
    assert found.content_hash == content_hash(canonical_json(made))


def test_a_report_without_history_still_renders_and_verifies() -> None:
    found = verify(report_pdf(report("L-0", with_stats=False), locale="en"))
    assert found.ok, found.problems


def test_swapped_data_sealed_again_is_refused_by_the_hash_on_the_pages() -> None:
    shown, swapped = report("L-1"), report("L-2")
    pdf = HTML(string=report_html(shown, locale="en")).write_pdf(
        attachments=[Attachment(string=canonical_json(swapped), name=ATTACHMENT)]
    )
    found = verify(seal(pdf))
    assert not found.ok
    assert any("does not print the content hash" in p for p in found.problems)


def test_a_file_without_the_seal_is_refused() -> None:
    pdf = report_pdf(report(), locale="en")
    assert not verify(pdf[: pdf.rindex(b"%ColdTrace")]).ok
    assert not verify(b"not a pdf").ok


def _template_messages() -> set[str]:
    messages = set()
    for template in TEMPLATES.glob("*.html"):
        with template.open("rb") as f:
            found = babel_extract(f, ("_", "gettext"), [], {"extensions": "jinja2.ext.i18n"})
            messages |= {m for _line, _func, m, _comments in found if isinstance(m, str)}
    return messages


def _python_messages() -> set[str]:
    messages = set()
    for module in ("render.py", "i18n.py"):
        path = Path(i18n.__file__).with_name(module)
        with path.open("rb") as f:
            for _line, message, _comments, _context in extract(
                "python", f, keywords={"_": None, "gettext": None}
            ):
                if isinstance(message, str):
                    messages.add(message)
    return messages


def test_every_printed_message_has_its_chinese() -> None:
    messages = _template_messages() | _python_messages() | set(i18n.WORDS.values())
    messages |= {"Released", "Rejected", "Released (override of failed rules)"}  # meanings
    zh = i18n.translations("zh_CN")
    missing = sorted(m for m in messages if zh.gettext(m) == m and m != "GTIN")
    assert not missing
    assert len(messages) > 80


def test_times_and_the_chart_axis_are_in_the_site_zone_and_translated() -> None:
    import base64  # noqa: PLC0415
    import re  # noqa: PLC0415

    from erp_core.web.format import parse_zone, site_zone  # noqa: PLC0415

    with site_zone(parse_zone("Asia/Shanghai")):
        html = report_html(report(), locale="zh_CN")
    # T0 is 06:00 UTC: 14:00 in Shanghai, printed with its offset
    assert "2026-06-01 14:00 UTC+8" in html
    assert "2026-06-01 06:00 UTC" not in html
    assert "时间为 Asia/Shanghai (UTC+8)" in html
    chart = re.search(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", html)
    assert chart is not None
    svg = base64.b64decode(chart.group(1)).decode()
    assert "时间（Asia/Shanghai (UTC+8)）" in svg
    assert "温度 (°C)" in svg
    assert ">14:00<" in svg  # the axis ticks on Shanghai's wall clock
