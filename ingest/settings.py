"""Ingest service settings (``COLDTRACE_INGEST_*``), built by ``main``, never at import."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ingest.consumer import MqttProtocol, Node
from ingest.mqtt_security import MqttSecurityFields
from telemetry.topics import TopicError, check_id

DEFAULT_CLIENT_ID = "coldtrace-ingest-1"  # with no account (a broker without logins)


class IngestSettings(BaseSettings, MqttSecurityFields):
    """How one ingest worker connects (as whom, over TLS or not) and how it batches."""

    model_config = SettingsConfigDict(env_prefix="COLDTRACE_INGEST_")

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    # A clustered broker's other nodes, "host:port" (JSON list in the environment): a lost
    # connection is retried on the next node of [mqtt_host:mqtt_port, *mqtt_failover].
    mqtt_failover: list[str] = []
    # "3.1.1" for a broker without MQTT 5 (NATS): no session expiry there, so use
    # partitions, whose hand-over frees a departed worker's share (docs/scaling.md).
    mqtt_protocol: MqttProtocol = "5"
    # paho's keepalive, which also bounds the wait for a CONNACK: a cluster node busy
    # electing leaders can take a connection and not answer it (docs/scaling.md).
    mqtt_keepalive_s: int = Field(default=30, ge=2, le=65535)
    # Default: the account name, which is what the project's broker uses anyway
    # (use_username_as_clientid, docs/mqtt.md): the session belongs to the account, and
    # each worker has an account of its own. Only for another broker does it matter.
    client_id: str = ""
    share_group: str | None = "ingest"
    # Instead of $share, for a broker without shared subscriptions: every worker is given
    # the same list of "site/gateway" scopes ("+" for any); the workers split them among
    # themselves with PostgreSQL advisory locks, each scope an MQTT session of its own
    # that the next owner resumes (ingest/partitions.py). Empty: one $share subscription.
    partitions: list[str] = []
    partition_check_s: float = Field(default=1.0, gt=0)
    # A partition's session is "{prefix}:{site}/{gateway}", the same in every worker.
    partition_client_prefix: str = "coldtrace-ingest"
    # How long the broker keeps this worker's session (and its share of the group's
    # messages) after it disconnects. A restart within it resumes the session; a worker
    # gone for longer has its parked messages re-sent by the gateways to the others.
    session_expiry_s: int = Field(default=300, ge=0, le=2**32 - 2)
    # Flushing is adaptive (ingest/batching.py): a batch goes to the writer as soon as
    # the writer is free, so at low load each message is committed at once. These are
    # the caps a batch grows to under load. max_messages is at most half the broker's
    # max_inflight_messages (200): the broker sends no more until we ack, so two batches
    # can then be in flight, one committing while the next is collected.
    max_messages: int = Field(default=100, ge=1)
    max_bytes: int = Field(default=32 * 1024 * 1024, ge=1)
    # How long a batch may wait for more messages although the writer is free: fewer,
    # larger commits for that much more latency. 0: never wait (the default).
    max_delay_ms: int = Field(default=0, ge=0)
    # The writer waits while more than this many committed batches are not evaluated
    # for excursions yet (ingest/evaluator.py): alerts never fall further behind.
    eval_max_behind: int = Field(default=8, ge=1)
    max_future_ms: int = Field(default=10 * 60 * 1000, ge=0)
    metrics_port: int | None = None
    # Intake: messages paho has received and the worker has not taken yet. QoS 1 waits
    # for room (flow control: the broker sends no more than its in-flight window until
    # we ack); QoS 0 may use half and is dropped, counted, beyond it. docs/reliability.md
    intake_max_messages: int = Field(default=1000, ge=1)
    intake_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    # Dead letters keep this many first bytes of the payload, with its size and sha256.
    dead_letter_payload_bytes: int = Field(default=8192, ge=0, le=1_048_576)
    # A gateway has at most this many sensors (uid, quantity): readings of further new
    # ones are not stored, one dead letter per gateway says so. Bounds what one stolen
    # gateway credential can make the database and the worker's sensor cache hold.
    max_sensors_per_gateway: int = Field(default=2000, ge=1)
    # The worker purges dead letters not received for this long (0: never).
    dead_letter_retention_days: int = Field(default=365, ge=0)
    dead_letter_purge_interval_s: float = Field(default=3600.0, gt=0)

    @field_validator("mqtt_failover")
    @classmethod
    def _nodes(cls, value: list[str]) -> list[str]:
        for node in value:
            _node(node)
        return value

    @field_validator("partitions")
    @classmethod
    def _scopes(cls, value: list[str]) -> list[str]:
        for scope in value:
            _scope(scope)
        if len(set(value)) != len(value):
            raise ValueError("a partition is listed twice")
        return value

    def failover_nodes(self) -> list[Node]:
        """The other broker nodes as (host, port)."""
        return [_node(n) for n in self.mqtt_failover]

    def partition_scopes(self) -> list[tuple[str, str]]:
        """The partitions as (site, gateway) topic levels."""
        return [_scope(p) for p in self.partitions]

    @model_validator(mode="after")
    def _client_id(self) -> IngestSettings:
        if not self.client_id:
            self.client_id = self.mqtt_username or DEFAULT_CLIENT_ID
        return self


def _node(value: str) -> Node:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"broker node {value!r} is not host:port")
    return host, int(port)


def _scope(value: str) -> tuple[str, str]:
    site, sep, gateway = value.partition("/")
    if not sep:
        raise ValueError(f"partition {value!r} is not site/gateway ('+' for any)")
    try:
        return tuple(p if p == "+" else check_id(p, "partition") for p in (site, gateway))  # type: ignore[return-value]
    except TopicError as err:
        raise ValueError(str(err)) from None
