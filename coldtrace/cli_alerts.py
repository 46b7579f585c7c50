"""``coldtrace alerts``: list, acknowledge and close alerts from a terminal.

Each command runs in one transaction of its own against COLDTRACE_DATABASE_URL and
uses the ERP alert services, so the CLI and the API record the same events. The actor
of an acknowledgement or a closure is the operating-system account running the
command (``cli:<name>``, as for every other CLI change), never a name typed on the
command line: ``--user qa-manager`` let anyone with a shell close an excursion in
someone else's name.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

alerts_app = typer.Typer(help="Excursion and sensor alerts.", no_args_is_help=True)
console = Console()


@alerts_app.command("list")
def list_alerts(
    status: Annotated[
        str | None, typer.Option(help="open, acknowledged or closed (default: all).")
    ] = None,
    site: Annotated[str | None, typer.Option(help="Only this site.")] = None,
    sensor: Annotated[int | None, typer.Option(help="Only this sensor id.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
) -> None:
    """Show alerts as a table, newest first."""
    from coldchain.alert_states import Status
    from coldtrace.cli_connect import app_connection
    from erp_core.alerts import service

    try:
        wanted = Status(status) if status else None
    except ValueError:
        console.print(f"[red]unknown status {status!r}: use open, acknowledged or closed[/red]")
        raise typer.Exit(2) from None
    with app_connection() as conn:
        rows = service.list_alerts(conn, status=wanted, site=site, sensor_id=sensor, limit=limit)
    table = Table(title=f"{len(rows)} alert(s)")
    for col in ("id", "status", "severity", "kind", "sensor", "started", "ended", "peak", "lvl",
                "late", "summary"):  # fmt: skip
        table.add_column(col)
    for a in rows:
        table.add_row(
            str(a.id),
            a.status.value,
            a.severity,
            a.kind,
            a.sensor or "",
            f"{a.started_at:%Y-%m-%d %H:%M}",
            f"{a.ended_at:%Y-%m-%d %H:%M}" if a.ended_at else "ongoing",
            f"{a.peak:.1f}" if a.peak is not None else "",
            str(a.escalation_level),
            "late" if a.late else "",
            a.summary,
        )
    console.print(table)


@alerts_app.command("ack")
def ack(
    alert_id: Annotated[int, typer.Argument(help="The alert's id.")],
    comment: Annotated[str, typer.Option(help="What is being done about it.")],
) -> None:
    """Acknowledge an open alert (stops its escalation); you are the OS user running this."""
    from coldtrace.cli_admin import cli_actor
    from coldtrace.cli_connect import app_connection
    from erp_core.alerts import service
    from erp_core.errors import ErpError

    user = cli_actor()
    with app_connection() as conn:
        try:
            service.acknowledge(
                conn, alert_id=alert_id, user=user, comment=comment, now=datetime.now(UTC)
            )
        except ErpError as err:
            conn.rollback()
            console.print(f"[red]{err}[/red]")
            raise typer.Exit(1) from None
    console.print(f"[green]alert {alert_id} acknowledged by {user}[/green]")


@alerts_app.command("close")
def close(
    alert_id: Annotated[int, typer.Argument(help="The alert's id.")],
    disposition: Annotated[
        str,
        typer.Option(help="'no impact', 'product assessed', 'product rejected' or 'false alarm'."),
    ],
    comment: Annotated[str, typer.Option(help="The assessment behind the disposition.")],
) -> None:
    """Close an acknowledged alert whose condition has ended; you are the OS user running this."""
    from coldchain.alert_states import Disposition
    from coldtrace.cli_admin import cli_actor
    from coldtrace.cli_connect import app_connection
    from erp_core.alerts import service
    from erp_core.errors import ErpError

    try:
        disp = Disposition(disposition)
    except ValueError:
        choices = ", ".join(repr(d.value) for d in Disposition)
        console.print(f"[red]unknown disposition {disposition!r}: use one of {choices}[/red]")
        raise typer.Exit(2) from None
    user = cli_actor()
    with app_connection() as conn:
        try:
            service.close(
                conn,
                alert_id=alert_id,
                user=user,
                disposition=disp,
                comment=comment,
                now=datetime.now(UTC),
            )
        except ErpError as err:
            conn.rollback()
            console.print(f"[red]{err}[/red]")
            raise typer.Exit(1) from None
    console.print(f"[green]alert {alert_id} closed by {user}: {disp.value}[/green]")
