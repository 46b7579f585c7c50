"""Ingest throughput: MQTT → one `coldtrace ingest` worker → PostgreSQL, against raw COPY.

Run from the repository root with the project's Python::

    .venv/bin/python bench/ingest.py [--readings 1000000] [--batch 1000]

In one run, on a database of its own (created and dropped here), it measures

1. **end to end**: our Mosquitto (project config), ONE ingest worker as a subprocess
   (``coldtrace ingest``), and a publishing process that sends N pre-encoded readings
   as ``ReadingBatch`` payloads at QoS 1. The clock runs from the first publish until
   the committed watermarks in ``telemetry.gateway_streams`` account for all N readings
   (they move in the same transaction as the rows, so "watermark reached" = "stored").
2. **raw COPY**: the same N rows written straight into ``telemetry.readings`` with
   psycopg binary COPY, one COPY per ``--copy-chunk`` rows, each committed.

and prints both rates, their ratio (target ≥ 0.6, issue 13), that nothing was lost, and where
the end-to-end time went: the worker's own flush histogram (Prometheus), a sampling of
the worker's PostgreSQL session (``pg_stat_activity``) and the CPU time of every
process involved. It cleans up its broker, worker, publisher and database on success,
error and Ctrl-C. Results and their reading: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing as mp
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path

# This file is named like the ingest package; run as a script, its own directory comes
# first on sys.path and would shadow the package. Drop it before importing the project.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import paho.mqtt.client as mqtt  # noqa: E402
import psutil  # noqa: E402
import psycopg  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from coldtrace.broker import Broker, free_port  # noqa: E402
from coldtrace.devices import Role  # noqa: E402
from db import migrate  # noqa: E402
from db.settings import DatabaseSettings  # noqa: E402
from ingest.evaluator import APPLICATION_NAME as EVALUATOR_APP  # noqa: E402
from ingest.settings import IngestSettings  # noqa: E402
from telemetry.codec import encode  # noqa: E402
from telemetry.payloads import VERSION, Reading, ReadingBatch  # noqa: E402
from telemetry.topics import Kind, Topic  # noqa: E402

ADMIN_URL = os.environ.get(
    "COLDTRACE_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SITE = "bench-site"
APP_NAME = "coldtrace-bench"  # our own DB sessions, so the worker's can be told apart
MINUTE_MS = 60_000
RAW_COPY = (
    "COPY telemetry.readings (time, sensor_id, value, flags, gateway_seq) "
    "FROM STDIN (FORMAT BINARY)"
)


TARGET = 0.6  # issue 13: one worker at 0.6 x raw COPY


class BenchError(RuntimeError):
    """The benchmark could not complete; the message says what went wrong."""


# ---------------------------------------------------------------------------- workload


@dataclass(frozen=True)
class Workload:
    """N readings from ``gateways`` x ``sensors`` one-minute loggers, ``batch`` per message.

    Gateway g sends readings i = 0.. of its own sensors round-robin: reading i is sensor
    ``i % sensors`` at minute ``i // sensors``, so (sensor, time) is unique. Sequence
    numbers 1..sensors of each gateway are the warm-up batch; the measured readings follow.
    """

    readings: int
    batch: int
    gateways: int
    sensors: int
    end_ms: int  # every reading is older than this (the bench passes the current minute)
    # 40 steps of 0.1 °C from 4.0: up to 7.9 °C, into the default profile's pre-alarm band
    # (above 7.5), so every batch of every sensor is evaluated in full; 30 (--in-band):
    # up to 6.9 °C, so evaluation skips every sensor after one vectorised query
    steps: int = 40

    def gateway(self, g: int) -> str:
        return f"bench-gw-{g:02d}"

    def sensor(self, g: int, s: int) -> str:
        return f"bench-gw-{g:02d}-t{s:02d}"

    def count(self, g: int) -> int:
        """Measured readings of gateway g."""
        base, extra = divmod(self.readings, self.gateways)
        return base + (1 if g < extra else 0)

    @property
    def start_ms(self) -> int:
        minutes = math.ceil(self.count(0) / self.sensors)
        return self.end_ms - (minutes + 1) * MINUTE_MS

    def row(self, g: int, i: int) -> tuple[int, int, float, int]:
        """(sensor index, time ms, value, seq) of measured reading i of gateway g."""
        s, minute = i % self.sensors, i // self.sensors
        value = round(4.0 + ((g * 31 + s * 7 + minute) % self.steps) / 10, 1)
        return s, self.start_ms + minute * MINUTE_MS, value, self.sensors + i + 1

    def message(self, g: int, first: int, n: int) -> tuple[str, bytes]:
        gw = self.gateway(g)
        items = []
        for i in range(first, first + n):
            s, t, value, _seq = self.row(g, i)
            items.append(
                Reading(t=t, sensor=self.sensor(g, s), qty="temperature", value=value, unit="Cel")
            )
        seq0 = self.sensors + first + 1
        body = ReadingBatch(
            v=VERSION,
            gateway=gw,
            stream="s1",
            seq=(seq0, seq0 + n - 1),
            sent=self.end_ms,
            items=items,
        )
        return str(Topic.build(SITE, gw, Kind.READINGS)), encode(body)

    def messages(self) -> list[tuple[str, bytes]]:
        """All measured payloads, gateways interleaved, each gateway's in seq order."""
        per_gw = [
            [
                self.message(g, i, min(self.batch, self.count(g) - i))
                for i in range(0, self.count(g), self.batch)
            ]
            for g in range(self.gateways)
        ]
        out = []
        for k in range(max(len(m) for m in per_gw)):
            out.extend(m[k] for m in per_gw if k < len(m))
        return out

    def warmup(self) -> list[tuple[str, bytes]]:
        """One reading per sensor (seq 1..sensors), a minute before the measured range."""
        out = []
        t = self.start_ms - MINUTE_MS
        for g in range(self.gateways):
            gw = self.gateway(g)
            items = [
                Reading(t=t, sensor=self.sensor(g, s), qty="temperature", value=5.0, unit="Cel")
                for s in range(self.sensors)
            ]
            body = ReadingBatch(
                v=VERSION,
                gateway=gw,
                stream="s1",
                seq=(1, self.sensors),
                sent=self.end_ms,
                items=items,
            )
            out.append((str(Topic.build(SITE, gw, Kind.READINGS)), encode(body)))
        return out

    @property
    def warmup_rows(self) -> int:
        return self.gateways * self.sensors

    def copy_rows(self, ids: dict[str, int]) -> list[tuple[datetime, int, float, int, int]]:
        """The measured readings as rows of telemetry.readings."""
        rows = []
        for g in range(self.gateways):
            sensor_ids = [ids[self.sensor(g, s)] for s in range(self.sensors)]
            for i in range(self.count(g)):
                s, t, value, seq = self.row(g, i)
                rows.append((datetime.fromtimestamp(t / 1000, UTC), sensor_ids[s], value, 0, seq))
        return rows


