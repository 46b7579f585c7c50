"""Scans and tag reads stored by ingest become stock movements, exactly once, in device-time
order; whatever cannot become one is recorded with its reason and can be retried.

Events are inserted into ``telemetry.scans``/``tag_reads`` the way ingest stores them, so
the queue trigger of migration 0012 is what the tests rely on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from erp_core.app import create_app
from erp_core.audit.service import entries_for, set_actor, verify
from erp_core.auth import service as auth_service
from erp_core.auth.models import Role
from erp_core.jobs import drain
from erp_core.lots import service as lots
from erp_core.lots.models import LotIn, LotTagIn
from erp_core.lots.tags import register_tag
from erp_core.masterdata import service as master
from erp_core.masterdata.models import ItemIn, LocationIn, ReaderIn
from erp_core.movements import service as movements
from erp_core.settings import ApiSettings
from tests.integration.access_helpers import session_keyring
from tests.integration.api_client import Api
from tests.integration.web_helpers import csrf_of, sign_in

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
GTIN = "04006381333931"
SSCC = "340123450000000017"
_seq = iter(range(1, 1_000_000))


def at(minutes: float) -> datetime:
    return NOW - timedelta(hours=2) + timedelta(minutes=minutes)


@pytest.fixture
def site(db_url: str) -> dict[str, int]:
    """A receiving bay and a fridge, each with a mapped reader, and one lot of one item."""
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="test-setup")
        root = master.create_location(
            conn, location=LocationIn(code="S", name="Site", kind="site")
        ).id

        def loc(code: str, kind: str) -> int:
            location = LocationIn(code=code, name=code, kind=kind, parent_id=root)  # type: ignore[arg-type]
            return master.create_location(conn, location=location).id

        ids = {"bay": loc("BAY", "dock"), "fridge": loc("F1", "fridge")}
        master.set_reader(
            conn, reader_id="scan-bay", reader=ReaderIn(location_id=ids["bay"], kind="scan")
        )
        master.set_reader(
            conn, reader_id="scan-f1", reader=ReaderIn(location_id=ids["fridge"], kind="scan")
        )
        master.set_reader(
            conn, reader_id="rfid-f1", reader=ReaderIn(location_id=ids["fridge"], kind="rfid")
        )
        item = master.create_item(
            conn, item=ItemIn(gtin=GTIN, name="Graft", range_low=2, range_high=8)
        )
        ids["item"] = item.id
        ids["lot"] = lots.create_lot(
            conn,
            lot=LotIn(
                item_id=item.id,
                lot_number="L100",
                expires_on=NOW.date() + timedelta(days=400),
                quantity=40,
            ),
            now=NOW,
        ).id
    return ids


def scan(conn: psycopg.Connection[Any], reader: str, minutes: float, **fields: Any) -> int:
    """Store one scan as ingest does; return its id."""
    row = {"ok": True, "reason": None, "gtin": None, "lot": None, "sscc": None, "data": "x"}
    row.update(fields)
    got = conn.execute(
        "INSERT INTO telemetry.scans (time, gateway_id, stream, seq, scanner, data, ok, reason,"
        " gtin, lot, sscc) VALUES (%s, 'gw', 'scans', %s, %s, %s, %s, %s, %s, %s, %s)"
        " RETURNING id",
        (
            at(minutes),
            next(_seq),
            reader,
            row["data"],
            row["ok"],
            row["reason"],
            row["gtin"],
            row["lot"],
            row["sscc"],
        ),
    ).fetchone()
    assert got is not None
    return int(got[0])


def tag_read(conn: psycopg.Connection[Any], reader: str, minutes: float, *, sscc: str) -> int:
    got = conn.execute(
        "INSERT INTO telemetry.tag_reads (time, gateway_id, stream, seq, reader, antenna, epc,"
        " scheme, sscc) VALUES (%s, 'gw', 'tags', %s, %s, 1, %s, 'sscc-96', %s) RETURNING id",
        (at(minutes), next(_seq), reader, "31" + sscc, sscc),
    ).fetchone()
    assert got is not None
    return int(got[0])


def outcomes(conn: psycopg.Connection[Any]) -> dict[int, tuple[str, str | None]]:
    rows = conn.execute(
        "SELECT event_id, outcome, reason FROM erp.edge_event_outcomes WHERE source = 'scan'"
    ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def where(conn: psycopg.Connection[Any], lot_id: int, minutes: float) -> list[tuple[int, float]]:
    return movements.current_locations(conn, lot_id=lot_id, time=at(minutes))


def test_scans_move_the_lot_once_and_explain_the_rest(db_url: str, site: dict[str, int]) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        received = scan(conn, "scan-bay", 0, gtin=GTIN, lot="L100")
        repeat = scan(conn, "scan-bay", 1, gtin=GTIN, lot="L100")
        to_fridge = scan(conn, "scan-f1", 5, gtin="4006381333931", lot="L100")  # GTIN-13 form
        damaged = scan(conn, "scan-f1", 6, ok=False, reason="bad GS1 check digit")
        unknown_lot = scan(conn, "scan-f1", 7, gtin=GTIN, lot="L999")
        unmapped = scan(conn, "scan-nowhere", 8, gtin=GTIN, lot="L100")
        counts = drain(conn, now=lambda: NOW)
        assert counts == {"moved": 2, "repeat": 1, "ignored": 1, "failed": 2}
        got = outcomes(conn)
        assert got[received][0] == "moved"
        assert got[repeat][0] == "repeat"
        assert got[to_fridge][0] == "moved"
        assert got[damaged] == ("ignored", "failed scan: bad GS1 check digit")
        assert got[unknown_lot][0] == "failed"
        assert "L999" in (got[unknown_lot][1] or "")
        assert got[unmapped][0] == "failed"
        assert "scan-nowhere" in (got[unmapped][1] or "")
        assert where(conn, site["lot"], 2) == [(site["bay"], 40.0)]
        assert where(conn, site["lot"], 10) == [(site["fridge"], 40.0)]
        # Processing again finds nothing: each event was applied exactly once.
        assert drain(conn, now=lambda: NOW) == {}
        assert conn.execute("SELECT count(*) FROM erp.stock_movements").fetchone() == (2,)
        sources = conn.execute(
            "SELECT DISTINCT source, reader_id FROM erp.stock_movements ORDER BY 2"
        ).fetchall()
        assert sources == [("scan", "scan-bay"), ("scan", "scan-f1")]
        actors = conn.execute(
            "SELECT DISTINCT actor FROM erp.audit_log WHERE table_name = 'erp.stock_movements'"
        ).fetchall()
        assert actors == [("system:edge-events",)]


def test_events_are_applied_in_device_time_order(db_url: str, site: dict[str, int]) -> None:
    """A late-arriving earlier scan is applied before the later one stored first."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        scan(conn, "scan-f1", 10, gtin=GTIN, lot="L100")  # stored first, happened later
        scan(conn, "scan-bay", 0, gtin=GTIN, lot="L100")
        assert drain(conn, now=lambda: NOW) == {"moved": 2}
        assert where(conn, site["lot"], 5) == [(site["bay"], 40.0)]
        assert where(conn, site["lot"], 11) == [(site["fridge"], 40.0)]


