"""Past one machine: the whole chain on a three-node NATS cluster, one node killed.

Three gateways and three ingest workers are spread over the nodes (each connects to
"its" node first, the others as its failover list). NATS speaks MQTT 3.1.1 and has no
``$share``, so the workers split the gateways as partitions (ingest/partitions.py): one
MQTT session per gateway, owned through a PostgreSQL advisory lock. Killing a node cuts
off the gateway and the worker connected to it; they reconnect to another node and the
sessions (replicated three times in JetStream) go on. A worker that leaves gives its
partition to the others, who resume its session. Afterwards every gateway's seqs
1..produced are stored exactly once. docs/scaling.md.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg
import pytest
import yaml

from coldtrace.broker import free_port
from coldtrace.demo import outbox_counts
from coldtrace.supervise import Supervisor, coldtrace_args
from ingest.partitions import PARTITION_NS
from tests import nats_cluster
from tests.mqtt_helpers import wait_until

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not nats_cluster.available(),
        reason="nats-server is not installed (Debian package nats-server; scripts/services.sh)",
    ),
]

SITE = "plant-1"
GATEWAYS = ["gw-1", "gw-2", "gw-3"]
FRIDGES = 2  # per gateway
PARTITIONS = [f"{SITE}/{gw}" for gw in GATEWAYS]


def gateway_config(tmp: Path, gw: str, ports: list[int], nodes: list[str]) -> Path:
    host, port = nodes[0].split(":")
    cfg = {
        "gateway": {"id": gw, "site": SITE},
        "mqtt": {
            "host": host,
            "port": int(port),
            "failover": nodes[1:],
            "keepalive_s": 5,
            "reconnect_max_s": 2,
        },
        "outbox": {
            "path": str(tmp / f"{gw}.sqlite"),
            "batch_max": 10,
            "resend_after_s": 3,
        },
        "state_interval_s": 2,
        "modbus": [
            {
                "name": f"fridge-{i}",
                "profile": "renke-rs-ws-n01",
                "host": "127.0.0.1",
                "port": p,
                "poll_interval_s": 0.1,
                "timeout_s": 2,
                "sensor": f"{gw.upper()}-FRIDGE-{i}",
            }
            for i, p in enumerate(ports, start=1)
        ],
    }
    path = tmp / f"{gw}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def worker_env(db_url: str, nodes: list[str]) -> dict[str, str]:
    host, port = nodes[0].split(":")
    return {
        "COLDTRACE_DATABASE_URL": db_url,
        "COLDTRACE_INGEST_MQTT_HOST": host,
        "COLDTRACE_INGEST_MQTT_PORT": port,
        "COLDTRACE_INGEST_MQTT_FAILOVER": json.dumps(nodes[1:]),
        "COLDTRACE_INGEST_MQTT_PROTOCOL": "3.1.1",
        "COLDTRACE_INGEST_MQTT_KEEPALIVE_S": "5",  # as the gateways': a stuck node is left soon
        "COLDTRACE_INGEST_PARTITIONS": json.dumps(PARTITIONS),
        "COLDTRACE_INGEST_PARTITION_CHECK_S": "0.5",
        "COLDTRACE_INGEST_MAX_DELAY_MS": "50",
    }


class Chain:
    """The cluster, the devices, three gateways and three workers of one test."""

    def __init__(self, tmp: Path, db_url: str) -> None:
        self.tmp = tmp
        self.db_url = db_url
        self.cluster = nats_cluster.NatsCluster.create(tmp / "nats")
        self.sup = Supervisor(logdir=tmp / "logs")
        self.outboxes = {gw: tmp / f"{gw}.sqlite" for gw in GATEWAYS}

    def start(self) -> None:
        self.cluster.start()
        ports = [free_port() for _ in range(len(GATEWAYS) * FRIDGES)]
        sim = ["sim", "--plain-logs", "--speed", "60"]
        for p in ports:
            sim += ["--port", str(p)]
        self.sup.add("sim", coldtrace_args(*sim))
        for i in range(len(GATEWAYS)):
            self.start_worker(i)
        for i, gw in enumerate(GATEWAYS):
            cfg = gateway_config(
                self.tmp, gw, ports[i * FRIDGES : (i + 1) * FRIDGES], self.cluster.mqtt_nodes(i)
            )
            self.sup.add(gw, coldtrace_args("gateway", "run", "-c", str(cfg), "--plain-logs"))

    def start_worker(self, i: int) -> None:
        env = worker_env(self.db_url, self.cluster.mqtt_nodes(i % len(self.cluster.nodes)))
        self.sup.add(f"ingest-{i + 1}", coldtrace_args("ingest", "--plain-logs"), env)

    def stop(self) -> None:
        try:
            self.sup.stop()
        finally:
            self.cluster.stop()

    def stored(self) -> dict[str, int]:
        with psycopg.connect(self.db_url) as conn:
            found = conn.execute(
                "SELECT s.gateway_id, count(*) FROM telemetry.readings r"
                " JOIN telemetry.sensors s ON s.id = r.sensor_id GROUP BY 1"
            ).fetchall()
        return {gw: int(n) for gw, n in found}

    def partition_owners(self) -> list[int]:
        """The PostgreSQL backend pids holding a partition lock, one per held partition."""
        with psycopg.connect(self.db_url) as conn:
            found = conn.execute(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND classid = %s AND objsubid = 2",
                (PARTITION_NS,),
            ).fetchall()
        return sorted(pid for (pid,) in found)

    def drain(self, timeout: float = 90) -> dict[str, int]:
        """Stop the devices; wait until every outbox is empty and all is stored."""
        self.sup.children["sim"].stop()

        def done() -> bool:
            counts = {gw: outbox_counts(path) for gw, path in self.outboxes.items()}
            stored = self.stored()
            return all(
                depth == 0 and stored.get(gw, 0) == produced
                for gw, (produced, depth) in counts.items()
            )

        ok = wait_until(done, timeout=timeout, interval=0.5)
        produced = {gw: outbox_counts(path)[0] for gw, path in self.outboxes.items()}
        assert ok, f"not drained: produced {produced}, stored {self.stored()}"
        return produced

    def assert_each_seq_once(self, produced: dict[str, int]) -> None:
        """Every gateway's seqs 1..produced are stored, each exactly once: 0 lost, 0 duplicated."""
        with psycopg.connect(self.db_url) as conn:
            for gw, n in produced.items():
                row = conn.execute(
                    "SELECT count(*), count(DISTINCT r.gateway_seq), min(r.gateway_seq),"
                    " max(r.gateway_seq) FROM telemetry.readings r"
                    " JOIN telemetry.sensors s ON s.id = r.sensor_id"
                    " WHERE s.gateway_id = %s",
                    (gw,),
                ).fetchone()
                assert row == (n, n, 1, n), f"{gw}: {row} for seqs 1..{n}"

    def log(self, name: str) -> str:
        return self.sup.children[name].log_path.read_text(errors="replace")


