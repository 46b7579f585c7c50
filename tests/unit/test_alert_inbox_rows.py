"""The inbox rows say what an alert's figure is when it is not a peak reading."""

from __future__ import annotations

from datetime import UTC, datetime

from erp_core.alerts.models import AlertSummary, Status
from erp_core.alerts.pages import inbox_body

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _alert(kind: str, peak: float) -> AlertSummary:
    return AlertSummary(
        id=7, kind=kind, severity="critical", status=Status.OPEN, sensor_id=1,
        sensor="FRIDGE-1", site=None, late=False, started_at=NOW, ended_at=None,
        peak=peak, duration_s=None, summary="…", escalation_level=0, opened_at=NOW,
        acknowledged_at=None, acknowledged_by=None, ack_comment=None, closed_at=None,
        closed_by=None, disposition=None, close_comment=None,
    )  # fmt: skip


def test_rolling_alerts_show_hours_out_of_range_and_mkt_not_a_bare_peak() -> None:
    tor = inbox_body([_alert("tor_budget_exceeded", 26.04)], [])
    assert '<td class="num">26.0 h out of range</td>' in tor
    mkt = inbox_body([_alert("mkt_exceeded", 8.314)], [])
    assert '<td class="num">MKT 8.31 °C</td>' in mkt
    peak = inbox_body([_alert("excursion_high", 11.26)], [])
    assert '<td class="num">11.3</td>' in peak
