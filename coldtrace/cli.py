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

app = typer.Typer(help="ColdTrace: cold-chain telemetry for a medical-device ERP.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
gateway_app = typer.Typer(help="Edge gateway.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(gateway_app, name="gateway")
console = Console()

LogLevel = Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")]
Plain = Annotated[bool, typer.Option("--plain-logs", help="Plain log lines (for supervisors).")]


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Create the database if needed and apply all migrations (COLDTRACE_DATABASE_URL)."""
    from coldtrace.db import migrate
    from coldtrace.db.settings import DatabaseSettings

    db = DatabaseSettings()
    migrate.upgrade(db.url, db.sqlalchemy_url, revision)
    console.print(f"[green]database at {revision}[/green]")


@app.command()
def ingest(
    mqtt_host: Annotated[str | None, typer.Option(help="Broker host.")] = None,
    mqtt_port: Annotated[int | None, typer.Option(help="Broker port.")] = None,
    client_id: Annotated[str | None, typer.Option(help="Stable MQTT client id of this worker.")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus /metrics here.")] = None,
    log_level: LogLevel = "INFO",
    plain_logs: Plain = False,
) -> None:
    """Run one ingest worker (MQTT → PostgreSQL) until SIGTERM/Ctrl-C; settings COLDTRACE_INGEST_*."""
    from coldtrace import logs
    from coldtrace.db.settings import DatabaseSettings
    from ingest.main import run
    from ingest.settings import IngestSettings

    logs.setup(log_level, plain=plain_logs)
    overrides = {
        k: v
        for k, v in {
            "mqtt_host": mqtt_host,
            "mqtt_port": mqtt_port,
            "client_id": client_id,
            "metrics_port": metrics_port,
        }.items()
        if v is not None
    }
    run(IngestSettings(**overrides), DatabaseSettings())


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


def main() -> None:
    """Entry point for ``python -m coldtrace``."""
    app()
