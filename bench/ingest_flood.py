"""Ingest under a QoS 0 flood: the worker's memory (RSS) before, during and after it.

Run from the repository root with the project's Python::

    .venv/bin/python bench/ingest_flood.py [--seconds 20] [--size 2048] [--publishers 2]
    .venv/bin/python bench/ingest_flood.py --code /tmp/ct-before   # another checkout

It creates a database of its own (migrated by the code under test), starts our Mosquitto
(project config) and ONE ``coldtrace ingest`` worker as a subprocess, from ``--code``
(default: this tree; point it at an unpacked older commit, ``git archive <rev> | tar -x
-C DIR``, to measure before/after on the same machine). After a warm-up it measures the
worker's RSS while publishing processes flood a readings topic at QoS 0 with unique junk
(each message would be a dead letter), and one good QoS 1 batch a second goes in the
middle of it. It prints the flood's size and rate, the worker's RSS (baseline, peak,
growth, after), what ingest did with the flood (dead-lettered, dropped by the intake)
and whether every good reading was stored. Everything is cleaned up on exit.
Results and their reading: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path

# This directory holds ingest.py, which would shadow the ingest package: drop it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import paho.mqtt.client as mqtt  # noqa: E402
import psutil  # noqa: E402
import psycopg  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from coldtrace.broker import Broker, free_port  # noqa: E402
from coldtrace.devices import Role  # noqa: E402

ADMIN_URL = os.environ.get(
    "COLDTRACE_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
TOPIC = "ct/v1/bench-site/bench-gw/readings"
MIB = 1024 * 1024
T0_MS = 1_764_000_000_000


def good_batch(first: int, n: int = 10) -> bytes:
    items = ",".join(
        f'{{"t":{T0_MS + (first + i) * 1000},"sensor":"bench-t1","qty":"temperature",'
        f'"value":4.5,"unit":"Cel"}}'
        for i in range(n)
    )
    return (
        f'{{"v":1,"gateway":"bench-gw","stream":"s1","seq":[{first},{first + n - 1}],'
        f'"sent":{T0_MS},"items":[{items}]}}'
    ).encode()


def flooder(
    port: int,
    login: tuple[str, str],
    topic: str,
    size: int,
    seconds: float,
    worker_no: int,
    out: mp.Queue,
    go: MpEvent,
) -> None:
    """Publish unique junk at QoS 0 as fast as the broker takes it, for ``seconds``."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-flood-{worker_no}")
    c.username_pw_set(*login)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    pad = b"x" * max(0, size - 24)
    go.wait()
    sent = 0
    deadline = time.monotonic() + seconds
    info = None
    while time.monotonic() < deadline:
        for _ in range(200):
            info = c.publish(topic, b"junk %02d %012d " % (worker_no, sent) + pad, qos=0)
            sent += 1
        info.wait_for_publish(10)  # keep our own send queue short
    c.disconnect()
    c.loop_stop()
    out.put(sent)


