"""The one ``coldtrace`` command: every service and tool is a subcommand.

Imports of the heavy parts happen inside each command, so an edge device with only
``coldtrace[gateway]`` installed can run ``coldtrace gateway run`` without FastAPI
or psycopg.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from coldtrace.cli_admin import audit_app
from coldtrace.cli_db import db_app
from coldtrace.cli_users import users_app

app = typer.Typer(
    help="ColdTrace: cold-chain telemetry for a medical-device ERP.", no_args_is_help=True
)
gateway_app = typer.Typer(help="Edge gateway.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(gateway_app, name="gateway")
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")
console = Console()

LogLevel = Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")]
Plain = Annotated[bool, typer.Option("--plain-logs", help="Plain log lines (for supervisors).")]


@app.command()
def ingest(
    mqtt_host: Annotated[str | None, typer.Option(help="Broker host.")] = None,
    mqtt_port: Annotated[int | None, typer.Option(help="Broker port.")] = None,
    client_id: Annotated[
        str | None, typer.Option(help="Stable MQTT client id of this worker.")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus /metrics here.")
    ] = None,
    log_level: LogLevel = "INFO",
    plain_logs: Plain = False,
) -> None:
    """Run one ingest worker (MQTT → PostgreSQL) until SIGTERM; settings COLDTRACE_INGEST_*."""
    from coldtrace import logs
    from db.settings import DatabaseSettings
    from ingest.main import run
    from ingest.settings import IngestSettings

    logs.setup(log_level, plain=plain_logs)
    settings = IngestSettings()
    overrides = {
        "mqtt_host": mqtt_host,
        "mqtt_port": mqtt_port,
        "client_id": client_id,
        "metrics_port": metrics_port,
    }
    settings = settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    run(settings, DatabaseSettings())


@gateway_app.command("run")
def gateway_run(
    config: Annotated[Path, typer.Option("-c", "--config", help="Gateway YAML file.")],
    log_level: LogLevel = "INFO",
    plain_logs: Plain = False,
) -> None:
    """Run the edge gateway described by a YAML file until SIGTERM/Ctrl-C."""
    import asyncio

    from coldtrace import logs
    from gateway.app import load_config, run_gateway
    from gateway.config import ConfigError

    logs.setup(log_level, plain=plain_logs)
    try:
        cfg = load_config(config)
    except ConfigError as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(2) from err
    asyncio.run(run_gateway(cfg))


@app.command()
def sim(
    port: Annotated[list[int], typer.Option("--port", help="One simulated device per port.")],
    host: Annotated[str, typer.Option(help="Listen address.")] = "127.0.0.1",
    profile: Annotated[
        list[str] | None,
        typer.Option("--profile", help="Register map per port (one for all, or one each)."),
    ] = None,
    fail: Annotated[
        list[int] | None, typer.Option("--fail", help="Port whose compressor fails.")
    ] = None,
    fail_after: Annotated[float, typer.Option(help="Model seconds before it fails.")] = 1800.0,
    fail_for: Annotated[float, typer.Option(help="Model seconds the failure lasts.")] = 5400.0,
    speed: Annotated[float, typer.Option(help="Model seconds per real second.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Random seed of the first device.")] = 1,
    relay_port: Annotated[
        int | None,
        typer.Option(help="Also serve a Modbus relay module (the local alarm) on this port."),
    ] = None,
    log_level: LogLevel = "INFO",
    plain_logs: Plain = False,
) -> None:
    """Serve simulated Modbus TCP temperature/humidity transmitters in 2-8 °C fridges."""
    import asyncio
    import signal

    from coldtrace import logs
    from firmware_sim.modbus_device import DeviceSpec, run_devices
    from firmware_sim.relay import serve_relay
    from firmware_sim.thermal import CompressorFailure

    logs.setup(log_level, plain=plain_logs)
    profiles = profile or ["renke-rs-ws-n01"]
    if len(profiles) not in (1, len(port)):
        raise typer.BadParameter("give one --profile for all ports or one per --port")
    failing = set(fail or [])
    specs = [
        DeviceSpec(
            name=f"fridge-{p}",
            profile=profiles[i % len(profiles)],
            port=p,
            host=host,
            seed=seed + i,
            speed=speed,
            failure=CompressorFailure(at_s=fail_after, duration_s=fail_for)
            if p in failing
            else None,
        )
        for i, p in enumerate(port)
    ]

    async def _run() -> None:
        stop, ready = asyncio.Event(), asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        task = asyncio.create_task(run_devices(specs, stop=stop, ready=ready))
        await ready.wait()
        console.print(
            f"serving {len(specs)} simulated devices on {host}: {', '.join(map(str, port))}"
        )
        if relay_port is not None:
            await serve_relay(host, relay_port, stop=stop, say=console.print)
        await task

    asyncio.run(_run())


def _named_ports(values: list[str] | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for value in values or []:
        name, _, port = value.partition("=")
        if not name or not port.isdigit():
            raise typer.BadParameter(f"{value!r}: expected NAME=PORT")
        out[name] = int(port)
    return out


@app.command("sim-warehouse")
def sim_warehouse(
    script: Annotated[Path, typer.Option(help="JSON-lines file of actions, followed as it grows.")],
    scanner: Annotated[
        list[str] | None, typer.Option("--scanner", help="A barcode scanner: NAME=PORT.")
    ] = None,
    reader: Annotated[
        list[str] | None, typer.Option("--reader", help="An RFID reader: NAME=PORT.")
    ] = None,
    log_level: LogLevel = "INFO",
    plain_logs: Plain = False,
) -> None:
    """Serve simulated barcode scanners and RFID readers that act on a script's cues."""
    import asyncio
    import signal

    from coldtrace import logs
    from firmware_sim.warehouse import Warehouse

    logs.setup(log_level, plain=plain_logs)
    warehouse = Warehouse(_named_ports(scanner), _named_ports(reader))

    async def _run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await warehouse.start()
        console.print(f"warehouse devices ready; following {script}")
        try:
            await warehouse.follow(script, stop)
        finally:
            await warehouse.close()

    asyncio.run(_run())


