"""Prometheus metrics of the ingest worker (served on /metrics when a port is set)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram


@dataclass
class IngestMetrics:
    """Counters a worker updates after each committed flush."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.messages = Counter("coldtrace_ingest_messages", "MQTT messages committed", registry=r)
        self.stored = Counter("coldtrace_ingest_readings_stored", "New readings stored", registry=r)
        self.duplicates = Counter(
            "coldtrace_ingest_readings_duplicate", "Re-delivered readings absorbed", registry=r
        )
        self.dead_letters = Counter(
            "coldtrace_ingest_dead_letters", "Messages or items dead-lettered", registry=r
        )
        self.flush_seconds = Histogram(
            "coldtrace_ingest_flush_seconds", "Time to commit one flush", registry=r
        )
