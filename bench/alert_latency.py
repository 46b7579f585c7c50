"""Alert latency: publish of the reading that completes the alarm delay → e-mail received.

Run from the repository root with the project's Python::

    .venv/bin/python bench/alert_latency.py [--samples 40] [--load 10000]

On a database of its own (created and dropped here) it starts our Mosquitto, ONE
``coldtrace ingest`` worker and ONE ``coldtrace notifier`` as subprocesses, an aiosmtpd
server in this process, and a load process publishing ``--load`` in-range readings per
second to the same broker (1,000 per message, 10 gateways × 10 sensors). Two QA people
at the bench site receive every opened alert by e-mail.

Each sample uses a fresh sensor on the profile ``fridge-2-8`` (alarm after 15 min
continuously out of range): it publishes 15 readings at 9.5 °C one minute apart (device
time, ending 90 s ago: 14 min out of range, no alarm yet), waits until they are stored,
then publishes the reading that completes the alarm delay and starts the clock. The
clock stops when aiosmtpd has the first e-mail naming that sensor. The figures include
everything on the way: MQTT, the worker's adaptive batching, COPY and commit,
the excursion evaluation, the alert transaction, LISTEN/NOTIFY, routing, the claim and
the SMTP conversation. The prefix readings arrive more than 10 min after their device
time, so these alerts carry the "late" flag; that does not change their path.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
import uuid
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

# bench/ingest.py is named like the ingest package; drop this directory from sys.path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import paho.mqtt.client as mqtt  # noqa: E402
import psycopg  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from coldtrace.broker import Broker, free_port  # noqa: E402
from coldtrace.devices import Role  # noqa: E402
from coldtrace.supervise import Child, coldtrace_args  # noqa: E402
from db import migrate  # noqa: E402
from db.settings import DatabaseSettings  # noqa: E402
from telemetry.codec import encode  # noqa: E402
from telemetry.payloads import VERSION, Reading, ReadingBatch  # noqa: E402
from telemetry.topics import Kind, Topic  # noqa: E402

ADMIN_URL = os.environ.get(
    "COLDTRACE_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
SITE = "bench"
MIN_MS = 60_000
PUBLISHED: dict[str, float] = {}  # sensor uid → time the completing reading was published


class Inbox:
    """aiosmtpd handler: arrival time and subject of every message."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.mails: list[tuple[float, str]] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        t = time.time()
        subject = next(
            (
                line[9:]
                for line in envelope.content.decode("utf-8", "replace").splitlines()
                if line.startswith("Subject: ")
            ),
            "",
        )
        with self.lock:
            self.mails.append((t, subject))
        return "250 OK"

    def first_naming(self, word: str) -> float | None:
        with self.lock:
            return next((t for t, s in self.mails if f" {word} " in s), None)


LOAD_GATEWAYS = 10


def client(port: int, login: tuple[str, str]) -> mqtt.Client:
    """A connected paho client of one broker account (an account is one connection)."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=login[0])
    c.username_pw_set(*login)
    c.max_inflight_messages_set(1000)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def load_main(
    port: int, logins: list[tuple[str, str]], rate: int, go: MpEvent, stop: MpEvent, out: Any
) -> None:
    """Child process: publish ``rate`` in-range readings/s, 1,000 per message, QoS 1."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    clients = [client(port, login) for login in logins]  # gw-load-0 .. gw-load-9
    per_msg, gateways, sensors = 1000, LOAD_GATEWAYS, 10
    # 10 ms apart: each gateway's device time advances about as fast as real time
    base = int(time.time() * 1000) - 3600 * 1000
    seq = dict.fromkeys(range(gateways), 0)
    rounds = dict.fromkeys(range(gateways), 0)
    go.wait()
    interval = per_msg / rate
    sent, t0, n = 0, time.monotonic(), 0
    while not stop.is_set():
        g = n % gateways
        per_sensor = per_msg // sensors
        items = [
            Reading(
                t=base + (rounds[g] * per_sensor + k) * 10,
                sensor=f"load-{g}-{s}",
                qty="temperature",
                value=5.0,
                unit="Cel",
            )
            for s in range(sensors)
            for k in range(per_sensor)
        ]
        batch = ReadingBatch(
            v=VERSION, gateway=f"gw-load-{g}", stream="load", seq=(seq[g] + 1, seq[g] + per_msg),
            sent=int(time.time() * 1000), items=items,
        )  # fmt: skip
        seq[g] += per_msg
        rounds[g] += 1
        topic = str(Topic.build(SITE, f"gw-load-{g}", Kind.READINGS))
        clients[g].publish(topic, encode(batch), qos=1)
        sent += per_msg
        n += 1
        delay = t0 + n * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    out.put((sent, sent / (time.monotonic() - t0)))
    for c in clients:
        c.disconnect()
        c.loop_stop()


