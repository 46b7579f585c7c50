"""``coldtrace locations``: check from a terminal whether locations are monitored lawfully.

Uses the same service as ``GET /api/compliance`` (``erp_core.compliance.service``) in
one read-only transaction against COLDTRACE_DATABASE_URL. Exit code 1 when a location
is not compliant, so a scheduled job can raise it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

locations_app = typer.Typer(help="ERP locations.", no_args_is_help=True)
console = Console()
err_console = Console(stderr=True)


@locations_app.command("compliance")
def compliance(
    location: Annotated[
        int | None, typer.Option(help="Only this location id (default: every location).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Check each location's probes, intervals, calibration and alarm recipients."""
    from coldtrace.cli_connect import app_connection
    from erp_core.compliance import service
    from erp_core.errors import NotFoundError

    now = datetime.now(UTC)
    with app_connection() as conn:
        try:
            results = (
                [service.check_location(conn, location_id=location, now=now)]
                if location is not None
                else service.check_all(conn, now=now)
            )
        except NotFoundError as err:
            console.print(f"[red]{err}[/red]")
            raise typer.Exit(2) from None
    if as_json:
        print("[" + ",\n".join(r.model_dump_json() for r in results) + "]")  # noqa: T201
    else:
        table = Table(title=f"{len(results)} location(s) checked at {now:%Y-%m-%d %H:%M} UTC")
        for col in ("code", "kind", "mode", "profiles", "probes", "people", "violations"):
            table.add_column(col)
        for r in results:
            problems = "\n".join(
                f"[{v.profile}] {v.probe + ': ' if v.probe else ''}{v.reason}" for v in r.violations
            )
            table.add_row(
                r.code,
                r.kind,
                r.mode,
                ", ".join(r.profiles),
                str(len(r.probes)),
                str(r.recipients),
                f"[red]{problems}[/red]" if problems else "[green]compliant[/green]",
            )
        console.print(table)
    bad = sum(not r.compliant for r in results)
    err_console.print(f"{len(results) - bad} compliant, {bad} not compliant")
    if bad:
        raise typer.Exit(1)
