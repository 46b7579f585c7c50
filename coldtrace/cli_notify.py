"""``coldtrace notifier`` and ``coldtrace recipients …``: deliver alerts, manage who gets them.

Registered on the main app by `register`; imports of the server parts happen inside
each command, as in ``coldtrace.cli``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

recipients_app = typer.Typer(help="Who receives alerts, over which channel.", no_args_is_help=True)
console = Console()
T = TypeVar("T")

Site = Annotated[str | None, typer.Option(help="Only this site (default: every site).")]


def _with_conn(action: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``action(conn)`` in one committed transaction on COLDTRACE_DATABASE_URL."""
    from psycopg import AsyncConnection

    from db.settings import DatabaseSettings

    async def _run() -> T:
        async with await AsyncConnection.connect(DatabaseSettings().url) as conn:
            return await action(conn)  # the context manager commits on success

    return asyncio.run(_run())


def notifier(
    worker: Annotated[str | None, typer.Option(help="Name of this notifier.")] = None,
    log_level: Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, …")] = "INFO",
    plain_logs: Annotated[bool, typer.Option("--plain-logs", help="Plain log lines.")] = False,
) -> None:
    """Deliver alert notifications until SIGTERM/Ctrl-C; settings COLDTRACE_NOTIFY_*."""
    import signal

    from coldtrace import logs
    from db.settings import DatabaseSettings
    from ingest.notify.jobs import alert_jobs
    from ingest.notify.main import run_notifier
    from ingest.notify.settings import NotifySettings

    logs.setup(log_level, plain=plain_logs)
    settings = NotifySettings()
    if worker:
        settings = settings.model_copy(update={"worker": worker})
    db_url = DatabaseSettings().url
    jobs = (
        alert_jobs(db_url, escalate_after_minutes=settings.escalate_after_minutes)
        if settings.run_alert_jobs
        else []
    )

    async def _run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_notifier(settings, db_url, stop, jobs=jobs)

    asyncio.run(_run())


@recipients_app.command("add")
def recipients_add(
    name: Annotated[str, typer.Argument(help="Full name (unique).")],
    email: Annotated[str | None, typer.Option(help="E-mail address.")] = None,
    phone: Annotated[str | None, typer.Option(help="Phone for SMS and voice, E.164.")] = None,
    webhook_url: Annotated[str | None, typer.Option(help="Webhook URL (machine endpoint).")] = None,
    role: Annotated[str, typer.Option(help="qa, qa_manager, warehouse, … or system.")] = "qa",
    site: Site = None,
) -> None:
    """Add a recipient."""
    from ingest.notify import admin
    from ingest.notify.errors import RecipientError

    try:
        rid = _with_conn(
            lambda c: admin.add_recipient(
                c, name=name, email=email, phone=phone, webhook_url=webhook_url, role=role,
                site=site,
            )
        )  # fmt: skip
    except RecipientError as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(2) from err
    console.print(f"recipient {rid}: {name}")


@recipients_app.command("deactivate")
def recipients_deactivate(name: Annotated[str, typer.Argument(help="Recipient name.")]) -> None:
    """Stop sending to a recipient (the row and its deliveries stay)."""
    from ingest.notify import admin
    from ingest.notify.errors import RecipientError

    try:
        _with_conn(lambda c: admin.set_active(c, name=name, active=False))
    except RecipientError as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(2) from err
    console.print(f"{name} deactivated")


@recipients_app.command("route")
def recipients_route(
    channel: Annotated[str, typer.Argument(help="email, sms, voice, webhook or mqtt.")],
    to: Annotated[str | None, typer.Option("--to", help="One recipient, by name.")] = None,
    role: Annotated[str | None, typer.Option(help="Every active recipient of a role.")] = None,
    site: Site = None,
    min_severity: Annotated[str, typer.Option(help="info, warning or critical.")] = "warning",
    kind: Annotated[list[str] | None, typer.Option(help="Alert kind (repeat; all).")] = None,
    event: Annotated[
        list[str] | None, typer.Option(help="Event type (repeat; default opened, escalated).")
    ] = None,
    min_level: Annotated[int, typer.Option(help="From this escalation level on.")] = 0,
) -> None:
    """Add a route: which alerts reach a recipient (or a role) over a channel."""
    from ingest.notify import admin
    from ingest.notify.errors import RecipientError

    try:
        rid = _with_conn(
            lambda c: admin.add_route(
                c, channel=channel, recipient=to, role=role, site=site,
                min_severity=min_severity, kinds=kind, events=event or ("opened", "escalated"),
                min_level=min_level,
            )
        )  # fmt: skip
    except RecipientError as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(2) from err
    console.print(f"route {rid}: {channel} to {to or 'role ' + str(role)}")


@recipients_app.command("list")
def recipients_list() -> None:
    """Show recipients and routes."""
    from ingest.notify.store import load_recipients, load_routes

    async def _load(c: Any) -> tuple[Any, Any]:
        return await load_recipients(c), await load_routes(c)

    people, routes = _with_conn(_load)
    table = Table("id", "name", "role", "site", "email", "phone", "webhook", "active")
    for r in people:
        table.add_row(str(r.id), r.name, r.role, r.site or "*", r.email or "", r.phone or "",
                      r.webhook_url or "", "yes" if r.active else "no")  # fmt: skip
    console.print(table)
    names = {r.id: r.name for r in people}
    table = Table("id", "who", "channel", "site", "min severity", "kinds", "events", "from level")
    for rt in routes:
        who = names.get(rt.recipient_id or -1) or f"role {rt.role}"
        table.add_row(str(rt.id), who, rt.channel, rt.site or "*", rt.min_severity,
                      ",".join(sorted(rt.kinds)) if rt.kinds else "*",
                      ",".join(sorted(rt.events)), str(rt.min_level))  # fmt: skip
    console.print(table)


@recipients_app.command("check")
def recipients_check() -> None:
    """Exit 1 if an alert would reach fewer than two named people at once, or a delivery failed."""
    from ingest.notify import admin

    async def _load(c: Any) -> tuple[Any, Any]:
        return await admin.coverage_gaps_in_db(c), await admin.problems(c)

    gaps, problems = _with_conn(_load)
    for gap in gaps:
        console.print(f"[red]routing gap:[/red] {gap}")
    for p in problems:
        console.print(
            f"[red]{p['problem']}:[/red] alert {p['alert_id']} event {p['event_id']} "
            f"{p['channel'] or ''} {p['recipient'] or ''} — {p['error']}"
        )
    if gaps or problems:
        raise typer.Exit(1)
    console.print("[green]routing meets the two-person rule; no failed deliveries[/green]")


def register(app: typer.Typer) -> None:
    """Add the notifier commands to the main ``coldtrace`` app."""
    app.command("notifier")(notifier)
    app.add_typer(recipients_app, name="recipients")
