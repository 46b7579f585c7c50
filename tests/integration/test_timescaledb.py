"""TimescaleDB where it is, plain PostgreSQL where it is not — one schema, one retention rule.

Tests of Timescale-only features skip on plain PostgreSQL, with the reason; they run
with ``make test-timescale`` (docs/timescaledb.md), where they must not skip. The
not-preloaded test needs a cluster with timescaledb installed but not preloaded, given by
``COLDTRACE_TEST_NOT_PRELOADED_URL`` (an admin URL like ``COLDTRACE_TEST_ADMIN_URL``).
"""

from __future__ import annotations

import logging
import os
import uuid
from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from db import migrate, timescale
from erp_core.audit.service import set_actor
from erp_core.lots import service as lots
from erp_core.lots.models import LotIn
from erp_core.masterdata import service as master
from erp_core.masterdata.models import AssignmentIn, ItemIn, LocationIn
from erp_core.movements import service as movements
from erp_core.movements.models import MovementIn
from tests.fix_services import ADMIN_URL, _url

NOT_PRELOADED_URL = os.environ.get("COLDTRACE_TEST_NOT_PRELOADED_URL")
REQUIRED = os.environ.get("COLDTRACE_TEST_REQUIRE_TIMESCALE") == "1"  # make test-timescale
OLD = datetime(2019, 3, 1, tzinfo=UTC)  # more than 5 years ago: readings_kept has passed


def timescale_in(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    return row is not None


@pytest.fixture
def timescale_db(owner_db_url: str) -> str:
    """The test's database as the owner; skips where TimescaleDB is not in use."""
    if not timescale_in(owner_db_url):
        if REQUIRED:
            pytest.fail("make test-timescale, but the migrations did not enable TimescaleDB")
        pytest.skip("TimescaleDB feature: this PostgreSQL has no timescaledb (make test-timescale)")
    return owner_db_url


def test_template_copies_are_reliable(
    migrated_template: str, caplog: pytest.LogCaptureFixture
) -> None:
    """100 copies in a row, none of which has to wait: no session holds the template."""
    names = [f"ct_copy_{uuid.uuid4().hex[:10]}" for _ in range(100)]
    try:
        with caplog.at_level(logging.WARNING, logger="db.migrate"):
            for name in names:
                migrate.copy_database(_url(migrated_template), name)
    finally:
        for name in names:
            migrate.drop_database(_url(name))
    with psycopg.connect(ADMIN_URL) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_database WHERE datname = ANY(%s)", (names,)
        ).fetchone()
    assert left == (0,)
    assert [r.getMessage() for r in caplog.records if r.name == "db.migrate"] == []


def test_the_path_taken_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    url = _url(f"ct_path_{uuid.uuid4().hex[:10]}")
    try:
        with caplog.at_level(logging.INFO, logger="db.timescale"):
            migrate.upgrade(url)
        used = timescale_in(url)
        summary = timescale.storage(url).summary()  # what db upgrade and the demo print
    finally:
        migrate.drop_database(url)
    lines = [r.getMessage() for r in caplog.records if r.name == "db.timescale"]
    expected = "TimescaleDB in use" if used else "TimescaleDB not used, plain PostgreSQL tables"
    assert len(lines) == 1
    assert lines[0].startswith(expected)
    kind = "TimescaleDB hypertable" if used else "plain PostgreSQL table"
    assert summary.startswith(f"telemetry.readings: {kind}")


