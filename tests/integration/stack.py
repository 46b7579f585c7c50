"""The whole chain as real processes for tests: simulated Modbus fridges → gateway →
Mosquitto → ingest worker(s) → PostgreSQL, started under a `Supervisor` so a test can
kill, pause and restart each, and count what was produced and stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import yaml

from coldtrace.broker import Broker, free_port
from coldtrace.demo import outbox_counts, write_gateway_config
from coldtrace.supervise import Supervisor, coldtrace_args
from tests.mqtt_helpers import ingest_env, wait_until


@dataclass
class Stack:
    """Handles on the running processes of one test."""

    tmp: Path
    broker: Broker
    db_url: str
    sup: Supervisor
    ports: list[int]
    outbox: Path

    def produced(self) -> int:
        return outbox_counts(self.outbox)[0]

    def stored(self) -> int:
        with psycopg.connect(self.db_url) as conn:
            row = conn.execute("SELECT count(*) FROM telemetry.readings").fetchone()
        return int(row[0]) if row else 0

    def start_ingest(self, name: str = "ingest", **env: str) -> None:
        """Start a worker logged in as ingest account ``name`` (one account per worker)."""
        args = coldtrace_args("ingest", "--plain-logs")
        env = {"COLDTRACE_DATABASE_URL": self.db_url, **ingest_env(self.broker, name), **env}
        self.sup.add(name, args, env)

    def drain(self, timeout: float = 120) -> tuple[int, int]:
        """Stop the devices, then wait until the outbox is empty and everything is stored."""
        self.sup.children["sim"].stop()

        def done() -> bool:
            produced, depth = outbox_counts(self.outbox)
            return depth == 0 and self.stored() == produced

        ok = wait_until(done, timeout=timeout, interval=0.5)
        produced, depth = outbox_counts(self.outbox)
        assert ok, f"not drained: produced {produced}, outbox {depth}, stored {self.stored()}"
        return produced, self.stored()

    def assert_each_seq_once(self, produced: int) -> None:
        """Every gateway sequence number 1..produced is stored exactly once."""
        with psycopg.connect(self.db_url) as conn:
            row = conn.execute(
                "SELECT count(*), count(DISTINCT gateway_seq), min(gateway_seq), max(gateway_seq)"
                " FROM telemetry.readings"
            ).fetchone()
        assert row == (produced, produced, 1, produced)


def start_stack(
    tmp: Path,
    broker: Broker,
    db_url: str,
    *,
    poll_interval_s: float,
    batch_max: int,
    resend_after_s: float = 2.0,
    ingest_env: dict[str, str] | None = None,
    gateway: dict[str, dict[str, Any]] | None = None,
) -> Stack:
    """Start the devices, one ingest worker and the gateway; ``gateway`` overrides keys
    of the gateway config's sections (e.g. ``{"mqtt": {"port": …}}``)."""
    ports = [free_port() for _ in range(3)]
    sup = Supervisor(logdir=tmp / "logs")
    sim = ["sim", "--plain-logs", "--speed", "60", "--fail", str(ports[2]), "--fail-after", "60"]
    for p in ports:
        sim += ["--port", str(p)]
    sup.add("sim", coldtrace_args(*sim))
    cfg = write_gateway_config(
        tmp,
        broker,
        ports,
        poll_interval_s=poll_interval_s,
        batch_max=batch_max,
        resend_after_s=resend_after_s,
        state_interval_s=2,
    )
    settings = yaml.safe_load(cfg.read_text())
    for section, values in (gateway or {}).items():
        settings[section] = {**settings.get(section, {}), **values}
    cfg.write_text(yaml.safe_dump(settings, sort_keys=False))
    stack = Stack(tmp, broker, db_url, sup, ports, Path(settings["outbox"]["path"]))
    stack.start_ingest(**(ingest_env or {}))
    sup.add("gateway", coldtrace_args("gateway", "run", "-c", str(cfg), "--plain-logs"))
    return stack
