"""The reports as HTML (Jinja2, autoescaped) and as sealed PDFs (WeasyPrint).

The layouts are ``templates/lot_report.html`` and ``shipment_report.html`` (which
repeats each lot's sections, ``_lot_sections.html``) with ``report.css``; the chart is the
web pages' server-side SVG (``erp_core.web.chart``), embedded as an image with its own
style sheet so it renders the same in a PDF as on a page. Nothing is fetched while
rendering: every resource is inline and the URL fetcher allows ``data:`` URLs only.
"""

from __future__ import annotations

import base64
from datetime import UTC
from pathlib import Path
from typing import Any

from babel.dates import format_date
from babel.numbers import format_decimal, format_percent
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from erp_core.release.wording import Wording
from erp_core.reports import i18n
from erp_core.reports.models import LotReport, Report, ShipmentReport
from erp_core.reports.seal import ATTACHMENT, canonical_json, content_hash, seal
from erp_core.web.chart import Chart, ChartBucket, render_chart
from erp_core.web.format import format_seconds, format_stamp, zone_name
from erp_core.web.i18n import translations as page_translations

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"


class ReportRenderError(RuntimeError):
    """WeasyPrint gave no PDF."""


def _fetcher() -> Any:
    """A URL fetcher for ``data:`` URLs only (the chart): a report reads no file, no host."""
    from weasyprint.urls import URLFetcher  # noqa: PLC0415 - pango loads only when printing

    return URLFetcher(allowed_protocols=("data",), allow_redirects=False)


def css_string(value: object) -> Markup:
    """``value`` escaped for a CSS string in the page's ``<style>`` (every non-word char)."""
    out = "".join(
        ch if ch.isalnum() or ch in " ·:-_./" else f"\\{ord(ch):06x}" for ch in str(value)
    )
    return Markup(out)  # noqa: S704 - every character outside a safe set is escaped


def _environment(locale: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
    )
    catalog = i18n.translations(locale)

    def celsius(v: float | None) -> str:
        return "—" if v is None else format_decimal(v, format="0.00", locale=locale) + " °C"

    env.filters.update(
        dt=format_stamp,
        d=lambda v: "—" if v is None else format_date(v, format="medium", locale=locale),
        num=lambda n: format_decimal(n, locale=locale),
        pct=lambda n: format_percent(n, format="#,##0.0%", locale=locale),
        c=celsius,
        dur=format_seconds,
        cssstr=css_string,
    )
    env.globals["word"] = lambda code: catalog.gettext(i18n.WORDS.get(str(code), str(code)))
    # the release rules' evidence in words: the pages' catalog, as the lot page shows it
    env.globals["rules"] = Wording(
        gettext=page_translations(locale).gettext, locale=locale, moment=format_stamp
    )
    env.install_gettext_translations(catalog, newstyle=True)  # type: ignore[attr-defined]
    return env


ENVIRONMENTS = {lang: _environment(lang) for lang in i18n.LOCALES}


def _chart_uri(report: LotReport, locale: str) -> str:
    """The lot chart as an SVG data URI with the chart's style sheet inside."""
    stats = report.stats
    if stats is None:
        return ""
    gettext = i18n.translations(locale).gettext
    chart = Chart(
        title=gettext("Temperature of lot %(lot)s") % {"lot": report.header.lot_number},
        quantity=gettext("temperature"),
        unit="°C",
        time_title=gettext("Time (%(zone)s)") % {"zone": zone_name(at=stats.life.end)},
        start=stats.life.start,
        end=stats.life.end,
        buckets=[ChartBucket(b.start, b.end, b.min, b.max, b.mean) for b in report.buckets],
        locale=locale,
        limits=(stats.range_low, stats.range_high),
        limits_label=gettext("allowed %(low)s–%(high)s °C (storage condition)")
        % {"low": f"{stats.range_low:g}", "high": f"{stats.range_high:g}"},
    )
    svg = str(render_chart(chart))
    style = (TEMPLATES / "chart.css").read_text(encoding="utf-8")
    opening = svg.index(">") + 1
    svg = f"{svg[:opening]}<style>{style}</style>{svg[opening:]}"
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def report_html(report: Report, *, locale: str) -> str:
    """The report as one self-contained HTML document in ``locale``."""
    env = ENVIRONMENTS.get(locale, ENVIRONMENTS[i18n.DEFAULT_LOCALE])
    values: dict[str, Any] = {
        "report": report,
        "digest": content_hash(canonical_json(report)),
        "css": Markup((TEMPLATES / "report.css").read_text(encoding="utf-8")),  # noqa: S704
        "html_lang": "zh-CN" if locale == "zh_CN" else "en",
        "zone": zone_name(at=report.generated_at),
    }
    if isinstance(report, ShipmentReport):
        values["sh"] = report.shipment
        values["charts"] = [_chart_uri(lot, locale) for lot in report.lots]
        return env.get_template("shipment_report.html").render(values)
    values.update(r=report, h=report.header, s=report.stats, chart=_chart_uri(report, locale))
    return env.get_template("lot_report.html").render(values)


def report_pdf(report: Report, *, locale: str) -> bytes:
    """The report as a sealed PDF: data attached, content hash on every page, file seal."""
    from weasyprint import HTML, Attachment  # noqa: PLC0415 - pango loads only when printing

    data = canonical_json(report)
    when = report.generated_at.astimezone(UTC).replace(tzinfo=None)
    attachment = Attachment(
        string=data,
        name=ATTACHMENT,
        description="ColdTrace report data; its SHA-256 is the content hash",
        created=when,
        modified=when,
        relationship="Data",
        url_fetcher=_fetcher(),
    )
    pdf = HTML(string=report_html(report, locale=locale), url_fetcher=_fetcher()).write_pdf(
        attachments=[attachment]
    )
    if pdf is None:  # pragma: no cover - write_pdf without a target returns the bytes
        raise ReportRenderError("WeasyPrint returned no PDF")
    return seal(pdf)
