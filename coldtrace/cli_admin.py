"""Administration commands: ``coldtrace audit …``, and what every admin command shares.

They talk to the database directly as the application role (COLDTRACE_DATABASE_URL), so
the first administrator can be created before the API runs (``coldtrace users …`` lives
in ``coldtrace.cli_users``). Each command is one transaction; changes are audited with
the acting user ``cli:<operating-system user>``, the account the process runs as (not
``$USER``, which anyone can set) — there is no option to name someone else. Heavy
imports happen inside the commands, as in ``coldtrace.cli``.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from erp_core.audit.keys import Keyring

audit_app = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
console = Console()

Reason = Annotated[str, typer.Option("--reason", help="Why (goes into the audit trail).")]


def cli_actor() -> str:
    """``cli:<name of the operating-system account this process runs as>``."""
    uid = os.getuid()
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:  # an account without a passwd entry (some containers)
        name = f"uid-{uid}"
    return f"cli:{name}"


def fail(err: Exception) -> typer.Exit:
    """Print ``err`` in red; the exit (status 1) to raise."""
    console.print(f"[red]{err}[/red]")
    return typer.Exit(1)


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
    from coldtrace.cli_connect import app_connection
    from erp_core.audit.anchoring import verify_anchored
    from erp_core.release.records import forged_records

    keyring, anchor_file = _records(need_anchor=False)
    with app_connection() as conn:
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
    from coldtrace.cli_connect import app_connection
    from erp_core.audit.anchoring import checkpoint
    from erp_core.audit.errors import AnchorError
    from erp_core.deps import utc_now

    keyring, anchor_file = _records(need_anchor=True)
    assert keyring is not None
    assert anchor_file is not None
    try:
        with app_connection() as conn:
            anchor = checkpoint(
                conn, keyring=keyring, anchor_file=anchor_file, now=utc_now(), start=start
            )
    except AnchorError as err:
        raise fail(err) from err
    if anchor is None:
        console.print("nothing new: the chain head is already anchored")
        return
    console.print(f"[green]anchored entry {anchor.seq} {anchor.hash} in {anchor_file}[/green]")


@audit_app.command("acknowledge-restore")
def audit_acknowledge_restore(reason: Reason) -> None:
    """Record, signed, that a restore lost the entries after the last matching anchor."""
    from coldtrace.cli_connect import app_connection
    from erp_core.audit.anchoring import acknowledge_restore
    from erp_core.audit.errors import AnchorError
    from erp_core.deps import utc_now

    keyring, anchor_file = _records(need_anchor=True)
    assert keyring is not None
    assert anchor_file is not None
    try:
        with app_connection() as conn:
            anchor = acknowledge_restore(
                conn,
                keyring=keyring,
                anchor_file=anchor_file,
                now=utc_now(),
                actor=cli_actor(),
                reason=reason,
            )
    except AnchorError as err:
        raise fail(err) from err
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
        raise fail(err) from err
    console.print(
        f"[green]key {key.key_id} added to {key_file}; it signs from now on.[/green] Back the "
        "file up apart from the database and keep old keys in it (they verify old records)."
    )