@pytest.fixture
def chain(tmp_path: Path, db_url: str):
    c = Chain(tmp_path, db_url)
    try:
        c.start()
        yield c
    finally:
        c.stop()
    for name in c.sup.children:
        assert "Traceback" not in c.log(name), f"{name} crashed:\n{c.log(name)[-3000:]}"


def flowing(chain: Chain, at_least: int) -> bool:
    stored = chain.stored()
    return all(stored.get(gw, 0) >= at_least for gw in GATEWAYS)


def test_a_node_killed_mid_stream_loses_and_duplicates_nothing(chain):
    assert wait_until(lambda: flowing(chain, 50), timeout=60), f"not flowing: {chain.stored()}"
    # spread: each worker owns one gateway's partition, on the node it connected to
    assert wait_until(lambda: len(set(chain.partition_owners())) == 3, timeout=20), (
        f"partitions not spread over the workers: {chain.partition_owners()}"
    )
    before = chain.stored()
    chain.cluster.kill(1)  # gw-2 and ingest-2 were connected to it
    killed_at = time.monotonic()
    assert wait_until(lambda: flowing(chain, max(before.values()) + 100), timeout=60), (
        f"stalled after the node was killed: {chain.stored()} (before: {before})"
    )
    print(f"every gateway 100 readings further {time.monotonic() - killed_at:.1f} s after the kill")
    produced = chain.drain()
    assert all(n > 200 for n in produced.values()), produced
    chain.assert_each_seq_once(produced)
    assert "next connection attempt goes to" in chain.log("ingest-2")
    assert "connected to MQTT broker" in chain.log("gw-2")


def test_a_worker_that_leaves_hands_its_partition_over(chain):
    assert wait_until(lambda: len(set(chain.partition_owners())) == 3, timeout=30), (
        f"partitions not spread over the workers: {chain.partition_owners()}"
    )
    assert wait_until(lambda: flowing(chain, 50), timeout=60), f"not flowing: {chain.stored()}"
    chain.sup.children["ingest-3"].kill()  # SIGKILL: no goodbye, its session still holds messages
    left_at = time.monotonic()
    # the two that remain take its partition: three held, by two workers
    assert wait_until(
        lambda: len(chain.partition_owners()) == 3 and len(set(chain.partition_owners())) == 2,
        timeout=20,
    ), f"not handed over: {chain.partition_owners()}"
    handed_over_s = time.monotonic() - left_at
    print(f"partition handed over {handed_over_s:.1f} s after the worker was killed")
    before = chain.stored()
    assert wait_until(lambda: flowing(chain, max(before.values()) + 100), timeout=30), (
        f"the departed worker's gateway stalled: {chain.stored()} (before: {before})"
    )
    produced = chain.drain()
    chain.assert_each_seq_once(produced)
    assert handed_over_s < 5
    took = [line for n in ("ingest-1", "ingest-2") for line in chain.log(n).splitlines()]
    assert sum("took partition" in line for line in took) >= 3, "nobody took ingest-3's partition"
