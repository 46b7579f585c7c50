"""Ingest throughput with 1, 2 and 3 workers on this machine, and what bounds it.

Run from the repository root with the project's Python::

    .venv/bin/python bench/ingest_scale.py [--workers 1 2 3] [--readings 1000000]

For each worker count, on a fresh database of its own (dropped afterwards), it runs
what ``bench/ingest.py`` runs — our Mosquitto, the workers (``coldtrace ingest``, each
with an ingest account of its own in the one shared-subscription group), a publishing
process with one connection per gateway — then a raw COPY of the same rows into the
same table, so every line has its own ratio to raw COPY taken minutes apart on the
same machine. It reports readings/s until stored (committed watermarks) and until
evaluated (no range left in ``telemetry.eval_pending``), the CPU each kind of process
used (in CPUs, i.e. 1.00 = one core busy for the whole run), how busy the whole
machine was and its load average, and names the bound: the machine's CPUs when they
are nearly all busy, otherwise the busiest process (a worker's Python, its
PostgreSQL backend, Mosquitto). Results and their reading: docs/benchmarks.md and
docs/scaling-model.md.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

# bench/ingest.py is named like the ingest package: drop this directory from sys.path
# and load that script under another name.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
_spec = importlib.util.spec_from_file_location("bench_ingest", _HERE / "ingest.py")
assert _spec is not None
assert _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_ingest"] = bench
_spec.loader.exec_module(bench)

import psycopg  # noqa: E402

from db import migrate  # noqa: E402
from db.settings import DatabaseSettings  # noqa: E402

SATURATED = 0.9  # share of the machine's CPUs busy that counts as "CPU-bound"


@dataclass
class Line:
    """One worker count's figures."""

    workers: int
    stored_rate: float
    evaluated_rate: float
    raw_rate: float
    cpus: dict[str, float]  # process kind -> CPUs used on average over the run
    busiest: tuple[str, float]  # the single busiest process and its CPUs
    machine: float  # CPUs busy on the whole machine, on average
    load: str
    lost: int


def kind(name: str) -> str:
    """Group a process of the run: 'ingest worker 2' -> 'ingest workers (Python)'."""
    if name.startswith("ingest worker"):
        return "ingest workers (Python)"
    if name.startswith("PG evaluator"):
        return "PostgreSQL, evaluators' backends"
    if name.startswith("PG writer"):
        return "PostgreSQL, writers' backends"
    return name


def backends(conn: psycopg.Connection) -> dict[str, int]:
    rows = conn.execute(
        "SELECT pid, application_name FROM pg_stat_activity WHERE datname = current_database() "
        "AND backend_type = 'client backend' AND application_name <> %s ORDER BY pid",
        (bench.APP_NAME,),
    ).fetchall()
    out: dict[str, int] = {}
    for i, (pid, app) in enumerate(rows):
        role = "PG evaluator" if app == bench.EVALUATOR_APP else "PG writer"
        out[f"{role} {i}"] = int(pid)
    return out


