"""Administration commands: ``coldtrace users add/list/disable/enable/set-roles``, ``audit verify``.

They talk to the database directly (COLDTRACE_DATABASE_URL), so the first administrator
can be created before the API runs. Each command is one transaction; account changes are
audited with the acting user ``cli:<operating-system user>`` unless ``--actor`` says
otherwise. Heavy imports happen inside the commands, as in ``coldtrace.cli``.
"""

from __future__ import annotations

import getpass
import os
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from erp_core.auth.models import Role

users_app = typer.Typer(help="ERP users and roles.", no_args_is_help=True)
audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
console = Console()

PASSWORD_ENV = "COLDTRACE_NEW_USER_PASSWORD"  # noqa: S105 - the name of a variable

Username = Annotated[str, typer.Option("--username", help="Login name (lower case).")]
Roles = Annotated[
    list[str],
    typer.Option("--role", help="operator, warehouse, qa, qa_manager or admin; repeatable."),
]
Reason = Annotated[str, typer.Option("--reason", help="Why (goes into the audit trail).")]
Actor = Annotated[
    str | None,
    typer.Option("--actor", help="Acting user for the audit trail (default cli:<os user>)."),
]


def _actor(actor: str | None) -> str:
    return actor or f"cli:{getpass.getuser()}"


def _roles(names: list[str]) -> list[Role]:
    from erp_core.auth.models import Role

    try:
        return [Role(n) for n in names]
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--role") from err


def _fail(err: Exception) -> typer.Exit:
    console.print(f"[red]{err}[/red]")
    return typer.Exit(1)


@users_app.command("add")
def users_add(
    username: Username,
    full_name: Annotated[str, typer.Option("--full-name", help="Name shown on signatures.")],
    role: Roles,
    password_env: Annotated[
        str, typer.Option(help="Read the password from this environment variable if set.")
    ] = PASSWORD_ENV,
    reason: Reason = "user created",
    actor: Actor = None,
) -> None:
    """Create a user; the password comes from $COLDTRACE_NEW_USER_PASSWORD or a prompt."""
    import psycopg

    from coldtrace.db.settings import DatabaseSettings
    from erp_core.audit.service import set_actor
    from erp_core.auth import service
    from erp_core.deps import utc_now
    from erp_core.errors import ErpError

    roles = _roles(role)
    password = os.environ.get(password_env) or typer.prompt(
        f"Password for {username}", hide_input=True, confirmation_prompt=True
    )
    try:
        with psycopg.connect(DatabaseSettings().url) as conn:
            set_actor(conn, user=_actor(actor), reason=reason)
            user = service.create_user(
                conn,
                username=username,
                full_name=full_name,
                password=password,
                roles=roles,
                now=utc_now(),
            )
    except ErpError as err:
        raise _fail(err) from err
    console.print(f"[green]created {user.username} ({', '.join(sorted(user.roles))})[/green]")


@users_app.command("list")
def users_list() -> None:
    """Every user with roles, active flag and login lock state."""
    from datetime import timedelta

    import psycopg

    from coldtrace.db.settings import DatabaseSettings
    from erp_core.auth import service
    from erp_core.auth.models import LoginPolicy
    from erp_core.deps import utc_now
    from erp_core.settings import ApiSettings

    api = ApiSettings()
    policy = LoginPolicy(
        max_failures=api.login_max_failures,
        window=timedelta(minutes=api.login_window_minutes),
        lock=timedelta(minutes=api.login_lock_minutes),
    )
    with psycopg.connect(DatabaseSettings().url) as conn:
        statuses = service.list_users(conn, now=utc_now(), policy=policy)
    table = Table("username", "full name", "roles", "active", "locked until", "failures")
    for s in statuses:
        table.add_row(
            s.user.username,
            s.user.full_name,
            ", ".join(sorted(s.user.roles)),
            "yes" if s.user.active else "no",
            s.locked_until.isoformat() if s.locked_until else "",
            str(s.recent_failures),
        )
    console.print(table)


