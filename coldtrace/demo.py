"""``coldtrace demo``: the whole platform on one machine, with live counts and a summary.

Three simulated fridges (one whose compressor fails), barcode scanners at the fridges and
the dock and an RFID portal at the truck are read by one gateway, which publishes to a
Mosquitto of the demo's own; two ingest workers (a broker account each, sharing the
messages) store readings, scans and tag reads in a fresh ``coldtrace_demo`` database,
the ERP jobs turn scans into stock movements, the notifier e-mails alerts and the API
serves the web UI. Every service is a supervised child process, exactly as it would run
in production: the database is migrated by its
owner role and the services log in as the application role (the roles and passwords
``scripts/services.sh`` gives a development machine, unless COLDTRACE_DATABASE_URL and
COLDTRACE_DATABASE_OWNER_URL say otherwise); the demo makes its own record key and
audit anchor file in its work directory.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import sqlite3
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import yaml
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from coldtrace.broker import Broker, free_port
from coldtrace.devices import Role
from coldtrace.devices_store import SECRET_MODE, write_file
from coldtrace.mailcatcher import MailCatcher
from coldtrace.seed import (
    DEMO_PASSWORD,
    DOCK_SCANNER,
    FRIDGE_SCANNERS,
    TRUCK_PORTAL,
    USERS,
    DemoLots,
    dispatch_script,
    first_readings_at,
    goods_in_script,
    seed_demo,
)
from coldtrace.supervise import StopRequest, Supervisor, coldtrace_args, stop_requests
from db import migrate, timescale
from erp_core.audit import anchoring, keys
from erp_core.web.format import SITE_TIMEZONE_ENV

SITE = "plant-demo"
GATEWAY = "gw-demo-01"
INGEST, NOTIFIER = Role.INGEST, Role.NOTIFIER
INGEST_WORKERS = ("ingest", "ingest-2")  # process names = their broker accounts
DISPATCH_AFTER_S = 20.0  # after goods-in, the shipped lot goes to the dock and the truck


@dataclass
class Counts:
    """What the demo shows and summarises."""

    produced: int = 0
    outbox_depth: int = 0
    stored: int = 0
    dead_letters: int = 0
    committed: int = 0
    edge: dict[str, int] | None = None  # scan/tag-read outcomes: moved, repeat, ignored, failed
    local_alarms: list[str] | None = None  # relay outputs the gateway reports active
    alarms_seen: set[str] = field(default_factory=set)  # every output that was ever on
    latest: list[tuple[str, str, float, float, float]] | None = None  # uid, qty, last, min, max


# The development machine's logins (scripts/services.sh): the demo's only credentials.
DEMO_APP_URL = "postgresql://coldtrace_app:coldtrace_app@127.0.0.1:5432/coldtrace"
DEMO_TIMEZONE = "Asia/Shanghai"  # COLDTRACE_SITE_TIMEZONE of the demo, unless set
DEMO_OWNER_URL = "postgresql://coldtrace:coldtrace@127.0.0.1:5432/coldtrace"


def _demo_db_urls(database: str) -> tuple[str, str]:
    """The demo database as the application role and as the owner."""
    app = os.environ.get("COLDTRACE_DATABASE_URL", DEMO_APP_URL)
    owner = os.environ.get("COLDTRACE_DATABASE_OWNER_URL", DEMO_OWNER_URL)
    return f"{app.rsplit('/', 1)[0]}/{database}", f"{owner.rsplit('/', 1)[0]}/{database}"


def _records(workdir: Path) -> dict[str, str]:
    """A record key and an anchor file of the demo's own; the variables that name them."""
    keys.new_key_file(workdir / "record.key", key_id="demo-1")
    return {
        "COLDTRACE_RECORD_KEY_FILE": str(workdir / "record.key"),
        "COLDTRACE_RECORD_ANCHOR_FILE": str(workdir / "audit-anchors.jsonl"),
        "COLDTRACE_RECORD_CHECKPOINT_INTERVAL_S": "10",
    }


def _start_anchoring(db_url: str, records: dict[str, str]) -> None:
    """Anchor the seeded trail's head: the first line of the demo's anchor file."""
    keyring = keys.load(Path(records["COLDTRACE_RECORD_KEY_FILE"]))
    anchor_file = Path(records["COLDTRACE_RECORD_ANCHOR_FILE"])
    with psycopg.connect(db_url) as conn:
        anchoring.checkpoint(
            conn, keyring=keyring, anchor_file=anchor_file, now=datetime.now(UTC), start=True
        )


