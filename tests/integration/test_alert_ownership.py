"""Alerts belong to ingest: the application role moves them only through its functions.

Migration 0023: ``telemetry.alert_append_event`` / ``alert_acknowledge`` /
``alert_close`` are the only writers of ``telemetry.alert_events`` and of an alert's
lifecycle columns; the evaluator keeps UPDATE on its figures. The functions' guard
and the pure rule (``coldchain.alert_states.refusal``) give the same answer in every
state.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import errors

from coldchain.alert_states import Action, AlertState, Disposition, Status, refusal
from erp_core.alerts import service

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def new_alert(conn: psycopg.Connection, *, ended: bool = True) -> int:
    row = conn.execute(
        "INSERT INTO telemetry.alerts (kind, severity, started_at, ended_at, summary)"
        " VALUES ('offline', 'warning', %s, %s, 'no data') RETURNING id",
        (NOW, NOW if ended else None),
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_the_app_changes_figures_but_not_the_lifecycle(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        alert = new_alert(conn, ended=False)
        conn.execute("UPDATE telemetry.alerts SET peak = 9, ended_at = %s WHERE id = %s",
                     (NOW, alert))  # fmt: skip
        conn.commit()
        for change in ("status = 'closed'", "acknowledged_by = 'mallory'", "disposition = 'x'"):
            with pytest.raises(errors.InsufficientPrivilege, match="alert_acknowledge"):
                conn.execute(f"UPDATE telemetry.alerts SET {change} WHERE id = %s", (alert,))
            conn.rollback()
        with pytest.raises(errors.InsufficientPrivilege, match="a new alert is open"):
            conn.execute(
                "INSERT INTO telemetry.alerts (kind, severity, started_at, summary, status)"
                " VALUES ('offline', 'warning', now(), 'forged', 'closed')"
            )
        conn.rollback()
        for event in ("acknowledged", "closed"):  # only with their lifecycle step
            with pytest.raises(errors.CheckViolation, match="lifecycle step"):
                conn.execute(
                    "SELECT telemetry.alert_append_event(%s, %s, now(), 'mallory', '{}')",
                    (alert, event),
                )
            conn.rollback()
        status = conn.execute("SELECT status FROM telemetry.alerts WHERE id = %s", (alert,))
        assert status.fetchone() == ("open",)


def test_the_erp_acknowledges_and_closes_through_the_functions(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        alert = new_alert(conn)
        conn.execute("UPDATE telemetry.alerts SET escalation_level = 2 WHERE id = %s", (alert,))
        service.acknowledge(conn, alert_id=alert, user="qa-lena", comment="door shut", now=NOW)
        service.close(
            conn, alert_id=alert, user="qa-lena", disposition=Disposition.NO_IMPACT,
            comment="no product", now=NOW,
        )  # fmt: skip
        detail = service.get_alert(conn, alert_id=alert)
    assert (detail.status, detail.acknowledged_by, detail.closed_by) == (
        Status.CLOSED, "qa-lena", "qa-lena"
    )  # fmt: skip
    assert [(e.event, e.level, e.actor) for e in detail.events] == [
        ("acknowledged", 2, "qa-lena"), ("closed", 2, "qa-lena")
    ]  # fmt: skip
    assert detail.events[1].detail["disposition"] == "no impact"
    assert detail.events[1].detail["comment"] == "no product"


@pytest.mark.parametrize(
    ("status", "ended", "action"),
    list(itertools.product(list(Status), [False, True], list(Action))),
)
def test_the_database_guard_and_the_pure_rule_agree(
    db_url: str, owner_db_url: str, status: Status, ended: bool, action: Action
) -> None:
    with psycopg.connect(owner_db_url) as owner:  # put the alert in the state under test
        alert = new_alert(owner, ended=ended)
        owner.execute("UPDATE telemetry.alerts SET status = %s WHERE id = %s", (status, alert))
    allowed = refusal(AlertState(status, ended=ended), action, actor="qa", comment="c") is None
    call = {
        Action.ACKNOWLEDGE: "SELECT telemetry.alert_acknowledge(%s, 'qa', 'c', now())",
        Action.CLOSE: "SELECT telemetry.alert_close(%s, 'qa', 'no impact', 'c', now())",
    }[action]
    with psycopg.connect(db_url) as conn:
        if allowed:
            conn.execute(call, (alert,))
        else:
            with pytest.raises(errors.CheckViolation):
                conn.execute(call, (alert,))