@pytest.mark.skipif(
    NOT_PRELOADED_URL is None,
    reason="needs COLDTRACE_TEST_NOT_PRELOADED_URL: a cluster with timescaledb installed "
    "but not in shared_preload_libraries (docs/timescaledb.md)",
)
def test_installed_but_not_preloaded_migrates_to_plain_tables(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert NOT_PRELOADED_URL is not None
    url = f"{NOT_PRELOADED_URL.rsplit('/', 1)[0]}/ct_np_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(NOT_PRELOADED_URL) as conn:
        (available,) = conn.execute(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
    assert available == 1, "this cluster must have timescaledb installed"
    try:
        with caplog.at_level(logging.INFO, logger="db.timescale"):
            assert migrate.upgrade(url) == []
        assert not timescale_in(url)
        with psycopg.connect(url) as conn:
            (kind,) = conn.execute(
                "SELECT relkind FROM pg_class WHERE oid = 'telemetry.readings'::regclass"
            ).fetchone()
        assert kind == "r"
    finally:
        migrate.drop_database(url)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("not in shared_preload_libraries" in r.getMessage() for r in warnings)


def implant_lot_since(owner_url: str, start: datetime) -> tuple[int, int]:
    """An implant lot (kept forever) in a fridge since ``start``; a loose sensor elsewhere.

    Both sensors read every 10 minutes from ``start`` for two days. Returns
    (fridge sensor, loose sensor)."""
    with psycopg.connect(owner_url) as conn:
        set_actor(conn, user="test-setup")
        sensors = [
            conn.execute(
                "INSERT INTO telemetry.sensors (uid, quantity, unit, gateway_id) VALUES (%s, "
                "'temperature', 'Cel', 'gw-1') RETURNING id",
                (uid,),
            ).fetchone()[0]
            for uid in ("T-FRIDGE", "T-LOOSE")
        ]
        for sensor in sensors:
            conn.execute(
                "INSERT INTO telemetry.readings (time, sensor_id, value) SELECT t, %s, 5.0"
                " FROM generate_series(%s::timestamptz, %s, interval '10 minutes') t",
                (sensor, start, start + timedelta(days=2)),
            )
        site = master.create_location(conn, location=LocationIn(code="S1", name="S", kind="site"))
        fridge = master.create_location(
            conn, location=LocationIn(code="F1", name="Fridge", kind="fridge", parent_id=site.id)
        )
        master.assign_sensor(
            conn,
            assignment=AssignmentIn(
                sensor_id=sensors[0], location_id=fridge.id, valid_from=start - timedelta(days=1)
            ),
        )
        item = master.create_item(
            conn,
            item=ItemIn(
                gtin="04006381333931", name="Hip", range_low=2, range_high=8, implantable=True
            ),
        )
        lot = lots.create_lot(
            conn,
            lot=LotIn(item_id=item.id, lot_number="IMP-1", expires_on=date(2021, 1, 1), quantity=5),
            now=start,
        )
        movements.record_movement(
            conn,
            movement=MovementIn(
                lot_id=lot.id, quantity=5, to_location_id=fridge.id, moved_at=start
            ),
            now=start,
        )
    return sensors[0], sensors[1]


def counts(url: str, sensors: tuple[int, int]) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FILTER (WHERE sensor_id = %s), count(*) FILTER (WHERE sensor_id = %s)"
            " FROM telemetry.readings",
            sensors,
        ).fetchone()
    return int(row[0]), int(row[1])


def retention_job(owner_url: str) -> None:
    with psycopg.connect(owner_url, autocommit=True) as conn:
        conn.execute("CALL erp.retention_job(NULL, '{}')")


def test_scheduled_retention_keeps_what_a_lot_needs_and_records_the_run(
    owner_db_url: str,
) -> None:
    sensors = implant_lot_since(owner_db_url, OLD)
    # Readings older than readings_kept (5 years) that no lot needs go; the implant lot's stay.
    lot_n, _ = counts(owner_db_url, sensors)
    retention_job(owner_db_url)
    assert counts(owner_db_url, sensors) == (lot_n, 0)
    with psycopg.connect(owner_db_url) as conn:
        actor, old = conn.execute(
            "SELECT actor, old_values FROM erp.audit_log WHERE table_name = 'telemetry.readings'"
            " ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert actor == "system:retention"
    assert old["deleted"] == 2 * 24 * 6 + 1
    with psycopg.connect(owner_db_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("UPDATE erp.retention_policy SET readings_kept = interval '4 years'")


def run_job(conn: psycopg.Connection[tuple[object, ...]], proc: str) -> None:
    """Run the registered TimescaleDB job of ``proc`` now, with its stored config."""
    (job,) = conn.execute(
        "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = %s", (proc,)
    ).fetchone()
    conn.execute("CALL run_job(%s)", (job,))


def test_compression_is_segmented_by_sensor_and_scheduled(timescale_db: str) -> None:
    with psycopg.connect(timescale_db) as conn:
        segment = conn.execute(
            "SELECT attname FROM timescaledb_information.compression_settings"
            " WHERE hypertable_name = 'readings' AND segmentby_column_index = 1"
        ).fetchone()
        jobs = dict(
            conn.execute(
                "SELECT proc_name, schedule_interval FROM timescaledb_information.jobs"
                " WHERE hypertable_name = 'readings' OR proc_schema = 'erp'"
            ).fetchall()
        )
        conn.execute("SELECT telemetry.set_compress_after(interval '14 days')")
        (after,) = conn.execute(
            "SELECT config->>'compress_after' FROM timescaledb_information.jobs"
            " WHERE proc_name = 'policy_compression'"
        ).fetchone()
    assert segment == ("sensor_id",)
    assert set(jobs) == {"policy_compression", "retention_job"}
    assert jobs["retention_job"] == timedelta(days=1)
    assert after == "14 days"


def test_compressed_readings_read_the_same_and_stay_immutable(
    timescale_db: str, db_url: str
) -> None:
    sensors = implant_lot_since(timescale_db, OLD)
    read = (
        "SELECT time, value, held FROM erp.lot_readings("
        "(SELECT id FROM erp.lots), '-infinity', 'infinity') ORDER BY time, held"
    )
    with psycopg.connect(db_url) as conn:
        before = conn.execute(read).fetchall()
    with psycopg.connect(timescale_db, autocommit=True) as conn:
        run_job(conn, "policy_compression")  # the policy itself: chunks older than 30 days
        (chunks, compressed) = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE is_compressed)"
            " FROM timescaledb_information.chunks WHERE hypertable_name = 'readings'"
        ).fetchone()
    assert compressed == chunks > 0
    with psycopg.connect(db_url) as conn:
        assert conn.execute(read).fetchall() == before
        # A late reading into a compressed chunk, and its re-delivery, as ingest writes them.
        for _ in range(2):
            conn.execute(
                "INSERT INTO telemetry.readings (time, sensor_id, value) VALUES (%s, %s, 6.0)"
                " ON CONFLICT DO NOTHING",
                (OLD + timedelta(minutes=5), sensors[1]),
            )
        conn.commit()
    with psycopg.connect(timescale_db) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("UPDATE telemetry.readings SET value = 99 WHERE sensor_id = %s", (sensors[0],))
    lot_n, loose_n = counts(timescale_db, sensors)
    assert loose_n == 2 * 24 * 6 + 2
    with psycopg.connect(timescale_db, autocommit=True) as conn:
        run_job(conn, "retention_job")  # as scheduled; deletes from compressed chunks too
    assert counts(timescale_db, sensors) == (lot_n, 0)
