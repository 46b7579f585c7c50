"""Faults injected into the running chain: simulated fridges → gateway → Mosquitto →
ingest → PostgreSQL. Each scenario warms up, injects its fault, clears it, measures how
long until ingest's watermark covers everything the gateway had numbered by then
(recovery), drains, and records a row: every row must show 0 lost and 0 duplicated.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

import psycopg
import pytest

from coldtrace.broker import Broker
from coldtrace.mailcatcher import MailCatcher
from coldtrace.supervise import Child, coldtrace_args
from tests.chaos.cluster import Cluster
from tests.chaos.conftest import Row
from tests.chaos.proxy import CuttableProxy
from tests.integration.stack import Stack, start_stack
from tests.mqtt_helpers import wait_until

pytestmark = pytest.mark.chaos

POLL_S = 0.05  # three fridges, two quantities: about 120 readings/s
RESEND_S = 2.0
RECOVERY_TIMEOUT_S = 240.0


def counts(db_url: str) -> tuple[int, int]:
    """(rows stored, distinct gateway seqs among them)."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT gateway_seq) FROM telemetry.readings"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def committed(db_url: str) -> int:
    """Ingest's watermark of the gateway's readings stream (0 while unreachable)."""
    try:
        with psycopg.connect(db_url, connect_timeout=2) as conn:
            row = conn.execute(
                "SELECT coalesce(max(committed_seq), 0) FROM telemetry.gateway_streams"
            ).fetchone()
    except psycopg.OperationalError:
        return 0
    return int(row[0]) if row else 0


def warm(stack: Stack, n: int = 200) -> None:
    assert wait_until(lambda: committed(stack.db_url) >= n, timeout=90), "nothing stored"


def recovery(stack: Stack) -> float:
    """Seconds from now until the watermark covers every reading numbered until now."""
    start = time.monotonic()
    target = stack.produced()
    ok = wait_until(
        lambda: committed(stack.db_url) >= target, timeout=RECOVERY_TIMEOUT_S, interval=0.2
    )
    assert ok, f"watermark stuck at {committed(stack.db_url)} of {target}"
    return time.monotonic() - start


def finish(stack: Stack, record: list[Row], fault: str, recovered: float, note: str = "") -> Row:
    """Drain, count, record the row; fail on any loss or duplicate."""
    produced, _ = stack.drain(timeout=RECOVERY_TIMEOUT_S)
    rows, distinct = counts(stack.db_url)
    row = Row(fault, produced, rows, produced - distinct, rows - distinct, recovered, note)
    record.append(row)
    assert (row.lost, row.duplicated) == (0, 0), row
    stack.assert_each_seq_once(produced)
    return row


def stack_on(tmp: Path, broker: Broker, db_url: str, **kwargs: object) -> Stack:
    options: dict[str, object] = {
        "poll_interval_s": POLL_S,
        "batch_max": 20,
        "resend_after_s": RESEND_S,
    }
    return start_stack(tmp, broker, db_url, **{**options, **kwargs})  # type: ignore[arg-type]


# ------------------------------------------------------------------------- the database


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    # not under pytest's tmp_path: its parents are root's alone, and the server runs
    # as postgres
    workdir = Path(tempfile.mkdtemp(prefix="coldtrace-chaos-pg-"))
    try:
        c = Cluster.create(workdir)
        c.start()
        try:
            yield c
        finally:
            c.stop("immediate")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_postgresql_crash_and_restart(tmp_path, broker, cluster, watched, record):
    db_url = cluster.prepare("chaos")
    stack = stack_on(tmp_path, broker, db_url)
    watched.append(stack)
    warm(stack)
    cluster.stop("immediate")  # a crash: no checkpoint, recovery from the WAL at start
    time.sleep(15)
    cluster.start()
    finish(stack, record, "PostgreSQL crashed (stop -m immediate), down 15 s", recovery(stack))


def test_postgresql_clean_restart(tmp_path, broker, cluster, watched, record):
    db_url = cluster.prepare("chaos")
    stack = stack_on(tmp_path, broker, db_url)
    watched.append(stack)
    warm(stack)
    cluster.stop("fast")
    cluster.start()
    finish(stack, record, "PostgreSQL restarted (stop -m fast, start)", recovery(stack))


