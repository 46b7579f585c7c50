"""QA release over HTTP against a real PostgreSQL: an excursion opens a deviation by
itself, blocks a qa release, needs a justified override proposed by one qa_manager and
approved by a second (four eyes, held by the database too), and all of it lands in the
audit trail; a dispositioned deviation lets qa release.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from coldchain.profiles import AlarmProfile
from erp_core.app import create_app
from erp_core.audit.service import set_actor, verify
from erp_core.auth import service as auth_service
from erp_core.auth.models import Role
from erp_core.release.records import forged_records
from erp_core.settings import ApiSettings
from ingest.evaluate import evaluate_pending
from tests.integration.access_helpers import session_keyring
from tests.integration.api_client import Api
from tests.integration.web_helpers import csrf_of, sign_in

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
START = NOW - timedelta(hours=6)
SECRET = "release-test-secret-0123456789abcdef"
PASSWORD = "Long-enough-Pass-4711!"
USERS = {
    "admin": "admin",
    "wh": "warehouse",
    "qa": "qa",
    "boss": "qa_manager",
    "boss2": "qa_manager",
    "op": "operator",
}
WHY = "Stability study S-14 covers 24 h up to 15 °C; this excursion peaked at 11 °C for 40 min."


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="test-setup")
        for name, role in USERS.items():
            auth_service.create_user(
                conn,
                username=name,
                full_name=f"{name.title()} Person",
                password=PASSWORD,
                roles=[Role(role)],
                now=NOW,
                keyring=session_keyring(),
            )
    settings = ApiSettings(
        database_url=db_url, pool_min_size=1, pool_max_size=4, jwt_secret=SecretStr(SECRET)
    )
    with TestClient(create_app(settings, clock=lambda: NOW)) as client:
        yield Api(client, secret=SECRET, now=NOW)


Hot = tuple[datetime, int, float]  # readings above 8 °C: start, minutes, peak


def fridge_with_lot(
    api: Api, db_url: str, *, code: str, lot_number: str, hot: Hot | None = None
) -> tuple[int, int]:
    """A fridge with its own sensor reading 5 °C every minute, and a lot in it since START."""
    site = api.post("admin", "/api/locations", {"code": f"S{code}", "name": "S", "kind": "site"})
    fridge = api.post(
        "admin",
        "/api/locations",
        {"code": code, "name": code, "kind": "fridge", "parent_id": site["id"]},
    )
    with psycopg.connect(db_url) as conn:
        (sensor,) = conn.execute(
            "INSERT INTO telemetry.sensors (uid, quantity, unit, gateway_id)"
            " VALUES (%s, 'temperature', 'Cel', 'gw-1') RETURNING id",
            (f"T-{code}",),
        ).fetchone()
        start, minutes, peak = hot or (NOW, 0, 5.0)
        conn.execute(
            "INSERT INTO telemetry.readings (time, sensor_id, value)"
            " SELECT t, %s, CASE WHEN t >= %s AND t < %s THEN %s ELSE 5.0 END"
            " FROM generate_series(%s::timestamptz, %s, interval '1 minute') t",
            (
                sensor,
                start,
                start + timedelta(minutes=minutes),
                peak,
                START - timedelta(minutes=5),
                NOW,
            ),
        )
    api.post(
        "admin",
        "/api/sensor-assignments",
        {
            "sensor_id": sensor,
            "location_id": fridge["id"],
            "valid_from": (START - timedelta(hours=1)).isoformat(),
        },
    )
    items = api.get("admin", "/api/items")
    item = (
        items[0]["id"]
        if items
        else api.post(
            "admin",
            "/api/items",
            {
                "gtin": "04006381333931",
                "name": "Graft",
                "range_low": 2,
                "range_high": 8,
                "tor_budget_minutes": 30,
                "mkt_limit": 8,
            },
        )["id"]
    )
    lot = api.post(
        "wh",
        "/api/lots",
        {
            "item_id": item,
            "lot_number": lot_number,
            "expires_on": "2027-06-01",
            "quantity": 10,
        },
    )["id"]
    api.post(
        "wh",
        "/api/movements",
        {
            "lot_id": lot,
            "quantity": 10,
            "to_location_id": fridge["id"],
            "moved_at": START.isoformat(),
        },
    )
    return lot, sensor


def excursion(db_url: str, sensor: int, hot: Hot) -> int:
    """The alarm episode the evaluator would store for the readings ``hot`` made warm."""
    start, minutes, peak = hot
    end = start + timedelta(minutes=minutes)
    with psycopg.connect(db_url) as conn:
        (episode,) = conn.execute(
            "INSERT INTO telemetry.excursion_episodes (sensor_id, kind, level, start_t, end_t,"
            " last_t, peak, area_c_min, readings, delay_reached, abs_breach)"
            " VALUES (%s, 'high', 'alarm', %s, %s, %s, %s, %s, %s, true, false) RETURNING id",
            (sensor, start, end, end - timedelta(minutes=1), peak, (peak - 8) * minutes, minutes),
        ).fetchone()
    return int(episode)


def rules_failed(panel: dict) -> set[str]:
    return {r["rule"] for r in panel["rules"] if not r["passed"]}


def test_clean_lot_is_released_by_qa_with_a_signature(api: Api, db_url: str) -> None:
    lot, _ = fridge_with_lot(api, db_url, code="FA", lot_number="CLEAN-1")
    panel = api.get("op", f"/api/lots/{lot}/release")
    assert panel["release_recommended"], panel
    api.post("op", f"/api/lots/{lot}/release", {"action": "release", "password": PASSWORD}, 403)
    api.post("wh", f"/api/lots/{lot}/release", {"action": "release", "password": PASSWORD}, 403)
    done = api.post(
        "qa", f"/api/lots/{lot}/release", {"action": "release", "password": PASSWORD}, 200
    )
    assert done["status"] == "released"
    assert done["signature"].startswith("Signed by Qa Person (qa) on 2026-06-01 12:00")
    assert done["signature"].endswith("meaning: Released")
    assert api.get("op", f"/api/lots/{lot}")["status"] == "released"
    decisions = api.get("op", f"/api/lots/{lot}/release")["decisions"]
    assert [d["verdict"] for d in decisions] == ["allowed"]


def test_excursion_blocks_qa_and_needs_a_signed_justified_override(api: Api, db_url: str) -> None:
    hot = (NOW - timedelta(hours=3), 40, 11.0)
    lot, sensor = fridge_with_lot(api, db_url, code="FB", lot_number="HOT-1", hot=hot)
    episode = excursion(db_url, sensor, hot)
    devs = api.get("op", f"/api/lots/{lot}/deviations")
    assert [(d["episode_id"], d["status"], d["opened_by"]) for d in devs] == [
        (episode, "open", "system:excursions")
    ]
    panel = api.get("qa", f"/api/lots/{lot}/release")
    assert not panel["release_recommended"]
    assert {"excursions dispositioned", "no open deviation", "time out of range within budget"} <= (
        rules_failed(panel)
    )
    body = {"action": "release", "password": PASSWORD}
    refused = api.post("qa", f"/api/lots/{lot}/release", body, 409)["detail"]
    assert "only a qa_manager may override" in refused["message"]
    short = api.post("boss", f"/api/lots/{lot}/release", {**body, "justification": "fine"}, 409)
    assert "justification" in short["detail"]["message"]
    assert api.get("op", f"/api/lots/{lot}")["status"] == "quarantine"

    alone = api.post("boss", f"/api/lots/{lot}/release", {**body, "justification": WHY}, 409)
    assert "two QA managers" in alone["detail"]["message"]
    assert api.get("op", f"/api/lots/{lot}")["status"] == "quarantine"

    failed = rules_failed(panel)
    propose = {"password": PASSWORD, "justification": WHY, "confirmed_rules": []}
    unseen = api.post("boss", f"/api/lots/{lot}/release/overrides", propose, 409)["detail"]
    assert "confirm each failed rule" in unseen["message"]
    assert {r["rule"] for r in unseen["failed_rules"]} == failed
    assert all(r["evidence"] and not r["passed"] for r in unseen["failed_rules"])
    api.post("qa", f"/api/lots/{lot}/release/overrides", propose, 403)
    propose["confirmed_rules"] = sorted(failed)
    wrong = {**propose, "password": "not-my-password"}
    overrides = f"/api/lots/{lot}/release/overrides"
    assert "signature refused" in api.post("boss", overrides, wrong, 403)["detail"]
    made = api.post("boss", f"/api/lots/{lot}/release/overrides", propose, 201)
    assert made["signature"].endswith("meaning: Proposed override")
    assert api.get("op", f"/api/lots/{lot}")["status"] == "quarantine"
    (pending,) = api.get("qa", f"/api/lots/{lot}/release")["pending_overrides"]
    assert (pending["id"], pending["justification"]) == (made["override_id"], WHY)
    assert pending["signature_verified"]

    approval = f"/api/release/overrides/{made['override_id']}/approval"
    approve = {"password": PASSWORD, "confirmed_rules": sorted(failed)}
    same = api.post("boss", approval, approve, 409)["detail"]["message"]
    assert "cannot also approve" in same
    api.post("qa", approval, approve, 403)
    api.post("boss2", approval, {**approve, "confirmed_rules": []}, 409)
    assert api.get("op", f"/api/lots/{lot}")["status"] == "quarantine"
    done = api.post("boss2", approval, approve, 200)
    assert (done["verdict"], done["status"]) == ("override", "released")
    assert done["signature"].startswith("Signed by Boss2 Person (boss2)")
    assert done["signature"].endswith("meaning: Approved override")
    api.post("boss2", approval, approve, 409)  # approved once, and the lot is released

    (decision,) = api.get("op", f"/api/lots/{lot}/release")["decisions"]
    assert decision["justification"] == WHY
    assert decision["signature_verified"], decision["signature_problems"]
    assert "(boss2)" in decision["signature"]
    proposal = decision["override"]
    assert "(boss)" in proposal["signature"]
    assert proposal["signature"].endswith("meaning: Proposed override")
    assert {r["rule"] for r in proposal["failed_rules"]} == failed
    assert api.get("op", f"/api/lots/{lot}/release")["pending_overrides"] == []
    with psycopg.connect(db_url) as conn:
        trail = conn.execute(
            "SELECT table_name, actor FROM erp.audit_log WHERE table_name IN"
            " ('erp.release_decisions', 'erp.release_overrides', 'erp.lots') ORDER BY id"
        ).fetchall()
        assert verify(conn).ok
        assert forged_records(conn, keyring=session_keyring()) == ([], 0)
    assert ("erp.release_overrides", "boss") in trail
    assert ("erp.release_decisions", "boss2") in trail


def _signature_row(conn: psycopg.Connection, username: str, *, table: str, meaning: str) -> int:
    """A signature row written straight into the table, as a database writer could."""
    (user_id,) = conn.execute(
        "SELECT id FROM erp.users WHERE username = %s", (username,)
    ).fetchone()
    (sid,) = conn.execute(
        "INSERT INTO erp.signatures (user_id, username, full_name, signed_at, meaning,"
        " record_table, record_key, record_hash, signature_hash, algorithm, key_id)"
        " VALUES (%s, %s, 'X', %s, %s, %s, '{\"lot_id\": 0}', repeat('a', 64), repeat('b', 64),"
        " 'hmac-sha256', 'k')"
        " RETURNING id",
        (user_id, username, NOW, meaning, table),
    ).fetchone()
    return int(sid)


def test_database_refuses_an_override_by_one_qa_manager(api: Api, db_url: str) -> None:
    """Even the application role writing SQL cannot release over failed rules alone."""
    hot = (NOW - timedelta(hours=3), 40, 11.0)
    lot, sensor = fridge_with_lot(api, db_url, code="FO", lot_number="HOT-4E", hot=hot)
    excursion(db_url, sensor, hot)
    failed = sorted(rules_failed(api.get("qa", f"/api/lots/{lot}/release")))
    propose = {"password": PASSWORD, "justification": WHY, "confirmed_rules": failed}
    made = api.post("boss", f"/api/lots/{lot}/release/overrides", propose, 201)
    rec = json.dumps([{"rule": r, "passed": False, "evidence": "x"} for r in failed])
    insert = (
        "INSERT INTO erp.release_decisions (lot_id, action, verdict, justification,"
        " recommendation, signature_id, decided_by, decided_at, override_id)"
        " VALUES (%s, 'release', %s, %s, %s, %s, %s, %s, %s)"
    )
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="boss", reason="releasing alone")
        approved = _signature_row(
            conn, "boss", table="erp.release_decisions", meaning="Approved override"
        )
        conn.commit()
        attempts = {
            "no proposal": ("override", None),
            "proposer approves": ("override", made["override_id"]),
            "failed rules called allowed": ("allowed", None),
        }
        for what, (verdict, override_id) in attempts.items():
            with pytest.raises(psycopg.errors.CheckViolation) as refused:
                conn.execute(insert, (lot, verdict, WHY, rec, approved, "boss", NOW, override_id))
            conn.rollback()
            assert "qa_manager" in str(refused.value), what
        set_actor(conn, user="boss", reason="releasing alone")
        with pytest.raises(psycopg.errors.CheckViolation, match="signed QA decision"):
            conn.execute("UPDATE erp.lots SET status = 'released' WHERE id = %s", (lot,))
        conn.rollback()
        set_actor(conn, user="qa", reason="a qa proposing")
        sid = _signature_row(conn, "qa", table="erp.release_overrides", meaning="Proposed override")
        with pytest.raises(psycopg.errors.CheckViolation, match="not an active qa_manager"):
            conn.execute(
                "INSERT INTO erp.release_overrides (lot_id, justification, failed_rules,"
                " proposed_by, proposed_by_id, proposed_at, signature_id)"
                " SELECT %s, %s, %s, 'qa', id, %s, %s FROM erp.users WHERE username = 'qa'",
                (lot, WHY, rec, NOW, sid),
            )
        conn.rollback()
        # The control: a second qa_manager's approval is what the database lets through.
        set_actor(conn, user="boss2", reason="the second pair of eyes")
        second = _signature_row(
            conn, "boss2", table="erp.release_decisions", meaning="Approved override"
        )
        conn.execute(insert, (lot, "override", WHY, rec, second, "boss2", NOW, made["override_id"]))
        conn.execute("UPDATE erp.lots SET status = 'released' WHERE id = %s", (lot,))
        conn.rollback()
    assert api.get("op", f"/api/lots/{lot}")["status"] == "quarantine"


def test_dispositioned_deviation_lets_qa_release(api: Api, db_url: str) -> None:
    hot = (NOW - timedelta(hours=2), 10, 9.0)
    lot, sensor = fridge_with_lot(api, db_url, code="FC", lot_number="HOT-2", hot=hot)
    excursion(db_url, sensor, hot)
    (dev,) = api.get("qa", f"/api/lots/{lot}/deviations")
    investigate = {
        "disposition": "investigate",
        "comment": "door seal",
        "capa_ref": "CAPA-7",
        "password": PASSWORD,
    }
    api.post("qa", f"/api/deviations/{dev['id']}/disposition", investigate, 200)
    assert "no open deviation" in rules_failed(api.get("qa", f"/api/lots/{lot}/release"))
    close = {**investigate, "disposition": "use_as_is", "comment": "10 min at 9 °C: no impact"}
    api.post("wh", f"/api/deviations/{dev['id']}/disposition", close, 403)
    api.post("qa", f"/api/deviations/{dev['id']}/disposition", close, 200)
    api.post("qa", f"/api/deviations/{dev['id']}/disposition", close, 409)  # already closed
    panel = api.get("qa", f"/api/lots/{lot}/release")
    assert panel["release_recommended"], panel["rules"]
    api.post("qa", f"/api/lots/{lot}/release", {"action": "release", "password": PASSWORD}, 200)


def test_failed_inspection_blocks_release_and_reject_is_signed(api: Api, db_url: str) -> None:
    lot, _ = fridge_with_lot(api, db_url, code="FD", lot_number="INSP-1")
    api.post("wh", f"/api/lots/{lot}/inspections", {"kind": "visual", "result": "failed"}, 403)
    api.post("qa", f"/api/lots/{lot}/inspections", {"kind": "visual", "result": "failed"})
    assert rules_failed(api.get("qa", f"/api/lots/{lot}/release")) == {"inspections passed"}
    done = api.post(
        "qa", f"/api/lots/{lot}/release", {"action": "reject", "password": PASSWORD}, 200
    )
    assert done["status"] == "rejected"
    assert done["signature"].endswith("meaning: Rejected")
    again = {"action": "release", "password": PASSWORD, "justification": WHY}
    api.post("boss", f"/api/lots/{lot}/release", again, 409)  # rejected is final


def test_retention_run_keeps_every_reading_of_a_lot_under_retention(
    api: Api, db_url: str, owner_db_url: str
) -> None:
    """At chosen times, so through the owner's erp.retention_delete (the application's
    erp.retention_run always uses the database's now); each run is one audit entry."""
    lot, sensor = fridge_with_lot(api, db_url, code="FE", lot_number="KEEP-1")
    with psycopg.connect(db_url) as conn:
        (loose,) = conn.execute(
            "INSERT INTO telemetry.sensors (uid, quantity, unit, gateway_id)"
            " VALUES ('T-LOOSE', 'temperature', 'Cel', 'gw-1') RETURNING id"
        ).fetchone()
        conn.execute(
            "INSERT INTO telemetry.readings (time, sensor_id, value)"
            " SELECT t, %s, 4.0 FROM generate_series(%s::timestamptz, %s, interval '1 minute') t",
            (loose, START, NOW),
        )
        conn.commit()

        def counts() -> tuple[int, int, int]:
            return conn.execute(
                "SELECT count(*) FILTER (WHERE sensor_id = %(s)s AND time >= %(a)s),"
                " count(*) FILTER (WHERE sensor_id = %(s)s AND time < %(a)s),"
                " count(*) FILTER (WHERE sensor_id = %(l)s) FROM telemetry.readings",
                {"s": sensor, "l": loose, "a": START},
            ).fetchone()

        in_lot, before_lot, unassigned = counts()
        assert (in_lot, before_lot, unassigned) == (6 * 60 + 1, 5, 6 * 60 + 1)
        conn.commit()

        def retention(cutoff: datetime, now: datetime) -> int:
            with psycopg.connect(owner_db_url) as owner:
                set_actor(owner, user="test-retention", reason="test")
                (n,) = owner.execute(
                    "SELECT erp.retention_delete(%s, 'test', %s)", (cutoff, now)
                ).fetchone()
            return int(n)

        # Today: the lot (expiry 2027-06-01 + 2 years) protects its readings; others go.
        soon = NOW + timedelta(minutes=1)
        assert retention(soon, soon) == before_lot + unassigned
        assert counts() == (in_lot, 0, 0)
        # After the retention end (2029-06-01) they may go too.
        later = datetime(2029, 6, 2, tzinfo=UTC)
        assert retention(later, later) == in_lot
        (until,) = conn.execute("SELECT erp.lot_retained_until(%s)", (lot,)).fetchone()
        assert until == datetime(2029, 6, 1, tzinfo=UTC)