def _audit_text(db_url: str, records: dict[str, str]) -> str:
    """Anchor the chain once more and verify it against every anchor, for the summary."""
    keyring = keys.load(Path(records["COLDTRACE_RECORD_KEY_FILE"]))
    anchor_file = Path(records["COLDTRACE_RECORD_ANCHOR_FILE"])
    with psycopg.connect(db_url) as conn:
        anchoring.checkpoint(conn, keyring=keyring, anchor_file=anchor_file, now=datetime.now(UTC))
        checked = anchoring.verify_anchored(conn, keyring=keyring, anchor_file=anchor_file)
    n = len(checked.anchors.anchors) if checked.anchors else 0
    colour = "green" if checked.status == "intact" else "red"
    return (
        f"[{colour}]{checked.status}[/]: {checked.chain.entries} entries, {n} anchors"
        f" in {anchor_file.name} (`coldtrace audit verify`)"
    )


def gateway_mqtt(broker: Broker, *, tls: bool) -> dict[str, object]:
    """The demo gateway's ``mqtt`` section: its own account, over TLS if ``tls``."""
    creds = broker.gateway_credentials(SITE, GATEWAY)
    section: dict[str, object] = {
        "host": "localhost" if tls else broker.host,  # the certificate names localhost
        "port": broker.tls_port if tls else broker.port,
        "keepalive_s": 15,
        "username": creds.username,
        "password": creds.password,
    }
    if tls:
        section["tls"] = {"ca_file": str(broker.tls.ca_cert)}
    return section


def write_gateway_config(  # noqa: PLR0913 - every knob is one the tests turn
    workdir: Path,
    broker: Broker,
    ports: list[int],
    *,
    poll_interval_s: float = 2.0,
    batch_max: int = 500,
    resend_after_s: float = 10.0,
    state_interval_s: float = 10.0,
    scanners: dict[str, int] | None = None,
    readers: dict[str, int] | None = None,
    relay_port: int | None = None,
    tls: bool = False,
) -> Path:
    """Write a gateway YAML reading RS-WS-N01 devices on ``ports``; return its path.

    The gateway logs in to ``broker`` with an account of its own (provisioned here), over
    the TLS listener if ``tls``; the file holds its password, so it is made mode 0600.

    ``scanners`` and ``readers`` (name → local TCP port) add barcode scanners and RFID
    readers served by ``coldtrace sim-warehouse``; ``relay_port`` a relay module whose
    channel i sounds the local alarm of fridge i beyond 2–8 °C (``coldtrace sim``).
    """
    cfg = {
        "gateway": {"id": GATEWAY, "site": SITE},
        "mqtt": gateway_mqtt(broker, tls=tls),
        "outbox": {
            "path": str(workdir / "outbox.sqlite"),
            "batch_max": batch_max,
            "resend_after_s": resend_after_s,
        },
        "state_interval_s": state_interval_s,
        "modbus": [
            {
                "name": f"fridge-{i + 1}",
                "profile": "renke-rs-ws-n01",
                "host": "127.0.0.1",
                "port": port,
                "poll_interval_s": poll_interval_s,
                "timeout_s": 2,
                "sensor": f"FRIDGE-{i + 1}",
            }
            for i, port in enumerate(ports)
        ],
        "barcode": [
            {"name": name, "url": f"socket://127.0.0.1:{port}"}
            for name, port in (scanners or {}).items()
        ],
        "rfid": [
            {"name": name, "host": "127.0.0.1", "port": port, "collapse_window_s": 10}
            for name, port in (readers or {}).items()
        ],
        "alarms": [
            {
                "name": f"fridge-{i + 1}-buzzer",
                "profile": "waveshare-modbus-rtu-relay",
                "host": "127.0.0.1",
                "port": relay_port,
                "channel": i + 1,
                "limits": [{"sensor": f"FRIDGE-{i + 1}", "low": 2.0, "high": 8.0}],
            }
            for i in range(len(ports) if relay_port is not None else 0)
        ],
    }
    path = workdir / "gateway.yaml"
    write_file(path, yaml.safe_dump(cfg, sort_keys=False), SECRET_MODE)
    return path


