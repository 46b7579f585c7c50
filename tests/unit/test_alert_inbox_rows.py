"""The inbox rows say what an alert's figure is when it is not a peak reading."""

from __future__ import annotations

from datetime import UTC, datetime

from erp_core.alerts.models import InboxRow, Status
from erp_core.web.paging import Paging
from erp_core.web.templates import render_template

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _alert(kind: str, peak: float) -> InboxRow:
    return InboxRow(
        id=7, kind=kind, severity="critical", status=Status.OPEN, sensor_id=1,
        sensor="FRIDGE-1", site=None, late=False, started_at=NOW, ended_at=None,
        peak=peak, duration_s=None, summary="…", escalation_level=0, opened_at=NOW,
        acknowledged_at=None, acknowledged_by=None, ack_comment=None, closed_at=None,
        closed_by=None, disposition=None, close_comment=None, unit="Cel",
    )  # fmt: skip


def _inbox(alert: InboxRow, locale: str = "en") -> str:
    rows = Paging(number=1, per_page=50, url="/alerts").cut([alert])
    return render_template(
        "alerts/inbox.html", locale=locale, alerts=rows, waiting=1, acknowledged=0,
        may_act=False, viewer=None,
    )  # fmt: skip


def test_rolling_alerts_show_hours_out_of_range_and_mkt_not_a_bare_peak() -> None:
    assert '<td class="num">26.0 h out of range</td>' in _inbox(
        _alert("tor_budget_exceeded", 26.04)
    )
    assert '<td class="num">MKT 8.31 °C</td>' in _inbox(_alert("mkt_exceeded", 8.314))
    assert '<td class="num">peak 11.3 °C</td>' in _inbox(_alert("excursion_high", 11.26))


def test_kinds_show_as_words_in_both_languages() -> None:
    english = _inbox(_alert("excursion_high", 11.26))
    assert "too warm" in english
    assert "excursion_high" not in english
    chinese = _inbox(_alert("excursion_high", 11.26), "zh_CN")
    assert "过热" in chinese
    assert "excursion_high" not in chinese