def test_lot_page_shows_history_and_signs_from_the_browser(api: Api, db_url: str) -> None:
    hot = (NOW - timedelta(hours=1), 30, 10.5)
    lot, sensor = fridge_with_lot(api, db_url, code="FW", lot_number="WEB-1", hot=hot)
    excursion(db_url, sensor, hot)
    qa = TestClient(api.client.app)  # a second browser, signed in as qa
    sign_in(qa, "qa", PASSWORD)
    qa_page = qa.get(f"/lots/{lot}").text
    qa_try = {"action": "release", "password": PASSWORD, "justification": WHY}
    refused = qa.post(
        f"/lots/{lot}/release",
        data={**qa_try, "csrf_token": csrf_of(qa_page)},
        follow_redirects=False,
    )
    assert "only a qa_manager may override" in refused.text
    sign_in(api.client, "boss", PASSWORD)
    page = api.client.get(f"/lots/{lot}")
    assert page.status_code == 200
    html = page.text
    assert "<svg" in html
    assert "WEB-1" in html
    assert "RELEASE BLOCKED" in html
    assert "DEV-" in html
    form = {
        "action": "release",
        "password": "wrong",
        "justification": WHY,
        "csrf_token": csrf_of(html),
    }
    alone = api.client.post(
        f"/lots/{lot}/release", data={**form, "password": PASSWORD}, follow_redirects=False
    )
    assert alone.status_code == 409
    assert "two QA managers" in alone.text  # an override takes a second qa_manager
    reject = {**form, "action": "reject"}
    refused = api.client.post(f"/lots/{lot}/release", data=reject, follow_redirects=False)
    assert refused.status_code == 409
    assert "Not signed" in refused.text
    assert api.get("op", f"/api/lots/{lot}")["status"] == "quarantine"
    reject["password"] = PASSWORD
    ok = api.client.post(f"/lots/{lot}/release", data=reject, follow_redirects=False)
    assert ok.status_code == 303, ok.text
    assert api.get("op", f"/api/lots/{lot}")["status"] == "rejected"
    after = api.client.get(f"/lots/{lot}").text
    assert "Signed by Boss Person (boss)" in after
    assert "REJECTED" in after