def outbox_counts(path: Path) -> tuple[int, int]:
    """(readings the gateway has numbered, readings still in its outbox), read-only."""
    if not path.exists():
        return 0, 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as conn:
            (next_seq,) = conn.execute("SELECT next_seq FROM stream").fetchone()
            (depth,) = conn.execute("SELECT count(*) FROM readings").fetchone()
    except sqlite3.Error:
        return 0, 0
    return int(next_seq) - 1, int(depth)


def _db_counts(conn: psycopg.Connection, counts: Counts) -> None:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM telemetry.readings),"
        " (SELECT count(*) FROM telemetry.dead_letters),"
        " (SELECT coalesce(max(committed_seq), 0) FROM telemetry.gateway_streams)"
    ).fetchone()
    if row:
        counts.stored, counts.dead_letters, counts.committed = (int(v) for v in row)
    counts.edge = dict(
        conn.execute(
            "SELECT outcome, count(*) FROM erp.edge_event_outcomes GROUP BY outcome"
        ).fetchall()
    )
    counts.local_alarms = [
        str(name)
        for (name,) in conn.execute(
            "SELECT a->>'name' FROM telemetry.gateways g,"
            " jsonb_array_elements(coalesce(g.state->'alarms', '[]')) a"
            " WHERE (a->>'active')::boolean ORDER BY 1"
        ).fetchall()
    ]
    counts.alarms_seen |= set(counts.local_alarms)
    counts.latest = [
        (uid, qty, float(last), float(lo), float(hi))
        for uid, qty, last, lo, hi in conn.execute(
            "SELECT s.uid, s.quantity,"
            " (SELECT value FROM telemetry.readings r WHERE r.sensor_id = s.id"
            "   ORDER BY time DESC LIMIT 1),"
            " min(r.value), max(r.value)"
            " FROM telemetry.sensors s JOIN telemetry.readings r ON r.sensor_id = s.id"
            " WHERE s.quantity = 'temperature' GROUP BY s.id ORDER BY s.uid"
        ).fetchall()
    ]
    conn.commit()


def _edge_text(edge: dict[str, int] | None) -> str:
    edge = edge or {}
    parts = [f"{edge.get(k, 0)} {k}" for k in ("moved", "repeat", "ignored", "failed")]
    return ", ".join(parts)


def _play(script: Path, actions: list[dict[str, object]]) -> None:
    """Append actions to the warehouse script (``coldtrace sim-warehouse`` follows it)."""
    with script.open("a") as fh:
        fh.writelines(json.dumps(a) + "\n" for a in actions)


def _view(counts: Counts, sup: Supervisor, url: str, elapsed: float) -> Group:
    flow = Table.grid(padding=(0, 2))
    flow.add_row("readings produced by the gateway", f"[bold]{counts.produced:,}[/bold]")
    flow.add_row("waiting in the gateway outbox", f"{counts.outbox_depth:,}")
    flow.add_row("stored in PostgreSQL", f"[bold green]{counts.stored:,}[/bold green]")
    flow.add_row("committed watermark", f"{counts.committed:,}")
    flow.add_row("dead-lettered", f"[yellow]{counts.dead_letters:,}[/yellow]")
    flow.add_row("scans and tag reads → stock movements", _edge_text(counts.edge))
    sounding = ", ".join(counts.local_alarms or []) or "none"
    flow.add_row("local alarm outputs on (gateway relay)", f"[red]{sounding}[/red]")
    temps = Table("sensor", "now °C", "min", "max", "status", box=None)
    for uid, _qty, last, lo, hi in counts.latest or []:
        status = "[red]OUT OF RANGE[/red]" if not 2 <= last <= 8 else "[green]in range[/green]"
        if hi > 8 and 2 <= last <= 8:
            status = "[yellow]was above 8 °C[/yellow]"
        temps.add_row(uid, f"{last:.1f}", f"{lo:.1f}", f"{hi:.1f}", status)
    procs = " ".join(
        f"[{'green' if c.running else 'red'}]{n}[/]"
        + (f"(restarts {c.restarts})" if c.restarts else "")
        for n, c in sup.children.items()
    )
    return Group(
        Panel(flow, title=f"ColdTrace demo — {elapsed:.0f} s — {url}"),
        Panel(temps, title="fridges (2–8 °C)"),
        f"services: {procs}   (Ctrl-C to stop)",
    )


