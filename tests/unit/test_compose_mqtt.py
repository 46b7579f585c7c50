"""Every broker listener uses the account name as the client id — in docker compose and
in the brokers `coldtrace.broker` starts for the demo and the tests — and a second
docker-compose ingest worker is the first one with an account of its own (docs/mqtt.md).

Mosquitto 2.0's ``use_username_as_clientid`` is a per-listener option, so each
``listener`` line must be followed by it; before the first listener it would open a
default listener on 1883 instead.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from coldtrace.broker import Broker, free_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SCALE = yaml.safe_load((ROOT / "docker-compose.scale.yml").read_text())
BINDING = "use_username_as_clientid true"


def listener_blocks(config: str) -> tuple[list[str], list[list[str]]]:
    """The lines before the first ``listener``, and each listener's lines."""
    before: list[str] = []
    blocks: list[list[str]] = []
    for line in (x.strip() for x in config.splitlines()):
        if line.startswith("listener "):
            blocks.append([])
        elif line and not line.startswith("#"):
            (blocks[-1] if blocks else before).append(line)
    return before, blocks


def test_every_compose_listener_binds_client_ids_to_accounts() -> None:
    command = COMPOSE["services"]["mqtt"]["command"]
    (added,) = re.findall(r"printf '([^']*)'", command)
    before, blocks = listener_blocks(added.replace("\\n", "\n"))
    assert len(blocks) == 2  # 1883 for the services, 8883 (TLS) for the gateways
    assert all(BINDING in block for block in blocks), blocks
    assert BINDING not in before


def test_every_listener_of_a_demo_or_test_broker_binds_client_ids(tmp_path: Path) -> None:
    broker = Broker(workdir=tmp_path / "mosquitto", tls_port=free_port())
    broker.write_config()
    before, blocks = listener_blocks(broker.config_path.read_text())
    assert len(blocks) == 2  # plain and TLS
    assert all(BINDING in block for block in blocks), blocks
    assert BINDING not in before
    assert "allow_anonymous false" in before


def test_the_second_compose_worker_is_ingest_with_an_account_of_its_own() -> None:
    ingest = COMPOSE["services"]["ingest"]
    second = SCALE["services"]["ingest-2"]
    for key in ("build", "command", "environment", "depends_on", "restart"):
        assert second[key] == ingest[key], key
    assert ingest["env_file"] == ["./var/mqtt/ingest.env"]
    assert second["env_file"] == ["./var/mqtt/ingest-2.env"]
    assert "deploy" not in ingest, "replicas would share one account and cut each other off"