def rss(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


def scrape(port: int, name: str) -> float | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


class Sampler(threading.Thread):
    """RSS of one process every ``period`` seconds."""

    def __init__(self, pid: int, period: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.pid, self.period = pid, period
        self.samples: list[tuple[float, int]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            with contextlib.suppress(psutil.NoSuchProcess):
                self.samples.append((time.monotonic(), rss(self.pid)))
            self.done.wait(self.period)

    def between(self, start: float, end: float) -> list[int]:
        return [v for t, v in self.samples if start <= t <= end]


def count(url: str, sql: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql).fetchone()
        return int(row[0]) if row else 0


def run_in(code: Path, args: list[str], **kw: object) -> subprocess.Popen[bytes]:
    """Our Python running ``args`` with ``code`` first on its path."""
    env = {**os.environ, "PYTHONPATH": str(code), **kw.pop("env", {})}  # type: ignore[dict-item]
    return subprocess.Popen([sys.executable, *args], cwd=code, env=env, **kw)  # type: ignore[call-overload]


def main() -> int:  # noqa: C901 - the run reads top to bottom
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=20, help="flood duration")
    p.add_argument("--size", type=int, default=2048, help="bytes per flood message")
    p.add_argument("--publishers", type=int, default=2, help="flooding processes")
    p.add_argument("--settle", type=float, default=10, help="seconds measured after the flood")
    p.add_argument("--code", type=Path, default=_HERE.parent, help="tree the worker runs from")
    args = p.parse_args()
    code = args.code.resolve()
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))

    name = f"ct_flood_{uuid.uuid4().hex[:10]}"
    db_url = f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    tmp = Path(tempfile.mkdtemp(prefix="coldtrace-flood-"))
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        print(f"code under test: {code}\ndatabase {name}: migrating …", flush=True)
        migrate = (
            "from db import migrate; from db.settings import DatabaseSettings"
            f" as D; d = D(url={db_url!r}); migrate.upgrade(d.url, d.sqlalchemy_url)"
        )
        if run_in(code, ["-c", migrate]).wait() != 0:
            print("migration failed", file=sys.stderr)
            return 1

        def drop() -> None:
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        stack.callback(drop)
        broker = Broker(workdir=tmp / "mosquitto")
        broker.start()
        stack.callback(broker.stop)
        metrics_port = free_port()
        log_path = tmp / "ingest.log"
        log_file = stack.enter_context(log_path.open("wb"))
        cli = "from coldtrace.cli import app; app()"
        worker = run_in(
            code,
            [
                "-c",
                cli,
                "ingest",
                "--mqtt-port",
                str(broker.port),
                "--client-id",
                "bench-flood",
                "--metrics-port",
                str(metrics_port),
                "--plain-logs",
                "--log-level",
                "WARNING",
            ],
            # the old code (--code) knows no credentials: its broker must admit anonymous
            # clients, e.g. with `allow_anonymous true` appended to the broker's config
            env={**broker.service_env(Role.INGEST), "COLDTRACE_DATABASE_URL": db_url},
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )

        def stop_worker() -> None:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
                try:
                    worker.wait(30)
                except subprocess.TimeoutExpired:
                    worker.kill()
                    worker.wait()

        stack.callback(stop_worker)

        gw = broker.gateway_credentials("bench-site", "bench-gw")
        login = (gw.username, gw.password)
        # each flooding process is a gateway account of its own: an account is one
        # connection (the broker uses its name as the client id, docs/mqtt.md)
        floods = [
            broker.gateway_credentials("bench-site", f"bench-flood-{i}")
            for i in range(args.publishers)
        ]
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-good")
        pub.username_pw_set(*login)
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        stack.callback(pub.loop_stop)
        seq = 1
        for _ in range(100):  # warm-up: until the worker has subscribed and stored
            pub.publish(TOPIC, good_batch(seq), qos=1).wait_for_publish(10)
            if count(db_url, "SELECT count(*) FROM telemetry.readings") == 10:
                break
            time.sleep(0.2)
        else:
            print("the worker never stored the warm-up batch", file=sys.stderr)
            return 1
        seq += 10
        sampler = Sampler(worker.pid)
        sampler.start()
        time.sleep(2)
        base_end = time.monotonic()
        baseline = statistics.median(sampler.between(base_end - 2, base_end))

        ctx = mp.get_context("spawn")
        out: mp.Queue = ctx.Queue()
        go = ctx.Event()
        procs = [
            ctx.Process(
                target=flooder,
                args=(
                    broker.port,
                    (f.username, f.password),
                    f"ct/v1/bench-site/{f.username}/readings",
                    args.size,
                    args.seconds,
                    i,
                    out,
                    go,
                ),
            )
            for i, f in enumerate(floods)
        ]
        for proc in procs:
            proc.start()
        time.sleep(1.0)  # connected
        flood_start = time.monotonic()
        go.set()
        while time.monotonic() < flood_start + args.seconds:
            pub.publish(TOPIC, good_batch(seq), qos=1)  # real data amid the flood
            seq += 10
            time.sleep(1.0)
        published = sum(out.get(timeout=60) for _ in procs)
        flood_end = time.monotonic()
        for proc in procs:
            proc.join(10)
        good = seq - 1
        stored = 0
        while time.monotonic() < flood_end + 300 and worker.poll() is None:
            stored = count(db_url, "SELECT count(*) FROM telemetry.readings")
            if stored >= good:
                break
            time.sleep(0.2)
        good_lag = time.monotonic() - flood_end
        time.sleep(max(0.0, flood_end + args.settle - time.monotonic()))
        during = sampler.between(flood_start, flood_end)
        after = sampler.between(time.monotonic() - 1, time.monotonic())
        sampler.done.set()
        dead = count(db_url, "SELECT count(*) FROM telemetry.dead_letters")
        dropped = scrape(metrics_port, "coldtrace_ingest_intake_dropped_total")
        alive = worker.poll() is None
        peak = max(during + after) if during else baseline
        wall = flood_end - flood_start

        print(
            f"\nflood: {published:,} QoS 0 messages of {args.size} B from {args.publishers} "
            f"publishers in {wall:.1f} s ({published / wall:,.0f} msg/s, "
            f"{published * args.size / wall / MIB:,.1f} MiB/s)"
        )
        print("worker RSS")
        print(f"  baseline (idle, after warm-up)   {baseline / MIB:8.1f} MiB")
        growth = (peak - baseline) / MIB
        print(f"  peak during/after the flood      {peak / MIB:8.1f} MiB   (+{growth:.1f} MiB)")
        if after:
            print(f"  {args.settle:.0f} s after the flood ended      {after[-1] / MIB:8.1f} MiB")
        print("what ingest did with the flood")
        print(f"  dead-lettered (rows)             {dead:8,}")
        print(
            f"  dropped by the intake (metric)   {'n/a' if dropped is None else f'{dropped:8,.0f}'}"
        )
        unseen = published - dead - int(dropped or 0)
        print(f"  not received by the worker        {unseen:8,}")
        print(
            f"good readings (QoS 1, one batch a second): {stored:,} of {good:,} stored, the last "
            f"{good_lag:.1f} s after the flood ended; worker alive: {alive}"
        )
        if not alive:
            tail = log_path.read_text(errors="replace").splitlines()[-15:]
            print("worker log (last lines):\n  " + "\n  ".join(tail))
        return 0 if alive and stored >= good else 1
    return 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