DEMO_DATABASE = "coldtrace_demo"
ENV_FILE = "demo.env"
PLAIN_PROGRESS_EVERY_S = 10.0  # a progress line this often when the output is not a terminal


def _write_env_file(workdir: Path, env: dict[str, str]) -> Path:
    """``demo.env``: the variables that point the CLI at the demo's database (mode 0600)."""
    lines = ["# coldtrace demo: `source` this file so the CLI uses the demo's database"]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
    path = workdir / ENV_FILE
    write_file(path, "\n".join(lines) + "\n", SECRET_MODE)
    return path


def _shown_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _sign_in_text(url: str) -> str:
    """Who can sign in to the web UI, with the demo password (shown first and last)."""
    users = ", ".join(f"[bold]{u}[/bold] ({r.value})" for u, _, r in USERS)
    return f"sign in at {url} as {users} — password [bold]{DEMO_PASSWORD}[/bold]"


def _plain_progress(counts: Counts, sup: Supervisor, elapsed: float) -> str:
    """One log line of the live counts, for output that is not a terminal."""
    temps = " ".join(f"{uid}={last:.1f}°C" for uid, _q, last, _lo, _hi in counts.latest or [])
    down = [n for n, c in sup.children.items() if not c.running]
    return (
        f"demo {elapsed:.0f} s: produced {counts.produced}, outbox {counts.outbox_depth},"
        f" stored {counts.stored}, dead-lettered {counts.dead_letters},"
        f" edge events: {_edge_text(counts.edge)};"
        f" alarms on: {', '.join(counts.local_alarms or []) or 'none'}; {temps}"
        + (f"; not running: {', '.join(down)}" if down else "")
    )


def run_demo(  # noqa: PLR0913 - keyword-only options of the command
    *,
    workdir: Path,
    duration: float | None,
    api_port: int,
    speed: float,
    database: str = DEMO_DATABASE,
    console: Console | None = None,
) -> int:
    """Run the demo until ``duration`` passes, Ctrl-C or SIGTERM; print a summary; exit code."""
    console = console or Console()
    workdir = workdir.resolve()
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    db_url, owner_url = _demo_db_urls(database)
    console.print(f"preparing database [bold]{database}[/bold] (fresh) …")
    migrate.drop_database(owner_url)
    migrate.upgrade(owner_url)
    console.print(timescale.storage(owner_url).summary(), markup=False, highlight=False)
    records = _records(workdir)
    with psycopg.connect(db_url) as conn:
        lots = seed_demo(
            conn,
            now=datetime.now(UTC),
            gateway=GATEWAY,
            keyring=keys.load(Path(records["COLDTRACE_RECORD_KEY_FILE"])),
        )
    _start_anchoring(db_url, records)  # the ERP jobs continue it, never start it themselves
    # the demo plant works in China: its pages and reports show Beijing time (UTC+8)
    zone = os.environ.get(SITE_TIMEZONE_ENV) or DEMO_TIMEZONE
    env = {"COLDTRACE_DATABASE_URL": db_url, SITE_TIMEZONE_ENV: zone, **records}
    env_file = _write_env_file(workdir, env)
    url = f"http://127.0.0.1:{api_port}/"
    console.print(_sign_in_text(url))
    console.print(
        f"the CLI on the demo's database (now and after it): "
        f"[bold]source {_shown_path(env_file)}[/bold], then e.g. `coldtrace alerts list`"
    )
    with stop_requests() as stop:
        demo = _Running(workdir=workdir, db_url=db_url, env=env, url=url, speed=speed)
        try:
            demo.start(api_port)
            console.print(f"web UI: [bold]{url}[/bold]   logs: {demo.sup.logdir}")
            _loop(console, demo, lots, stop, duration)
            if stop.requested:
                console.print(f"{stop.signal_name}: stopping …")
            return _finish(console, demo, lots, env_file)
        finally:
            demo.close()


