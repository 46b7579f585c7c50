"""The lot temperature report as QA files it, against a real PostgreSQL: the PDF from the
API in English and Chinese, page 1 rendered to an image and its text extracted (lot number,
MKT, the signature's meaning, the content hash on every page), and `coldtrace report
verify` accepting the file and refusing a copy with one changed byte.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from typer.testing import CliRunner

from coldtrace.cli import app as cli
from erp_core.reports.seal import verify
from tests.integration.api_client import Api
from tests.integration.test_release import NOW, PASSWORD, WHY, api, excursion, fridge_with_lot  # noqa: F401

LOT = "RPT-7<b>"  # markup in a lot number is printed as text


def released_lot_with_excursion(app: Api, db_url: str, *, release: bool = True) -> int:
    """A lot with a 10-minute excursion to 9 °C, dispositioned "use as is" and released."""
    hot = (NOW - timedelta(hours=2), 10, 9.0)
    lot, sensor = fridge_with_lot(app, db_url, code="FR", lot_number=LOT, hot=hot)
    excursion(db_url, sensor, hot)
    (dev,) = app.get("qa", f"/api/lots/{lot}/deviations")
    close = {
        "disposition": "use_as_is",
        "comment": "10 min at 9 °C: no impact",
        "password": PASSWORD,
    }
    app.post("qa", f"/api/deviations/{dev['id']}/disposition", close, 200)
    if release:
        released(app, lot)
    return lot


def released(app: Api, lot: int, *, who: str = "qa", justification: str | None = None) -> None:
    body = {"action": "release", "password": PASSWORD, "justification": justification}
    app.post(who, f"/api/lots/{lot}/release", body, 200)


def overridden(app: Api, lot: int) -> None:
    """Failed rules overridden with four eyes: boss proposes, boss2 approves (migration 0029)."""
    failed = sorted(r["rule"] for r in app.get("qa", f"/api/lots/{lot}/release")["failed_rules"])
    assert failed, "an override needs a failed rule"
    propose = {"password": PASSWORD, "justification": WHY, "confirmed_rules": failed}
    made = app.post("boss", f"/api/lots/{lot}/release/overrides", propose, 201)
    approve = {"password": PASSWORD, "confirmed_rules": failed}
    app.post("boss2", f"/api/release/overrides/{made['override_id']}/approval", approve, 200)


def fetch(app: Api, lot: int, lang: str) -> tuple[bytes, str]:
    response = app.client.get(f"/api/lots/{lot}/report.pdf?lang={lang}", headers=app.headers("op"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    return response.content, response.headers["x-content-hash"]


def page_texts(pdf: bytes, image: Path) -> list[str]:
    """Every page's text; page 1 also rendered to ``image`` (PNG)."""
    document = pdfium.PdfDocument(pdf)
    document[0].render(scale=2).to_pil().save(image)
    texts = [document[i].get_textpage().get_text_range() for i in range(len(document))]
    document.close()
    return [t.replace("\r\n", "\n") for t in texts]


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("en", ["Lot temperature report", "Mean kinetic temperature", "Use as is"]),
        ("zh_CN", ["批次温度报告", "平均动力学温度", "签名含义", "已放行"]),
    ],
)
def test_report_pdf_page_one_shows_lot_mkt_signature_and_hash(
    api: Api,  # noqa: F811 - the fixture
    db_url: str,
    tmp_path: Path,
    lang: str,
    words: list[str],
) -> None:
    lot = released_lot_with_excursion(api, db_url)
    stats = api.get("op", f"/api/lots/{lot}/history")["stats"]
    pdf, digest = fetch(api, lot, lang)
    texts = page_texts(pdf, tmp_path / f"page1-{lang}.png")
    first = texts[0]
    assert LOT in first
    assert f"{stats['mkt']:.2f} °C" in first  # the history's MKT, as the release saw it
    assert "Released" in first  # the signature's meaning, as signed
    assert "Released · Released" not in " ".join(first.split())  # the action once
    assert "Qa Person" in first  # the printed name (Part 11 §11.50)
    assert all(digest in t.replace("\n", "") for t in texts), "hash on every page"
    for word in words:
        assert word in "".join(texts).replace("\n", ""), word
    assert (tmp_path / f"page1-{lang}.png").stat().st_size > 20_000
    found = verify(pdf)
    assert found.ok, found.problems
    assert found.content_hash == digest
    assert found.report is not None
    assert found.report.header.lot_number == LOT
    assert [x.disposition for x in found.report.excursions] == ["use_as_is"]
    assert [s.meaning for s in found.report.signatures] == ["Released"]
    assert found.report.stats is not None
    assert found.report.stats.mkt == stats["mkt"]