def _set_active(username: str, *, active: bool, reason: str, actor: str | None) -> None:
    import psycopg

    from coldtrace.db.settings import DatabaseSettings
    from erp_core.audit.service import set_actor
    from erp_core.auth import service
    from erp_core.errors import ErpError

    try:
        with psycopg.connect(DatabaseSettings().url) as conn:
            set_actor(conn, user=_actor(actor), reason=reason)
            service.set_active(conn, username=username, active=active)
    except ErpError as err:
        raise _fail(err) from err
    console.print(f"[green]{username} {'enabled' if active else 'disabled'}[/green]")


@users_app.command("disable")
def users_disable(username: Username, reason: Reason, actor: Actor = None) -> None:
    """Disable a user (users are never deleted)."""
    _set_active(username, active=False, reason=reason, actor=actor)


@users_app.command("enable")
def users_enable(username: Username, reason: Reason, actor: Actor = None) -> None:
    """Enable a disabled user again."""
    _set_active(username, active=True, reason=reason, actor=actor)


@users_app.command("set-roles")
def users_set_roles(username: Username, role: Roles, reason: Reason, actor: Actor = None) -> None:
    """Replace a user's roles (admin never together with qa or qa_manager)."""
    import psycopg

    from coldtrace.db.settings import DatabaseSettings
    from erp_core.audit.service import set_actor
    from erp_core.auth import service
    from erp_core.deps import utc_now
    from erp_core.errors import ErpError

    roles = _roles(role)
    try:
        with psycopg.connect(DatabaseSettings().url) as conn:
            set_actor(conn, user=_actor(actor), reason=reason)
            user = service.set_roles(conn, username=username, roles=roles, now=utc_now())
    except ErpError as err:
        raise _fail(err) from err
    console.print(
        f"[green]{user.username}: {', '.join(sorted(user.roles)) or '(no roles)'}[/green]"
    )


@users_app.command("reset-password")
def users_reset_password(
    username: Annotated[str, typer.Argument(help="Login name of the user.")],
    reason: Reason = "password reset",
    choose: Annotated[
        bool,
        typer.Option(
            "--choose", help="Type the one-time password (prompted) instead of a random one."
        ),
    ] = False,
) -> None:
    """Give a user a one-time password they must replace at the next sign-in.

    A random one is printed once (it is stored only as a hash); with --choose you type
    it. The user's sessions end, and the user can do nothing but set their own password
    until they have; it expires after COLDTRACE_API_TEMPORARY_PASSWORD_HOURS (72).
    """
    import getpass as os_user

    import psycopg

    from coldtrace.db.settings import DatabaseSettings
    from erp_core.audit.service import set_actor
    from erp_core.auth import service, web_sessions
    from erp_core.deps import utc_now
    from erp_core.errors import ErpError

    chosen = None
    if choose:
        chosen = typer.prompt(
            f"One-time password for {username}", hide_input=True, confirmation_prompt=True
        )
    now = utc_now()
    try:
        with psycopg.connect(DatabaseSettings().url) as conn:
            set_actor(conn, user=f"cli:{os_user.getuser()}", reason=reason)
            user, made = service.reset_password(
                conn, username=username, temporary_password=chosen, now=now
            )
            web_sessions.end_all(conn, user=user, at=now, reason="password_changed")
    except ErpError as err:
        raise _fail(err) from err
    console.print(f"[green]{user.username} must set a new password at the next sign-in[/green]")
    if made is not None:
        console.print(f"one-time password (shown once): {made}", highlight=False)


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the audit hash chain; name the first broken entry and exit 1 if there is one."""
    import psycopg

    from coldtrace.db.settings import DatabaseSettings
    from erp_core.audit.service import verify

    with psycopg.connect(DatabaseSettings().url) as conn:
        result = verify(conn)
    if result.broken is None:
        console.print(
            f"[green]audit trail intact: {result.entries} entries, "
            f"head {result.head.seq} {result.head.hash}[/green]"
        )
        return
    b = result.broken
    where = f"entry id {b.entry_id} (seq {b.seq})" if b.entry_id is not None else f"seq {b.seq}"
    console.print(f"[red]audit trail BROKEN at {where}: {b.problem}[/red]")
    console.print(f"checked {result.entries} entries; recorded head {result.head.seq}")
    raise typer.Exit(1)
