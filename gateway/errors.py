"""The gateway's exception tree: one root, `GatewayError`, and a class per failure.

Callers (the CLI, the supervisors in `gateway.app`) catch `GatewayError` or one of its
subclasses and read the structured attributes instead of parsing messages. Errors of
the libraries underneath (sqlite3, pymodbus, aiomqtt, yaml, pydantic) are translated
into these at the module that calls the library, with ``raise ... from err``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One thing wrong in a config file: where (field path, line) and what."""

    field: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "line ?"
        return f"{where}: {self.field or '(whole file)'}: {self.message}"


class ConfigError(GatewayError):
    """A config file that cannot be used; ``issues`` lists every problem found."""

    def __init__(self, path: Path, issues: list[ConfigIssue]) -> None:
        self.path = path
        self.issues = issues
        lines = "\n".join(f"  {path}, {issue}" for issue in issues)
        count = f"{len(issues)} problem{'s' if len(issues) != 1 else ''}"
        super().__init__(f"invalid gateway config {path} ({count}):\n{lines}")


class OutboxError(GatewayError):
    """The durable outbox could not be opened, read or written."""

    def __init__(self, path: Path, action: str, reason: str) -> None:
        self.path = path
        self.action = action
        self.reason = reason
        super().__init__(f"outbox {path}: cannot {action}: {reason}")


class OutboxFullError(OutboxError):
    """The outbox is at its size cap or its disk is full; what it holds is intact.

    Nothing new fits until ingest confirms held items or the disk has room again
    (docs/reliability.md).
    """


class SourceError(GatewayError):
    """A source (one device or reader) failed one attempt; it will retry."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"source {source}: {reason}")


class PublishError(GatewayError):
    """The MQTT broker could not be reached or the connection was lost."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        self.host = host
        self.port = port
        self.reason = reason
        super().__init__(f"MQTT broker {host}:{port}: {reason}")
