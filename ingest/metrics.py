"""Prometheus metrics of the ingest worker (served on /metrics when a port is set)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ingest.intake import Intake


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
        self.dead_letters_repeated = Counter(
            "coldtrace_ingest_dead_letters_repeated",
            "Dead letters received again (re-sent), counted on their first row",
            registry=r,
        )
        self.dead_letters_purged = Counter(
            "coldtrace_ingest_dead_letters_purged",
            "Dead letters past retention deleted",
            registry=r,
        )
        self.flush_seconds = Histogram(
            "coldtrace_ingest_flush_seconds", "Time to commit one flush", registry=r
        )
        self.intake_dropped = Counter(
            "coldtrace_ingest_intake_dropped",
            "QoS 0 messages dropped because the intake was full",
            registry=r,
        )
        self.intake_messages = Gauge(
            "coldtrace_ingest_intake_messages", "Messages received, not yet taken", registry=r
        )
        self.intake_bytes = Gauge(
            "coldtrace_ingest_intake_bytes", "Payload bytes received, not yet taken", registry=r
        )

    def watch(self, intake: Intake) -> None:
        """Report ``intake``'s depth on every scrape."""
        self.intake_messages.set_function(lambda: len(intake))
        self.intake_bytes.set_function(lambda: intake.bytes)