def stored(conn: psycopg.Connection, uid: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM telemetry.readings r JOIN telemetry.sensors s ON s.id = r.sensor_id"
        " WHERE s.uid = %s",
        (uid,),
    ).fetchone()
    return int(row[0]) if row else 0


def load_count(conn: psycopg.Connection) -> int:
    row = conn.execute(
        "SELECT count(*) FROM telemetry.readings r JOIN telemetry.sensors s"
        " ON s.id = r.sensor_id WHERE s.uid LIKE 'load-%%'"
    ).fetchone()
    return int(row[0]) if row else 0


def wait(pred: Any, timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(interval)
    return False


def sample(
    i: int, pub: mqtt.Client, conn: psycopg.Connection, inbox: Inbox, seq: list[int]
) -> float | None:
    uid = f"lat-{i}"
    now = int(time.time() * 1000)
    start = now - 930_000
    topic = str(Topic.build(SITE, "gw-lat", Kind.READINGS))

    def send(times: list[int]) -> None:
        items = [Reading(t=t, sensor=uid, qty="temperature", value=9.5, unit="Cel") for t in times]
        b = ReadingBatch(v=VERSION, gateway="gw-lat", stream="lat",
                         seq=(seq[0] + 1, seq[0] + len(items)), sent=now, items=items)  # fmt: skip
        seq[0] += len(items)
        pub.publish(topic, encode(b), qos=1)

    send([start + k * MIN_MS for k in range(15)])  # 14 min out of range: no alarm yet
    if not wait(lambda: stored(conn, uid) == 15, 120):
        raise RuntimeError(f"{uid}: prefix readings not stored within 120 s (ingest backlog)")
    time.sleep(0.3)  # let its evaluation finish
    if inbox.first_naming(uid) is not None:
        raise RuntimeError(f"{uid}: e-mail before the alarm delay was complete")
    t_pub = time.time()
    send([now])  # 15.5 min out of range: the alarm delay is complete
    if not wait(lambda: inbox.first_naming(uid) is not None, 30, 0.002):
        return None
    PUBLISHED[uid] = t_pub
    return inbox.first_naming(uid) - t_pub  # type: ignore[operator]


BREAKDOWN_SQL = """
SELECT s.uid, extract(epoch FROM min(e.at)), extract(epoch FROM min(n.routed_at)),
       extract(epoch FROM min(t.started_at))
  FROM telemetry.alerts a
  JOIN telemetry.sensors s ON s.id = a.sensor_id
  JOIN telemetry.alert_events e ON e.alert_id = a.id AND e.event = 'opened'
  JOIN telemetry.notify_routed n ON n.event_id = e.id
  JOIN telemetry.notify_deliveries d ON d.event_id = e.id
  JOIN telemetry.notify_attempts t ON t.delivery_id = d.id
 WHERE s.uid LIKE 'lat-%%' AND a.kind = 'excursion_high'
 GROUP BY s.uid
"""


def breakdown(
    conn: psycopg.Connection, published: dict[str, float], mailed: dict[str, float]
) -> dict[str, float]:
    """Median ms of each stage: evaluation opened the alert, routed, claimed, e-mail in."""
    stages: dict[str, list[float]] = {
        "publish → alert opened (ingest + evaluation)": [],
        "alert opened → routed (commit, NOTIFY, notifier pass)": [],
        "routed → claimed": [],
        "claimed → e-mail at the server (render + SMTP)": [],
    }
    for uid, opened, routed, claimed in conn.execute(BREAKDOWN_SQL).fetchall():
        if uid not in published or uid not in mailed:
            continue
        points = [published[uid], float(opened), float(routed), float(claimed), mailed[uid]]
        for name, a, b in zip(stages, points, points[1:], strict=False):
            stages[name].append((b - a) * 1000)
    return {k: statistics.median(v) for k, v in stages.items() if v}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


def main() -> int:  # noqa: C901 - one linear script
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=40)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--load", type=int, default=10_000, help="background readings per second")
    p.add_argument(
        "--no-alert-jobs",
        action="store_true",
        help="notifier without the escalation/sweep jobs (to see what they cost)",
    )
    args = p.parse_args()

    name = f"ct_bench_alert_{uuid.uuid4().hex[:8]}"
    db = DatabaseSettings(url=f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}")
    migrate.upgrade(db.url, db.sqlalchemy_url)
    tmp = Path(tempfile.mkdtemp(prefix="ct-alert-bench-"))
    inbox = Inbox()
    smtp_port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    broker = Broker(workdir=tmp / "mosquitto")
    children: list[Child] = []
    go, stop = mp.Event(), mp.Event()
    rate_q: Any = mp.Queue()
    load: mp.Process | None = None
    try:
        with psycopg.connect(db.url) as conn:
            for who in ("Li Wei", "Anna Berg"):
                conn.execute(
                    "INSERT INTO telemetry.recipients (name, email, site) VALUES (%s, %s, %s)",
                    (who, f"{who.split()[0].lower()}@example.com", SITE),
                )
            # Alarms only: the profile's pre-alarm (a warning after 5 min in the band) would
            # otherwise send the first e-mail naming the sensor, before the alarm.
            conn.execute(
                "INSERT INTO telemetry.notify_routes (role, channel, min_severity)"
                " VALUES ('qa', 'email', 'critical')"
            )
        controller.start()
        broker.start()
        env = {"COLDTRACE_DATABASE_URL": db.url}
        ingest_args = coldtrace_args("ingest", "--mqtt-port", str(broker.port), "--plain-logs")
        ingest_env = {**env, **broker.service_env(Role.INGEST)}
        children.append(Child("ingest", ingest_args, tmp / "ingest.log", ingest_env))
        smtp_env = {
            "COLDTRACE_NOTIFY_SMTP_HOST": "127.0.0.1",
            "COLDTRACE_NOTIFY_SMTP_PORT": str(smtp_port),
            "COLDTRACE_NOTIFY_RUN_ALERT_JOBS": "false" if args.no_alert_jobs else "true",
        }
        notifier_args = coldtrace_args("notifier", "--plain-logs")
        notifier_env = {**env, **smtp_env, **broker.service_env(Role.NOTIFIER)}
        children.append(Child("notifier", notifier_args, tmp / "notifier.log", notifier_env))
        for child in children:
            child.start()
        logins = []
        for g in range(LOAD_GATEWAYS):
            creds = broker.gateway_credentials(SITE, f"gw-load-{g}")
            logins.append((creds.username, creds.password))
        load = mp.Process(
            target=load_main, args=(broker.port, logins, args.load, go, stop, rate_q), daemon=True
        )
        load.start()
        lat = broker.gateway_credentials(SITE, "gw-lat")
        pub = client(broker.port, (lat.username, lat.password))
        time.sleep(2.0)  # worker subscribed, notifier listening
        go.set()
        with psycopg.connect(db.url, autocommit=True) as conn:
            if not wait(lambda: stored(conn, "load-0-0") > 0, 30):
                raise RuntimeError("background load is not being stored; see " + str(tmp))
            seq = [0]
            lat, missed = [], 0
            t_go, worst_behind = time.monotonic(), 0.0
            for i in range(args.warmup + args.samples):
                v = sample(i, pub, conn, inbox, seq)
                behind = args.load * (time.monotonic() - t_go) - load_count(conn)
                worst_behind = max(worst_behind, behind)
                shown = f"{v * 1000:.0f} ms" if v is not None else "no e-mail"
                print(f"sample {i}: {shown}; ingest about {behind:,.0f} readings behind the load",
                      file=sys.stderr, flush=True)  # fmt: skip
                if i < args.warmup:
                    continue
                if v is None:
                    missed += 1
                else:
                    lat.append(v)
            mailed = {
                f"lat-{i}": inbox.first_naming(f"lat-{i}")
                for i in range(args.warmup + args.samples)
            }
            stages = breakdown(conn, PUBLISHED, {k: v for k, v in mailed.items() if v is not None})
            load_stored = load_count(conn)
        stop.set()
        total, achieved = rate_q.get(timeout=10)
        with psycopg.connect(db.url, autocommit=True) as conn:
            t_stop = time.monotonic()
            drained = wait(lambda: load_count(conn) >= total, 120, 0.1)
            drain_s = time.monotonic() - t_stop
        verdict = "within" if drained else "NOT within"
        print(f"background load: {achieved:,.0f} readings/s published ({total:,} in all); "
              f"{load_stored:,} stored when sampling ended; all stored {verdict} "
              f"{drain_s:.1f} s after the load stopped")  # fmt: skip
        print(f"samples: {len(lat)} e-mails, {missed} missed (no e-mail within 30 s)")
        print("machine load average (1, 5, 15 min): "
              + ", ".join(f"{x:.2f}" for x in os.getloadavg()))  # fmt: skip
        if worst_behind > 2 * args.load:
            print(f"WARNING: ingest fell up to {worst_behind:,.0f} readings behind the load; "
                  "the latencies then include that backlog, not only the alert path")  # fmt: skip
        if lat:
            ms = [x * 1000 for x in lat]
            print(f"latency publish → e-mail received: p50 {percentile(ms, 0.5):.0f} ms, "
                  f"p99 {percentile(ms, 0.99):.0f} ms, min {min(ms):.0f} ms, "
                  f"max {max(ms):.0f} ms, mean {statistics.fmean(ms):.0f} ms")  # fmt: skip
            for stage, median in stages.items():
                print(f"  median {median:6.0f} ms  {stage}")
        return 0 if lat and not missed else 1
    finally:
        stop.set()
        for child in reversed(children):
            child.stop()
        if load is not None and load.is_alive():
            load.join(5)
            load.kill()
        with contextlib.suppress(Exception):
            controller.stop()
        broker.stop()
        migrate.drop_database(db.url)


if __name__ == "__main__":
    sys.exit(main())
