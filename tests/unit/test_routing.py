"""Routing, the two-person rule, backoff and message rendering: pure rules, exact inputs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from coldchain.alert_kinds import TWO_PERSON_ALARMS
from coldchain.recipients import Recipient, Route, coverage_gaps
from ingest.notify.models import AlertNotice, EventFacts
from ingest.notify.notice import build_notice
from ingest.notify.render import format_duration, format_time, render
from ingest.notify.routing import (
    after_failure,
    backoff_delay,
    route_event,
)

SEV = ["info", "warning", "critical"]
T0 = datetime(2026, 7, 1, 9, 30, tzinfo=UTC)

# ---------------------------------------------------------------- hand examples


def people() -> list[Recipient]:
    return [
        Recipient(1, "Li Wei", email="li@x.cn", phone="+861", site="p1"),
        Recipient(2, "Anna Berg", email="anna@x.de", site="p1"),
        Recipient(3, "Chen Jing", email="chen@x.cn", site="p2"),
        Recipient(4, "Meng Hao", phone="+862", role="qa_manager", site=None),
        Recipient(5, "Old Hand", email="old@x.cn", site="p1", active=False),
        Recipient(6, "ERP", webhook_url="http://erp/hook", role="system"),
    ]


def ev(event: str = "opened", level: int = 0, severity: str = "critical", site: str = "p1",
       kind: str = "excursion") -> EventFacts:  # fmt: skip
    return EventFacts(1, 1, event, level, kind, severity, site)


def pairs(result) -> set[tuple[int, str]]:
    return {(t.recipient_id, t.channel) for t in result.targets}


LADDER = [
    Route(1, "email", role="qa"),
    Route(2, "sms", role="qa_manager", min_level=1),
    Route(3, "voice", role="qa_manager", min_level=2),
    Route(4, "webhook", role="system", min_severity="info"),
]


def test_escalation_ladder_steps_message_then_sms_then_voice() -> None:
    assert pairs(route_event(ev(level=0), LADDER, people())) == {
        (1, "email"), (2, "email"), (6, "webhook")
    }  # fmt: skip
    assert pairs(route_event(ev("escalated", 1), LADDER, people())) == {
        (1, "email"), (2, "email"), (4, "sms"), (6, "webhook")
    }  # fmt: skip
    assert pairs(route_event(ev("escalated", 2), LADDER, people())) == {
        (1, "email"), (2, "email"), (4, "sms"), (4, "voice"), (6, "webhook")
    }  # fmt: skip


def test_site_severity_kind_and_event_filters() -> None:
    assert pairs(route_event(ev(site="p2"), LADDER, people())) == {(3, "email"), (6, "webhook")}
    assert pairs(route_event(ev(severity="info"), LADDER, people())) == {(6, "webhook")}
    assert pairs(route_event(ev("closed"), LADDER, people())) == set()
    only_power = [Route(1, "email", role="qa", kinds=frozenset({"power"}), site="p1")]
    assert pairs(route_event(ev(kind="excursion"), only_power, people())) == set()
    assert pairs(route_event(ev(kind="power"), only_power, people())) == {
        (1, "email"),
        (2, "email"),
    }


def test_duplicate_routes_make_one_target_and_missing_addresses_are_reported() -> None:
    routes = [Route(1, "email", role="qa"), Route(2, "email", recipient_id=1),
              Route(3, "sms", role="qa")]  # fmt: skip
    result = route_event(ev(), routes, people())
    assert pairs(result) == {(1, "email"), (2, "email"), (1, "sms")}
    assert [(u.recipient, u.channel) for u in result.unreachable] == [("Anna Berg", "sms")]


def gaps_for(routes, recips, **kw):
    alarms = [("excursion_high", "warning"), ("excursion_high", "critical")]
    return coverage_gaps(routes, recips, alarms=alarms, **kw)


def test_two_person_rule() -> None:
    one = [Recipient(1, "Li Wei", email="li@x.cn", site="p1")]
    gaps = gaps_for([Route(1, "email", role="qa")], one, sites=["p1"])
    assert [(g.site, g.severity, g.people) for g in gaps] == [
        ("p1", "warning", ("Li Wei",)), ("p1", "critical", ("Li Wei",))
    ]  # fmt: skip
    two = [*one, Recipient(2, "Anna Berg", phone="+49", site="p1")]
    routes = [Route(1, "email", role="qa"), Route(2, "sms", recipient_id=2)]
    assert gaps_for(routes, two, sites=["p1"]) == []
    # SMS only from escalation level 1 on is not an immediate message
    late_sms = [Route(1, "email", role="qa"), Route(2, "sms", recipient_id=2, min_level=1)]
    assert len(gaps_for(late_sms, two, sites=["p1"])) == 2
    # a webhook or a 'system' recipient is not a named person
    machine = [*one, Recipient(3, "ERP", email="erp@x", role="system", site="p1")]
    assert len(gaps_for([Route(1, "email", role="qa"), Route(2, "email", role="system")],
                             machine, sites=["p1"])) == 2  # fmt: skip
    # two people at p1 do not cover p2; critical-only routes leave warnings uncovered
    assert [g.site for g in gaps_for(routes, two, sites=["p1", "p2"])] == ["p2", "p2"]
    crit = [Route(1, "email", role="qa", min_severity="critical"), Route(2, "sms", recipient_id=2)]
    assert [g.severity for g in gaps_for(crit, two, sites=["p1"])] == ["warning"]


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [backoff_delay(n, base_s=5, cap_s=60) for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]
    assert backoff_delay(10_000, base_s=5, cap_s=900) == 900


def test_after_failure_retries_then_gives_up() -> None:
    kw = {"max_attempts": 3, "now": T0, "base_s": 5.0, "cap_s": 900.0}
    assert after_failure(attempts=1, permanent=False, **kw).next_attempt_at == T0 + timedelta(
        seconds=5
    )
    assert after_failure(attempts=2, permanent=False, **kw).status == "pending"
    assert after_failure(attempts=3, permanent=False, **kw).status == "failed"
    assert after_failure(attempts=1, permanent=True, **kw).status == "failed"


def test_durations_and_times_read_as_people_write_them() -> None:
    assert format_duration(3725) == "1 h 2 min 5 s"
    assert format_duration(59.6) == "1 min 0 s"
    assert format_duration(7) == "7 s"
    assert format_duration(None) == "unknown"
    # Shanghai is UTC+8 all year
    assert format_time(T0, ZoneInfo("Asia/Shanghai")) == (
        "2026-07-01 09:30:00 UTC (2026-07-01 17:30:00 CST, Asia/Shanghai)"
    )
    assert format_time(T0, None) == "2026-07-01 09:30:00 UTC"


def test_detail_keys_win_and_alert_columns_fill_the_gaps() -> None:
    alert = {"kind": "excursion", "severity": "warning", "status": "open", "summary": "warm",
             "site": "p1", "late": False, "started_at": T0, "ended_at": None, "peak": 8.4,
             "duration_s": 600.0}  # fmt: skip
    event = {"id": 7, "alert_id": 3, "event": "updated", "level": 1, "at": T0,
             "detail": {"peak": 9.1, "location": "Fridge 7", "late": True,
                        "ended_at": "2026-07-01T10:00:00+00:00"}}  # fmt: skip
    n = build_notice(event, alert, {"uid": "fr-7", "quantity": "temperature", "unit": "Cel"})
    assert (n.peak, n.duration_s, n.location, n.late, n.site, n.sensor, n.unit) == (
        9.1, 600.0, "Fridge 7", True, "p1", "fr-7", "Cel"
    )  # fmt: skip
    assert n.ended_at == T0 + timedelta(minutes=30)
    bare = build_notice({**event, "detail": {}}, alert, None)
    assert (bare.peak, bare.location, bare.late, bare.sensor) == (8.4, None, False, None)
    msg = render(bare, base_url="http://ui/", tz=None)
    assert "Location:    unknown" in msg.body
    assert "unknown sensor" in msg.subject
    assert "http://ui/alerts/3" in msg.body


def test_rolling_alerts_name_their_figure_instead_of_a_peak() -> None:
    base = {"severity": "critical", "status": "open", "summary": "s", "started_at": T0}
    event = {"id": 1, "alert_id": 2, "event": "opened", "level": 0, "at": T0}
    mkt = build_notice({**event, "detail": {"peak": 8.42, "unit": "Cel"}},
                       {**base, "kind": "mkt_exceeded"}, None)  # fmt: skip
    tor = build_notice({**event, "detail": {"peak": 26.5, "unit": "h"}},
                       {**base, "kind": "tor_budget_exceeded"}, None)  # fmt: skip
    exc = build_notice({**event, "detail": {"peak": 9.5, "unit": "Cel"}},
                       {**base, "kind": "excursion_high"}, None)  # fmt: skip
    m, t, e = (render(n, base_url="http://ui", tz=None) for n in (mkt, tor, exc))
    assert "MKT 8.42 °C" in m.subject
    assert "MKT:         8.42 °C" in m.body
    assert "peak" not in m.short
    assert "time out of range 26.5 h" in t.subject
    assert "Time out of range: 26.5 h" in t.body
    assert "peak 9.5 °C" in e.subject
    assert "Peak:        9.5 °C" in e.body


# ---------------------------------------------------------------- properties

recipients_st = st.lists(
    st.builds(
        Recipient,
        id=st.integers(1, 6),
        name=st.sampled_from(["a", "b", "c", "d"]),
        email=st.sampled_from([None, "x@y"]),
        phone=st.sampled_from([None, "+1"]),
        webhook_url=st.sampled_from([None, "http://h"]),
        role=st.sampled_from(["qa", "qa_manager", "system"]),
        site=st.sampled_from([None, "p1", "p2"]),
        active=st.booleans(),
    ),
    max_size=6,
    unique_by=lambda r: r.id,
)
routes_st = st.lists(
    st.builds(
        Route,
        id=st.integers(1, 100),
        channel=st.sampled_from(["email", "sms", "voice", "webhook", "mqtt"]),
        recipient_id=st.one_of(st.none(), st.integers(1, 6)),
        role=st.sampled_from(["qa", "qa_manager", "system"]),
        site=st.sampled_from([None, "p1", "p2"]),
        min_severity=st.sampled_from(SEV),
        kinds=st.sampled_from([None, frozenset({"excursion"}), frozenset({"offline"})]),
        events=st.sampled_from([frozenset({"opened", "escalated"}), frozenset({"closed"})]),
        min_level=st.integers(0, 3),
        active=st.booleans(),
    ),
    max_size=8,
)
events_st = st.builds(
    EventFacts,
    event_id=st.just(1),
    alert_id=st.just(1),
    event=st.sampled_from(["opened", "escalated", "closed", "updated"]),
    level=st.integers(0, 4),
    kind=st.sampled_from(["excursion", "offline"]),
    severity=st.sampled_from(SEV),
    site=st.sampled_from([None, "p1", "p2"]),
)
ADDRESS = {"email": "email", "sms": "phone", "voice": "phone", "webhook": "webhook_url"}


def oracle(event: EventFacts, routes: list[Route], recips: list[Recipient]) -> set[tuple[int, str]]:
    """Recipient-first restatement of the routing rule."""
    out = set()
    for p in recips:
        if not p.active or p.site not in (None, event.site):
            continue
        for r in routes:
            named = r.recipient_id == p.id if r.recipient_id is not None else r.role == p.role
            has_address = r.channel == "mqtt" or getattr(p, ADDRESS[r.channel]) is not None
            if (
                named and has_address and r.active and r.site in (None, event.site)
                and SEV.index(event.severity) >= SEV.index(r.min_severity)
                and (r.kinds is None or event.kind in r.kinds)
                and event.event in r.events and event.level >= r.min_level
            ):  # fmt: skip
                out.add((p.id, r.channel))
    return out


@given(events_st, routes_st, recipients_st)
def test_routing_matches_the_recipient_first_restatement(event, routes, recips) -> None:
    result = route_event(event, routes, recips)
    assert pairs(result) == oracle(event, routes, recips)
    assert len(result.targets) == len(pairs(result))  # one target per (recipient, channel)


@given(events_st, routes_st, recipients_st)
def test_escalating_never_silences_anyone(event, routes, recips) -> None:
    higher = EventFacts(1, 1, event.event, event.level + 1, event.kind, event.severity, event.site)
    assert pairs(route_event(event, routes, recips)) <= pairs(route_event(higher, routes, recips))


@given(routes_st, recipients_st, st.sampled_from(["p1", "p2"]), st.sampled_from(SEV[1:]))
def test_a_gap_is_reported_exactly_when_fewer_than_two_people_hear_at_once(
    routes, recips, site, severity
) -> None:
    opening = EventFacts(1, 1, "opened", 0, "excursion", severity, site)
    named = {
        p.name
        for p in recips
        for pid, ch in oracle(opening, routes, recips)
        if p.id == pid and ch in ("email", "sms", "voice") and p.role != "system"
    }
    gaps = coverage_gaps(routes, recips, sites=[site], alarms=[("excursion", severity)])
    assert bool(gaps) == (len(named) < 2)


@given(st.integers(1, 80), st.floats(0.1, 100), st.floats(1, 10_000))
def test_backoff_is_monotone_and_capped(n, base, cap) -> None:
    a, b = backoff_delay(n, base_s=base, cap_s=cap), backoff_delay(n + 1, base_s=base, cap_s=cap)
    assert a <= b <= cap


notices = st.builds(
    AlertNotice,
    event_id=st.integers(1, 10**9),
    alert_id=st.integers(1, 10**9),
    event=st.sampled_from(["opened", "escalated", "closed"]),
    level=st.integers(0, 5),
    at=st.just(T0),
    kind=st.text(min_size=1, max_size=10),
    severity=st.sampled_from(SEV),
    status=st.just("open"),
    summary=st.text(max_size=30),
    started_at=st.datetimes(timezones=st.just(UTC), min_value=datetime(2000, 1, 1)),  # noqa: DTZ001
    site=st.one_of(st.none(), st.text(max_size=10)),
    location=st.one_of(st.none(), st.text(max_size=20)),
    sensor=st.one_of(st.none(), st.text(max_size=10)),
    peak=st.one_of(st.none(), st.floats(-80, 80)),
    duration_s=st.one_of(st.none(), st.floats(0, 1e7)),
    late=st.booleans(),
)


@given(notices, st.sampled_from([None, ZoneInfo("Asia/Shanghai"), ZoneInfo("Europe/Berlin")]))
def test_every_notice_renders_with_its_identity_and_link(n, tz) -> None:
    msg = render(n, base_url="https://ui", tz=tz)
    assert f"#{n.alert_id}" in msg.subject
    assert f"https://ui/alerts/{n.alert_id}" in msg.body
    assert f"https://ui/alerts/{n.alert_id}" in msg.short
    assert ("[LATE]" in msg.subject) == n.late
    doc = json.loads(json.dumps(msg.document))
    assert (doc["alert_id"], doc["event_id"], doc["late"]) == (n.alert_id, n.event_id, n.late)


@given(
    routes_st,
    recipients_st,
    st.sampled_from(["p1", "p2"]),
    st.dictionaries(st.sampled_from(["p1", "p2"]), st.integers(0, 4)),
    st.integers(1, 3),
)
def test_a_gap_is_reported_exactly_when_fewer_people_hear_than_the_site_requires(
    routes, recips, site, required, default
) -> None:
    opening = EventFacts(1, 1, "opened", 0, "excursion", "critical", site)
    named = {
        p.name
        for p in recips
        for pid, ch in oracle(opening, routes, recips)
        if p.id == pid and ch in ("email", "sms", "voice") and p.role != "system"
    }
    gaps = coverage_gaps(
        routes, recips, sites=[site], alarms=[("excursion", "critical")],
        required=required, default_required=default,
    )  # fmt: skip
    need = max(1, required.get(site, default))
    assert bool(gaps) == (len(named) < need)
    assert all(g.required == need and f"at least {need} are" in str(g) for g in gaps)


def test_the_two_person_alarms_are_checked_by_default() -> None:
    one = [Recipient(1, "Li Wei", email="li@x.cn")]
    gaps = coverage_gaps([Route(1, "email", role="qa")], one, sites=[None])
    assert [(g.kind, g.severity) for g in gaps] == list(TWO_PERSON_ALARMS)
