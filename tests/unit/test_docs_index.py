"""docs/index.md is the newcomer's entry point: it lists every page of docs/, and only those."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_index_lists_every_doc_page_and_no_missing_one() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(([\w.-]+\.md)\)", index))
    pages = {p.name for p in DOCS.glob("*.md")} - {"index.md"}
    assert pages - linked == set(), "pages missing from docs/index.md"
    assert linked - pages == set(), "docs/index.md links pages that do not exist"
