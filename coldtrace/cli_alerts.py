"""``coldtrace alerts``: list, acknowledge and close alerts from a terminal.

Each command runs in one transaction of its own against COLDTRACE_DATABASE_URL and
uses the ERP alert services, so the CLI and the API record the same events. The actor
of an acknowledgement is the operating-system account running the command
(``cli:<name>``, as for every other CLI change), never a name typed on the command line.
A close is a Part 11 signature, as on the alert page: ``--user`` names the signer, who
proves it with their password (prompted without echo, or ``--password-stdin``) — a name
alone once let anyone with a shell close an excursion in someone else's name.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

alerts_app = typer.Typer(help="Excursion and sensor alerts.", no_args_is_help=True)
console = Console()
CLOSE_MEANING = "Reviewed: alert closed"  # erp_core.alerts.signed_close.MEANING (a test checks)


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
    user: Annotated[
        str, typer.Option("--user", help="Your login name: the signer (qa or qa_manager).")
    ],
    disposition: Annotated[
        str,
        typer.Option(help="'no impact', 'product assessed', 'product rejected' or 'false alarm'."),
    ],
    reason: Annotated[str, typer.Option(help="The assessment behind the disposition.")],
    meaning: Annotated[
        str, typer.Option(help=f"The signature's meaning, said in full: '{CLOSE_MEANING}'.")
    ],
    lot_disposition: Annotated[
        str | None,
        typer.Option(
            help="For the lots' deviations: use_as_is or reject (needed with 'product assessed')."
        ),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read your password from standard input.")
    ] = False,
) -> None:
    """Disposition an acknowledged, ended alert with your electronic signature.

    The same signed close as the alert page: your password again (prompted without echo,
    or one line on stdin), the meaning said, and the disposition reaches the deviations
    the excursion opened on the exposed lots. Wrong passwords count towards your lock-out.
    """
    from coldchain.alert_states import Disposition
    from coldtrace.cli_admin import cli_actor
    from coldtrace.cli_connect import app_connection
    from coldtrace.cli_users import _keyring, _policy
    from erp_core.alerts import signed_close
    from erp_core.audit.service import set_actor
    from erp_core.auth import service as auth_service
    from erp_core.auth.errors import AuthError
    from erp_core.auth.models import LoginAttempt, Role
    from erp_core.deps import utc_now
    from erp_core.errors import ErpError
    from erp_core.signatures.errors import SignatureError

    try:
        disp = Disposition(disposition)
    except ValueError:
        choices = ", ".join(repr(d.value) for d in Disposition)
        console.print(f"[red]unknown disposition {disposition!r}: use one of {choices}[/red]")
        raise typer.Exit(2) from None
    if meaning.strip().casefold() != CLOSE_MEANING.casefold():
        console.print(f"[red]the meaning of an alert's close is {CLOSE_MEANING!r}: say it[/red]")
        raise typer.Exit(2)
    if lot_disposition not in {None, "use_as_is", "reject"}:
        console.print("[red]--lot-disposition is use_as_is or reject[/red]")
        raise typer.Exit(2)
    if not reason.strip():
        console.print("[red]--reason must say why[/red]")
        raise typer.Exit(2)
    keyring = _keyring()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt(f"Password of {user} (your signature)", hide_input=True)

    def record(attempt: LoginAttempt) -> None:
        with app_connection() as own:
            auth_service.record_attempt(own, attempt=attempt)

    try:
        with app_connection() as conn:
            signer = auth_service.get_user(conn, username=user)
            if not signer.has_any(frozenset({Role.QA, Role.QA_MANAGER})):
                raise AuthError(f"{user} may not close alerts: needs the role qa or qa_manager")
            set_actor(conn, user=signer.username, reason=f"alert closed at the CLI ({cli_actor()})")
            done = signed_close.close_signed(
                conn,
                alert_id=alert_id,
                user=signer,
                password=password,
                disposition=disp,
                chosen=signed_close.chosen_for_lots(lot_disposition),
                comment=reason.strip(),
                clock=utc_now,
                policy=_policy(),
                record_attempt=record,
                signing_key=keyring.current,
                keyring=keyring,
            )
    except (ErpError, SignatureError) as err:
        console.print(f"[red]not closed: {err}[/red]")
        raise typer.Exit(1) from None
    console.print(f"[green]alert {alert_id} closed: {disp.value}[/green]")
    console.print(done.signature.manifestation, highlight=False)
    if done.deviations_closed:
        console.print(f"deviations closed: {', '.join(done.deviations_closed)}")
