"""The API and web UI under load: 50 people browsing, 5 signing, ingest at 10 k readings/s.

Run from the repository root with the project's Python::

    .venv/bin/python bench/api_load.py [--browsers 50] [--signers 5] [--seconds 60]
        [--think 1.0] [--load 10000] [--pool 20]

On a database of its own (created and dropped here, as the application role) it seeds
the demo's master data (``coldtrace.seed``) plus ``--lots`` lots received into the three
fridges 30 days ago, 30 days of one-minute readings from each fridge probe (with a
door-open excursion every few days), the rollup, 50 open alerts and one user per
simulated person. Then it starts, as subprocesses: our Mosquitto, ONE ``coldtrace
ingest`` worker, ONE ``coldtrace api`` process (uvicorn, pool ``--pool`` connections),
and a process publishing ``--load`` in-range readings per second (bench/alert_latency.py's
load generator).

Each browser signs in through the web form (its own account, its own cookie jar) and,
for ``--seconds``, picks a page at random — the lots list, a lot page, the alerts inbox,
a lot's history from the JSON API — waits for the answer, then ``--think`` seconds
(uniform 0.5–1.5 × think). Each signer signs a decision on a lot of its own (``reject``,
which the rules allow for any lot; the password re-entered and checked with argon2 at
every signature, as Part 11 asks) and thinks likewise. Reported per kind of request:
count, p50, p95, max, 4xx and 5xx/transport errors; the API's pool waits and 503s from
its log; ingest's rate while the users were on. The exit code is 1 on any 5xx or
transport error. Results and their reading: docs/benchmarks.md ("The API under load").
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import random
import re
import secrets
import signal
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import httpx  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
import psycopg  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from coldtrace.broker import Broker, free_port  # noqa: E402
from coldtrace.demo import _demo_db_urls  # noqa: E402
from coldtrace.devices import Role as BrokerRole  # noqa: E402
from coldtrace.seed import DEMO_PASSWORD, seed_demo  # noqa: E402
from coldtrace.supervise import Child, coldtrace_args  # noqa: E402
from db import migrate  # noqa: E402
from erp_core.audit import keys  # noqa: E402
from erp_core.audit.service import set_actor  # noqa: E402
from erp_core.auth import service as auth_service  # noqa: E402
from erp_core.auth.models import Role  # noqa: E402
from erp_core.jobs import refresh_rollup  # noqa: E402
from erp_core.lots import service as lots  # noqa: E402
from erp_core.lots.models import LotIn  # noqa: E402
from erp_core.movements.models import MovementIn  # noqa: E402
from erp_core.movements.service import record_movement  # noqa: E402
from telemetry.codec import encode  # noqa: E402
from telemetry.payloads import VERSION, Reading, ReadingBatch  # noqa: E402
from telemetry.topics import Kind, Topic  # noqa: E402


def load_main(
    port: int, rate: int, logins: list[tuple[str, str, str]], go: MpEvent, stop: MpEvent
) -> None:
    """Child process: ``rate`` in-range readings/s from ``logins`` gateways, 500 a message, QoS 1.

    Each gateway logs in with its own account (the broker refuses anonymous clients) and
    keeps its device time about as fast as real time.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    clients = []
    for gateway, username, password in logins:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{gateway}")
        c.username_pw_set(username, password)
        c.max_inflight_messages_set(1000)
        c.connect("127.0.0.1", port)
        c.loop_start()
        clients.append((gateway, c, [0]))
    per_msg, sensors = 500, 10
    base = int(time.time() * 1000) - 3600 * 1000
    go.wait()
    interval, t0, n = per_msg / rate, time.monotonic(), 0
    while not stop.is_set():
        gateway, c, seq = clients[n % len(clients)]
        k0 = seq[0] // sensors
        items = [
            Reading(
                t=base + (k0 + k) * 10,
                sensor=f"load-{gateway}-{s}",
                qty="temperature",
                value=5.0,
                unit="Cel",
            )
            for s in range(sensors)
            for k in range(per_msg // sensors)
        ]
        batch = ReadingBatch(
            v=VERSION,
            gateway=gateway,
            stream="load",
            seq=(seq[0] + 1, seq[0] + per_msg),
            sent=int(time.time() * 1000),
            items=items,
        )
        seq[0] += per_msg
        c.publish(str(Topic.build(SITE, gateway, Kind.READINGS)), encode(batch), qos=1)
        n += 1
        delay = t0 + n * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    for _, c, _ in clients:
        c.disconnect()
        c.loop_stop()


SITE = "bench"
GATEWAY = "gw-bench"
DAYS = 30
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Figures:
    """Latencies (ms) and failures per kind of request."""

    ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    client_errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    server_errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    examples: list[str] = field(default_factory=list)

    def add(
        self, kind: str, started: float, response: httpx.Response | None, why: str = ""
    ) -> None:
        self.ms[kind].append((time.perf_counter() - started) * 1000)
        if response is None or response.status_code >= 500:
            self.server_errors[kind] += 1
            if len(self.examples) < 5:
                code = response.status_code if response is not None else "no answer"
                self.examples.append(f"{kind}: {code} {why}"[:300])
        elif response.status_code >= 400:
            self.client_errors[kind] += 1
            if len(self.examples) < 5:
                self.examples.append(f"{kind}: {response.status_code} {response.text[:200]}")


# ------------------------------------------------------------------------------- the data


def seed(
    db_url: str, *, keyring: keys.Keyring, lots_n: int, browsers: int, signers: int
) -> list[int]:
    """Demo master data, ``lots_n`` lots with 30 days in the fridges, users; the lot ids."""
    now = datetime.now(UTC)
    received = now - timedelta(days=DAYS)
    with psycopg.connect(db_url) as conn:
        demo = seed_demo(conn, now=received - timedelta(hours=1), gateway=GATEWAY, keyring=keyring)
        set_actor(conn, user="system:bench", reason="api load bench data")
        people = [(f"browse{i:02d}", Role.QA) for i in range(browsers)]
        people += [(f"sign{i:02d}", Role.QA_MANAGER) for i in range(signers)]
        for username, role in people:
            auth_service.create_user(
                conn,
                username=username,
                full_name=username.title(),
                password=DEMO_PASSWORD,
                roles=[role],
                now=received,
                keyring=keyring,
            )
        (item,) = conn.execute("SELECT id FROM erp.items").fetchone()  # type: ignore[misc]
        ids: list[int] = []
        for n in range(lots_n):
            lot = lots.create_lot(
                conn,
                lot=LotIn(
                    item_id=item,
                    lot_number=f"LOAD-{n:04d}",
                    expires_on=demo.expires_on,
                    manufactured_on=received.date(),
                    quantity=10,
                ),
                now=received,
            )
            record_movement(
                conn,
                movement=MovementIn(
                    lot_id=lot.id,
                    quantity=10,
                    to_location_id=demo.fridges[n % 3],
                    moved_at=received + timedelta(minutes=n % 50),
                ),
                now=now,
            )
            ids.append(lot.id)
        # the fridges' probes: one reading a minute for 30 days, 5 °C, and a 25-minute
        # door-open at 9.5 °C every 4 days (a deviation on the lots there then)
        conn.execute(
            "INSERT INTO telemetry.readings (time, sensor_id, value)"
            " SELECT t, s.id, CASE WHEN extract(epoch FROM t - %(start)s)::bigint"
            "   %% (4 * 86400) < 1500 AND s.uid = 'FRIDGE-3' THEN 9.5 ELSE 5.0 END"
            " FROM telemetry.sensors s,"
            "   generate_series(%(start)s::timestamptz, %(end)s, interval '1 minute') t"
            " WHERE s.gateway_id = %(gw)s",
            {"start": received - timedelta(hours=2), "end": now, "gw": GATEWAY},
        )
        conn.execute(
            "INSERT INTO telemetry.alerts (kind, severity, sensor_id, status, started_at,"
            " ended_at, summary, peak)"
            " SELECT 'excursion_high', 'critical', s.id, 'open', now() - n * interval '4 hours',"
            " now() - n * interval '4 hours' + interval '25 minutes', 'door open', 9.5"
            " FROM telemetry.sensors s, generate_series(1, 50) n WHERE s.uid = 'FRIDGE-3'"
        )
    with psycopg.connect(db_url, autocommit=True) as conn:
        refresh_rollup(conn)
    return ids


# --------------------------------------------------------------------------- the people


async def sign_in(client: httpx.AsyncClient, username: str) -> str:
    """Sign in through the web form (cookie) and get a bearer token for the JSON API."""
    form = await client.get("/sign-in")
    token = CSRF.search(form.text)
    assert token is not None, form.text[:300]
    r = await client.post(
        "/sign-in",
        data={
            "username": username,
            "password": DEMO_PASSWORD,
            "next": "/",
            "csrf_token": token.group(1),
        },
    )
    assert r.status_code in {200, 303}, (username, r.status_code, r.text[:300])
    t = await client.post("/api/auth/token", data={"username": username, "password": DEMO_PASSWORD})
    assert t.status_code == 200, (username, t.status_code, t.text[:300])
    return str(t.json()["access_token"])


async def timed(figures: Figures, kind: str, call: Any) -> None:
    started = time.perf_counter()
    try:
        response = await call
    except httpx.HTTPError as err:
        figures.add(kind, started, None, repr(err))
        return
    figures.add(kind, started, response, response.text[:200] if response.status_code >= 500 else "")


@dataclass
class Person:
    """A signed-in browser: its cookie jar (pages) and its bearer token (JSON API)."""

    client: httpx.AsyncClient
    bearer: dict[str, str]
    rng: random.Random


async def arrive(base: str, username: str, door: asyncio.Semaphore) -> Person:
    """Sign ``username`` in; ``door`` lets two sign-ins run at once, as people arrive."""
    client = httpx.AsyncClient(base_url=base, timeout=60, follow_redirects=True)
    async with door:
        token = await sign_in(client, username)
    return Person(client, {"Authorization": f"Bearer {token}"}, random.Random(username))


async def browse(
    who: Person, lot_ids: list[int], until: float, think: float, figures: Figures
) -> None:
    while time.monotonic() < until:
        lot = who.rng.choice(lot_ids)
        kind = who.rng.choice(("lots list", "lot page", "alerts inbox", "lot history (API)"))
        urls = {
            "lots list": "/lots",
            "lot page": f"/lots/{lot}",
            "alerts inbox": "/alerts",
            "lot history (API)": f"/api/lots/{lot}/history",
        }
        headers = who.bearer if kind.endswith("(API)") else None
        call = who.client.get(urls[kind], headers=headers)
        await timed(figures, kind, call)
        await asyncio.sleep(think * who.rng.uniform(0.5, 1.5))


async def sign(
    who: Person, lot_ids: list[int], until: float, think: float, figures: Figures
) -> None:
    for lot in lot_ids:
        if time.monotonic() >= until:
            return
        body = {"action": "reject", "password": DEMO_PASSWORD, "comment": "load bench"}
        await timed(
            figures,
            "signed decision (API)",
            who.client.post(f"/api/lots/{lot}/release", json=body, headers=who.bearer),
        )
        await asyncio.sleep(think * who.rng.uniform(0.5, 1.5))


async def crowd(base: str, args: argparse.Namespace, lot_ids: list[int]) -> Figures:
    """Everyone signs in (two at a time, not timed), then browses or signs for the run."""
    door = asyncio.Semaphore(2)
    browsers = await asyncio.gather(
        *(arrive(base, f"browse{i:02d}", door) for i in range(args.browsers))
    )
    signers = await asyncio.gather(
        *(arrive(base, f"sign{i:02d}", door) for i in range(args.signers))
    )
    figures = Figures()
    until = time.monotonic() + args.seconds
    signed = lot_ids[: args.signers * 200]
    browsed = lot_ids[args.signers * 200 :] or lot_ids
    tasks = [browse(p, browsed, until, args.think, figures) for p in browsers]
    tasks += [
        sign(p, signed[i :: args.signers], until, args.think, figures)
        for i, p in enumerate(signers)
    ]
    try:
        await asyncio.gather(*tasks)
    finally:
        for p in (*browsers, *signers):
            await p.client.aclose()
    return figures


# ------------------------------------------------------------------------------ the run


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def readings(db_url: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM telemetry.readings r JOIN telemetry.sensors s"
            " ON s.id = r.sensor_id WHERE s.uid LIKE 'load-%%'"
        ).fetchone()
    return int(row[0]) if row else 0


def report(figures: Figures, args: argparse.Namespace, api_log: str, ingest_rate: float) -> int:
    print(
        f"\n{args.browsers} browsing + {args.signers} signing for {args.seconds:.0f} s, "
        f"think {args.think} s; API pool {args.pool}; load {os.getloadavg()[0]:.1f}"
    )
    print(f"{'request':<24}{'count':>7}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'4xx':>6}{'5xx':>6}")
    failures = 0
    for kind in sorted(figures.ms):
        ms = figures.ms[kind]
        failures += figures.server_errors[kind]
        print(
            f"{kind:<24}{len(ms):>7}{percentile(ms, 0.5):>9.0f}{percentile(ms, 0.95):>9.0f}"
            f"{max(ms):>9.0f}{figures.client_errors[kind]:>6}{figures.server_errors[kind]:>6}"
        )
    total = sum(len(v) for v in figures.ms.values())
    print(f"{total} requests, {total / args.seconds:.1f}/s; errors (5xx or no answer): {failures}")
    waits = api_log.count("PoolTimeout") + api_log.count("couldn't get a connection")
    print(f"API log: {waits} pool time-outs, {api_log.count(' 503 ')} answers 503")
    print(f"ingest while the users were on: {ingest_rate:,.0f} readings/s stored")
    for example in figures.examples:
        print("  e.g.", example)
    return 1 if failures or waits else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--browsers", type=int, default=50)
    p.add_argument("--signers", type=int, default=5)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--think", type=float, default=1.0, help="mean seconds between requests")
    p.add_argument("--load", type=int, default=10_000, help="background readings per second")
    p.add_argument("--lots", type=int, default=1200)
    p.add_argument("--pool", type=int, default=20, help="the API's pool_max_size")
    args = p.parse_args()

    database = f"ct_bench_api_{uuid.uuid4().hex[:8]}"
    db_url, owner_url = _demo_db_urls(database)
    migrate.upgrade(owner_url)
    tmp = Path(tempfile.mkdtemp(prefix="ct-api-load-"))
    key_file = tmp / "record.key"
    records = {
        "COLDTRACE_RECORD_KEY_FILE": str(key_file),
        "COLDTRACE_RECORD_ANCHOR_FILE": str(tmp / "anchors.jsonl"),
    }
    broker = Broker(workdir=tmp / "mosquitto")
    children: list[Child] = []
    go, stop = mp.Event(), mp.Event()
    load: mp.Process | None = None
    try:
        t0 = time.monotonic()
        keys.new_key_file(key_file, key_id="bench-1")
        keyring = keys.load(key_file)
        lot_ids = seed(
            db_url, keyring=keyring, lots_n=args.lots, browsers=args.browsers, signers=args.signers
        )
        print(
            f"seeded {len(lot_ids)} lots, {DAYS} days of readings in {time.monotonic() - t0:.0f} s",
            file=sys.stderr,
        )
        broker.start()
        env = {"COLDTRACE_DATABASE_URL": db_url, **records}
        api_port = free_port()
        api_env = {
            **env,
            "COLDTRACE_API_JWT_SECRET": secrets.token_urlsafe(48),
            "COLDTRACE_API_POOL_MAX_SIZE": str(args.pool),
            "COLDTRACE_API_LOGIN_MAX_FAILURES": "50",
        }
        children.append(
            Child("api", coldtrace_args("api", "--port", str(api_port)), tmp / "api.log", api_env)
        )
        ingest_env = {**env, **broker.service_env(BrokerRole.INGEST)}
        ingest_args = coldtrace_args("ingest", "--plain-logs")
        children.append(Child("ingest", ingest_args, tmp / "ingest.log", ingest_env))
        for child in children:
            child.start()
        base = f"http://127.0.0.1:{api_port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            time.sleep(0.3)
        logins = []
        for g in range(10):
            creds = broker.gateway_credentials(SITE, f"gw-load-{g}")
            logins.append((f"gw-load-{g}", creds.username, creds.password))
        load = mp.Process(
            target=load_main, args=(broker.port, args.load, logins, go, stop), daemon=True
        )
        load.start()
        go.set()
        time.sleep(5)  # ingest at speed before the people come
        before, t_start = readings(db_url), time.monotonic()
        figures = asyncio.run(crowd(base, args, lot_ids))
        ingest_rate = (readings(db_url) - before) / (time.monotonic() - t_start)
        stop.set()
        return report(figures, args, (tmp / "api.log").read_text(errors="replace"), ingest_rate)
    finally:
        stop.set()
        for child in reversed(children):
            child.stop()
        if load is not None and load.is_alive():
            load.join(5)
            load.kill()
        broker.stop()
        migrate.drop_database(owner_url)


if __name__ == "__main__":
    sys.exit(main())
