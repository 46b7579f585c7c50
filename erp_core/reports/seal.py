"""The report's content hash and the file seal, and checking a PDF against both (pure).

What the hash covers (docs/reports.md): the SHA-256 of the report data's canonical
JSON (``LotReport`` or ``ShipmentReport``: keys sorted, no spaces, UTF-8), the same in
every language. The JSON is embedded in the PDF as the attachment
``coldtrace-report.json`` and the hash is printed on every page, so a printed copy
names the data it shows. The PDF bytes are then sealed: a last line
``%ColdTrace-file-sha256:<hex>`` after ``%%EOF`` (a PDF comment that readers ignore)
holds the SHA-256 of every byte before it, so changing any byte of the file — a glyph
of the printed text, the attachment, the seal — makes ``coldtrace report verify``
refuse it. Neither hash is a secret: they show a copy is unchanged since it was made,
and the system can make the report again to confirm the content hash
(``--against-db``).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Annotated, Any

import pypdfium2 as pdfium
from pydantic import Field, TypeAdapter, ValidationError

from erp_core.reports.models import LotReport, Report, ShipmentReport

ATTACHMENT = "coldtrace-report.json"
_REPORTS: TypeAdapter[Report] = TypeAdapter(
    Annotated[LotReport | ShipmentReport, Field(discriminator="schema_id")]
)
HASH_PREFIX = "sha256:"
_SEAL = re.compile(rb"\n%ColdTrace-file-sha256:([0-9a-f]{64})\n\Z")


def canonical_json(report: Report) -> bytes:
    """The report data as canonical JSON: the bytes the content hash covers."""
    return _canonical(report.model_dump(mode="json"))


def _canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def content_hash(data: bytes) -> str:
    """``sha256:<hex>`` of canonical JSON bytes, as printed on every page."""
    return HASH_PREFIX + hashlib.sha256(data).hexdigest()


def seal(pdf: bytes) -> bytes:
    """The PDF with its file seal appended."""
    return pdf + b"\n%ColdTrace-file-sha256:" + hashlib.sha256(pdf).hexdigest().encode() + b"\n"


@dataclass(frozen=True, slots=True)
class Verification:
    """What ``verify`` found: ``ok`` when there is no problem."""

    content_hash: str | None = None
    report: Report | None = None
    pages: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the file is sealed, unchanged and its pages print its data's hash."""
        return not self.problems


def verify(data: bytes) -> Verification:
    """Check a sealed report file: its seal, its embedded data and the hash on its pages."""
    found = _SEAL.search(data)
    if found is None:
        return Verification(problems=["no ColdTrace seal at the end of the file"])
    body = data[: found.start()]
    if hashlib.sha256(body).hexdigest() != found.group(1).decode():
        return Verification(problems=["the file was changed after it was made (seal mismatch)"])
    try:
        document = pdfium.PdfDocument(body)
    except pdfium.PdfiumError as err:
        return Verification(problems=[f"not a readable PDF: {err}"])
    try:
        return _check_document(document)
    finally:
        document.close()


def _check_document(document: pdfium.PdfDocument) -> Verification:
    embedded = _attachment(document)
    if embedded is None:
        return Verification(problems=[f"no {ATTACHMENT} attached"])
    problems = []
    try:
        report = _REPORTS.validate_json(embedded)
    except ValidationError as err:
        return Verification(problems=[f"the attached data is not a ColdTrace report: {err}"])
    if canonical_json(report) != embedded:
        problems.append("the attached data is not in canonical form")
    digest = content_hash(embedded)
    pages = len(document)
    for index in range(pages):
        page = document[index]
        text = page.get_textpage().get_text_range()
        if digest not in text.replace("\r", "").replace("\n", ""):
            problems.append(f"page {index + 1} does not print the content hash {digest}")
    return Verification(content_hash=digest, report=report, pages=pages, problems=problems)


def _attachment(document: pdfium.PdfDocument) -> bytes | None:
    for index in range(document.count_attachments()):
        attachment = document.get_attachment(index)
        if attachment.get_name() == ATTACHMENT:
            return bytes(attachment.get_data())
    return None