# ---------------------------------------------------------------------------- publisher


Logins = dict[str, tuple[str, str]]  # gateway -> (username, password) of its broker account


def publisher_main(
    port: int,
    logins: Logins,
    work: Workload,
    out: Queue,
    connect: MpEvent,
    go: MpEvent,
    done: MpEvent,
) -> None:
    """Child process: pre-encode, connect on ``connect``, report ready, publish on ``go``.

    It connects only after the parent's warm-up: both log in with the gateways' accounts,
    and a second connection of one account closes the first.

    The broker gives each gateway account one connection and lets it publish on its own
    topics only (docs/mqtt.md), so this process holds one paho client per gateway, each
    with its own network thread, and publishes every message through its gateway's.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    try:
        payloads = work.messages()
        connect.wait()
        clients: dict[str, mqtt.Client] = {}
        for g in range(work.gateways):
            gw = work.gateway(g)
            connected = threading.Event()
            c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=gw)
            c.username_pw_set(*logins[gw])
            c.on_connect = lambda *_, ev=connected: ev.set()  # type: ignore[misc]
            c.max_inflight_messages_set(min(len(payloads) + 1, 65_535))  # never the bottleneck
            c.max_queued_messages_set(0)
            c.connect("127.0.0.1", port)
            c.loop_start()
            if not connected.wait(10):
                out.put(("error", f"publisher {gw} got no CONNACK from the broker within 10 s"))
                return
            clients[gw] = c
        out.put(("ready", len(payloads), sum(len(p) for _, p in payloads)))
        go.wait()
        t0 = time.monotonic()
        infos = [
            clients[Topic.parse(topic).gateway].publish(topic, data, qos=1)
            for topic, data in payloads
        ]
        t_sent = time.monotonic()
        for info in infos:  # PUBACKs; stop waiting as soon as the parent says so
            while not info.is_published():
                if done.wait(0.01):
                    return
        out.put(("published", t0, t_sent, time.monotonic()))
        done.wait(600)
        for c in clients.values():
            c.disconnect()
            c.loop_stop()
    except Exception as err:
        out.put(("error", repr(err)))


# ---------------------------------------------------------------------------- observation


@dataclass
class Cpu:
    """CPU seconds (user + system) of the processes involved, at one instant."""

    procs: dict[str, float] = field(default_factory=dict)
    machine_busy: float = 0.0
    steal: float = 0.0  # time the hypervisor gave our virtual CPUs to someone else

    @classmethod
    def take(cls, procs: dict[str, int | None], *, split_threads: int | None = None) -> Cpu:
        cpu = cls()
        for name, pid in procs.items():
            if pid is None:
                continue
            try:
                p = psutil.Process(pid)
                if pid == split_threads:
                    threads = p.threads()
                    main = sum(t.user_time + t.system_time for t in threads if t.id == pid)
                    rest = sum(t.user_time + t.system_time for t in threads if t.id != pid)
                    cpu.procs[f"{name}: main thread"] = main
                    cpu.procs[f"{name}: other threads (paho, writer, evaluator)"] = rest
                else:
                    times = p.cpu_times()
                    cpu.procs[name] = times.user + times.system
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        t = psutil.cpu_times()  # guest time is already inside user; steal is not ours
        cpu.machine_busy = t.user + t.nice + t.system + t.irq + t.softirq
        cpu.steal = t.steal
        return cpu

    def since(self, before: Cpu) -> Cpu:
        return Cpu(
            {k: v - before.procs[k] for k, v in self.procs.items() if k in before.procs},
            self.machine_busy - before.machine_busy,
            self.steal - before.steal,
        )


def scrape(port: int) -> dict[str, float]:
    """The worker's Prometheus samples, by sample name."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {
        s.name: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.labels or s.labels.get("le") is None
    }


