"""Administration commands: ``coldtrace users …`` and ``coldtrace audit …``.

They talk to the database directly as the application role (COLDTRACE_DATABASE_URL), so
the first administrator can be created before the API runs. Each command is one
transaction; account changes are audited with the acting user ``cli:<operating-system
user>``, the account the process runs as (not ``$USER``, which anyone can set) — there
is no option to name someone else. Heavy imports happen inside the commands, as in
``coldtrace.cli``.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from erp_core.audit.keys import Keyring
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


def cli_actor() -> str:
    """``cli:<name of the operating-system account this process runs as>``."""
    uid = os.getuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:  # an account without a passwd entry (some containers)
        name = f"uid-{uid}"
    return f"cli:{name}"


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
            set_actor(conn, user=cli_actor(), reason=reason)
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


def _set_active(username: str, *, active: bool, reason: str) -> None:
    import psycopg

    from coldtrace.db.settings import DatabaseSettings
    from erp_core.audit.service import set_actor
    from erp_core.auth import service
    from erp_core.errors import ErpError

    try:
        with psycopg.connect(DatabaseSettings().url) as conn:
            set_actor(conn, user=cli_actor(), reason=reason)
            service.set_active(conn, username=username, active=active)
    except ErpError as err:
        raise _fail(err) from err
    console.print(f"[green]{username} {'enabled' if active else 'disabled'}[/green]")


@users_app.command("disable")
def users_disable(username: Username, reason: Reason) -> None:
    """Disable a user (users are never deleted)."""
    _set_active(username, active=False, reason=reason)


@users_app.command("enable")
def users_enable(username: Username, reason: Reason) -> None:
    """Enable a disabled user again."""
    _set_active(username, active=True, reason=reason)


@users_app.command("set-roles")
def users_set_roles(username: Username, role: Roles, reason: Reason) -> None:
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
            set_actor(conn, user=cli_actor(), reason=reason)
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
            set_actor(conn, user=cli_actor(), reason=reason)
            user, made = service.reset_password(
                conn, username=username, temporary_password=chosen, now=now
            )
            web_sessions.end_all(conn, user=user, at=now, reason="password_changed")
    except ErpError as err:
        raise _fail(err) from err
    console.print(f"[green]{user.username} must set a new password at the next sign-in[/green]")
    if made is not None:
        console.print(f"one-time password (shown once): {made}", highlight=False)


EXIT_UNANCHORED = 3


def _records(*, need_anchor: bool) -> tuple[Keyring | None, Path | None]:
    from erp_core.audit.errors import RecordKeyError
    from erp_core.audit.keys import load
    from erp_core.audit.settings import RecordSettings

    settings = RecordSettings()
    if need_anchor and (settings.key_file is None or settings.anchor_file is None):
        console.print("[red]set COLDTRACE_RECORD_KEY_FILE and COLDTRACE_RECORD_ANCHOR_FILE[/red]")
        raise typer.Exit(2)
    try:
        keyring = None if settings.key_file is None else load(settings.key_file)
    except RecordKeyError as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(2) from err
    return keyring, settings.anchor_file


@audit_app.command("verify")
def audit_verify() -> None:
    """Walk the hash chain and check it against every external anchor.

    Also checks the signature of every release decision and closed deviation.

    Exit 0: intact and anchored; 1: broken (the chain or an anchor, or a signed record
    whose signature does not verify); 3: the chain is consistent but nothing outside the
    database was there to check it against.
    """
    import psycopg

    from coldtrace.db.settings import DatabaseSettings
    from erp_core.audit.anchoring import verify_anchored
    from erp_core.release.records import forged_records

    keyring, anchor_file = _records(need_anchor=False)
    with psycopg.connect(DatabaseSettings().url) as conn:
        checked = verify_anchored(conn, keyring=keyring, anchor_file=anchor_file)
        forged, legacy = ([], 0) if keyring is None else forged_records(conn, keyring=keyring)
    result, report = checked.chain, checked.anchors
    for problem in forged:
        console.print(f"[red]signed record does NOT VERIFY: {problem}[/red]")
    if legacy:
        console.print(f"note: {legacy} signed record(s) carry unkeyed signatures from before 0018")
    if keyring is None:
        console.print("note: no record key (COLDTRACE_RECORD_KEY_FILE): signatures not checked")
    if result.broken is not None:
        b = result.broken
        where = f"entry id {b.entry_id} (seq {b.seq})" if b.entry_id is not None else f"seq {b.seq}"
        console.print(f"[red]audit trail BROKEN at {where}: {b.problem}[/red]")
        console.print(f"checked {result.entries} entries; recorded head {result.head.seq}")
    if report is not None:
        for problem in report.problems:
            console.print(f"[red]audit trail FAILS its anchor: {problem}[/red]")
        for note in report.notes:
            console.print(f"note: {note}")
    if checked.broken or forged:
        raise typer.Exit(1)
    head = f"{result.entries} entries, head {result.head.seq} {result.head.hash}"
    newest = report.newest if report else None
    if newest is None:
        console.print(
            f"[yellow]audit trail consistent but UNANCHORED ({checked.unanchored_reason}): "
            f"{head}; a chain re-hashed consistently would also pass this check[/yellow]"
        )
        raise typer.Exit(EXIT_UNANCHORED)
    after = (
        f"; entries {newest.seq + 1}..{result.head.seq} are not anchored yet"
        if result.head.seq > newest.seq
        else ""
    )
    console.print(
        f"[green]audit trail intact: {head}; {len(report.anchors) if report else 0} anchors "
        f"hold, the newest at entry {newest.seq} ({newest.at:%Y-%m-%d %H:%M:%S} UTC){after}[/green]"
    )


@audit_app.command("checkpoint")
def audit_checkpoint(
    start: Annotated[
        bool,
        typer.Option(
            "--start",
            help="Start an anchor file for a trail that already has entries (first anchoring "
            "of an existing installation). Never to paper over a lost file: that is a deviation.",
        ),
    ] = False,
) -> None:
    """Anchor the chain's head in the anchor file now (the ERP jobs do it periodically)."""
    import psycopg

    from coldtrace.db.settings import DatabaseSettings
    from erp_core.audit.anchoring import checkpoint
    from erp_core.audit.errors import AnchorError
    from erp_core.deps import utc_now

    keyring, anchor_file = _records(need_anchor=True)
    assert keyring is not None
    assert anchor_file is not None
    try:
        with psycopg.connect(DatabaseSettings().url) as conn:
            anchor = checkpoint(
                conn, keyring=keyring, anchor_file=anchor_file, now=utc_now(), start=start
            )
    except AnchorError as err:
        raise _fail(err) from err
    if anchor is None:
        console.print("nothing new: the chain head is already anchored")
        return
    console.print(f"[green]anchored entry {anchor.seq} {anchor.hash} in {anchor_file}[/green]")


