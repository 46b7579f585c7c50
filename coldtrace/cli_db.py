"""``coldtrace db …``: migrate as the owner, create the roles, compare privileges, retention.

The roles and the privileges are explained in docs/access-and-audit.md ("Database
roles"); the declaration the privileges come from is ``db/grants.py``. Heavy
imports happen inside the commands, as in ``coldtrace.cli``.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

db_app = typer.Typer(help="Database schema, roles and privileges.", no_args_is_help=True)
console = Console()


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Migrate as the owner (COLDTRACE_DATABASE_OWNER_URL), then apply the declared privileges."""
    from alembic.util import CommandError

    from db import migrate, timescale
    from db.roles import DatabaseRoles, RolesError
    from db.settings import DatabaseSettings

    db = DatabaseSettings()
    try:
        missing = migrate.upgrade(
            db.owner_url, revision=revision, roles=DatabaseRoles(db.app_role, db.reader_role)
        )
    except CommandError as err:  # a migration that refuses the data it found, and says why
        console.print(str(err), style="red", markup=False, highlight=False)
        raise typer.Exit(1) from err
    except RolesError as err:
        console.print(f"[red]migrated, but the privileges were not applied: {err}[/red]")
        raise typer.Exit(1) from err
    for obj in missing:
        console.print(f"[yellow]{obj.kind} {obj.name} is not in db/grants.py[/yellow]")
    console.print(
        f"[green]database at {revision}; privileges of {db.app_role} and {db.reader_role} "
        "applied[/green]"
    )
    console.print(timescale.storage(db.owner_url).summary(), markup=False, highlight=False)


@db_app.command("roles")
def db_roles(
    admin_url: Annotated[
        str | None,
        typer.Option(help="A login with CREATEROLE (default COLDTRACE_DATABASE_ADMIN_URL)."),
    ] = None,
) -> None:
    """Create or repair the owner, application and reader roles (once per cluster).

    Passwords come from COLDTRACE_DB_OWNER_PASSWORD, COLDTRACE_DB_APP_PASSWORD and
    COLDTRACE_DB_READER_PASSWORD where set; a role that exists keeps its password otherwise.
    """
    import os

    import psycopg

    from db import roles
    from db.settings import DatabaseSettings

    db = DatabaseSettings()
    url = admin_url or db.admin_url
    if not url:
        console.print("[red]give --admin-url or set COLDTRACE_DATABASE_ADMIN_URL[/red]")
        raise typer.Exit(2)
    owner = str(psycopg.conninfo.conninfo_to_dict(db.owner_url).get("user") or "coldtrace")
    names = roles.DatabaseRoles(db.app_role, db.reader_role)
    passwords = {
        owner: os.environ.get("COLDTRACE_DB_OWNER_PASSWORD"),
        names.app: os.environ.get("COLDTRACE_DB_APP_PASSWORD"),
        names.reader: os.environ.get("COLDTRACE_DB_READER_PASSWORD"),
    }
    with psycopg.connect(url, autocommit=True) as conn:
        done = roles.create(conn, owner=owner, roles=names, passwords=passwords)
    for line in done or ["the roles were already in place"]:
        console.print(line)
    console.print("[green]next: coldtrace db upgrade (as the owner) applies the privileges[/green]")


@db_app.command("privileges")
def db_privileges() -> None:
    """Compare the privileges held with db/grants.py; exit 1 on any difference."""
    import psycopg

    from db import privileges
    from db.settings import DatabaseSettings

    db = DatabaseSettings()
    differences: list[str] = []
    with psycopg.connect(db.owner_url, autocommit=True) as conn:
        differences += [f"not declared: {o.kind} {o.name}" for o in privileges.undeclared(conn)]
        differences += [f"declared but absent: {name}" for name in privileges.stale(conn)]
        for kind, role in (("app", db.app_role), ("reader", db.reader_role)):
            want = privileges.declared(kind)
            for name, has in privileges.held(conn, role).items():
                if has != want.get(name, frozenset()):
                    wanted = sorted(want.get(name, frozenset()))
                    differences.append(f"{role} on {name}: holds {sorted(has)}, declared {wanted}")
    for line in differences:
        console.print(f"[red]{line}[/red]")
    if differences:
        raise typer.Exit(1)
    console.print("[green]the privileges are exactly those declared[/green]")


@db_app.command("retention")
def db_retention(
    before: Annotated[str, typer.Option(help="Delete readings older than this (ISO time).")],
    reason: Annotated[str, typer.Option(help="Why (goes into the audit trail).")],
) -> None:
    """Delete readings older than BEFORE that no lot under retention needs; audited."""
    from datetime import datetime

    import psycopg

    from coldtrace.cli_admin import cli_actor
    from db.settings import DatabaseSettings
    from erp_core.audit.service import set_actor

    try:
        cutoff = datetime.fromisoformat(before)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--before") from err
    if cutoff.tzinfo is None:
        raise typer.BadParameter("give a time zone, e.g. 2024-01-01T00:00Z", param_hint="--before")
    try:
        with psycopg.connect(DatabaseSettings().url) as conn:
            set_actor(conn, user=cli_actor(), reason=reason)
            row = conn.execute("SELECT erp.retention_run(%s, %s)", (cutoff, reason)).fetchone()
    except psycopg.Error as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(1) from err
    console.print(f"[green]{row[0] if row else 0} readings deleted (audited)[/green]")
