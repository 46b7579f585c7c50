"""docs/schema.md carries the privilege declaration as it is (db/grants.py)."""

from __future__ import annotations

from pathlib import Path

from db import grants

DOC = Path(__file__).resolve().parents[2] / "docs" / "schema.md"
START = "<!-- generated: python -m db.grants -->\n"
END = "<!-- end of generated -->"


def test_schema_doc_lists_every_declared_object() -> None:
    text = DOC.read_text()
    generated = text[text.index(START) + len(START) : text.index(END)]
    assert generated == grants.markdown(), (
        "docs/schema.md is out of date: run `python -m db.grants` and paste the "
        "output between its markers"
    )