def test_rfid_pallet_tag_moves_its_lot(db_url: str, site: dict[str, int]) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        unregistered = tag_read(conn, "rfid-f1", 0, sscc=SSCC)
        assert drain(conn, now=lambda: NOW) == {"failed": 1}
        with conn.transaction():
            set_actor(conn, user="wh")
            register_tag(conn, tag=LotTagIn(lot_id=site["lot"], sscc=SSCC))
        tag_read(conn, "rfid-f1", 3, sscc=SSCC)
        assert drain(conn, now=lambda: NOW) == {"moved": 1}
        assert where(conn, site["lot"], 4) == [(site["fridge"], 40.0)]
        reason = conn.execute(
            "SELECT reason FROM erp.edge_event_outcomes WHERE source = 'rfid' AND event_id = %s",
            (unregistered,),
        ).fetchone()
        assert reason is not None
        assert SSCC in reason[0]


def test_concurrent_processors_apply_each_event_once(db_url: str, site: dict[str, int]) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        for i in range(60):
            reader = "scan-bay" if i % 2 == 0 else "scan-f1"
            scan(conn, reader, i, gtin=GTIN, lot="L100")
    results: list[dict[str, int]] = []

    def work() -> None:
        with psycopg.connect(db_url, autocommit=True) as c:
            total: dict[str, int] = {}
            for _ in range(20):
                for k, v in drain(c, now=lambda: NOW).items():
                    total[k] = total.get(k, 0) + v
            results.append(total)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.get("moved", 0) for r in results) == 60
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM erp.stock_movements").fetchone() == (60,)
        assert conn.execute("SELECT count(*) FROM erp.edge_event_queue").fetchone() == (0,)
        assert where(conn, site["lot"], 59.5) == [(site["fridge"], 40.0)]


