"""``coldtrace report``: make a lot's PDF temperature report, and check a report file.

``report lot`` reads COLDTRACE_DATABASE_URL (the application role) in one transaction
(the history read may bring the reading rollup up to date) and checks the signatures
it prints with the record key (COLDTRACE_RECORD_KEY_FILE), as the API does.
``report verify`` needs neither, unless ``--against-db`` asks the system to make the
report again at its time and compare.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from psycopg import Connection

    from erp_core.reports.seal import Verification

report_app = typer.Typer(help="PDF reports: make them, check them.", no_args_is_help=True)
console = Console()


@report_app.command("lot")
def lot(
    lot: Annotated[str, typer.Argument(help="Lot number, or #id for the lot's id.")],
    lang: Annotated[str, typer.Option(help="en or zh_CN.")] = "en",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="PDF file.")] = None,
) -> None:
    """Write the lot temperature report as a sealed PDF and print its content hash."""
    import psycopg

    from db.settings import DatabaseSettings
    from erp_core.audit.settings import RecordSettings
    from erp_core.reports.i18n import LOCALES
    from erp_core.reports.render import report_pdf
    from erp_core.reports.seal import canonical_json, content_hash
    from erp_core.reports.service import lot_report

    if lang not in LOCALES:
        console.print(f"[red]unknown language {lang!r}: use {' or '.join(LOCALES)}[/red]")
        raise typer.Exit(2)
    keyring = RecordSettings().load().keyring
    with psycopg.connect(DatabaseSettings().url) as conn:
        lot_id = _lot_id(conn, lot)
        report = lot_report(conn, lot_id=lot_id, now=datetime.now(UTC), keyring=keyring)
    target = output or Path(f"lot-{report.header.lot_number}-{lang}.pdf")
    target.write_bytes(report_pdf(report, locale=lang))
    digest = content_hash(canonical_json(report))
    console.print(f"{target}: lot {report.header.lot_number}, {digest}")


def _lot_id(conn: Connection[Any], lot: str) -> int:
    from erp_core.lots.service import list_lots

    if lot.startswith("#") and lot[1:].isdigit():
        return int(lot[1:])
    found = [x.id for x in list_lots(conn) if x.lot_number == lot]
    if len(found) != 1:
        console.print(
            f"[red]{len(found)} lots numbered {lot!r}"
            + (": name one by its id, #ID[/red]" if found else "[/red]")
        )
        raise typer.Exit(2)
    return found[0]


@report_app.command("verify")
def verify(
    file: Annotated[Path, typer.Argument(help="A report PDF made by ColdTrace.")],
    against_db: Annotated[
        bool, typer.Option(help="Also make the report again from the database and compare.")
    ] = False,
) -> None:
    """Check a report file: its seal, its attached data, the hash printed on every page."""
    from erp_core.reports.seal import verify as check

    result = check(file.read_bytes())
    if result.ok and against_db and result.report is not None:
        result = _against_db(result)
    if not result.ok:
        for problem in result.problems:
            console.print(f"[red]REFUSED[/red] {problem}")
        raise typer.Exit(1)
    report = result.report
    assert report is not None
    console.print(
        f"[green]OK[/green] {file}: lot {report.header.lot_number}, made "
        f"{report.generated_at:%Y-%m-%d %H:%M:%S} UTC, {result.pages} page(s), "
        f"{result.content_hash}"
    )


def _against_db(result: Verification) -> Verification:
    """The result, refused if the database now gives other data for the same report time."""
    import dataclasses

    import psycopg

    from db.settings import DatabaseSettings
    from erp_core.audit.settings import RecordSettings
    from erp_core.reports.seal import canonical_json, content_hash
    from erp_core.reports.service import lot_report

    assert result.report is not None
    keyring = RecordSettings().load().keyring
    with psycopg.connect(DatabaseSettings().url) as conn:
        again = lot_report(
            conn,
            lot_id=result.report.header.lot_id,
            now=result.report.generated_at,
            keyring=keyring,
        )
    digest = content_hash(canonical_json(again))
    if digest == result.content_hash:
        return result
    problem = f"the system now gives {digest} for this lot at the report's time"
    return dataclasses.replace(result, problems=[problem])