def run_one(args: argparse.Namespace, workers: int) -> Line:
    now_min = int(time.time() * 1000) // bench.MINUTE_MS * bench.MINUTE_MS
    work = bench.Workload(args.readings, args.batch, args.gateways, args.sensors, end_ms=now_min)
    name = f"ct_bench_scale_{uuid.uuid4().hex[:8]}"
    db = DatabaseSettings(url=f"{bench.ADMIN_URL.rsplit('/', 1)[0]}/{name}")
    tmp = Path(tempfile.mkdtemp(prefix="coldtrace-scale-"))
    try:
        with contextlib.ExitStack() as database:
            database.callback(migrate.drop_database, db.url)
            migrate.upgrade(db.url, db.sqlalchemy_url)
            with contextlib.ExitStack() as stack:
                svc = bench.start_services(work, db.url, tmp, stack, workers=workers)
                conn = stack.enter_context(bench.connect(db.url))
                print(f"{workers} worker(s): warm-up …", flush=True)
                bench.warm_up(svc.broker.port, svc.logins, work, conn, svc.worker)
                bench.from_publisher(svc, "ready")
                procs: dict[str, int | None] = {
                    f"ingest worker {i}": p.pid
                    for i, p in enumerate([svc.worker, *svc.more_workers], 1)
                }
                procs |= backends(conn)
                procs["Mosquitto"] = svc.broker.process.pid if svc.broker.process else None
                procs["publisher"] = svc.publisher.pid
                conn.execute("CHECKPOINT")
                cpu0 = bench.Cpu.take(procs)
                svc.go.set()
                t0 = time.monotonic()
                target = work.warmup_rows + work.readings
                bench.wait_for_watermark(conn, target, svc.worker, timeout=args.timeout)
                t_stored = time.monotonic()
                cpu = bench.Cpu.take(procs).since(cpu0)
                t_evaluated = bench.wait_evaluated(conn, timeout=args.timeout)
                stored = conn.execute("SELECT count(*) FROM telemetry.readings").fetchone()[0]
                load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
            print(f"{workers} worker(s): raw COPY …", flush=True)
            raw = bench.raw_copy(args, work, db.url)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    wall = t_stored - t0
    cpus: dict[str, float] = {}
    for proc, sec in cpu.procs.items():
        cpus[kind(proc)] = cpus.get(kind(proc), 0.0) + sec / wall
    busiest = max(((p, s / wall) for p, s in cpu.procs.items()), key=lambda x: x[1])
    return Line(
        workers=workers,
        stored_rate=work.readings / wall,
        evaluated_rate=work.readings / (t_evaluated - t0),
        raw_rate=work.readings / raw.seconds,
        cpus=cpus,
        busiest=busiest,
        machine=cpu.machine_busy / wall,
        load=load,
        lost=work.readings - (stored - work.warmup_rows),
    )


def bound(line: Line, ncpu: int) -> str:
    """What limits this line, from the CPU figures."""
    if line.machine >= SATURATED * ncpu:
        share = sorted(line.cpus.items(), key=lambda kv: -kv[1])[:2]
        top = ", ".join(f"{k} {v:.2f}" for k, v in share)
        return f"the machine's {ncpu} CPUs ({line.machine:.2f} busy; most: {top})"
    proc, used = line.busiest
    if used >= SATURATED:
        return f"one process at a full core: {proc} ({used:.2f})"
    return f"no CPU is full ({line.machine:.2f} of {ncpu} busy): waits (commits, round trips)"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--readings", type=int, default=1_000_000)
    p.add_argument("--batch", type=int, default=1_000, help="readings per MQTT message")
    p.add_argument("--gateways", type=int, default=10)
    p.add_argument("--sensors", type=int, default=10)
    p.add_argument("--copy-chunk", type=int, default=100_000)
    p.add_argument("--timeout", type=float, default=600)
    args = p.parse_args()
    ncpu = len(os.sched_getaffinity(0))
    lines = [run_one(args, n) for n in args.workers]
    print(f"\ningest scaling, {args.readings:,} readings, {ncpu} CPUs, "
          f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC")  # fmt: skip
    print(f"{'workers':>7} {'stored/s':>10} {'evaluated/s':>12} {'raw COPY/s':>11} "
          f"{'ratio':>6} {'machine':>8}  load average")  # fmt: skip
    for ln in lines:
        print(f"{ln.workers:>7} {ln.stored_rate:>10,.0f} {ln.evaluated_rate:>12,.0f} "
              f"{ln.raw_rate:>11,.0f} {ln.stored_rate / ln.raw_rate:>6.2f} "
              f"{ln.machine:>8.2f}  {ln.load}")  # fmt: skip
    for ln in lines:
        print(f"\n{ln.workers} worker(s): CPUs used by kind of process (1.00 = one core)")
        for k, v in sorted(ln.cpus.items(), key=lambda kv: -kv[1]):
            print(f"  {k:<40}{v:6.2f}")
        print(f"  bound: {bound(ln, ncpu)}")
        if ln.lost:
            print(f"  LOST {ln.lost:,} readings")
    return 1 if any(ln.lost for ln in lines) else 0


if __name__ == "__main__":
    sys.exit(main())
