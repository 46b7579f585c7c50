"""``coldtrace dashboards``: regenerate the provisioned JSON, or push everything to a Grafana.

``push`` is for a Grafana that does not provision from ``dashboards/provisioning``
(docs/grafana.md): it creates or updates the datasource, the ColdTrace folder and the
five dashboards, and prints what it changed ("nothing changed" on a second run). The
reader's database password comes from COLDTRACE_DB_READER_PASSWORD, never a flag.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.console import Console

dashboards_app = typer.Typer(help="Grafana dashboards (docs/grafana.md).", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)


@dashboards_app.command("generate")
def generate() -> None:
    """Write the dashboards' JSON under dashboards/provisioning (from dashboards/build.py)."""
    from dashboards.generate import write

    for path in write():
        console.print(str(path))


@dashboards_app.command("push")
def push(
    url: Annotated[str, typer.Option(help="Grafana's base URL, e.g. http://127.0.0.1:3000")],
    token: Annotated[
        str, typer.Option(envvar="GRAFANA_TOKEN", help="A service-account token (Editor or Admin).")
    ],
    db_host: Annotated[
        str, typer.Option(help="PostgreSQL as Grafana reaches it, host:port.")
    ] = "db:5432",
    db_name: Annotated[str, typer.Option(help="The database.")] = "coldtrace",
    db_user: Annotated[str, typer.Option(help="The read-only role.")] = "coldtrace_reader",
    timescaledb: Annotated[
        bool, typer.Option(help="The database has TimescaleDB (Grafana's $__timeGroup).")
    ] = True,
) -> None:
    """Create or update the datasource, folder and dashboards; a second run changes nothing."""
    from dashboards.push import Database, PushError, connect
    from dashboards.push import push as push_all

    database = Database(
        host=db_host,
        database=db_name,
        user=db_user,
        password=os.environ.get("COLDTRACE_DB_READER_PASSWORD"),
        timescaledb=timescaledb,
    )
    try:
        report = push_all(connect(url, token), database=database)
    except PushError as err:
        err_console.print(f"[red]push failed at {err}[/red]")
        raise typer.Exit(1) from None
    for what, outcome in report.lines:
        console.print(f"{what}: {outcome}")
    console.print("pushed." if report.changed else "nothing changed: Grafana was up to date.")
