"""Location compliance over HTTP against a real PostgreSQL: the ERP's locations, their
assigned probes, stored readings, calibration dates and notification routes are fed to
``coldchain.compliance.check`` (docs/compliance.md).

Expected violations follow from the regulatory profiles as the issue states them (NMPA:
two probes per cold room, two named people, storage every 30 min); they are not copied
from the code's output.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta

import psycopg
import pytest
import typer
from typer.testing import CliRunner

from coldtrace.cli_locations import locations_app
from erp_core.audit.service import set_actor
from tests.integration.stock_fixtures import (
    NOW,
    StockApi,
    api_for,
    assign,
    item,
    lot,
    move,
    sensor,
    site_with,
)

NMPA = "nmpa-md-cold-chain-2-8"
DEFAULT = "fridge-2-8"


@pytest.fixture
def api(db_url: str) -> Iterator[StockApi]:
    yield from api_for(db_url)


def profile_id(db_url: str, name: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT id FROM telemetry.alarm_profiles WHERE name = %s", (name,))
        return int(row.fetchone()[0])  # type: ignore[index]


def probe(
    api: StockApi,
    db_url: str,
    uid: str,
    location_id: int,
    *,
    every_min: float = 1,
    profile: str | None = None,
    due_in_days: int = 200,
    hot: tuple[datetime, datetime, float] | None = None,
) -> int:
    """A probe at the location since a day ago, calibrated, with a day of 5 °C readings
    (``hot``: but this value from its start to its end, inclusive)."""
    sid = sensor(db_url, uid, gateway_site="plant-1")
    assign(api, sid, location_id, -24 * 60 - 600)
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "UPDATE telemetry.sensors SET calibration_due = %s WHERE id = %s",
            (NOW.date() + timedelta(days=due_in_days), sid),
        )
        if profile is not None:
            conn.execute(
                "INSERT INTO telemetry.sensor_profiles (sensor_id, profile_id) VALUES (%s, %s)",
                (sid, profile_id(db_url, profile)),
            )
        start, end, value = hot or (NOW, NOW, 5.0)
        conn.execute(
            "INSERT INTO telemetry.readings (time, sensor_id, value) "
            "SELECT t, %s, CASE WHEN t BETWEEN %s AND %s THEN %s ELSE 5.0 END"
            " FROM generate_series(%s::timestamptz, %s, %s) AS t",
            (sid, start, end, value, NOW - timedelta(hours=23), NOW, timedelta(minutes=every_min)),
        )
    return sid


def people(db_url: str, *names: str, role: str = "qa", channel: str = "email") -> None:
    """Named recipients and one route per role that sends every alarm to them."""
    with psycopg.connect(db_url) as conn:
        for name in names:
            conn.execute(
                "INSERT INTO telemetry.recipients (name, email, role, webhook_url) "
                "VALUES (%s, %s, %s, 'http://hook')",
                (name, f"{name}@plant.example", role),
            )
        conn.execute(
            "INSERT INTO telemetry.notify_routes (role, channel, min_severity) "
            "VALUES (%s, %s, 'warning')",
            (role, channel),
        )


def rules(result: dict) -> list[tuple[str, str, str | None]]:  # type: ignore[type-arg]
    return sorted((v["profile"], v["rule"], v["probe"]) for v in result["violations"])


def test_nmpa_cold_room_with_one_probe_is_flagged_too_few_probes(
    api: StockApi, db_url: str
) -> None:
    ids = site_with(api, ("CR", "cold_room"))
    probe(api, db_url, "cr-1", ids["CR"], profile=NMPA)
    people(db_url, "ana", "bo")
    result = api.get("qa", f"/api/locations/{ids['CR']}/compliance")
    assert result["profiles"] == [NMPA]
    assert result["mode"] == "storage"
    assert result["recipients"] == 2
    assert rules(result) == [(NMPA, "probes", None)]
    assert "1 probe(s)" in result["violations"][0]["reason"]
    assert "at least 2" in result["violations"][0]["reason"]
    assert result["compliant"] is False
    assert result["probes"][0]["interval_s"] == 60


def test_compliant_setup_is_not_flagged(api: StockApi, db_url: str) -> None:
    ids = site_with(api, ("CR", "cold_room"))
    for uid in ("cr-1", "cr-2"):
        probe(api, db_url, uid, ids["CR"], profile=NMPA)
    people(db_url, "ana", "bo")
    result = api.get("qam", f"/api/locations/{ids['CR']}/compliance")
    assert result["violations"] == []
    assert result["compliant"] is True
    assert [p["readings"] for p in result["probes"]] == [23 * 60 + 1] * 2


def test_probe_recording_every_45_minutes_in_storage_is_flagged(api: StockApi, db_url: str) -> None:
    ids = site_with(api, ("FR", "fridge"), ("T1", "truck"))
    slow = probe(api, db_url, "slow", ids["FR"], every_min=45)
    probe(api, db_url, "fine", ids["FR"], every_min=1)
    people(db_url, "ana")
    result = api.get("admin", f"/api/locations/{ids['FR']}/compliance")
    assert result["profiles"] == [DEFAULT]
    interval = [v for v in result["violations"] if v["rule"] == "interval"]
    assert [v["probe"] for v in interval] == ["slow"]
    assert "45 min" in interval[0]["reason"]
    assert "30 min" in interval[0]["reason"]
    assert next(p for p in result["probes"] if p["sensor_id"] == slow)["interval_s"] == 45 * 60
    # Every 10 min passes in storage but not in transport (a truck: 5 min required).
    probe(api, db_url, "truck", ids["T1"], every_min=10)
    truck = api.get("admin", f"/api/locations/{ids['T1']}/compliance")
    assert truck["mode"] == "transport"
    assert ("fridge-2-8", "interval", "truck") in rules(truck)


def test_overdue_calibration_is_flagged(api: StockApi, db_url: str) -> None:
    ids = site_with(api, ("FR", "fridge"))
    probe(api, db_url, "old-cal", ids["FR"], due_in_days=-10)
    probe(api, db_url, "no-cal", ids["FR"])
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE telemetry.sensors SET calibration_due = NULL WHERE uid = 'no-cal'")
    people(db_url, "ana", "bo")  # fridge-2-8 asks for two
    result = api.get("qa", f"/api/locations/{ids['FR']}/compliance")
    assert rules(result) == [
        (DEFAULT, "calibration", "no-cal"),
        (DEFAULT, "calibration", "old-cal"),
    ]
    reasons = {v["probe"]: v["reason"] for v in result["violations"]}
    assert reasons["old-cal"] == f"calibration overdue since {NOW.date() - timedelta(days=10)}"
    assert reasons["no-cal"] == "no calibration on record"


def test_recipients_count_named_people_on_personal_channels_only(
    api: StockApi, db_url: str
) -> None:
    ids = site_with(api, ("CR", "cold_room"))
    for uid in ("cr-1", "cr-2"):
        probe(api, db_url, uid, ids["CR"], profile=NMPA)
    people(db_url, "ana")
    people(db_url, "robot", role="system")  # a machine endpoint is no named person
    people(db_url, "hook-only", role="ops", channel="webhook")
    with psycopg.connect(db_url) as conn:  # serves another site than the probes' gateway
        conn.execute(
            "INSERT INTO telemetry.recipients (name, email, role, site) "
            "VALUES ('elsewhere', 'e@plant.example', 'qa', 'plant-2')"
        )
    result = api.get("qa", f"/api/locations/{ids['CR']}/compliance")
    assert result["alert_sites"] == ["plant-1"]
    assert result["recipients"] == 1
    assert rules(result) == [(NMPA, "recipients", None)]


def test_profile_of_the_items_held_applies_too(api: StockApi, db_url: str) -> None:
    ids = site_with(api, ("FR", "fridge"))
    probe(api, db_url, "fr-1", ids["FR"])
    people(db_url, "ana", "bo")
    before = api.get("qa", f"/api/locations/{ids['FR']}/compliance")
    assert before["compliant"] is True
    stent = item(api, alarm_profile_id=profile_id(db_url, NMPA))
    move(api, lot(api, stent), None, ids["FR"], 0)
    after = api.get("qa", f"/api/locations/{ids['FR']}/compliance")
    assert after["profiles"] == [DEFAULT, NMPA]
    assert rules(after) == [(NMPA, "probes", None)]


def test_silent_probe_and_empty_location(api: StockApi, db_url: str) -> None:
    ids = site_with(api, ("FR", "fridge"), ("DK", "dock"))
    sid = sensor(db_url, "quiet")
    assign(api, sid, ids["FR"], -600)
    people(db_url, "ana", "bo")  # fridge-2-8 asks for two
    result = api.get("qa", f"/api/locations/{ids['FR']}/compliance")
    interval = [v for v in result["violations"] if v["rule"] in ("interval", "excursion_interval")]
    assert [(v["rule"], v["probe"]) for v in interval] == [("interval", "quiet")]
    assert "fewer than 2 readings" in interval[0]["reason"]
    assert result["probes"][0]["interval_s"] is None
    dock = api.get("qa", f"/api/locations/{ids['DK']}/compliance")
    assert rules(dock) == [(DEFAULT, "probes", None)]


def test_all_locations_non_compliant_first_and_roles(api: StockApi, db_url: str) -> None:
    ids = site_with(api, ("A1", "fridge"), ("B1", "fridge"), ("C1", "fridge"))
    probe(api, db_url, "b", ids["B1"])
    people(db_url, "ana", "bo")  # fridge-2-8 asks for two
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="test", reason="retired for the test")
        conn.execute("UPDATE erp.locations SET retired_at = %s WHERE id = %s", (NOW, ids["C1"]))
    listed = api.get("qa", "/api/compliance")
    assert [(r["code"], r["compliant"]) for r in listed] == [("A1", False), ("B1", True)]
    for who in ("wh", "op"):
        api.get_status(who, "/api/compliance", 403)
        api.get_status(who, f"/api/locations/{ids['A1']}/compliance", 403)
    api.get_status("qa", "/api/locations/99999/compliance", 404)


def test_cli_reports_and_fails_on_a_non_compliant_location(
    api: StockApi, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = site_with(api, ("FR", "fridge"))
    monkeypatch.setenv("COLDTRACE_DATABASE_URL", db_url)
    cli = typer.Typer()  # registered as in coldtrace/cli.py
    cli.add_typer(locations_app, name="locations")
    runner = CliRunner()
    table = runner.invoke(cli, ["locations", "compliance"])
    assert table.exit_code == 1, table.output
    assert "FR" in table.output
    assert "0 probe(s)" in table.output
    one = ["locations", "compliance", "--location", str(ids["FR"]), "--json"]
    as_json = runner.invoke(cli, one)
    assert as_json.exit_code == 1
    parsed = json.loads(as_json.stdout)
    assert [(r["code"], r["compliant"]) for r in parsed] == [("FR", False)]
    assert runner.invoke(cli, ["locations", "compliance", "--location", "99999"]).exit_code == 2


def test_interval_while_out_of_range_is_measured_from_out_of_range_readings(
    api: StockApi, db_url: str
) -> None:
    ids = site_with(api, ("FR", "fridge"), ("F2", "fridge"))
    start = NOW - timedelta(hours=3, minutes=5)
    fast = probe(api, db_url, "fast", ids["FR"], every_min=10)
    # "slow" stays at one reading every 10 min through its 20-min excursion.
    probe(
        api,
        db_url,
        "slow",
        ids["F2"],
        every_min=10,
        hot=(start, start + timedelta(minutes=20), 9.5),
    )
    people(db_url, "ana", "bo")  # fridge-2-8 asks for two
    with psycopg.connect(db_url) as conn:
        # "fast" switches to one reading a minute during a 20-min excursion.
        conn.execute(
            "INSERT INTO telemetry.readings (time, sensor_id, value) "
            "SELECT t, %s, 9.5 FROM generate_series(%s::timestamptz, %s, '1 minute') AS t "
            "ON CONFLICT DO NOTHING",
            (fast, start, start + timedelta(minutes=20)),
        )
    fine = api.get("qa", f"/api/locations/{ids['FR']}/compliance")
    assert fine["probes"][0]["excursion_interval_s"] == 60
    assert fine["probes"][0]["interval_s"] == 600
    assert fine["compliant"] is True, fine["violations"]
    flagged = api.get("qa", f"/api/locations/{ids['F2']}/compliance")
    assert flagged["probes"][0]["excursion_interval_s"] == 600
    assert rules(flagged) == [(DEFAULT, "excursion_interval", "slow")]
    assert "10 min while out of range" in flagged["violations"][0]["reason"]