@pytest.fixture
def api(db_url: str, site: dict[str, int]) -> Iterator[Api]:
    secret = "edge-test-secret-0123456789abcdef"
    with psycopg.connect(db_url) as conn:
        set_actor(conn, user="test-setup")
        for name, role in (("wh", Role.WAREHOUSE), ("qa", Role.QA)):
            auth_service.create_user(
                conn,
                username=name,
                full_name=name,
                password="Long-enough-Pass-4711!",
                roles=[role],
                now=NOW,
                keyring=session_keyring(),
            )
    settings = ApiSettings(
        database_url=db_url, pool_min_size=1, pool_max_size=2, jwt_secret=SecretStr(secret)
    )
    with TestClient(create_app(settings, clock=lambda: NOW)) as client:
        yield Api(client, secret=secret, now=NOW)


def test_api_lists_failures_and_retries_after_the_fix(
    db_url: str, site: dict[str, int], api: Api
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        failed = scan(conn, "scan-f1", 0, gtin=GTIN, lot="L200", data="]d2010400638133393110L200")
        drain(conn, now=lambda: NOW)
    listed = api.get("qa", "/api/edge-events?outcome=failed")
    assert [(e["event_id"], e["reader_id"], e["data"]) for e in listed] == [
        (failed, "scan-f1", "]d2010400638133393110L200")
    ]
    path = f"/api/edge-events/scan/{failed}/retry"
    api.post("qa", path, {}, status=403)
    api.post("wh", "/api/edge-events/scan/999999/retry", {}, status=404)
    api.post(
        "wh",
        "/api/lots",
        {"item_id": site["item"], "lot_number": "L200", "expires_on": "2027-12-31", "quantity": 5},
    )
    assert api.post("wh", path, {}, status=202) == {"status": "queued"}
    with psycopg.connect(db_url) as conn:
        key = {"source": "scan", "event_id": failed}
        (entry,) = entries_for(conn, table="erp.edge_event_outcomes", key=key)
        assert verify(conn).ok
    assert (entry.actor, entry.reason) == ("wh", "retry of a failed scan or tag read")
    assert entry.old_values is not None
    assert entry.old_values["outcome"] == "failed"
    assert "L200" in entry.old_values["reason"]
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert drain(conn, now=lambda: NOW) == {"moved": 1}
    assert api.get("qa", "/api/edge-events?outcome=failed") == []
    # Tag registration: validated, role-checked, unique.
    api.post("wh", "/api/lot-tags", {"lot_id": site["lot"], "gtin": GTIN}, status=422)
    api.post("wh", "/api/lot-tags", {"lot_id": site["lot"], "sscc": "12"}, status=422)
    api.post("qa", "/api/lot-tags", {"lot_id": site["lot"], "sscc": SSCC}, status=403)
    api.post("wh", "/api/lot-tags", {"lot_id": 999, "sscc": SSCC}, status=404)
    tag = api.post("wh", "/api/lot-tags", {"lot_id": site["lot"], "gtin": GTIN, "serial": "7"})
    assert (tag["gtin"], tag["serial"], tag["sscc"]) == (GTIN, "7", None)
    api.post(
        "wh", "/api/lot-tags", {"lot_id": site["lot"], "gtin": GTIN, "serial": "7"}, status=409
    )


def test_scans_page_lists_failures_and_warehouse_retries(
    db_url: str, site: dict[str, int], api: Api
) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        failed = scan(conn, "scan-f1", 0, gtin=GTIN, lot="L300", data="LABEL-L300")
        scan(conn, "scan-bay", 1, gtin=GTIN, lot="L100", data="LABEL-L100")
        drain(conn, now=lambda: NOW)
    client = api.client
    assert client.get("/scans", follow_redirects=False).status_code == 303  # signed out
    sign_in(client, "qa", "Long-enough-Pass-4711!")
    html = client.get("/scans").text
    assert "1 SCAN MOVED NOTHING" in html
    assert "LABEL-L300" in html
    # the moved scan names its lot by number, not by its database id
    assert f'<a href="/lots/{site["lot"]}">L100</a>' in html
    assert "no lot L300" in html
    assert "Retry</button>" not in html  # qa may look, not act
    form = {"csrf_token": csrf_of(html)}
    assert client.post(f"/scans/scan/{failed}/retry", data=form).status_code == 403
    client.post("/sign-out", data=form)
    sign_in(client, "wh", "Long-enough-Pass-4711!")
    html = client.get("/scans").text
    assert f'action="/scans/scan/{failed}/retry"' in html
    bad = client.post(f"/scans/scan/{failed}/retry", data={"csrf_token": "x"})
    assert bad.status_code == 403
    api.post(
        "wh",
        "/api/lots",
        {"item_id": site["item"], "lot_number": "L300", "expires_on": "2027-12-31", "quantity": 5},
    )
    ok = client.post(
        f"/scans/scan/{failed}/retry", data={"csrf_token": csrf_of(html)}, follow_redirects=False
    )
    assert ok.status_code == 303
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert drain(conn, now=lambda: NOW) == {"moved": 1}
    assert "EVERY SCAN WAS APPLIED" in client.get("/scans").text
    with psycopg.connect(db_url, autocommit=True) as conn:  # a label the scanner misread
        scan(conn, "scan-bay", 2, ok=False, reason="bad check digit", data="0195060001343")
        assert drain(conn, now=lambda: NOW) == {"ignored": 1}
    html = client.get("/scans").text
    assert "EVERY SCAN WAS APPLIED" not in html
    assert "1 SCAN WAS IGNORED" in html
    assert "failed scan: bad check digit" in html
    only = client.get("/scans?outcome=ignored").text  # the outcome filter
    assert "0195060001343" in only
    assert "LABEL-L300" not in only


def test_a_database_refusal_fails_one_event_and_the_queue_goes_on(
    db_url: str, owner_db_url: str, site: dict[str, int]
) -> None:
    # A refusal the services do not translate into an ERP error (a trigger's RAISE),
    # set up by the owner as a migration would (the application role may not).
    with psycopg.connect(owner_db_url, autocommit=True) as owner:
        owner.execute(
            """
            CREATE FUNCTION erp.no_bay() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.reader_id = 'scan-bay' THEN RAISE EXCEPTION 'bay closed'; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER no_bay BEFORE INSERT ON erp.stock_movements
                FOR EACH ROW EXECUTE FUNCTION erp.no_bay();
            """
        )
    with psycopg.connect(db_url, autocommit=True) as conn:
        refused = scan(conn, "scan-bay", 0, gtin=GTIN, lot="L100")
        received = scan(conn, "scan-f1", 5, gtin=GTIN, lot="L100")
        assert drain(conn, now=lambda: NOW) == {"failed": 1, "moved": 1}
        got = outcomes(conn)
        assert got[refused][0] == "failed"
        assert "bay closed" in (got[refused][1] or "")
        assert got[received][0] == "moved"
        assert where(conn, site["lot"], 6) == [(site["fridge"], 40.0)]


def test_a_late_scan_before_the_receipt_is_not_a_second_receipt(
    db_url: str, site: dict[str, int]
) -> None:
    """The bay scan of an offline gateway arrives after the fridge scan was applied."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        scan(conn, "scan-f1", 10, gtin=GTIN, lot="L100")
        assert drain(conn, now=lambda: NOW) == {"moved": 1}
        late = scan(conn, "scan-bay", 5, gtin=GTIN, lot="L100")
        assert drain(conn, now=lambda: NOW) == {"failed": 1}
        outcome, reason = outcomes(conn)[late]
        assert outcome == "failed"
        assert "would exceed" in (reason or "")
        assert where(conn, site["lot"], 11) == [(site["fridge"], 40.0)]
        assert conn.execute("SELECT count(*) FROM erp.stock_movements").fetchone() == (1,)
