"""A worker that cannot work exits non-zero, so that its supervisor restarts it.

`coldtrace ingest` runs as a real process against a real Mosquitto and PostgreSQL. The
database is then made to fail the writer for real, with a trigger: once so that the
writer meets an error no code path expects (a sensor row that silently never appears),
once so that the database refuses every write, even the dead letter. Before the fix
the writer thread died and the process stayed up, storing nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from coldtrace.broker import Broker
from ingest.main import EXIT_FAILURE
from tests.integration.ingest_helpers import scalar
from tests.mqtt_helpers import batch, gateway_client, ingest_env, publish, wait_until

pytestmark = pytest.mark.timeout(120)

TOPIC = "ct/v1/plant-1/gw-1/readings"

SENSORS_SWALLOWED = """
CREATE FUNCTION pg_temp.swallow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RETURN NULL; END $$;
CREATE TRIGGER swallow BEFORE INSERT ON telemetry.sensors
    FOR EACH ROW EXECUTE FUNCTION pg_temp.swallow();
"""
EVERY_WRITE_REFUSED = """
CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'disk on fire'; END $$;
CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON telemetry.gateways
    FOR EACH ROW EXECUTE FUNCTION public.refuse();
"""


@pytest.fixture
def ingest_process(
    broker: Broker, db_url: str, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen, Path]]:
    log_path = tmp_path / "ingest.log"
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from coldtrace.cli import app; app()",
                "ingest",
                "--mqtt-port",
                str(broker.port),
                "--client-id",
                "ingest-exit-test",
                "--plain-logs",
            ],
            env={**os.environ, **ingest_env(broker), "COLDTRACE_DATABASE_URL": db_url},
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        try:
            yield proc, log_path
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


def exit_status(proc: subprocess.Popen, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return proc.returncode
        time.sleep(0.1)
    return None


def works(proc: subprocess.Popen, broker: Broker, db_url: str) -> None:
    """The worker is up and storing (the first batch also puts sensor fridge-a in its cache)."""
    pub = gateway_client(broker, "plant-1", "gw-1")
    stored = lambda: scalar(db_url, "SELECT count(*) FROM telemetry.readings") == 5  # noqa: E731
    for _ in range(30):  # until it has subscribed; a re-sent batch is stored once
        publish(pub, TOPIC, batch(1, 5))
        if wait_until(stored, timeout=1):
            break
    assert stored()
    assert proc.poll() is None


@pytest.mark.parametrize(
    ("sabotage", "expected_log"),
    [
        (SENSORS_SWALLOWED, "KeyError"),
        (EVERY_WRITE_REFUSED, "disk on fire"),
    ],
    ids=["unexpected-error-in-writer", "database-refuses-even-dead-letters"],
)
def test_writer_failure_exits_non_zero(
    ingest_process,
    broker: Broker,
    db_url: str,
    owner_db_url: str,
    sabotage: str,
    expected_log: str,
) -> None:
    proc, log_path = ingest_process
    works(proc, broker, db_url)
    # the sabotage needs the schema owner: the application role may not create triggers
    with psycopg.connect(owner_db_url, autocommit=True) as conn:
        if "pg_temp" in sabotage:  # a temp function lives in this session only: make it real
            sabotage = sabotage.replace("pg_temp.", "public.")
        conn.execute(sabotage)
        pub = gateway_client(broker, "plant-1", "gw-1")
        # a new sensor (so the cache must ask the database), one message, then nothing
        publish(pub, TOPIC, batch(6, 1, sensor="fridge-b"))
        status = exit_status(proc, timeout=40)
    log = log_path.read_text(errors="replace")
    assert status == EXIT_FAILURE, f"still running or wrong status {status}; log:\n{log[-3000:]}"
    assert "the writer thread stopped" in log
    assert expected_log in log
    assert f"exiting with status {EXIT_FAILURE}" in log
    # nothing was acknowledged that was not stored: the message is still the broker's
    assert scalar(db_url, "SELECT count(*) FROM telemetry.readings") == 5


def test_any_thread_that_dies_takes_the_process_down(broker: Broker, db_url: str) -> None:
    """Not only the writer: paho's network thread or any other one (here: one that divides by 0)."""
    creds = broker.ingest_credentials
    script = (
        "import threading\n"
        "from coldtrace import logs\n"
        "from db.settings import DatabaseSettings\n"
        "from ingest.main import run\n"
        "from ingest.settings import IngestSettings\n"
        "logs.setup('INFO', plain=True)\n"
        "threading.Timer(3, lambda: 1 / 0).start()\n"
        f"run(IngestSettings(mqtt_port={broker.port}, client_id='ingest-die',"
        f" mqtt_username={creds.username!r}, mqtt_password={creds.password!r}),"
        f" DatabaseSettings(url={db_url!r}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == EXIT_FAILURE, done.stderr[-3000:]
    assert "thread Thread-" in done.stderr
    assert "ZeroDivisionError" in done.stderr
    assert "died; stopping the worker" in done.stderr
