"""The alert page, the e-mail's link, against real PostgreSQL and a real SMTP server (issue 11).

A fridge's excursion opened a deviation on the lot inside it; the alert's e-mail goes
through the real notifier to aiosmtpd; the link taken from the e-mail's body opens the
alert page for a signed-in user; a disposition signed there closes the lot's deviation
(read back from ``erp.deviations``); one QA cannot sign with another's password; a form
with a missing part says so next to that field and changes nothing.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from coldtrace.cli import app as cli
from coldtrace.cli_alerts import CLOSE_MEANING
from erp_core.alerts.signed_close import MEANING
from erp_core.app import create_app
from erp_core.audit.service import set_actor
from erp_core.auth import service as auth_service
from erp_core.auth.models import Role
from erp_core.deviations.service import number as deviation_number
from erp_core.settings import ApiSettings
from tests.integration.access_helpers import session_keyring
from tests.integration.api_client import Api
from tests.integration.test_notifier import (  # the smtp fixture: a real aiosmtpd
    passes,
    smtp,  # noqa: F401
    two_qa_people,
)
from tests.integration.test_notifier import settings as notify_settings
from tests.integration.test_release import NOW, PASSWORD, excursion, fridge_with_lot
from tests.integration.web_helpers import csrf_of, sign_in

SECRET = "alert-page-test-secret-0123456789abcdef"
USERS = {"admin": "admin", "wh": "warehouse", "qa": "qa", "qa2": "qa", "boss": "qa_manager"}
HOT = (NOW - timedelta(hours=3), 40, 11.0)
LOT = "EXPOSED-1"
OTHER = "Second-own-Pass-4711!"  # qa2's password: not qa's
REASON = "Stability study S-14 does not cover 11 °C for 40 min: the lot is rejected."


@dataclass
class Scene:
    client: TestClient
    db_url: str
    lot: int
    alert: int
    deviation: int

    def count(self, sql: str, *args: object) -> int:
        with psycopg.connect(self.db_url) as conn:
            row = conn.execute(sql, args).fetchone()
        assert row is not None
        return int(row[0])


@pytest.fixture
def scene(db_url: str) -> Iterator[Scene]:
    """Users, a fridge with a lot, its excursion (deviation opened), the alert, acknowledged not."""
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="test-setup")
        for name, role in USERS.items():
            auth_service.create_user(
                conn,
                username=name,
                full_name=f"{name.title()} Person",
                password=OTHER if name == "qa2" else PASSWORD,
                roles=[Role(role)],
                now=NOW,
                keyring=session_keyring(),
            )
    settings = ApiSettings(
        database_url=db_url, pool_min_size=1, pool_max_size=4, jwt_secret=SecretStr(SECRET)
    )
    with TestClient(create_app(settings, clock=lambda: NOW)) as client:
        api = Api(client, secret=SECRET, now=NOW)
        lot, sensor = fridge_with_lot(api, db_url, code="FE", lot_number=LOT, hot=HOT)
        episode = excursion(db_url, sensor, HOT)
        start, minutes, peak = HOT
        detail = {
            "kind": "excursion_high", "sensor": "T-FE", "quantity": "temperature",
            "unit": "Cel", "location": "Plant 1 / Fridge FE", "peak": peak,
            "duration_s": minutes * 60, "late": False, "started_at": start.isoformat(),
            "profile": "eu-gdp-2-8", "limits": {"low": 2.0, "high": 8.0},
        }  # fmt: skip
        with psycopg.connect(db_url) as conn:
            (alert,) = conn.execute(
                "INSERT INTO telemetry.alerts (kind, severity, site, sensor_id, episode_id,"
                " started_at, ended_at, peak, duration_s, summary, detail) VALUES"
                " ('excursion_high', 'critical', 'plant-1', %s, %s, %s, %s, %s, %s,"
                " 'T-FE temperature above the upper limit', %s) RETURNING id",
                (sensor, episode, start, start + timedelta(minutes=minutes), peak,
                 minutes * 60, json.dumps(detail)),
            ).fetchone()  # fmt: skip
            conn.execute(
                "SELECT telemetry.alert_append_event(%s, 'opened', %s, NULL, %s)",
                (alert, start, json.dumps(detail)),
            )
            two_qa_people(conn)
            (deviation,) = conn.execute(
                "SELECT id FROM erp.deviations WHERE lot_id = %s", (lot,)
            ).fetchone()
        yield Scene(client, db_url, lot, alert, deviation)


def _link_from_email(scene: Scene, port: int, sink: object) -> str:
    s = notify_settings(smtp_host="127.0.0.1", smtp_port=port, base_url="http://testserver/")
    asyncio.run(passes(scene.db_url, s))
    mails = sink.received()  # type: ignore[attr-defined]
    assert len(mails) == 2  # Li Wei and Anna Berg
    body = mails[0][1].get_content()
    found = re.search(r"http://testserver/alerts/\d+", body)
    assert found is not None, body
    return urlsplit(found.group(0)).path


def _deviation(scene: Scene) -> tuple[object, ...]:
    with psycopg.connect(scene.db_url) as conn:
        row = conn.execute(
            "SELECT status, disposition, closed_by, signature_id IS NOT NULL"
            " FROM erp.deviations WHERE id = %s",
            (scene.deviation,),
        ).fetchone()
    assert row is not None
    return tuple(row)


def _close(scene: Scene, token: str, **fields: str) -> object:
    data = {
        "disposition": "product rejected",
        "comment": REASON,
        "meaning": MEANING,
        "password": PASSWORD,
        "csrf_token": token,
        **fields,
    }
    return scene.client.post(f"/alerts/{scene.alert}/close", data=data, follow_redirects=False)


def _field_error(html: str, field: str) -> str:
    found = re.search(rf'<span class="field-error" id="error-{field}">([^<]*)</span>', html)
    assert found is not None, f"no error next to {field}"
    return found.group(1)


def test_the_emails_link_opens_the_alert_page_and_a_signed_disposition_closes_the_deviation(
    scene: Scene,
    smtp: tuple[object, int],  # noqa: F811 - the fixture imported above
) -> None:
    sink, port = smtp
    path = _link_from_email(scene, port, sink)
    assert path == f"/alerts/{scene.alert}"

    anonymous = scene.client.get(path, follow_redirects=False)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/sign-in")

    sign_in(scene.client, "qa", PASSWORD)
    page = scene.client.get(path)
    assert page.status_code == 200
    html = page.text
    for fact in ("T-FE", "too warm", "peak 11.0 °C", "40 min", "Plant 1 / Fridge FE",
                 "2–8 °C", "eu-gdp-2-8", LOT, "Graft", "04006381333931",
                 f"{deviation_number(scene.deviation)}: open"):  # fmt: skip
        assert fact in html, fact
    assert f'href="/lots/{scene.lot}"' in html
    assert "e-mail to Li Wei (opened): sent" in html
    assert "e-mail to Anna Berg (opened): sent" in html
    assert '<svg class="chart"' in html
    assert "Cel" not in html
    assert f'action="/alerts/{scene.alert}/close"' not in html  # not acknowledged yet

    token = csrf_of(html)
    early = _close(scene, token)
    assert early.status_code == 409
    assert "it must be acknowledged first" in early.text

    acked = scene.client.post(
        f"/alerts/{scene.alert}/ack",
        data={"comment": "Product moved to fridge 2", "next": path, "csrf_token": token},
        follow_redirects=False,
    )
    assert acked.status_code == 303
    assert acked.headers["location"] == path
    page = scene.client.get(path).text
    assert "Product moved to fridge 2" in page
    assert f'action="/alerts/{scene.alert}/close"' in page
    assert (
        re.search(r'type="radio" name="disposition" value="[^"]+" required checked', page) is None
    )

    done = _close(scene, token)
    assert done.status_code == 303, done.text
    assert _deviation(scene) == ("closed", "reject", "qa", True)
    assert scene.count("SELECT count(*) FROM telemetry.alerts WHERE status = 'closed'") == 1
    page = scene.client.get(path).text
    assert "Signed by Qa Person (qa)" in page
    assert "meaning: Reviewed: alert closed" in page
    assert "SIGNATURE DOES NOT VERIFY" not in page
    assert REASON in page
    assert "closed (reject)" in page  # the lot's deviation, in words
    assert "each lot itself is rejected with a signed decision" in page
    assert f'action="/alerts/{scene.alert}/close"' not in page


def test_one_qa_cannot_sign_with_anothers_password_and_missing_parts_are_named(
    scene: Scene,
) -> None:
    with psycopg.connect(scene.db_url) as conn:
        conn.execute(
            "SELECT telemetry.alert_acknowledge(%s, 'qa2', 'seen', %s)", (scene.alert, NOW)
        )
    sign_in(scene.client, "qa", PASSWORD)
    token = csrf_of(scene.client.get(f"/alerts/{scene.alert}").text)
    signature_attempts = "SELECT count(*) FROM erp.login_attempts WHERE channel = 'signature'"

    # nothing chosen, no reason, no meaning: each said next to its field, no password check
    empty = _close(scene, token, disposition="", comment=" ", meaning="")
    assert empty.status_code == 422
    assert _field_error(empty.text, "disposition") == "Choose a disposition."
    assert _field_error(empty.text, "comment") == "Give the reason for the disposition."
    assert _field_error(empty.text, "meaning") == "Confirm the meaning of your signature."
    assert scene.count(signature_attempts) == 0

    # "product assessed" says nothing about the lots: the lot disposition must be chosen
    assessed = _close(scene, token, disposition="product assessed")
    assert assessed.status_code == 422
    assert "say use_as_is or reject" in _field_error(assessed.text, "lot_disposition")
    assert REASON in assessed.text  # what was typed is kept

    # qa signs with qa2's password: refused, counted against qa, nothing changed
    forged = _close(scene, token, password=OTHER)
    assert forged.status_code == 403
    assert _field_error(forged.text, "password").startswith("Not signed:")
    assert _deviation(scene) == ("open", None, None, False)
    assert scene.count("SELECT count(*) FROM telemetry.alerts WHERE status = 'closed'") == 0
    assert scene.count("SELECT count(*) FROM erp.signatures") == 0
    assert (
        scene.count(
            "SELECT count(*) FROM erp.login_attempts WHERE channel = 'signature'"
            " AND username = 'qa' AND outcome = 'bad_password'"
        )
        == 1
    )
    assert scene.count(signature_attempts + " AND username = 'qa2'") == 0

    # a warehouse user reads the page but has no form, and the POST is refused
    other = TestClient(scene.client.app)
    sign_in(other, "wh", PASSWORD)
    page = other.get(f"/alerts/{scene.alert}")
    assert page.status_code == 200
    assert 'name="password"' not in page.text
    refused = other.post(
        f"/alerts/{scene.alert}/close",
        data={"disposition": "no impact", "comment": "x", "meaning": MEANING,
              "password": PASSWORD, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )  # fmt: skip
    assert refused.status_code == 403
    assert _deviation(scene) == ("open", None, None, False)


def test_the_cli_close_is_signed_by_the_user_named_with_their_password(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLDTRACE_DATABASE_URL", scene.db_url)
    monkeypatch.setenv("COLUMNS", "300")
    runner = CliRunner()
    acked = runner.invoke(cli, ["alerts", "ack", str(scene.alert), "--comment", "on it"])
    assert acked.exit_code == 0, acked.output
    args = ["alerts", "close", str(scene.alert), "--user", "qa", "--disposition",
            "product assessed", "--reason", REASON, "--meaning", MEANING]  # fmt: skip

    unsaid = runner.invoke(cli, [*args[:-2], "--meaning", "ok", "--password-stdin"],
                           input=PASSWORD + "\n")  # fmt: skip
    assert unsaid.exit_code == 2
    assert "Reviewed: alert closed" in unsaid.output
    no_lots = runner.invoke(cli, [*args, "--password-stdin"], input=PASSWORD + "\n")
    assert no_lots.exit_code == 1
    assert "say use_as_is or reject" in no_lots.output
    forged = runner.invoke(
        cli, [*args, "--lot-disposition", "use_as_is", "--password-stdin"], input=OTHER + "\n"
    )
    assert forged.exit_code == 1
    assert "not closed" in forged.output
    assert _deviation(scene) == ("open", None, None, False)
    # the prompt hides the password: it is not echoed into the output
    done = runner.invoke(cli, [*args, "--lot-disposition", "use_as_is"], input=PASSWORD + "\n")
    assert done.exit_code == 0, done.output
    assert PASSWORD not in done.output
    assert "Signed by Qa Person (qa)" in done.output
    assert deviation_number(scene.deviation) in done.output
    assert _deviation(scene) == ("closed", "use_as_is", "qa", True)
    with psycopg.connect(scene.db_url) as conn:
        row = conn.execute(
            "SELECT a.status, a.closed_by, a.disposition, s.username, s.meaning"
            " FROM telemetry.alerts a JOIN erp.signatures s"
            " ON s.record_table = 'telemetry.alerts'"
            " AND s.record_key = jsonb_build_object('id', a.id)"
            " WHERE a.id = %s",
            (scene.alert,),
        ).fetchone()
        attempts = conn.execute(
            "SELECT outcome FROM erp.login_attempts WHERE channel = 'signature'"
            " AND username = 'qa' ORDER BY id"
        ).fetchall()
    assert row == ("closed", "qa", "product assessed", "qa", MEANING)
    assert [a[0] for a in attempts].count("bad_password") == 1


def test_the_cli_and_the_page_say_the_same_meaning() -> None:
    assert CLOSE_MEANING == MEANING