def test_database_read_only_for_a_while(
    tmp_path, broker, db_url, owner_db_url, superuser_db_url, watched, record
):
    stack = stack_on(tmp_path, broker, db_url)
    watched.append(stack)
    warm(stack)
    dbname = owner_db_url.rsplit("/", 1)[1]
    with psycopg.connect(owner_db_url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{dbname}" SET default_transaction_read_only = on')
    with psycopg.connect(superuser_db_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    time.sleep(20)
    with psycopg.connect(owner_db_url, autocommit=True) as conn:
        conn.execute("SET default_transaction_read_only = off")
        conn.execute(f'ALTER DATABASE "{dbname}" RESET default_transaction_read_only')
    recovered = recovery(stack)
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM telemetry.dead_letters").fetchone()
    assert row == (0,), "readings became dead letters while the database was read-only"
    finish(stack, record, "database read-only for 20 s", recovered)


PG_DISK_MIB = 320  # an initialised cluster with one migrated database takes ~70 MiB


@pytest.fixture
def cluster_on_small_disk() -> Iterator[tuple[Cluster, Path]]:
    """A private cluster whose whole data directory lives on a tmpfs of its own (root only)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    mount = Path(tempfile.mkdtemp(prefix="coldtrace-chaos-pgdisk-"))
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={PG_DISK_MIB}m", "tmpfs", str(mount)], check=True
    )
    c: Cluster | None = None
    try:
        c = Cluster.create(mount / "pg")
        c.start()
        yield c, mount
    finally:
        if c is not None and server_alive(c):
            c.stop("immediate")
        subprocess.run(["umount", "-l", str(mount)], check=False)
        shutil.rmtree(mount, ignore_errors=True)


def server_alive(c: Cluster) -> bool:
    """Whether the cluster answers (a PANIC on a full WAL disk ends it until restarted)."""
    try:
        with psycopg.connect(c.url(), connect_timeout=2) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


def test_full_disk_under_postgresql(tmp_path, broker, cluster_on_small_disk, watched, record):
    """The database's disk fills: ingest waits (no ack, no dead letter) and loses nothing.

    PostgreSQL answers a full disk with SQLSTATE 53100 on a table write, or a PANIC when
    the WAL itself cannot be written; either way ingest must treat it as the database
    being unavailable, never as bad messages. Space returns (and the server is started
    again by its supervisor if it stopped), and the backlog drains from the gateway's
    outbox and the broker's session.
    """
    c, mount = cluster_on_small_disk
    db_url = c.prepare("chaos")
    stack = stack_on(tmp_path, broker, db_url)
    watched.append(stack)
    warm(stack)
    junk = mount / "junk"
    fill_disk(junk, 0)
    ingest_log = stack.sup.children["ingest"].log_path
    assert wait_until(
        lambda: (
            "database unavailable" in ingest_log.read_text()
            or "cannot connect to the database" in ingest_log.read_text()
        ),
        timeout=120,
    ), "ingest never noticed the full disk"
    full_log = (c.datadir.parent / "postgres.log").read_text(errors="replace")
    how = (
        "PANIC" if "PANIC" in full_log else "No space left" if "No space left" in full_log else "?"
    )
    time.sleep(15)
    assert stack.sup.children["ingest"].running, "ingest stopped on a full database disk"
    junk.unlink()
    restarted = not server_alive(c)
    if restarted:
        c.start()  # as systemd's Restart= would, once the operator has freed space
    recovered = recovery(stack)
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT count(*) FROM telemetry.dead_letters").fetchone()
    assert row == (0,), "readings became dead letters while the database's disk was full"
    note = f"server log: {how}; " + ("server restarted after space returned" if restarted
                                     else "server stayed up")  # fmt: skip
    finish(stack, record, "full disk under PostgreSQL (tmpfs), held 15 s", recovered, note)


# ----------------------------------------------------------------------------- the broker


def test_broker_restart_with_persistence(tmp_path, broker, db_url, watched, record):
    stack = stack_on(tmp_path, broker, db_url)
    watched.append(stack)
    warm(stack)
    broker.stop()  # SIGTERM: Mosquitto saves its queues and sessions
    time.sleep(10)
    broker.start()
    finish(stack, record, "broker restarted with persistence, down 10 s", recovery(stack))


def test_broker_killed_without_persistence(tmp_path, make_broker, db_url, watched, record):
    broker = make_broker("persistence false\n", name="volatile")
    stack = stack_on(tmp_path, broker, db_url)
    watched.append(stack)
    warm(stack)
    broker.stop(kill=True)  # every queue and session is gone
    time.sleep(10)
    broker.start()
    finish(stack, record, "broker SIGKILLed, no persistence, down 10 s", recovery(stack))


# ----------------------------------------------------------------------------- ingest


def test_ingest_sigkill(tmp_path, broker, db_url, watched, record):
    stack = stack_on(tmp_path, broker, db_url)
    watched.append(stack)
    warm(stack)
    for _ in range(3):
        stack.sup.children["ingest"].kill()
        time.sleep(2)
        stack.sup.children["ingest"].start()
        warm(stack, committed(db_url) + 100)
    finish(stack, record, "ingest SIGKILLed 3 times, 2 s each", recovery(stack))


def test_two_workers_one_killed_for_good(tmp_path, broker, db_url, watched, record):
    expiry = {"COLDTRACE_INGEST_SESSION_EXPIRY_S": "10"}
    stack = stack_on(tmp_path, broker, db_url, ingest_env=expiry)
    watched.append(stack)
    stack.start_ingest("ingest-2", **expiry)
    warm(stack)
    stack.sup.children["ingest-2"].kill()  # never comes back; its session expires in 10 s
    time.sleep(15)  # the gateway goes on; until the expiry the group still counts ingest-2
    finish(
        stack, record, "2 workers, one SIGKILLed for good (session expiry 10 s)", recovery(stack)
    )


# ---------------------------------------------------------------------------- the gateway


def test_gateway_sigkill_during_a_drain(tmp_path, broker, db_url, watched, record):
    stack = stack_on(tmp_path, broker, db_url, batch_max=5)
    watched.append(stack)
    warm(stack)
    stack.sup.children["ingest"].stop()
    time.sleep(15)  # a backlog of about 1,800 readings in the outbox
    backlog_from, backlog_to = committed(db_url), stack.produced()
    stack.sup.children["ingest"].start()
    middle = (backlog_from + backlog_to) // 2
    assert wait_until(lambda: committed(db_url) >= middle, timeout=60, interval=0.05)
    stack.sup.children["gateway"].kill()
    killed_at = committed(db_url)
    time.sleep(1)
    stack.sup.children["gateway"].start()
    note = f"killed at watermark {killed_at} of a backlog {backlog_from}..{backlog_to}"
    finish(stack, record, "gateway SIGKILLed mid-drain", recovery(stack), note)


def test_gateway_cut_off_from_the_broker(tmp_path, broker, db_url, watched, record):
    proxy = CuttableProxy(broker.port)
    proxy.start()
    try:
        mqtt = {"port": proxy.port, "keepalive_s": 5, "reconnect_max_s": 5}
        stack = stack_on(tmp_path, broker, db_url, gateway={"mqtt": mqtt})
        watched.append(stack)
        warm(stack)
        proxy.cut()  # packets dropped silently; only keepalives can tell
        time.sleep(120)
        proxy.heal()
        finish(stack, record, "gateway cut off from the broker for 120 s", recovery(stack))
    finally:
        proxy.stop()


TMPFS_MIB = 24
ROOM_BYTES = 96 * 1024  # free space past the outbox's reserve when the disk fills


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MiB tmpfs of this test's own (root only)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_MIB}m", "tmpfs", str(mount)],
        check=True,
    )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill_disk(path: Path, leave: int) -> None:
    """Write ``path`` until its filesystem has only ``leave`` bytes free."""
    with path.open("wb") as f:
        while True:
            st = os.statvfs(path.parent)
            free = st.f_bavail * st.f_frsize
            if free <= leave:
                return
            f.write(b"\0" * min(1024 * 1024, free - leave))
            f.flush()
            os.fsync(f.fileno())


def test_full_disk_under_the_outbox(tmp_path, broker, db_url, small_disk, watched, record):
    reserve = 4 * 1024 * 1024
    outbox = {"path": str(small_disk / "outbox.sqlite"), "min_free_disk_bytes": reserve}
    stack = stack_on(tmp_path, broker, db_url, gateway={"outbox": outbox})
    watched.append(stack)
    warm(stack)
    gateway_log = stack.sup.children["gateway"].log_path
    stack.sup.children["ingest"].stop()  # nothing is confirmed: the outbox must hold it all
    junk = small_disk / "junk"
    fill_disk(junk, reserve + ROOM_BYTES)
    assert wait_until(lambda: "refusing new readings" in gateway_log.read_text(), timeout=120)
    time.sleep(5)
    assert stack.sup.children["gateway"].running, "the gateway stopped on a full disk"
    junk.unlink()  # space returns, ingest comes back
    stack.sup.children["ingest"].start()
    recovered = recovery(stack)
    assert wait_until(lambda: "accepts readings again" in gateway_log.read_text(), timeout=30)
    refused = re.findall(r"(\d+) items refused since", gateway_log.read_text())
    note = f"{refused[-1]} new readings refused while full: logged, counted in the state message"
    finish(stack, record, "full disk under the outbox (tmpfs), ingest away", recovered, note)


# ---------------------------------------------------------------------------- the notifier

EVENTS = 60
DETAIL = {
    "sensor": "fridge-a", "quantity": "temperature", "unit": "Cel", "peak": 9.5,
    "duration_s": 1805, "late": False, "started_at": "2025-11-24T16:00:00+00:00",
    "limits": {"low": 2.0, "high": 8.0},
}  # fmt: skip


class SlowCatcher(MailCatcher):
    """A mail server that takes 50 ms per message, so a kill lands mid-conversation."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


def test_notifier_killed_mid_delivery(tmp_path, db_url, record):
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO telemetry.recipients (name, email, site)"
            " VALUES ('Li Wei', 'li.wei@example.com', 'plant-1')"
        )
        conn.execute("INSERT INTO telemetry.notify_routes (channel, role) VALUES ('email', 'qa')")
        for _ in range(EVENTS):
            (alert,) = conn.execute(
                "INSERT INTO telemetry.alerts (kind, severity, site, started_at, peak,"
                " duration_s, summary) VALUES ('excursion', 'critical', 'plant-1', now(), 9.5,"
                " 1800, 'too warm') RETURNING id"
            ).fetchone()
            conn.execute(  # as the evaluator does: through ingest's function
                "SELECT telemetry.alert_append_event(%s, 'opened', now(), NULL, %s)",
                (alert, json.dumps(DETAIL)),
            )
    mail = SlowCatcher(tmp_path / "mail")
    mail.start()
    env = {
        "COLDTRACE_DATABASE_URL": db_url,
        "COLDTRACE_NOTIFY_SMTP_HOST": "127.0.0.1",
        "COLDTRACE_NOTIFY_SMTP_PORT": str(mail.port),
        "COLDTRACE_NOTIFY_SEND_TIMEOUT_S": "2",
        "COLDTRACE_NOTIFY_LEASE_S": "3",
        "COLDTRACE_NOTIFY_POLL_INTERVAL_S": "0.2",
        "COLDTRACE_NOTIFY_BACKOFF_BASE_S": "0.5",
        "COLDTRACE_NOTIFY_BATCH_SIZE": "1",  # one at a time, so kills land mid-stream
        "COLDTRACE_NOTIFY_RUN_ALERT_JOBS": "false",
    }
    notifier = Child(
        "notifier", coldtrace_args("notifier", "--plain-logs"), tmp_path / "n.log", env
    )

    def sent() -> int:
        with psycopg.connect(db_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM telemetry.notify_deliveries WHERE status = 'sent'"
            ).fetchone()
        return int(row[0]) if row else 0

    try:
        notifier.start()
        kills = 0
        for _ in range(3):  # SIGKILL while it delivers: just as the server took a message
            before = len(mail.messages)
            if not wait_until(lambda b=before: len(mail.messages) >= b + 3, timeout=30):
                break
            notifier.kill()
            kills += 1
            time.sleep(0.3)
            notifier.start()
        assert kills == 3, "the notifier delivered too fast to be killed mid-delivery"
        start = time.monotonic()
        assert wait_until(lambda: sent() == EVENTS, timeout=120), (tmp_path / "n.log").read_text()
        recovered = time.monotonic() - start
        time.sleep(1)  # room for a (wrong) further send
    finally:
        notifier.stop()
        mail.stop()
    got = [message_from_bytes(m, policy=default) for m in mail.messages]
    events = {str(m["X-ColdTrace-Event"]) for m in got}
    message_ids = {str(m["Message-ID"]) for m in got}
    resends = len(got) - len(message_ids)
    row = Row(
        f"notifier SIGKILLed {kills} times mid-delivery (e-mails, not readings)",
        EVENTS,
        len(events),
        EVENTS - len(events),
        len(message_ids) - len(events),
        recovered,
        f"{resends} re-sent with the same Message-ID (killed after DATA, before the 250)",
    )
    record.append(row)
    assert (row.lost, row.duplicated) == (0, 0), row
