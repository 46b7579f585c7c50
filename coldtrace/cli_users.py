"""User commands: ``coldtrace users …`` (accounts, roles, resets, password bindings).

They talk to the database directly as the application role (COLDTRACE_DATABASE_URL) and
read the record key (COLDTRACE_RECORD_KEY_FILE): every password they set is bound with
it (``erp_core.auth.binding``). Each command is one transaction; changes are audited
with the acting user ``cli:<operating-system user>`` (``coldtrace.cli_admin.cli_actor``).

They follow the API's rule for accounts that sign (``erp_core.auth.accounts``): their
password comes from a reset a QA manager confirms (``confirm-reset``), never from the
administrator. The one exception is the console bootstrap: while no other active QA
manager exists, nobody could confirm, so the person types their own password here.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from coldtrace.cli_admin import cli_actor, console, fail

if TYPE_CHECKING:
    from erp_core.audit.keys import Keyring
    from erp_core.auth.models import LoginPolicy, Role
    from erp_core.auth.resets import ResetRequest

users_app = typer.Typer(help="ERP users and roles.", no_args_is_help=True)

PASSWORD_ENV = "COLDTRACE_NEW_USER_PASSWORD"  # noqa: S105 - the name of a variable

Username = Annotated[str, typer.Option("--username", help="Login name (lower case).")]
Roles = Annotated[
    list[str],
    typer.Option("--role", help="operator, warehouse, qa, qa_manager or admin; repeatable."),
]
Reason = Annotated[str, typer.Option("--reason", help="Why (goes into the audit trail).")]


def _roles(names: list[str]) -> list[Role]:
    from erp_core.auth.models import Role

    try:
        return [Role(n) for n in names]
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--role") from err


def _keyring() -> Keyring:
    """The record key ring; exit 2 with the reason when it is not configured."""
    from erp_core.audit.errors import RecordKeyError
    from erp_core.audit.settings import RecordSettings

    try:
        return RecordSettings().load().keyring
    except RecordKeyError as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(2) from err


def _policy() -> LoginPolicy:
    from erp_core.deps import login_policy
    from erp_core.settings import ApiSettings

    return login_policy(ApiSettings())


def _bootstrap(username: str) -> bool:
    """True if no active QA manager other than ``username`` could confirm a reset."""
    from coldtrace.cli_connect import app_connection
    from erp_core.auth.accounts import bootstrap_allowed

    with app_connection() as conn:
        return bootstrap_allowed(conn, username=username)


def _typed_password(username: str, password_env: str | None = None) -> str:
    from_env = os.environ.get(password_env) if password_env else None
    return from_env or typer.prompt(
        f"Password for {username}", hide_input=True, confirmation_prompt=True
    )


def _requested(request: ResetRequest) -> None:
    console.print(
        f"{request.username} has no usable password until a QA manager (not {request.username},"
        f" not the requester) confirms reset {request.id}: `coldtrace users confirm-reset "
        f"{request.id} --username <qa manager>` or POST /api/password-resets/{request.id}/confirm;"
        " the QA manager alone sees the one-time password and hands it over in person",
        highlight=False,
    )


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
    """Create a user; the password comes from $COLDTRACE_NEW_USER_PASSWORD or a prompt.

    An account with a signing role (qa, qa_manager) gets no password here while another
    active QA manager exists: a reset is requested for that QA manager to confirm.
    """
    from coldtrace.cli_connect import app_connection
    from erp_core.audit.service import set_actor
    from erp_core.auth import accounts, rules, service
    from erp_core.auth.errors import AuthError
    from erp_core.deps import utc_now
    from erp_core.errors import ErpError

    roles = _roles(role)
    keyring = _keyring()
    bootstrap = rules.needs_confirmed_reset(roles) and _bootstrap(username)
    typed = None
    if bootstrap or not rules.needs_confirmed_reset(roles):
        typed = _typed_password(username, password_env)
    request = None
    try:
        with app_connection() as conn:
            set_actor(conn, user=cli_actor(), reason=reason)
            if bootstrap:
                if not accounts.bootstrap_allowed(conn, username=username):
                    raise AuthError("another QA manager appeared meanwhile: run the command again")
                user = service.create_user(
                    conn,
                    username=username,
                    full_name=full_name,
                    password=str(typed),
                    roles=roles,
                    now=utc_now(),
                    keyring=keyring,
                )
            else:
                user, request = accounts.create_account(
                    conn,
                    username=username,
                    full_name=full_name,
                    password=typed,
                    roles=roles,
                    requested_by=cli_actor(),
                    reason=reason,
                    now=utc_now(),
                    keyring=keyring,
                    must_change_password=False,  # typed at the console by the person
                )
    except ErpError as err:
        raise fail(err) from err
    console.print(f"[green]created {user.username} ({', '.join(sorted(user.roles))})[/green]")
    if bootstrap:
        console.print(
            "console bootstrap: no other active QA manager could confirm, so the password "
            "typed here is the account's own"
        )
    if request is not None:
        _requested(request)


@users_app.command("list")
def users_list() -> None:
    """Every user with roles, active flag and login lock state."""
    from coldtrace.cli_connect import app_connection
    from erp_core.auth import service
    from erp_core.deps import utc_now

    with app_connection() as conn:
        statuses = service.list_users(conn, now=utc_now(), policy=_policy())
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

    from coldtrace.cli_connect import app_connection
    from erp_core.audit.service import set_actor
    from erp_core.auth import service
    from erp_core.errors import ErpError

    try:
        with app_connection() as conn:
            set_actor(conn, user=cli_actor(), reason=reason)
            service.set_active(conn, username=username, active=active)
    except ErpError as err:
        raise fail(err) from err
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
    """Replace a user's roles (admin never together with qa or qa_manager).

    An account that starts to hold a signing role loses its password until a QA manager
    confirms its reset.
    """
    from coldtrace.cli_connect import app_connection
    from erp_core.audit.service import set_actor
    from erp_core.auth import accounts
    from erp_core.deps import utc_now
    from erp_core.errors import ErpError

    roles = _roles(role)
    keyring = _keyring()
    try:
        with app_connection() as conn:
            set_actor(conn, user=cli_actor(), reason=reason)
            user, request = accounts.set_roles(
                conn,
                username=username,
                roles=roles,
                requested_by=cli_actor(),
                reason=reason,
                now=utc_now(),
                keyring=keyring,
            )
    except ErpError as err:
        raise fail(err) from err
    console.print(
        f"[green]{user.username}: {', '.join(sorted(user.roles)) or '(no roles)'}[/green]"
    )
    if request is not None:
        _requested(request)


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

    For an account with a signing role (qa, qa_manager) this only requests the reset: a
    QA manager confirms it (`confirm-reset`) and alone sees the one-time password. While
    no other active QA manager exists, the person types a new password here instead.
    """
    from coldtrace.cli_connect import app_connection
    from erp_core.audit.service import set_actor
    from erp_core.auth import accounts, rules, service, web_sessions
    from erp_core.auth.errors import SigningAccountPasswordError
    from erp_core.deps import utc_now
    from erp_core.errors import ErpError

    keyring = _keyring()
    now = utc_now()
    try:
        with app_connection() as conn:
            target = service.get_user(conn, username=username)
        signing = rules.needs_confirmed_reset(target.roles)
        if signing and choose:
            raise SigningAccountPasswordError(username)
        bootstrap = signing and _bootstrap(username)
        chosen = None
        if choose or bootstrap:
            prompt = "New password" if bootstrap else "One-time password"
            chosen = typer.prompt(
                f"{prompt} for {username}", hide_input=True, confirmation_prompt=True
            )
        with app_connection() as conn:
            set_actor(conn, user=cli_actor(), reason=reason)
            if bootstrap:
                user = service.set_password(
                    conn, username=username, password=str(chosen), now=now, keyring=keyring
                )
                web_sessions.end_all(conn, user=user, at=now, reason="password_changed")
                done = None
            else:
                done = accounts.reset(
                    conn,
                    username=username,
                    temporary_password=chosen,
                    requested_by=cli_actor(),
                    reason=reason,
                    now=now,
                    keyring=keyring,
                )
    except ErpError as err:
        raise fail(err) from err
    if done is None:
        console.print(
            f"[green]console bootstrap: {username} set a new password here[/green] (no other "
            "active QA manager could confirm a reset)"
        )
    elif done.request is not None:
        _requested(done.request)
    else:
        console.print(f"[green]{username} must set a new password at the next sign-in[/green]")
        if done.temporary_password is not None:
            console.print(
                f"one-time password (shown once): {done.temporary_password}", highlight=False
            )


