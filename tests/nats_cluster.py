"""A three-node NATS cluster on loopback, with its MQTT listeners, for the scale tests.

Each node gets free ports of its own (client, cluster routes, MQTT), a JetStream store in
the test's temporary directory, and ``stream_replicas: 3`` for the MQTT sessions,
messages and retained messages, so a node killed mid-stream loses nothing the other two
do not hold. The system's own nats-server (default ports) is never touched.
docs/scaling.md says why NATS.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from coldtrace.broker import free_port

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
CLUSTER_NAME = "coldtrace-test"


def available() -> bool:
    """Whether the nats-server binary is installed (Debian's ``nats-server`` package)."""
    return os.access(NATS_SERVER, os.X_OK)


@dataclass
class Node:
    """One nats-server process of the cluster."""

    name: str
    client_port: int
    route_port: int
    mqtt_port: int
    config: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def mqtt(self) -> str:
        return f"127.0.0.1:{self.mqtt_port}"


@dataclass
class NatsCluster:
    """Start, kill and restart the nodes; `stop` ends every process it started."""

    workdir: Path
    nodes: list[Node] = field(default_factory=list)

    @classmethod
    def create(cls, workdir: Path, size: int = 3) -> NatsCluster:
        workdir.mkdir(parents=True, exist_ok=True)
        cluster = cls(workdir)
        ports = [(free_port(), free_port(), free_port()) for _ in range(size)]
        routes = ", ".join(f"nats://127.0.0.1:{route}" for _, route, _ in ports)
        for i, (client, route, mqtt_port) in enumerate(ports, start=1):
            name = f"n{i}"
            config = workdir / f"{name}.conf"
            # one node alone is a plain server: a cluster of one has no quorum
            routing = (
                f"cluster {{ name: {CLUSTER_NAME}, listen: 127.0.0.1:{route},"
                f" routes: [{routes}] }}\n"
                if size > 1
                else ""
            )
            config.write_text(
                f"server_name: {name}\n"
                f"listen: 127.0.0.1:{client}\n"
                f'jetstream {{ store_dir: "{workdir / name}" }}\n'
                f"{routing}"
                f"mqtt {{ listen: 127.0.0.1:{mqtt_port}, stream_replicas: {size},"
                ' ack_wait: "10s" }\n'
            )
            cluster.nodes.append(
                Node(name, client, route, mqtt_port, config, workdir / f"{name}.log")
            )
        return cluster

    def start(self, timeout: float = 60) -> None:
        """Start every node that is not running and wait until each takes MQTT logins."""
        for node in self.nodes:
            if node.process is None or node.process.poll() is not None:
                with node.log.open("ab") as log:
                    node.process = subprocess.Popen(
                        [NATS_SERVER, "-c", str(node.config)],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
        deadline = time.monotonic() + timeout
        for node in self.nodes:
            while not _mqtt_ready(node.mqtt_port):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{node.name} takes no MQTT login: see {node.log}")
                time.sleep(0.3)

    def kill(self, index: int) -> None:
        """SIGKILL one node (no goodbye to the cluster or its clients)."""
        process = self.nodes[index].process
        if process is not None:
            process.send_signal(signal.SIGKILL)
            process.wait(10)

    def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.terminate()
                try:
                    node.process.wait(10)
                except subprocess.TimeoutExpired:
                    node.process.kill()
                    node.process.wait(10)

    def mqtt_nodes(self, first: int) -> list[str]:
        """Every node's MQTT address, starting with node ``first`` (a client's failover list)."""
        return [n.mqtt for n in self.nodes[first:] + self.nodes[:first]]


def _mqtt_ready(port: int) -> bool:
    """Whether the node accepts an MQTT 3.1.1 login (its JetStream is up), tried once."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{port}")
    accepted: list[bool] = []
    client.on_connect = lambda _c, _u, _f, reason, _p: accepted.append(not reason.is_failure)
    try:
        client.connect("127.0.0.1", port, keepalive=5)
    except OSError:
        return False
    client.loop_start()
    deadline = time.monotonic() + 5
    while not accepted and time.monotonic() < deadline:
        time.sleep(0.05)
    client.disconnect()
    client.loop_stop()
    return bool(accepted and accepted[0])