def test_verify_accepts_the_file_and_refuses_one_changed_byte(
    api: Api,  # noqa: F811 - the fixture
    db_url: str,
    tmp_path: Path,
) -> None:
    lot = released_lot_with_excursion(api, db_url)
    pdf, digest = fetch(api, lot, "en")
    assert api.client.get(f"/api/lots/{lot}/report.pdf").status_code == 401  # signed in only
    missing = api.client.get("/api/lots/999999/report.pdf", headers=api.headers("op"))
    assert missing.status_code == 404
    good = tmp_path / "report.pdf"
    good.write_bytes(pdf)
    runner = CliRunner()
    result = runner.invoke(cli, ["report", "verify", str(good)])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output
    assert digest in result.output.replace("\n", "")
    # One changed byte anywhere is refused: inside every stream of the file (the pages'
    # text, the fonts, the attached data; compressed, so found by their "stream" keyword),
    # and in the seal itself.
    positions = [m.end() + 10 for m in re.finditer(rb"stream\r?\n", pdf)]
    assert len(positions) > 5
    for position in [*positions, len(pdf) - 10]:
        bad = bytearray(pdf)
        bad[position] ^= 0x01
        assert not verify(bytes(bad)).ok, position
    copy = tmp_path / "changed.pdf"
    bad = bytearray(pdf)
    bad[positions[0]] ^= 0x01
    copy.write_bytes(bytes(bad))
    refused = runner.invoke(cli, ["report", "verify", str(copy)])
    assert refused.exit_code == 1, refused.output
    assert "REFUSED" in refused.output
    assert "changed" in refused.output


def test_report_from_the_cli_in_chinese(
    api: Api,  # noqa: F811 - the fixture
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lot = released_lot_with_excursion(api, db_url)
    monkeypatch.setenv("COLDTRACE_DATABASE_URL", db_url)
    target = tmp_path / "zh.pdf"
    runner = CliRunner()
    made = runner.invoke(cli, ["report", "lot", LOT, "--lang", "zh_CN", "-o", str(target)])
    assert made.exit_code == 0, made.output
    found = verify(target.read_bytes())
    assert found.ok, found.problems
    assert found.report is not None
    assert found.report.header.lot_id == lot
    assert "批次温度报告" in page_texts(target.read_bytes(), tmp_path / "zh.png")[0]
    unknown = runner.invoke(cli, ["report", "lot", "NO-SUCH-LOT"])
    assert unknown.exit_code == 2


def test_shipment_report_has_the_trip_and_each_lot_and_verifies(
    api: Api,  # noqa: F811 - the fixture
    db_url: str,
    tmp_path: Path,
) -> None:
    lot = released_lot_with_excursion(api, db_url, release=False)
    (fridge,) = [x for x in api.get("admin", "/api/locations") if x["code"] == "FR"]
    truck = api.post(
        "admin",
        "/api/locations",
        {"code": "TRK-9", "name": "Truck 9", "kind": "truck", "parent_id": fridge["parent_id"]},
    )
    ship = api.post(
        "wh",
        "/api/shipments",
        {
            "reference": "SH-RPT-1",
            "truck_location_id": truck["id"],
            "origin_location_id": fridge["id"],
            "destination_location_id": fridge["id"],
            "lots": [{"lot_id": lot, "quantity": 10}],
        },
    )
    departed = (NOW - timedelta(minutes=30)).isoformat()
    api.post("wh", f"/api/shipments/{ship['id']}/depart", {"time": departed}, 200)
    # the truck has no sensor: the record has a gap, so two QA managers override
    overridden(api, lot)
    response = api.client.get(
        f"/api/shipments/{ship['id']}/report.pdf?lang=zh_CN", headers=api.headers("op")
    )
    assert response.status_code == 200, response.text
    texts = page_texts(response.content, tmp_path / "shipment-page1.png")
    first = texts[0].replace("\n", "")
    assert "运输温度报告" in first
    assert "SH-RPT-1" in first
    assert "TRK-9" in first
    assert "运输中" in first  # not arrived yet
    assert LOT in first  # the lots-on-board table
    later = "".join(texts[1:]).replace("\n", "")
    assert "Approved override" in later  # the second QA manager's signature follows
    assert "Proposed override" in later  # after the first one's (Part 11 §11.50)
    assert WHY[:40] in later  # with its justification
    assert "读数覆盖批次存续期的" in later  # a rule's evidence, worded in Chinese
    found = verify(response.content)
    assert found.ok, found.problems
    assert found.report is not None
    (signed,) = found.report.lots
    assert [s.meaning for s in signed.signatures] == ["Proposed override", "Approved override"]
    assert [s.username for s in signed.signatures] == ["boss", "boss2"]
    assert found.content_hash == response.headers["x-content-hash"]
    runner = CliRunner()
    good = tmp_path / "shipment.pdf"
    good.write_bytes(response.content)
    result = runner.invoke(cli, ["report", "verify", str(good)])
    assert result.exit_code == 0, result.output
    assert "shipment SH-RPT-1" in " ".join(result.output.split())