@dataclass
class _Running:
    """The demo's broker, mail catcher and supervised children, and how to stop them all."""

    workdir: Path
    db_url: str
    env: dict[str, str]
    url: str
    speed: float
    sup: Supervisor = field(init=False)
    broker: Broker = field(init=False)
    mail: MailCatcher = field(init=False)
    counts: Counts = field(default_factory=Counts)

    def __post_init__(self) -> None:
        self.sup = Supervisor(logdir=self.workdir / "logs")
        self.broker = Broker(workdir=self.workdir / "mosquitto", tls_port=free_port())
        self.mail = MailCatcher(self.workdir / "mail")

    @property
    def script(self) -> Path:
        """The warehouse script ``coldtrace sim-warehouse`` follows."""
        return self.workdir / "warehouse.jsonl"

    def start(self, api_port: int) -> None:
        """Start the broker, the mail catcher and every child."""
        # the demo's own broker: accounts for the gateway, each ingest worker and the
        # notifier (an account is one connection); the gateway comes in over TLS (a CA
        # made for the demo), the services on loopback
        broker, sup, env = self.broker, self.sup, self.env
        broker.start()
        self.mail.start()
        ports = [free_port() for _ in range(3)]
        relay_port = free_port()
        scanners = {name: free_port() for name in (*FRIDGE_SCANNERS, DOCK_SCANNER)}
        readers = {TRUCK_PORTAL: free_port()}
        gw_config = write_gateway_config(
            self.workdir,
            broker,
            ports,
            scanners=scanners,
            readers=readers,
            relay_port=relay_port,
            tls=True,
        )
        sim_args = ["sim", "--plain-logs", "--speed", str(self.speed), "--fail", str(ports[2])]
        sim_args += ["--relay-port", str(relay_port)]
        sim_args += ["--fail-after", "600", "--fail-for", "5400"]  # visible within a minute
        for p in ports:
            sim_args += ["--port", str(p)]
        sup.add("sim", coldtrace_args(*sim_args))
        wh_args = ["sim-warehouse", "--plain-logs", "--script", str(self.script)]
        wh_args += [f"--scanner={n}={p}" for n, p in scanners.items()]
        wh_args += [f"--reader={n}={p}" for n, p in readers.items()]
        sup.add("warehouse", coldtrace_args(*wh_args))
        for worker in INGEST_WORKERS:  # one account each, in the same secret share group
            worker_env = env | broker.service_env(INGEST, worker)
            sup.add(worker, coldtrace_args("ingest", "--plain-logs"), worker_env)
        sup.add("gateway", coldtrace_args("gateway", "run", "-c", str(gw_config), "--plain-logs"))
        # The API refuses to start without a JWT secret: the demo makes one per run.
        api_env = {**env, "COLDTRACE_API_JWT_SECRET": secrets.token_urlsafe(48)}
        sup.add("api", coldtrace_args("api", "--port", str(api_port)), api_env)
        sup.add("erp-jobs", coldtrace_args("erp-jobs", "--plain-logs", "--interval", "2"), env)
        notify_env = {
            **env,
            "COLDTRACE_NOTIFY_SMTP_HOST": "127.0.0.1",
            "COLDTRACE_NOTIFY_SMTP_PORT": str(self.mail.port),
            "COLDTRACE_NOTIFY_BASE_URL": self.url.rstrip("/"),
            "COLDTRACE_NOTIFY_JOBS_INTERVAL_S": "15",
            **broker.service_env(NOTIFIER),  # alert events on ct/v1/{site}/alerts
        }
        sup.add("notifier", coldtrace_args("notifier"), notify_env)

    def refresh(self, conn: psycopg.Connection) -> None:
        """Read the outbox and the database into ``counts``."""
        outbox = self.workdir / "outbox.sqlite"
        self.counts.produced, self.counts.outbox_depth = outbox_counts(outbox)
        _db_counts(conn, self.counts)

    def close(self) -> None:
        """Stop whatever still runs (after an error too): no child outlives the demo."""
        self.sup.stop()
        self.broker.stop()
        self.mail.stop()