def test_status_cannot_skip_the_signed_decision(api: Api, db_url: str) -> None:
    lot, _ = fridge_with_lot(api, db_url, code="FS", lot_number="SKIP-1")
    refused = api.post("qa", f"/api/lots/{lot}/status", {"status": "released"}, 409)
    assert "signed QA decision" in str(refused)
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="qa", reason="trying the back door")
        with pytest.raises(psycopg.errors.CheckViolation, match="signed QA decision"):
            conn.execute("UPDATE erp.lots SET status = 'released' WHERE id = %s", (lot,))
    assert api.get("op", f"/api/lots/{lot}")["status"] == "quarantine"


def test_expired_lots_are_locked_and_audited(api: Api, db_url: str, owner_db_url: str) -> None:
    lot, _ = fridge_with_lot(api, db_url, code="FX", lot_number="OLD-1")
    fresh, _ = fridge_with_lot(api, db_url, code="FY", lot_number="NEW-1")
    with psycopg.connect(owner_db_url) as owner:  # only the owner may set a trigger aside
        owner.execute("ALTER TABLE erp.lots DISABLE TRIGGER lots_status")  # backdate expiry only
        set_actor(owner, user="test-setup")
        owner.execute("UPDATE erp.lots SET expires_on = '2026-05-31' WHERE id = %s", (lot,))
        owner.execute("ALTER TABLE erp.lots ENABLE TRIGGER lots_status")
    with psycopg.connect(db_url) as conn:
        (n,) = conn.execute("SELECT erp.lock_expired_lots(%s)", (NOW,)).fetchone()
        conn.commit()
        (actor,) = conn.execute(
            "SELECT actor FROM erp.audit_log WHERE table_name = 'erp.lots' ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert n == 1
    assert actor == "system:expiry"
    assert api.get("op", f"/api/lots/{lot}")["status"] == "on_hold"
    assert api.get("op", f"/api/lots/{fresh}")["status"] == "quarantine"
    body = {"action": "release", "password": PASSWORD, "justification": WHY}
    refused = api.post("boss", f"/api/lots/{lot}/release", body, 409)["detail"]["message"]
    assert "expired" in refused


def test_a_signed_alert_close_dispositions_the_lots_deviation(api: Api, db_url: str) -> None:
    """The excursion's alert closed as "product assessed" (use as is) closes the deviation
    it opened on the lot, signed; the inbox says who acknowledged and closed, when, why."""
    hot = (NOW - timedelta(hours=3), 40, 11.0)
    lot, sensor = fridge_with_lot(api, db_url, code="FA", lot_number="ALERT-1", hot=hot)
    profile = AlarmProfile(name="fridge", low=2.0, high=8.0, alarm_delay_s=120)
    with psycopg.connect(db_url) as conn:
        (pid,) = conn.execute(
            "INSERT INTO telemetry.alarm_profiles (name, spec) VALUES ('fridge', %s) RETURNING id",
            (json.dumps(profile.to_dict()),),
        ).fetchone()
        conn.execute("INSERT INTO telemetry.sensor_profiles VALUES (%s, %s)", (sensor, pid))
        conn.execute(
            "INSERT INTO telemetry.eval_pending (sensor_id, min_t, max_t) VALUES (%s, %s, %s)",
            (sensor, START, NOW),
        )
        evaluate_pending(conn, now=NOW)
        (alert_id,) = conn.execute(
            "SELECT id FROM telemetry.alerts WHERE sensor_id = %s AND episode_id IS NOT NULL",
            (sensor,),
        ).fetchone()
    (dev,) = api.get("qa", f"/api/lots/{lot}/deviations")
    assert dev["status"] == "open"
    api.post("qa", f"/api/alerts/{alert_id}/ack", {"comment": "moving stock to fridge 2"}, 200)
    path = f"/api/alerts/{alert_id}/close"
    body = {"disposition": "product assessed", "comment": "S-14 covers it", "password": PASSWORD}
    for missing in ("disposition", "password"):  # nothing preselected, nothing unsigned
        api.post("qa", path, {k: v for k, v in body.items() if k != missing}, 422)
    unsaid = api.post("qa", path, body, 422)  # assessed: use as is or reject?
    assert "lot_disposition" in str(unsaid)
    body["lot_disposition"] = "use_as_is"
    api.post("qa", path, {**body, "password": "not-my-password"}, 403)
    assert api.get("qa", f"/api/lots/{lot}/deviations")[0]["status"] == "open"

    closed = api.post("qa", path, body, 200)
    assert closed["deviations_closed"] == [dev["number"]]
    assert closed["signature"].endswith("meaning: Reviewed: alert closed")
    (after,) = api.get("op", f"/api/lots/{lot}/deviations")
    assert (after["status"], after["disposition"], after["closed_by"]) == (
        "closed",
        "use_as_is",
        "qa",
    )
    passed = {r["rule"] for r in api.get("qa", f"/api/lots/{lot}/release")["rules"] if r["passed"]}
    assert {"no open deviation", "excursions dispositioned"} <= passed
    (shown,) = api.get("op", "/api/alerts?status=closed")
    assert (shown["acknowledged_by"], shown["ack_comment"]) == ("qa", "moving stock to fridge 2")
    assert (shown["closed_by"], shown["close_comment"]) == ("qa", "S-14 covers it")
    assert shown["disposition"] == "product assessed"
    assert shown["acknowledged_at"] is not None
    assert shown["closed_at"] is not None
    with psycopg.connect(db_url) as conn:
        assert forged_records(conn, keyring=session_keyring()) == ([], 0)


def test_an_override_proposed_before_the_lots_last_status_change_is_void(
    api: Api, db_url: str, owner_db_url: str
) -> None:
    hot = (NOW - timedelta(hours=3), 40, 11.0)
    lot, sensor = fridge_with_lot(api, db_url, code="FV", lot_number="HOT-VOID", hot=hot)
    excursion(db_url, sensor, hot)
    failed = sorted(rules_failed(api.get("qa", f"/api/lots/{lot}/release")))
    propose = {"password": PASSWORD, "justification": WHY, "confirmed_rules": failed}
    made = api.post("boss", f"/api/lots/{lot}/release/overrides", propose, 201)
    assert len(api.get("qa", f"/api/lots/{lot}/release")["pending_overrides"]) == 1
    with psycopg.connect(owner_db_url) as owner:  # the lot changed status after the proposal
        owner.execute("ALTER TABLE erp.lots DISABLE TRIGGER lots_status")
        set_actor(owner, user="test-setup")
        owner.execute(
            "UPDATE erp.lots SET status_changed_at = %s WHERE id = %s",
            (NOW + timedelta(minutes=1), lot),
        )
        owner.execute("ALTER TABLE erp.lots ENABLE TRIGGER lots_status")
    assert api.get("qa", f"/api/lots/{lot}/release")["pending_overrides"] == []
    approve = {"password": PASSWORD, "confirmed_rules": failed}
    path = f"/api/release/overrides/{made['override_id']}/approval"
    assert "predates" in api.post("boss2", path, approve, 409)["detail"]["message"]
