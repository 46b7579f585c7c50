"""The alerts inbox page lists what needs attention, with status words, not just colours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from fastapi.testclient import TestClient
from pydantic import SecretStr

from erp_core.app import create_app
from erp_core.settings import ApiSettings
from tests.integration.access_helpers import add_user
from tests.integration.web_helpers import sign_in

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_inbox_shows_open_alerts_first_and_closed_below(db_url: str, owner_db_url: str) -> None:
    # as the owner: a closed alert is written straight into its final state (the
    # application role moves alerts only through telemetry.alert_acknowledge/_close)
    with psycopg.connect(owner_db_url) as conn:
        (sensor,) = conn.execute(
            "INSERT INTO telemetry.sensors (uid, quantity, unit, gateway_id)"
            " VALUES ('FRIDGE-9', 'temperature', 'Cel', 'gw-1') RETURNING id"
        ).fetchone()
        for status, summary, late in [
            ("open", "Fridge 9 above 8 °C for 42 min", True),
            ("closed", "Fridge 9 door left open", False),
        ]:
            conn.execute(
                "INSERT INTO telemetry.alerts (kind, severity, sensor_id, status, late, started_at,"
                " summary, peak, closed_at) VALUES ('excursion_high', 'critical', %s, %s, %s, %s,"
                " %s, 11.3, %s)",
                (
                    sensor,
                    status,
                    late,
                    NOW - timedelta(hours=1),
                    summary,
                    NOW if status == "closed" else None,
                ),
            )
    add_user(db_url, "viewer", ["operator"], "viewer-Pass-4711!")
    settings = ApiSettings(
        database_url=db_url,
        pool_min_size=1,
        pool_max_size=2,
        jwt_secret=SecretStr("alert-inbox-test-secret-0123456789abcdef"),
    )
    with TestClient(create_app(settings, clock=lambda: NOW)) as client:
        sign_in(client, "viewer", "viewer-Pass-4711!")
        page = client.get("/alerts")
    assert page.status_code == 200
    html = page.text
    assert "1 ALERT(S) NEED ATTENTION" in html
    assert html.index("above 8 °C for 42 min") < html.index("Recently closed")
    assert html.index("Recently closed") < html.index("door left open")
    assert "(LATE DATA)" in html
    assert "FRIDGE-9" in html
