"""The ``stacks`` fixture: whole-chain process stacks (tests/integration/stack.py), stopped
after the test, whose logs must show no traceback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.stack import Stack


@pytest.fixture
def stacks(tmp_path: Path) -> Iterator[list[Stack]]:
    started: list[Stack] = []
    yield started
    for s in started:
        s.sup.stop()
        for child in s.sup.children.values():
            log = child.log_path.read_text(errors="replace") if child.log_path.exists() else ""
            assert "Traceback" not in log, f"{child.name} crashed:\n{log[-3000:]}"