@app.command()
def api(
    host: Annotated[str, typer.Option(help="Listen address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Listen port.")] = 8000,
) -> None:
    """Serve the HTTP API and web UI (settings COLDTRACE_API_*, COLDTRACE_RECORD_*)."""
    from pydantic import ValidationError

    from erp_core.app import serve
    from erp_core.audit.errors import RecordKeyError
    from erp_core.settings import ApiSettings

    try:
        settings = ApiSettings()
    except ValidationError as err:  # e.g. COLDTRACE_SITE_TIMEZONE that names no zone
        for problem in err.errors():
            where = ".".join(str(part) for part in problem["loc"])
            console.print(f"[red]{where}: {problem['msg']}[/red]")
        raise typer.Exit(2) from err
    try:
        serve(settings, host=host, port=port)
    except RecordKeyError as err:  # signatures need the record key: no API without it
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(2) from err


@app.command("erp-jobs")
def erp_jobs(
    interval: Annotated[
        float, typer.Option(help="Seconds between passes without a wake-up.")
    ] = 5.0,
    rollup_interval: Annotated[
        float, typer.Option(help="Seconds between refreshes of the reading rollup (0: never).")
    ] = 60.0,
    figures_interval: Annotated[
        float,
        typer.Option(help="Seconds between refreshes of the lots' release figures (0: never)."),
    ] = 60.0,
    log_level: LogLevel = "INFO",
    plain_logs: Plain = False,
) -> None:
    """Turn scans and tag reads into movements, lock expired lots, anchor the audit chain.

    Runs until SIGTERM; expired lots are put on hold every minute, the reading rollup
    that Grafana's long-range panels read is refreshed every ROLLUP_INTERVAL seconds, and
    the release figures of changed lots (Grafana's batch dashboard) every FIGURES_INTERVAL.

    Anchoring needs COLDTRACE_RECORD_KEY_FILE and COLDTRACE_RECORD_ANCHOR_FILE (every
    COLDTRACE_RECORD_CHECKPOINT_INTERVAL_S seconds); without them it is off, and says so.
    """
    import logging
    import signal
    import threading

    from coldtrace import logs
    from db.settings import DatabaseSettings
    from erp_core.audit.errors import RecordKeyError
    from erp_core.audit.settings import RecordSettings
    from erp_core.jobs import Anchoring, Every, run

    logs.setup(log_level, plain=plain_logs)
    records = RecordSettings()
    anchoring = None
    if records.key_file is not None and records.anchor_file is not None:
        try:
            config = records.load()
        except RecordKeyError as err:
            console.print(f"[red]{err}[/red]")
            raise typer.Exit(2) from err
        anchoring = Anchoring(config.keyring, records.anchor_file, records.checkpoint_interval_s)
    else:
        logging.getLogger("erp_core.jobs").warning(
            "audit anchoring is off: set COLDTRACE_RECORD_KEY_FILE and "
            "COLDTRACE_RECORD_ANCHOR_FILE (or run `coldtrace audit checkpoint` elsewhere)"
        )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        run(
            DatabaseSettings().url,
            stop,
            interval_s=interval,
            anchoring=anchoring,
            every=Every(rollup_s=rollup_interval or None, figures_s=figures_interval or None),
        )
    except KeyboardInterrupt:
        stop.set()


@app.command()
def demo(
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: Ctrl-C).")
    ] = None,
    workdir: Annotated[Path, typer.Option(help="Logs, broker data, gateway outbox.")] = Path(
        "var/demo"
    ),
    api_port: Annotated[int, typer.Option(help="Port of the web UI.")] = 8000,
    speed: Annotated[float, typer.Option(help="Simulated fridge time per real second.")] = 30.0,
    database: Annotated[
        str, typer.Option(help="Name of the demo's database (dropped and made afresh).")
    ] = "coldtrace_demo",
) -> None:
    """Run the platform end to end: simulated fridges → gateway → MQTT → ingest → DB → web UI.

    Ctrl-C or SIGTERM stops every service and prints the summary; WORKDIR/demo.env points
    the CLI at the demo's database (`source var/demo/demo.env`).
    """
    from coldtrace.demo import run_demo

    code = run_demo(
        workdir=workdir, duration=duration, api_port=api_port, speed=speed, database=database
    )
    raise typer.Exit(code)


from coldtrace import cli_notify  # noqa: E402 - after the core commands; imports nothing heavy

cli_notify.register(app)

from coldtrace.cli_alerts import alerts_app  # noqa: E402 - typer and rich only

app.add_typer(alerts_app, name="alerts")

from coldtrace.cli_locations import locations_app  # noqa: E402 - typer and rich only

app.add_typer(locations_app, name="locations")

from coldtrace.cli_devices import devices_app  # noqa: E402 - typer, rich and yaml only

app.add_typer(devices_app, name="devices")

from coldtrace.cli_report import report_app  # noqa: E402 - typer and rich only

app.add_typer(report_app, name="report")

from coldtrace.cli_dashboards import dashboards_app  # noqa: E402 - typer and rich only

app.add_typer(dashboards_app, name="dashboards")


def main() -> None:
    """Entry point for ``python -m coldtrace``."""
    app()