def session_state(state: str | None, wait_event: str | None, query: str) -> str:
    """What the worker's PostgreSQL session is doing, from one pg_stat_activity sample."""
    if state == "idle":
        return "idle: no transaction open (worker collecting MQTT, decoding, acking)"
    if state == "idle in transaction":
        return "in transaction, waiting for the worker's next statement"
    q = query.lstrip()
    if q.startswith("COPY telemetry.readings"):
        if wait_event == "ClientRead":
            return "COPY into readings, server waiting for rows from the worker"
        return "COPY into readings, server busy (or waiting for a CPU)"
    if q.startswith("COPY"):
        return "COPY to staging (a batch with a duplicate)"
    if q.startswith("INSERT INTO telemetry.readings"):
        return "insert-select from staging with ON CONFLICT (a batch with a duplicate)"
    if q.startswith("COMMIT"):
        return "COMMIT (WAL flush)"
    if "commit_seq_ranges" in q:
        return "watermark function"
    return "other statements (BEGIN, gateways upsert, …)"


# ---------------------------------------------------------------------------- run


@dataclass
class EndToEnd:
    seconds: float
    evaluated_seconds: float  # until no touched range waited for excursion evaluation
    stored: int
    dead_letters: int
    duplicates: float
    publish_seconds: float
    puback_seconds: float
    messages: int
    payload_bytes: int
    flushes: float
    flush_seconds: float
    flushed_messages: float
    states: Counter[str]
    cpu: Cpu
    worker_settings: IngestSettings


@dataclass
class RawCopy:
    seconds: float
    stored: int
    cpu: Cpu


def connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True, application_name=APP_NAME)


def watermark(conn: psycopg.Connection) -> int:
    row = conn.execute(
        "SELECT coalesce(sum(committed_seq), 0) FROM telemetry.gateway_streams "
        "WHERE gateway_id LIKE 'bench-gw-%'"
    ).fetchone()
    return int(row[0]) if row else 0


