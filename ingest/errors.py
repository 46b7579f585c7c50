"""The ingest error tree: one root, structured subclasses."""

from __future__ import annotations


class IngestError(Exception):
    """Root of every error the ingest service raises on purpose."""


class StoreError(IngestError):
    """The database refused or lost a write; the batch stays unacknowledged."""


class BrokerConnectionError(IngestError):
    """The MQTT broker could not be reached or refused the connection."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(f"MQTT broker {host}:{port}: {reason}")
        self.host = host
        self.port = port
        self.reason = reason