def _loop(
    console: Console,
    demo: _Running,
    lots: DemoLots,
    stop: StopRequest,
    duration: float | None,
) -> None:
    """Watch the children and play the warehouse until time is up or a stop is requested."""
    started = time.monotonic()
    live = Live(console=console, refresh_per_second=2) if console.is_terminal else None
    last_line = -PLAIN_PROGRESS_EVERY_S
    with psycopg.connect(demo.db_url) as conn, live or nullcontext():
        received_at: float | None = None
        dispatched = False
        while not stop.requested and (duration is None or time.monotonic() - started < duration):
            demo.sup.watch()
            if received_at is None and first_readings_at(conn, gateway=GATEWAY) is not None:
                _play(demo.script, goods_in_script(lots))  # records start with readings
                received_at = time.monotonic()
            if (
                not dispatched
                and received_at is not None
                and time.monotonic() - received_at > DISPATCH_AFTER_S
            ):
                _play(demo.script, dispatch_script(lots))
                dispatched = True
            demo.refresh(conn)
            elapsed = time.monotonic() - started
            if live is not None:
                live.update(_view(demo.counts, demo.sup, demo.url, elapsed))
            elif elapsed - last_line >= PLAIN_PROGRESS_EVERY_S:
                console.print(
                    _plain_progress(demo.counts, demo.sup, elapsed), markup=False, highlight=False
                )
                last_line = elapsed
            time.sleep(1)


def _finish(console: Console, demo: _Running, lots: DemoLots, env_file: Path) -> int:
    """Stop the devices, let the pipeline drain, stop the rest; print the summary."""
    sup, counts, url, db_url = demo.sup, demo.counts, demo.url, demo.db_url
    sup.children["sim"].stop()
    sup.children["warehouse"].stop()
    deadline = time.monotonic() + 30
    with psycopg.connect(db_url) as conn:
        while time.monotonic() < deadline:
            demo.refresh(conn)
            if counts.outbox_depth == 0 and counts.stored + counts.dead_letters >= counts.produced:
                break
            time.sleep(0.5)
    time.sleep(2)  # let the notifier send what the last flush raised
    time.sleep(3)  # let the ERP jobs turn the last scans into movements
    codes = sup.stop(["gateway", *INGEST_WORKERS, "erp-jobs", "notifier", "api"])
    demo.broker.stop()
    summary = Table(title="ColdTrace demo — summary", show_header=False)
    summary.add_row("readings produced by the gateway", f"{counts.produced:,}")
    summary.add_row("readings stored", f"{counts.stored:,}")
    summary.add_row("dead-lettered", f"{counts.dead_letters:,}")
    lost = counts.produced - counts.stored - counts.dead_letters
    summary.add_row("lost", f"[{'green' if lost == 0 else 'red'}]{lost:,}[/]")
    summary.add_row("scans and tag reads → movements", _edge_text(counts.edge))
    seen = ", ".join(sorted(counts.alarms_seen)) or "none"
    summary.add_row("local alarm outputs that sounded", seen)
    for uid, _qty, _last, lo, hi in counts.latest or []:
        verdict = "[red]excursion above 8 °C[/red]" if hi > 8 else "[green]stayed in 2–8 °C[/green]"
        summary.add_row(uid, f"min {lo:.1f} °C, max {hi:.1f} °C — {verdict}")
    with psycopg.connect(db_url) as conn:
        for label, lot_id in (
            ("clean lot", lots.clean),
            ("lot in the failing fridge", lots.excursion),
            ("shipped lot", lots.shipped),
        ):
            row = conn.execute(
                "SELECT count(*) FILTER (WHERE status = 'open') FROM erp.deviations"
                " WHERE lot_id = %s",
                (lot_id,),
            ).fetchone()
            open_devs = int(row[0]) if row else 0
            summary.add_row(label, f"{url}lots/{lot_id} — {open_devs} open deviation(s)")
        row = conn.execute("SELECT count(*) FROM telemetry.alerts").fetchone()
        summary.add_row("alerts raised", f"{int(row[0]) if row else 0} ({url}alerts)")
    summary.add_row("audit trail", _audit_text(db_url, demo.env))
    summary.add_row("alert emails received", f"{len(demo.mail.messages)} (in {demo.mail.folder})")
    for subject in demo.mail.subjects()[:3]:
        summary.add_row("", subject)
    summary.add_row("sign-in (while running)", _sign_in_text(url))
    summary.add_row(
        "database",
        f"{db_url.rsplit('/', 1)[1]}, kept: `source {_shown_path(env_file)}` points"
        " `coldtrace alerts list`, `coldtrace api` … at it",
    )
    summary.add_row("exit codes", ", ".join(f"{k}={v}" for k, v in codes.items()))
    console.print(summary)
    return 0 if lost == 0 else 1
