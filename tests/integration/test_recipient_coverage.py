"""The notifier's two-person check and the ERP's compliance figure agree on the same rows.

Both count people with ``coldchain.recipients``; these tests feed real
``telemetry.recipients`` / ``telemetry.notify_routes`` rows to ``coldtrace recipients
check`` (``ingest.notify.admin.coverage_gaps_in_db``) and to the location compliance
page (``erp_core.compliance.service.check_location``), each reading the database its
own way. Routes draw kinds from every ``AlertKind`` and severities, channels and events
from the database's CHECK constraints, so no kind or severity is left out of the test.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from coldchain.alert_kinds import AlertKind, Severity
from erp_core.compliance.service import check_location
from ingest.notify import admin
from tests.integration.stock_fixtures import NOW, api_for, assign, sensor, site_with

SITE = "plant-1"


def check_values(conn: psycopg.Connection[Any], table: str, column: str) -> list[str]:
    """The values a CHECK (column IN (...)) constraint of ``table`` allows."""
    rows = conn.execute(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'c'",
        (table,),
    ).fetchall()
    for (definition,) in rows:
        if re.search(rf"\(\(?{column}\b.*= ANY", definition):
            return re.findall(r"'([^']*)'::text", definition)
    raise AssertionError(f"no CHECK on {table}.{column}")


@pytest.fixture
def location(db_url: str) -> Iterator[int]:
    """A cold room at ``SITE`` with one probe (its profile: the house default, two people)."""
    for api in api_for(db_url):
        ids = site_with(api, ("CR", "cold_room"))
        assign(api, sensor(db_url, "cr-probe", gateway_site=SITE), ids["CR"], -60)
        yield ids["CR"]


def test_the_severities_are_the_databases(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        assert check_values(conn, "telemetry.alerts", "severity") == list(Severity)
        assert check_values(conn, "telemetry.notify_routes", "min_severity") == list(Severity)


def insert(owner_db_url: str, recipients: list[dict[str, Any]], routes: list[dict[str, Any]]):
    with psycopg.connect(owner_db_url) as conn:
        conn.execute("DELETE FROM telemetry.notify_routes")
        conn.execute("DELETE FROM telemetry.recipients")
        ids = [
            conn.execute(
                "INSERT INTO telemetry.recipients (name, email, phone, webhook_url, role, site,"
                " active) VALUES (%(name)s, %(email)s, %(phone)s, %(webhook_url)s, %(role)s,"
                " %(site)s, %(active)s) RETURNING id",
                r,
            ).fetchone()[0]  # type: ignore[index]
            for r in recipients
        ]
        for w in routes:
            by = w.pop("by")
            if isinstance(by, int) and not ids:
                by = "qa"
            conn.execute(
                "INSERT INTO telemetry.notify_routes (recipient_id, role, site, min_severity,"
                " kinds, events, min_level, channel, active) VALUES (%s, %s, %s, %s, %s, %s,"
                " %s, %s, %s)",
                (
                    ids[by % len(ids)] if isinstance(by, int) else None,
                    by if isinstance(by, str) else None,
                    w["site"],
                    w["min_severity"],
                    w["kinds"],
                    w["events"],
                    w["min_level"],
                    w["channel"],
                    w["active"],
                ),
            )


def both_answers(db_url: str, location_id: int) -> tuple[int, bool, list[Any]]:
    """(the ERP's figure, the ERP's recipients violation?, the notifier's gaps at SITE)."""
    with psycopg.connect(db_url) as conn:
        page = check_location(conn, location_id=location_id, now=NOW)

    async def notifier() -> list[Any]:
        async with await psycopg.AsyncConnection.connect(db_url) as conn:
            return await admin.coverage_gaps_in_db(conn)

    gaps = [g for g in asyncio.run(notifier()) if g.site == SITE]
    flagged = any(v.rule == "recipients" for v in page.violations)
    return page.recipients, flagged, gaps


def agree(db_url: str, location_id: int) -> None:
    figure, flagged, gaps = both_answers(db_url, location_id)
    event(f"people reached: {min(figure, 2)}{'+' if figure >= 2 else ''}")
    assert flagged == bool(gaps) == (figure < 2)  # fridge-2-8: two people
    if gaps:
        assert min(len(g.people) for g in gaps) == figure


ROLES = st.sampled_from(["qa", "qa", "qa", "qa_manager", "system", "ops"])
ADDRESS = st.sampled_from([None, "", "x@plant.example", "+8613800000001", "+8613800000002"])
SITES = st.sampled_from([None, None, SITE, "plant-2"])
# a route set drawn at random rarely reaches two people with every alarm: mix in routes
# that are the usual set-up (every kind, opened and escalated, from level 0)
USUAL = {
    "kinds": None, "events": ["opened", "escalated"], "min_level": 0, "active": True,
    "min_severity": "warning",
}  # fmt: skip


@st.composite
def rows(draw: st.DrawFn, conn_values: dict[str, list[str]]) -> tuple[list[Any], list[Any]]:
    recipients = [
        {
            "name": f"p{i}",
            "email": draw(ADDRESS),
            "phone": draw(ADDRESS),
            "webhook_url": draw(ADDRESS),
            "role": draw(ROLES),
            "site": draw(SITES),
            "active": draw(st.booleans() | st.just(True)),
        }
        for i in range(draw(st.integers(0, 5)))
    ]
    routes = [
        {
            "by": draw(st.integers(0, 4) | ROLES),
            "site": draw(SITES),
            "min_severity": draw(st.sampled_from(conn_values["severity"])),
            "kinds": draw(st.none() | st.lists(st.sampled_from(list(AlertKind)), min_size=1)),
            "events": draw(st.lists(st.sampled_from(conn_values["event"]), min_size=1)),
            "min_level": draw(st.integers(0, 1)),
            "channel": draw(st.sampled_from(conn_values["channel"])),
            "active": draw(st.booleans() | st.just(True)),
        }
        for _ in range(draw(st.integers(0, 5)))
    ]
    routes = [{**w, **USUAL} if draw(st.booleans()) else w for w in routes]
    return recipients, routes


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_notifier_and_compliance_page_agree_on_any_rows(
    db_url: str, owner_db_url: str, location: int, data: st.DataObject
) -> None:
    with psycopg.connect(db_url) as conn:
        values = {
            "severity": check_values(conn, "telemetry.notify_routes", "min_severity"),
            "channel": check_values(conn, "telemetry.notify_routes", "channel"),
            "event": check_values(conn, "telemetry.alert_events", "event"),
        }
    recipients, routes = data.draw(rows(values))
    insert(owner_db_url, recipients, routes)
    agree(db_url, location)


def test_the_issue_drift_case_is_non_compliant_on_both_sides(
    db_url: str, owner_db_url: str, location: int
) -> None:
    """Two QA people, one e-mail route for excursion_high/low at critical.

    The old ERP counted only those two kinds at critical and said "2 people reached,
    compliant" while the notifier reported gaps. Pre-alarms, MKT, time out of range and
    power loss reach nobody here, so both must now say: not compliant.
    """
    people = [
        {"name": n, "email": f"{n}@plant.example", "phone": None, "webhook_url": None,
         "role": "qa", "site": None, "active": True}
        for n in ("ana", "bo")
    ]  # fmt: skip
    route = {"by": "qa", "site": None, "min_severity": "critical", "channel": "email",
             "kinds": ["excursion_high", "excursion_low"], "events": ["opened", "escalated"],
             "min_level": 0, "active": True}  # fmt: skip
    insert(owner_db_url, people, [dict(route)])
    figure, flagged, gaps = both_answers(db_url, location)
    assert (figure, flagged) == (0, True)
    assert {g.kind for g in gaps} == {
        "pre_alarm_high", "pre_alarm_low", "mkt_exceeded", "tor_budget_exceeded", "power_loss"
    }  # fmt: skip
    # one route for every kind from warning on covers every alarm: both say compliant
    insert(owner_db_url, people, [{**route, "kinds": None, "min_severity": "warning"}])
    assert both_answers(db_url, location) == (2, False, [])