@audit_app.command("acknowledge-restore")
def audit_acknowledge_restore(reason: Reason) -> None:
    """Record, signed, that a restore lost the entries after the last matching anchor."""
    import psycopg

    from coldtrace.db.settings import DatabaseSettings
    from erp_core.audit.anchoring import acknowledge_restore
    from erp_core.audit.errors import AnchorError
    from erp_core.deps import utc_now

    keyring, anchor_file = _records(need_anchor=True)
    assert keyring is not None
    assert anchor_file is not None
    try:
        with psycopg.connect(DatabaseSettings().url) as conn:
            anchor = acknowledge_restore(
                conn,
                keyring=keyring,
                anchor_file=anchor_file,
                now=utc_now(),
                actor=cli_actor(),
                reason=reason,
            )
    except AnchorError as err:
        raise _fail(err) from err
    console.print(
        f"[yellow]recorded: entries after {anchor.matched} were lost in a restore; "
        f"the chain is anchored again at entry {anchor.seq}[/yellow]"
    )


@audit_app.command("keygen")
def audit_keygen(
    key_file: Annotated[Path, typer.Option("--key-file", help="The key file (created 0600).")],
    key_id: Annotated[
        str | None, typer.Option("--key-id", help="Name of the new key (default k<date>).")
    ] = None,
) -> None:
    """Add a new random record key to a key file; it signs from now on, old keys verify."""
    from datetime import UTC, datetime

    from erp_core.audit.errors import RecordKeyError
    from erp_core.audit.keys import new_key_file

    name = key_id or f"k{datetime.now(UTC):%Y%m%d}"
    try:
        key = new_key_file(key_file, key_id=name)
    except RecordKeyError as err:
        raise _fail(err) from err
    console.print(
        f"[green]key {key.key_id} added to {key_file}; it signs from now on.[/green] Back the "
        "file up apart from the database and keep old keys in it (they verify old records)."
    )