@users_app.command("resets")
def users_resets() -> None:
    """Resets of accounts that sign, waiting for a QA manager's confirmation."""
    from coldtrace.cli_connect import app_connection
    from erp_core.auth import resets
    from erp_core.deps import utc_now

    policy = _policy()
    with app_connection() as conn:
        waiting = resets.open_requests(conn, now=utc_now(), policy=policy)
    table = Table("id", "username", "requested by", "requested at", "reason", "expires")
    for r in waiting:
        table.add_row(
            str(r.id),
            r.username,
            r.requested_by,
            f"{r.requested_at:%Y-%m-%d %H:%M}",
            r.reason,
            f"{r.expires_at(policy):%Y-%m-%d %H:%M}",
        )
    console.print(table)


@users_app.command("confirm-reset")
def users_confirm_reset(
    reset_id: Annotated[int, typer.Argument(help="The reset's id (`coldtrace users resets`).")],
    username: Annotated[
        str, typer.Option("--username", help="Your login name (an active qa_manager).")
    ],
    comment: Annotated[
        str | None, typer.Option(help="e.g. how you checked the person's identity.")
    ] = None,
) -> None:
    """Confirm a reset as a QA manager: your password again (an electronic signature).

    Prints the account's one-time password once, to you only: hand it to the person in
    person. The confirmation is audited and signed ("Password reset confirmed").
    """
    from coldtrace.cli_connect import app_connection
    from erp_core.auth import resets, service
    from erp_core.auth.models import LoginAttempt
    from erp_core.deps import utc_now
    from erp_core.errors import ErpError
    from erp_core.signatures.errors import SignatureError

    keyring = _keyring()
    password = typer.prompt(f"Password of {username} (your signature)", hide_input=True)

    def record(attempt: LoginAttempt) -> None:
        with app_connection() as own:
            service.record_attempt(own, attempt=attempt)

    try:
        with app_connection() as conn:
            confirmer = service.get_user(conn, username=username)
            done = resets.confirm(
                conn,
                reset_id=reset_id,
                confirmer=confirmer,
                password=password,
                clock=utc_now,
                policy=_policy(),
                record_attempt=record,
                keyring=keyring,
                comment=comment,
                source=cli_actor(),
            )
    except (ErpError, SignatureError) as err:
        raise fail(err) from err
    console.print(f"[green]reset {reset_id} confirmed: {done.signature.manifestation}[/green]")
    console.print(
        f"one-time password of {done.user.username} (shown once; hand it over in person, "
        f"it must be replaced at the first sign-in): {done.temporary_password}",
        highlight=False,
    )


@users_app.command("bind-passwords")
def users_bind_passwords(
    reason: Reason = "password hashes bound to the record key (upgrade to 0019)",
) -> None:
    """Bind the password hashes present at the upgrade to 0019 to the record key (once).

    Until then those accounts cannot sign in. A hash without a binding that was written
    after the upgrade is refused, not bound (have its password reset); a binding that
    does not verify is reported. Exit 1 if any account is left unusable.
    """
    from coldtrace.cli_connect import app_connection
    from erp_core.audit.service import set_actor
    from erp_core.auth import accounts

    keyring = _keyring()
    with app_connection() as conn:
        set_actor(conn, user=cli_actor(), reason=reason)
        report = accounts.bind_passwords(conn, keyring=keyring)
    console.print(
        f"[green]bound {len(report.bound)} password(s) with key {keyring.current.key_id}"
        f"[/green]{': ' + ', '.join(report.bound) if report.bound else ''};"
        f" {len(report.already)} already bound",
        highlight=False,
    )
    for name, why in report.refused.items():
        console.print(f"[red]{name}: NOT bound: {why}[/red]", highlight=False)
    if report.refused:
        raise typer.Exit(1)
