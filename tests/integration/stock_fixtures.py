"""Shared set-up of the master-data, back-dating and compliance tests: users, app, SQL helpers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import psycopg
from fastapi.testclient import TestClient
from pydantic import SecretStr

from erp_core.app import create_app
from erp_core.audit.service import set_actor
from erp_core.auth import service as auth_service
from erp_core.auth.models import Role
from erp_core.settings import ApiSettings
from tests.integration.access_helpers import session_keyring
from tests.integration.api_client import Api

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SECRET = "master-data-test-secret-0123456789abcdef"
USERS = {"admin": "admin", "wh": "warehouse", "qa": "qa", "qam": "qa_manager", "op": "operator"}
GTIN = "09506000134352"  # a GS1 example GTIN-14 with a valid check digit


class StockApi(Api):
    """``Api`` plus PATCH and any-status GET."""

    def patch(self, who: str, path: str, body: object, status: int = 200) -> Any:
        r = self.client.patch(path, json=body, headers=self.headers(who))
        assert r.status_code == status, r.text
        return r.json()

    def get_status(self, who: str, path: str, status: int) -> Any:
        r = self.client.get(path, headers=self.headers(who))
        assert r.status_code == status, r.text
        return r.json()

    def audit(self, table: str, key: dict[str, Any]) -> list[dict[str, Any]]:
        """The audit entries of one record, as the admin sees them."""
        key_json = quote(str(key).replace("'", '"'))
        return list(self.get("admin", f"/api/audit?table={table}&key={key_json}"))


def at(minutes: float) -> datetime:
    """A time ``minutes`` after six hours before NOW."""
    return NOW - timedelta(hours=6) + timedelta(minutes=minutes)


def iso(minutes: float) -> str:
    return at(minutes).isoformat()


def api_for(db_url: str, *, site_timezone: str = "UTC") -> Iterator[StockApi]:
    """Users of every role and an app on ``db_url`` with its clock at NOW (fixture body)."""
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="test-setup")
        for name, role in USERS.items():
            auth_service.create_user(
                conn,
                username=name,
                full_name=name,
                password="Long-enough-Pass-4711!",
                roles=[Role(role)],
                now=NOW,
                keyring=session_keyring(),
            )
    settings = ApiSettings(
        database_url=db_url,
        pool_min_size=1,
        pool_max_size=4,
        jwt_secret=SecretStr(SECRET),
        site_timezone=site_timezone,
    )
    with TestClient(create_app(settings, clock=lambda: NOW)) as client:
        yield StockApi(client, secret=SECRET, now=NOW)


def location(api: Api, code: str, kind: str, parent: int | None) -> int:
    body = {"code": code, "name": code, "kind": kind, "parent_id": parent}
    return int(api.post("admin", "/api/locations", body)["id"])


def site_with(api: Api, *units: tuple[str, str]) -> dict[str, int]:
    """A site S with area A and the given (code, kind) units under A (trucks under S)."""
    ids = {"S": location(api, "S", "site", None)}
    ids["A"] = location(api, "A", "area", ids["S"])
    for code, kind in units:
        ids[code] = location(api, code, kind, ids["S"] if kind == "truck" else ids["A"])
    return ids


def item(api: Api, gtin: str = GTIN, **extra: object) -> int:
    body = {"gtin": gtin, "name": "Stent", "range_low": 2, "range_high": 8, **extra}
    return int(api.post("admin", "/api/items", body)["id"])


def lot(api: Api, item_id: int, number: str = "L1", quantity: float = 100) -> int:
    body = {"item_id": item_id, "lot_number": number, "expires_on": "2028-01-01"}
    return int(api.post("wh", "/api/lots", {**body, "quantity": quantity})["id"])


def move(
    api: Api,
    lot_id: int,
    src: int | None,
    dst: int | None,
    minutes: float,
    qty: float = 100,
    status: int = 201,
) -> Any:
    body = {
        "lot_id": lot_id,
        "quantity": qty,
        "from_location_id": src,
        "to_location_id": dst,
        "moved_at": iso(minutes),
    }
    return api.post("wh", "/api/movements", body, status)


def sensor(db_url: str, uid: str, *, gateway_site: str | None = None) -> int:
    """A temperature sensor (with a gateway of ``gateway_site`` if given)."""
    with psycopg.connect(db_url) as conn:
        gateway = "gw-1"  # a sensor always belongs to a gateway (migration 0015)
        if gateway_site is not None:
            gateway = f"gw-{gateway_site}"
            conn.execute(
                "INSERT INTO telemetry.gateways (id, site) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (gateway, gateway_site),
            )
        row = conn.execute(
            "INSERT INTO telemetry.sensors (uid, quantity, unit, gateway_id) "
            "VALUES (%s, 'temperature', 'Cel', %s) RETURNING id",
            (uid, gateway),
        ).fetchone()
        assert row is not None
        return int(row[0])


def assign(api: Api, sensor_id: int, location_id: int, minutes: float) -> int:
    body = {"sensor_id": sensor_id, "location_id": location_id, "valid_from": iso(minutes)}
    return int(api.post("admin", "/api/sensor-assignments", body)["id"])


def decide(db_url: str, lot_id: int, *, action: str, when: datetime) -> None:
    """Record a signed-looking release decision and move the lot, as the release service does.

    The release service itself is tested elsewhere; here only its stored outcome matters.
    """
    status = "released" if action == "release" else "rejected"
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="qa", reason="test decision")
        # The tests register lots at NOW and tell their story in the hours before it.
        conn.execute("UPDATE erp.lots SET status_changed_at = %s WHERE id = %s", (when, lot_id))
        conn.execute(
            "INSERT INTO erp.release_decisions (lot_id, action, verdict, recommendation, "
            "signature_id, decided_by, decided_at) VALUES (%s, %s, 'allowed', '{}', 0, 'qa', %s)",
            (lot_id, action, when),
        )
        conn.execute(
            "UPDATE erp.lots SET status = %s, status_changed_at = %s WHERE id = %s",
            (status, when, lot_id),
        )


def segments(db_url: str, lot_id: int) -> list[tuple[int, datetime, datetime]]:
    """(sensor, start, end) of the lot's history up to NOW, from the one SQL definition."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT sensor_id, segment_start, segment_end FROM erp.lot_segments(%s, %s, %s) "
            "ORDER BY segment_start, sensor_id",
            (lot_id, at(-600), NOW),
        ).fetchall()
    return [(int(a), b, c) for a, b, c in rows]
