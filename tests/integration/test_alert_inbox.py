"""The alerts inbox: open first, then acknowledged, then closed; who acknowledged and
closed, when and why; 50 a page; each alert links to its page (issue 11)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import psycopg
from fastapi.testclient import TestClient
from pydantic import SecretStr

from erp_core.app import create_app
from erp_core.settings import ApiSettings
from tests.integration.access_helpers import add_user
from tests.integration.web_helpers import sign_in

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CLOSED = 60  # more than one page of closed alerts


def _ids(html: str) -> list[int]:
    """The alerts of a page, in the order shown (each row's first link)."""
    return [
        int(i) for i in re.findall(r'<tr class="alert \w+">\s*<td><a href="/alerts/(\d+)">', html)
    ]


def test_inbox_shows_open_first_who_acted_and_pages(db_url: str, owner_db_url: str) -> None:
    # as the owner: alerts are written straight into their states (the application role
    # moves alerts only through telemetry.alert_acknowledge/_close)
    with psycopg.connect(owner_db_url) as conn:
        (sensor,) = conn.execute(
            "INSERT INTO telemetry.sensors (uid, quantity, unit, gateway_id)"
            " VALUES ('FRIDGE-9', 'temperature', 'Cel', 'gw-1') RETURNING id"
        ).fetchone()

        def alert(
            status: str, summary: str, hours_ago: float, kind: str = "excursion_high",
            **cols: object,
        ) -> int:  # fmt: skip
            names = ", ".join(cols)
            marks = "".join(", %s" for _ in cols)
            (new,) = conn.execute(
                "INSERT INTO telemetry.alerts (kind, severity, sensor_id, status, late,"
                f" started_at, summary, peak{', ' + names if cols else ''})"
                " VALUES (%s, 'critical', %s, %s, %s, %s, %s, 11.3" + marks + ")"
                " RETURNING id",
                (kind, sensor, status, summary.startswith("late"), NOW - timedelta(hours=hours_ago),
                 summary, *cols.values()),
            ).fetchone()  # fmt: skip
            return int(new)

        closed = [
            alert(
                "closed",
                f"door {n}",
                100 + n,
                closed_at=NOW - timedelta(minutes=n),
                closed_by="boss",
                disposition="no impact",
                close_comment=f"reason {n}",
                acknowledged_at=NOW - timedelta(hours=1),
                acknowledged_by="qa",
                ack_comment="seen",
            )
            for n in range(CLOSED)
        ]
        acked = alert(
            "acknowledged",
            "compressor",
            5,
            "excursion_low",
            acknowledged_at=NOW - timedelta(hours=4),
            acknowledged_by="qa",
            ack_comment="Moved stock to fridge 2",
            ended_at=NOW - timedelta(hours=3),
        )
        newer_open = alert("open", "late above 7 °C", 1, "pre_alarm_high")
        older_open = alert("open", "above 8 °C for 42 min", 2)
    add_user(db_url, "viewer", ["operator"], "viewer-Pass-4711!")
    settings = ApiSettings(
        database_url=db_url,
        pool_min_size=1,
        pool_max_size=2,
        jwt_secret=SecretStr("alert-inbox-test-secret-0123456789abcdef"),
    )
    with TestClient(create_app(settings, clock=lambda: NOW)) as client:
        sign_in(client, "viewer", "viewer-Pass-4711!")
        first = client.get("/alerts")
        second = client.get("/alerts?page=2")
        beyond = client.get("/alerts?page=3")
        bad = client.get("/alerts?page=0")
    assert first.status_code == second.status_code == beyond.status_code == 200
    assert bad.status_code == 422
    html = first.text
    assert "2 open alert(s) need attention." in html
    assert "Acknowledging and closing needs the role qa or qa_manager." in html
    shown = _ids(html) + _ids(second.text)
    # open (oldest first), acknowledged, then closed (latest closed first): every alert once
    assert shown == [older_open, newer_open, acked, *closed]
    assert len(_ids(html)) == 50
    assert 'href="/alerts?page=2" rel="next"' in html
    assert "Rows 51–63" in second.text
    assert "LATE DATA" in html
    assert "FRIDGE-9" in html
    assert "Moved stock to fridge 2" in html  # who acknowledged, and why
    # who closed, when, with which disposition and why
    row = re.search(
        rf'<tr class="alert closed">\s*<td><a href="/alerts/{closed[0]}">.*?</tr>', html, re.DOTALL
    )
    assert row is not None
    assert "<strong>boss</strong>" in row.group(0)
    assert "Jun 1, 2026 12:00" in row.group(0)
    assert "no impact: <q>reason 0</q>" in row.group(0)
    assert 'name="comment"' not in html  # a viewer gets no form
    assert "No alerts on this page." in beyond.text
