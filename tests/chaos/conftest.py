"""The chaos suite (`make chaos`): faults injected into the whole running chain, one row
each in a table of readings sent, stored, lost and duplicated, and the recovery time.

Not part of `make test` (``testpaths`` leaves this directory out): it takes minutes and
restarts things on purpose. Everything it touches is its own — a Mosquitto per test, a
PostgreSQL cluster in a temporary directory, a tmpfs it mounts (as root; that row is
skipped otherwise), loopback only.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.stack import Stack


@dataclass(frozen=True)
class Row:
    """One fault's outcome."""

    fault: str
    sent: int
    stored: int
    lost: int
    duplicated: int
    recovery_s: float
    note: str = ""


ROWS: list[Row] = []
HEADER = ("fault", "readings sent", "stored", "lost", "duplicated", "recovery (s)", "note")


def table(rows: list[Row]) -> str:
    """The rows as a Markdown table."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows:
        cells = (r.fault, r.sent, r.stored, r.lost, r.duplicated, f"{r.recovery_s:.1f}", r.note)
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


@pytest.fixture
def record() -> list[Row]:
    """Where a scenario puts its row (printed at the end of the session)."""
    return ROWS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not ROWS:
        return
    text = table(ROWS)
    terminalreporter.write_sep("=", "chaos: every reading the gateway numbered, end to end")
    terminalreporter.write_line(text)
    if out := os.environ.get("COLDTRACE_CHAOS_TABLE"):
        Path(out).write_text(text + "\n")


@pytest.fixture
def watched(stacks: list[Stack]) -> Iterator[list[Stack]]:
    """``stacks`` whose crashed children are restarted, as `coldtrace demo` or systemd do."""
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.5):
            for s in list(stacks):
                s.sup.watch()

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    yield stacks
    stop.set()
    t.join(5)
