"""The ERP counts the people a limit alarm reaches exactly as the notifier routes it.

``erp_core.compliance.recipients`` re-applies the notifier's rule (the ERP may not import
ingest). Hypothesis draws arbitrary recipient and route rows; the count must equal the
names ``ingest.notify.routing.people_reached_at_once`` returns for the same rows.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from erp_core.compliance.recipients import (
    LIMIT_KINDS,
    LIMIT_SEVERITY,
    RecipientRow,
    RouteRow,
    people_for,
    people_reached,
)
from ingest.notify.models import Recipient, Route
from ingest.notify.routing import people_reached_at_once

SITES = st.sampled_from([None, "p1", "p2"])
ROLES = st.sampled_from(["qa", "qa_manager", "system", "ops"])
ADDRESS = st.sampled_from([None, "", "x@y.z"])
SEVERITY = st.sampled_from(["info", "warning", "critical", "odd"])
CHANNEL = st.sampled_from(["email", "sms", "voice", "webhook", "mqtt"])
EVENTS = st.frozensets(st.sampled_from(["opened", "escalated", "closed"]), min_size=1)
KINDS = st.none() | st.frozensets(st.sampled_from([*LIMIT_KINDS, "offline"]), min_size=1)


@st.composite
def rows(draw: st.DrawFn) -> tuple[list[RecipientRow], list[RouteRow]]:
    n = draw(st.integers(0, 6))
    recipients = [
        RecipientRow(
            id=i + 1,
            name=f"p{i}",
            email=draw(ADDRESS),
            phone=draw(ADDRESS),
            role=draw(ROLES),
            site=draw(SITES),
            active=draw(st.booleans()),
        )
        for i in range(n)
    ]
    routes = []
    for _ in range(draw(st.integers(0, 5))):
        by_id = draw(st.booleans()) and n > 0
        routes.append(
            RouteRow(
                channel=draw(CHANNEL),
                recipient_id=draw(st.integers(1, n)) if by_id else None,
                role=None if by_id else draw(ROLES),
                site=draw(SITES),
                min_severity=draw(SEVERITY),
                kinds=draw(KINDS),
                events=draw(EVENTS),
                min_level=draw(st.integers(0, 2)),
                active=draw(st.booleans()),
            )
        )
    return recipients, routes


def as_ingest(
    recipients: list[RecipientRow], routes: list[RouteRow]
) -> tuple[list[Recipient], list[Route]]:
    people = [
        Recipient(r.id, r.name, r.email, r.phone, "http://hook", r.role, r.site, r.active)
        for r in recipients
    ]
    ways = [
        Route(
            id=i,
            channel=w.channel,
            recipient_id=w.recipient_id,
            role=w.role,
            site=w.site,
            min_severity=w.min_severity,
            kinds=w.kinds,
            events=w.events,
            min_level=w.min_level,
            active=w.active,
        )
        for i, w in enumerate(routes)
    ]
    return people, ways


@settings(max_examples=300)
@given(rows(), SITES, st.sampled_from(LIMIT_KINDS))
def test_same_people_as_the_notifier(
    data: tuple[list[RecipientRow], list[RouteRow]], site: str | None, kind: str
) -> None:
    recipients, routes = data
    people, ways = as_ingest(recipients, routes)
    expected = people_reached_at_once(site, LIMIT_SEVERITY, kind, ways, people)
    assert sorted(people_for(kind, site, routes, recipients)) == list(expected)


def test_fewest_over_sites_and_kinds() -> None:
    ana = RecipientRow(1, "ana", "a@x", None, "qa", None, active=True)
    bo = RecipientRow(2, "bo", "b@x", None, "qa", "p1", active=True)
    high_only = RouteRow(
        "email", None, "qa", None, "warning", frozenset({"excursion_high"}),
        frozenset({"opened"}), 0, active=True,
    )  # fmt: skip
    both = RouteRow("email", 1, None, None, "warning", None, frozenset({"opened"}), 0, active=True)
    assert people_reached(["p1"], [high_only], [ana, bo]) == 0  # low alarms reach nobody
    assert people_reached(["p1"], [high_only, both], [ana, bo]) == 1
    assert people_reached(["p1", "p2"], [both], [ana, bo]) == 1
    assert people_reached([], [], []) == 0
