"""``coldtrace report``: make a lot's or a shipment's PDF report, and check a report file.

``report lot`` and ``report shipment`` read COLDTRACE_DATABASE_URL (the application
role) in one transaction (the history read may bring the reading rollup up to date) and
check the signatures they print with the record key (COLDTRACE_RECORD_KEY_FILE), as the API does.
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
    from erp_core.reports.render import report_pdf
    from erp_core.reports.seal import canonical_json, content_hash
    from erp_core.reports.service import lot_report
    from erp_core.web.format import site_zone, zone_from_env

    _check_lang(lang)
    keyring = RecordSettings().load().keyring
    with psycopg.connect(DatabaseSettings().url) as conn:
        lot_id = _lot_id(conn, lot)
        report = lot_report(conn, lot_id=lot_id, now=datetime.now(UTC), keyring=keyring)
    target = output or Path(f"lot-{report.header.lot_number}-{lang}.pdf")
    with site_zone(zone_from_env()):
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


@report_app.command("shipment")
def shipment(
    reference: Annotated[str, typer.Argument(help="Shipment reference, or #id.")],
    lang: Annotated[str, typer.Option(help="en or zh_CN.")] = "en",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="PDF file.")] = None,
) -> None:
    """Write the shipment report (the shipment, then each lot on board) as a sealed PDF."""
    import psycopg

    from db.settings import DatabaseSettings
    from erp_core.audit.settings import RecordSettings
    from erp_core.reports.render import report_pdf
    from erp_core.reports.seal import canonical_json, content_hash
    from erp_core.reports.service import shipment_report
    from erp_core.shipments.service import list_shipments
    from erp_core.web.format import site_zone, zone_from_env

    _check_lang(lang)
    keyring = RecordSettings().load().keyring
    with psycopg.connect(DatabaseSettings().url) as conn:
        if reference.startswith("#") and reference[1:].isdigit():
            shipment_id = int(reference[1:])
        else:
            found = [s.id for s in list_shipments(conn) if s.reference == reference]
            if len(found) != 1:
                console.print(f"[red]{len(found)} shipments with reference {reference!r}[/red]")
                raise typer.Exit(2)
            shipment_id = found[0]
        report = shipment_report(
            conn, shipment_id=shipment_id, now=datetime.now(UTC), keyring=keyring
        )
    target = output or Path(f"shipment-{report.shipment.reference}-{lang}.pdf")
    with site_zone(zone_from_env()):
        target.write_bytes(report_pdf(report, locale=lang))
    digest = content_hash(canonical_json(report))
    console.print(f"{target}: shipment {report.shipment.reference}, {digest}")


def _check_lang(lang: str) -> None:
    from erp_core.reports.i18n import LOCALES

    if lang not in LOCALES:
        console.print(f"[red]unknown language {lang!r}: use {' or '.join(LOCALES)}[/red]")
        raise typer.Exit(2)
    from erp_core.web.format import SiteZoneError, zone_from_env

    try:
        zone_from_env()  # the zone the report's times are printed in
    except SiteZoneError as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(2) from err


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
    from erp_core.reports.models import LotReport

    report = result.report
    assert report is not None
    what = (
        f"lot {report.header.lot_number}"
        if isinstance(report, LotReport)
        else f"shipment {report.shipment.reference}"
    )
    console.print(
        f"[green]OK[/green] {file}: {what}, made "
        f"{report.generated_at:%Y-%m-%d %H:%M:%S} UTC, {result.pages} page(s), "
        f"{result.content_hash}"
    )


def _against_db(result: Verification) -> Verification:
    """The result, refused if the database now gives other data for the same report time."""
    import dataclasses

    import psycopg

    from db.settings import DatabaseSettings
    from erp_core.audit.settings import RecordSettings
    from erp_core.reports.models import LotReport
    from erp_core.reports.seal import canonical_json, content_hash
    from erp_core.reports.service import lot_report, shipment_report

    made = result.report
    assert made is not None
    keyring = RecordSettings().load().keyring
    with psycopg.connect(DatabaseSettings().url) as conn:
        again = (
            lot_report(conn, lot_id=made.header.lot_id, now=made.generated_at, keyring=keyring)
            if isinstance(made, LotReport)
            else shipment_report(
                conn,
                shipment_id=made.shipment.shipment_id,
                now=made.generated_at,
                keyring=keyring,
            )
        )
    digest = content_hash(canonical_json(again))
    if digest == result.content_hash:
        return result
    problem = f"the system now gives {digest} for this report at the report's time"
    return dataclasses.replace(result, problems=[problem])