def wait_for_watermark(
    conn: psycopg.Connection, target: int, worker: subprocess.Popen[bytes], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while watermark(conn) < target:
        if worker.poll() is not None:
            raise BenchError(f"the ingest worker exited with {worker.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"watermark did not reach {target} within {timeout:.0f} s")
        time.sleep(0.05)


def warm_up(
    port: int,
    logins: Logins,
    work: Workload,
    conn: psycopg.Connection,
    worker: subprocess.Popen[bytes],
) -> None:
    """Publish the warm-up batches until the worker (once subscribed) has stored them.

    Until the worker's persistent session exists the broker drops what is published, so
    this re-publishes (idempotent) every two seconds; it also puts every bench sensor in
    the worker's sensor cache, as in steady operation.
    """
    clients = []
    for g in range(work.gateways):
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=work.gateway(g))
        c.username_pw_set(*logins[work.gateway(g)])
        c.connect("127.0.0.1", port)
        c.loop_start()
        clients.append(c)
    try:
        # paho refuses a QoS 1 publish before its CONNACK: wait for every connection
        connected = time.monotonic() + 10
        while not all(c.is_connected() for c in clients) and time.monotonic() < connected:
            time.sleep(0.02)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for c, (topic, data) in zip(clients, work.warmup(), strict=True):
                sent = c.publish(topic, data, qos=1)
                if sent.rc != mqtt.MQTT_ERR_SUCCESS:
                    raise BenchError(f"publishing the warm-up failed: {mqtt.error_string(sent.rc)}")
                sent.wait_for_publish(10)
            with contextlib.suppress(TimeoutError):
                wait_for_watermark(conn, work.warmup_rows, worker, timeout=2)
                return
        raise BenchError("the ingest worker stored nothing within 60 s of warm-up")
    finally:
        for c in clients:
            c.disconnect()
            c.loop_stop()


def worker_backends(conn: psycopg.Connection) -> tuple[int, int | None]:
    """PIDs of the worker's PostgreSQL sessions: the writer's and the evaluator's."""
    rows = conn.execute(
        "SELECT pid, application_name FROM pg_stat_activity WHERE datname = current_database() "
        "AND backend_type = 'client backend' AND application_name <> %s",
        (APP_NAME,),
    ).fetchall()
    writers = [int(pid) for pid, name in rows if name != EVALUATOR_APP]
    evaluators = [int(pid) for pid, name in rows if name == EVALUATOR_APP]
    if len(writers) != 1 or len(evaluators) > 1:
        raise BenchError(f"expected one worker session and one evaluator, found {rows}")
    return writers[0], (evaluators[0] if evaluators else None)


def wait_evaluated(conn: psycopg.Connection, timeout: float) -> float:
    """Monotonic time at which no touched range waits for excursion evaluation."""
    deadline = time.monotonic() + timeout
    while conn.execute("SELECT count(*) FROM telemetry.eval_pending").fetchone()[0]:
        if time.monotonic() > deadline:
            raise BenchError(f"ranges still waiting for evaluation after {timeout:.0f} s")
        time.sleep(0.02)
    return time.monotonic()


@dataclass
class Services:
    """What the end-to-end run started; the caller's exit stack stops them all."""

    broker: Broker
    worker: subprocess.Popen[bytes]
    metrics_port: int
    publisher: mp.process.BaseProcess
    out: Queue
    connect: MpEvent
    go: MpEvent
    logins: Logins
    more_workers: list[subprocess.Popen[bytes]] = field(default_factory=list)


def start_worker(
    broker: Broker,
    db_url: str,
    tmp: Path,
    stack: contextlib.ExitStack,
    account: str,
    metrics_port: int | None,
) -> subprocess.Popen[bytes]:
    """One `coldtrace ingest` process logged in as ingest account ``account``."""
    log_path = tmp / f"{account}.log"
    log_file = stack.enter_context(log_path.open("wb"))
    coldtrace = Path(sys.executable).parent / "coldtrace"
    metrics = ["--metrics-port", str(metrics_port)] if metrics_port is not None else []
    worker = subprocess.Popen(
        [
            str(coldtrace),
            "ingest",
            "--mqtt-port",
            str(broker.port),
            *metrics,
            "--plain-logs",
            "--log-level",
            "WARNING",
        ],
        env={
            **os.environ,
            **broker.service_env(Role.INGEST, account),
            "COLDTRACE_DATABASE_URL": db_url,
        },
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    stack.callback(stop_process, worker, log_path)
    return worker


def start_services(
    work: Workload, db_url: str, tmp: Path, stack: contextlib.ExitStack, workers: int = 1
) -> Services:
    """Our Mosquitto, ``workers`` `coldtrace ingest` workers and the publishing process.

    Every worker has an ingest account of its own (an account is one connection), all
    in the same shared-subscription group; the first one serves its metrics.
    """
    broker = Broker(workdir=tmp / "mosquitto")
    broker.start()
    stack.callback(broker.stop)
    logins: Logins = {}
    for g in range(work.gateways):
        creds = broker.gateway_credentials(SITE, work.gateway(g))
        logins[work.gateway(g)] = (creds.username, creds.password)

    metrics_port = free_port()
    worker = start_worker(broker, db_url, tmp, stack, "ingest", metrics_port)
    more = [
        start_worker(broker, db_url, tmp, stack, f"ingest-{i}", None) for i in range(2, workers + 1)
    ]

    ctx = mp.get_context("spawn")
    out: Queue = ctx.Queue()
    connect, go, done = ctx.Event(), ctx.Event(), ctx.Event()
    publisher = ctx.Process(
        target=publisher_main,
        args=(broker.port, logins, work, out, connect, go, done),
        name="bench-publisher",
    )
    publisher.start()
    stack.callback(stop_publisher, publisher, done)
    return Services(broker, worker, metrics_port, publisher, out, connect, go, logins, more)


def from_publisher(svc: Services, kind: str) -> tuple[object, ...]:
    msg = svc.out.get(timeout=600)
    if msg[0] != kind:
        raise BenchError(f"publisher failed: {msg[1]}")
    return msg[1:]


SAMPLE_SQL = (
    "SELECT w.wm, a.state, a.wait_event, left(a.query, 60) FROM "
    "(SELECT coalesce(sum(committed_seq), 0) AS wm FROM telemetry.gateway_streams "
    " WHERE gateway_id LIKE 'bench-gw-%%') AS w "
    "LEFT JOIN pg_stat_activity AS a ON a.pid = %s"
)


def poll_until_stored(
    args: argparse.Namespace, conn: psycopg.Connection, svc: Services, backend: int, target: int
) -> tuple[float, Counter[str]]:
    """Sample the worker's DB session until the watermarks reach ``target``; return when."""
    states: Counter[str] = Counter()
    last_progress = last_change = time.monotonic()
    last_wm = 0
    while True:
        wm, state, wait_event, query = conn.execute(SAMPLE_SQL, (backend,)).fetchone()
        now = time.monotonic()
        if state is not None:
            states[session_state(state, wait_event, query or "")] += 1
        if wm >= target:
            return now, states
        if wm != last_wm:
            last_wm, last_change = wm, now
        if svc.worker.poll() is not None:
            raise BenchError(f"the ingest worker exited with {svc.worker.returncode}")
        if now - last_change > args.stall_timeout:
            raise BenchError(f"no progress for {args.stall_timeout:.0f} s at watermark {wm:,}")
        if now - last_progress >= 5:
            print(f"    {wm:>12,} of {target:,} committed", flush=True)
            last_progress = now
        time.sleep(args.sample_ms / 1000)


def settled_metrics(port: int, before: dict[str, float], messages: int) -> dict[str, float]:
    """The worker's metrics once its last flush is counted (it counts after commit and ack)."""
    deadline = time.monotonic() + 10
    name = "coldtrace_ingest_messages_total"
    while True:
        after = scrape(port)
        if after[name] - before[name] >= messages or time.monotonic() > deadline:
            return after
        time.sleep(0.05)


def end_to_end(
    args: argparse.Namespace, work: Workload, db_url: str, tmp: Path, stack: contextlib.ExitStack
) -> EndToEnd:
    svc = start_services(work, db_url, tmp, stack)
    conn = stack.enter_context(connect(db_url))
    print("  waiting for the worker to subscribe (warm-up batch) …", flush=True)
    warm_up(svc.broker.port, svc.logins, work, conn, svc.worker)
    svc.connect.set()  # the warm-up's connections are closed: the publisher's turn
    backend, evaluator = worker_backends(conn)
    print("  encoding payloads in the publisher …", flush=True)
    n_messages, n_bytes = from_publisher(svc, "ready")

    procs: dict[str, int | None] = {
        "ingest worker": svc.worker.pid,
        "PostgreSQL backend of the worker": backend,
        "PostgreSQL backend of the worker's evaluator": evaluator,
        "Mosquitto": svc.broker.process.pid if svc.broker.process else None,
        "publisher": svc.publisher.pid,
        "this script (polling)": os.getpid(),
    }
    conn.execute("CHECKPOINT")
    m0 = scrape(svc.metrics_port)
    cpu0 = Cpu.take(procs, split_threads=svc.worker.pid)
    print(f"  publishing {work.readings:,} readings in {n_messages:,} messages …", flush=True)
    svc.go.set()
    t_end, states = poll_until_stored(args, conn, svc, backend, work.warmup_rows + work.readings)
    t_evaluated = wait_evaluated(conn, timeout=300)
    cpu = Cpu.take(procs, split_threads=svc.worker.pid).since(cpu0)
    m1 = settled_metrics(svc.metrics_port, m0, n_messages)
    t0, t_sent, t_acked = from_publisher(svc, "published")

    readings = conn.execute("SELECT count(*) FROM telemetry.readings").fetchone()[0]
    dead = conn.execute("SELECT count(*) FROM telemetry.dead_letters").fetchone()[0]

    def delta(name: str) -> float:
        return m1.get(name, 0.0) - m0.get(name, 0.0)

    return EndToEnd(
        seconds=t_end - t0,
        evaluated_seconds=t_evaluated - t0,
        stored=readings - work.warmup_rows,
        dead_letters=dead,
        duplicates=delta("coldtrace_ingest_readings_duplicate_total"),
        publish_seconds=t_sent - t0,
        puback_seconds=t_acked - t0,
        messages=n_messages,
        payload_bytes=n_bytes,
        flushes=delta("coldtrace_ingest_flush_seconds_count"),
        flush_seconds=delta("coldtrace_ingest_flush_seconds_sum"),
        flushed_messages=delta("coldtrace_ingest_messages_total"),
        states=states,
        cpu=cpu,
        worker_settings=IngestSettings(),
    )


def raw_copy(args: argparse.Namespace, work: Workload, db_url: str) -> RawCopy:
    with connect(db_url) as conn:
        ids = dict(
            conn.execute(
                "SELECT uid, id FROM telemetry.sensors WHERE uid LIKE 'bench-gw-%'"
            ).fetchall()
        )
        # Readings are immutable (migration 0018); the benchmark's superuser sets the
        # guard aside for this session to start the raw COPY from an empty table.
        conn.execute("SET session_replication_role = replica")
        conn.execute("TRUNCATE telemetry.readings")
        conn.execute("RESET session_replication_role")
        conn.execute("CHECKPOINT")
        rows = work.copy_rows(ids)
        conn.autocommit = False
        me = {
            "this script (COPY client)": os.getpid(),
            "PostgreSQL backend of the COPY": conn.info.backend_pid,
        }
        cpu0 = Cpu.take(me)
        t0 = time.monotonic()
        with conn.cursor() as cur:
            for start in range(0, len(rows), args.copy_chunk):
                with cur.copy(RAW_COPY) as copy:
                    copy.set_types(["timestamptz", "int4", "float8", "int4", "int8"])
                    for row in rows[start : start + args.copy_chunk]:
                        copy.write_row(row)
                conn.commit()
        seconds = time.monotonic() - t0
        cpu = Cpu.take(me).since(cpu0)
        conn.autocommit = True
        stored = conn.execute("SELECT count(*) FROM telemetry.readings").fetchone()[0]
    return RawCopy(seconds, stored, cpu)


def stop_process(proc: subprocess.Popen[bytes], log_path: Path) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    elif proc.returncode not in (0, -signal.SIGTERM, -signal.SIGINT):
        tail = log_path.read_text(errors="replace").splitlines()[-20:]
        print("ingest worker log (last lines):\n  " + "\n  ".join(tail), file=sys.stderr)


def stop_publisher(proc: mp.process.BaseProcess, done: MpEvent) -> None:
    done.set()
    proc.join(5)
    if proc.is_alive():
        proc.terminate()
        proc.join(5)


# ---------------------------------------------------------------------------- report


def machine() -> dict[str, str]:
    with connect(ADMIN_URL) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
        sc = conn.execute("SHOW synchronous_commit").fetchone()[0]
    mosq = subprocess.run(
        [shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-h"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()
    return {
        "cpus": str(len(os.sched_getaffinity(0))),
        "model": cpu_model(),
        "postgres": f"PostgreSQL {pg.split()[0]} (synchronous_commit {sc})",
        "mosquitto": mosq[0].replace("mosquitto version ", "Mosquitto ") if mosq else "Mosquitto ?",
        "python": f"Python {platform.python_version()}, paho-mqtt {version('paho-mqtt')}, "
        f"psycopg {version('psycopg')}",
    }


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _cpu_lines(cpu: Cpu, wall: float, readings: int) -> None:
    for name, sec in sorted(cpu.procs.items(), key=lambda kv: -kv[1]):
        print(f"  {name:<50}{sec:7.2f} s {sec / wall:6.0%} {sec / readings * 1e6:7.1f} µs")


def report(
    args: argparse.Namespace, work: Workload, ctx: dict[str, str], e2e: EndToEnd, raw: RawCopy
) -> bool:
    """Print the results; True if nothing was lost."""
    s = e2e.worker_settings
    e2e_rate, raw_rate = work.readings / e2e.seconds, work.readings / raw.seconds
    ratio = e2e_rate / raw_rate
    print(f"\nColdTrace ingest benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine   {ctx['cpus']} CPUs ({ctx['model']}); {ctx['postgres']}; {ctx['mosquitto']}")
    print(f"          {ctx['python']}")
    print(
        f"workload  {work.readings:,} readings, {work.batch:,} per message "
        f"({e2e.messages:,} messages, {e2e.payload_bytes / 1e6:.0f} MB JSON, QoS 1), "
        f"{work.gateways} gateways x {work.sensors} sensors, one reading a minute, "
        f"4.0-{4 + (work.steps - 1) / 10:.1f} °C"
    )
    print(
        f"settings  one worker, max_messages {s.max_messages}, max_delay_ms {s.max_delay_ms}; "
        f"raw COPY {args.copy_chunk:,} rows per COPY + commit\n"
    )
    table = [
        ("end to end (MQTT → ingest → PG)", e2e.stored, e2e.seconds, e2e_rate),
        ("raw COPY into telemetry.readings", raw.stored, raw.seconds, raw_rate),
    ]
    print(f"  {'':<36}{'readings':>12}{'seconds':>10}{'readings/s':>13}")
    for label, n, sec, rate in table:
        print(f"  {label:<36}{n:>12,}{sec:>10.2f}{rate:>13,.0f}")
    verdict = "meets" if ratio >= TARGET else "BELOW"
    print(f"  {'ratio end to end / raw COPY':<58}{ratio:>13.2f}   ({verdict} the {TARGET} target)")
    print(f"  machine load average (1, 5, 15 min) at the end: {ctx['load']}\n")

    lost = work.readings - e2e.stored
    print(
        f"  stored end to end: {e2e.stored:,} of {work.readings:,} "
        f"({'nothing lost' if lost == 0 else f'{lost:,} LOST'}; "
        f"{e2e.duplicates:,.0f} duplicates absorbed, {e2e.dead_letters} dead letters)"
    )
    print(
        f"  publisher: every message handed to paho after {e2e.publish_seconds:.2f} s, "
        f"PUBACKed by the broker after {e2e.puback_seconds:.2f} s"
    )
    print(
        f"  excursion evaluation of every touched range done {e2e.evaluated_seconds:.2f} s "
        f"after the first publish ({work.readings / e2e.evaluated_seconds:,.0f} readings/s "
        "stored and evaluated)\n"
    )

    wall = e2e.seconds
    flushes = e2e.flushes or 1
    between = max(wall - e2e.flush_seconds, 0.0)
    print(f"where the end-to-end time went ({wall:.1f} s wall)")
    print(
        f"  worker inside flushes (decode, DB, ack)  {e2e.flush_seconds:7.2f} s "
        f"{e2e.flush_seconds / wall:5.0%}   {e2e.flushes:.0f} flushes of "
        f"{e2e.flushed_messages / flushes:.0f} messages, {e2e.flush_seconds / flushes:.2f} s each"
    )
    print(f"  worker between flushes (awaiting MQTT)   {between:7.2f} s {between / wall:5.0%}")
    total = sum(e2e.states.values()) or 1
    print(f"\nthe worker's PostgreSQL session ({total:,} samples of pg_stat_activity)")
    for name, n in e2e.states.most_common():
        print(f"  {name:<72}{n / total:5.0%}")
    print(f"\nCPU time during the end-to-end run{'':<18}seconds   CPUs  per reading")
    _cpu_lines(e2e.cpu, wall, work.readings)
    others = e2e.cpu.machine_busy - sum(e2e.cpu.procs.values())
    other_rows = [
        ("other processes on the machine", others),
        (f"whole machine ({ctx['cpus']} CPUs)", e2e.cpu.machine_busy),
        ("stolen by the hypervisor", e2e.cpu.steal),
    ]
    for name, sec in other_rows:
        print(f"  {name:<50}{sec:7.2f} s {sec / wall:6.0%}")
    print(f"CPU time during the raw COPY ({raw.seconds:.1f} s)")
    _cpu_lines(raw.cpu, raw.seconds, work.readings)
    return lost == 0 and raw.stored == work.readings


def _terminate(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up exactly like Ctrl-C


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--readings", type=int, default=1_000_000, help="readings to ingest (N)")
    p.add_argument("--batch", type=int, default=1_000, help="readings per MQTT message")
    p.add_argument("--gateways", type=int, default=10, help="publishing gateways")
    p.add_argument("--sensors", type=int, default=10, help="sensors per gateway")
    p.add_argument("--copy-chunk", type=int, default=100_000, help="rows per raw COPY + commit")
    p.add_argument(
        "--in-band",
        action="store_true",
        help="values 4.0-6.9 °C, inside the pre-alarm band: evaluation skips the sensors",
    )
    p.add_argument("--sample-ms", type=float, default=25, help="pg_stat_activity sampling period")
    p.add_argument(
        "--stall-timeout", type=float, default=60, help="give up after so long without progress"
    )
    args = p.parse_args()
    if min(args.gateways, args.sensors, args.copy_chunk) < 1 or args.readings < args.gateways:
        p.error("need --gateways, --sensors, --copy-chunk >= 1 and --readings >= --gateways")
    if not 1 <= args.batch <= 10_000:
        p.error("--batch must be 1..10000 (the codec's limit per message)")

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with it ignored
    now_min = int(time.time() * 1000) // MINUTE_MS * MINUTE_MS
    steps = 30 if args.in_band else 40
    work = Workload(
        args.readings, args.batch, args.gateways, args.sensors, end_ms=now_min, steps=steps
    )
    ctx = machine()
    name = f"ct_bench_{uuid.uuid4().hex[:10]}"
    db = DatabaseSettings(url=f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}")
    tmp = Path(tempfile.mkdtemp(prefix="coldtrace-bench-"))
    keep_tmp = False
    try:
        with contextlib.ExitStack() as database:
            database.callback(migrate.drop_database, db.url)
            print(f"database {name}: migrating …", flush=True)
            migrate.upgrade(db.url, db.sqlalchemy_url)
            print("end to end:", flush=True)
            with contextlib.ExitStack() as services:  # broker, worker, publisher
                e2e = end_to_end(args, work, db.url, tmp, services)
            print("raw COPY: building rows, then copying …", flush=True)
            raw = raw_copy(args, work, db.url)
    except KeyboardInterrupt:
        print("interrupted; broker, worker and database cleaned up", file=sys.stderr)
        return 130
    except BenchError as err:
        keep_tmp = True
        print(
            f"benchmark failed: {err}\n(worker log and broker files kept in {tmp})", file=sys.stderr
        )
        return 1
    finally:
        if not keep_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    ctx["load"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return 0 if report(args, work, ctx, e2e, raw) else 1


if __name__ == "__main__":
    sys.exit(main())
