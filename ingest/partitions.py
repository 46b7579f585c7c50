"""Partitioned subscriptions, for a clustered broker without ``$share`` (NATS, RabbitMQ).

On Mosquitto the workers share one ``$share/…`` subscription and a departed worker's
share goes with its session's expiry (MQTT 5). A broker without shared subscriptions
(and, like NATS, without MQTT 5) needs another split, and another way to hand a
departed worker's share over:

- **Scopes are sessions.** The operator lists the partitions, ``site/gateway`` topic
  levels (``plant-1/+``), the same list for every worker. Each partition is an MQTT
  session of its own, named after it (``{prefix}:{scope}``), and subscribed to that
  scope's readings, state, tags and scans. Whoever owns a partition connects with its
  name and resumes its session: what the broker parked for it while nobody held it
  (delivered but not acked, or queued since) comes to the new owner at once. Nothing
  waits in a dead worker's session, and the gateways' re-sends are not needed.
- **Ownership is a PostgreSQL advisory lock**, taken on a connection of its own. The
  database is already what every worker shares and what serialises evaluation; a
  worker that dies (SIGKILL, a lost host) loses its connection and with it its locks,
  and the others take its partitions within ``partition_check_s``. Each worker also
  holds a member lock, so every worker sees how many there are and takes at most its
  fair share, ``ceil(partitions / workers)``, giving back what it holds beyond it when
  others join. No cluster manager of our own: one lock table the database already has.
- **A lost coordination connection gives everything back** before it reconnects: the
  locks are gone on the server, and another worker may already own the partition.

A partition given back is disconnected first and unlocked after, so its session has
one client at a time. Messages of it still in the worker's batch are committed and
their acks go nowhere (the connection is gone); the next owner receives them again and
ingest's idempotent write absorbs them (docs/reliability.md).
"""

from __future__ import annotations

import logging
import math
import threading
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import psycopg

from ingest.consumer import Consumer, MqttProtocol, Node
from ingest.errors import BrokerConnectionError
from ingest.intake import Intake
from ingest.mqtt_security import MqttSecurity
from ingest.plan import Received
from ingest.settings import IngestSettings
from telemetry.topics import Topic, TopicError

log = logging.getLogger(__name__)

# advisory lock namespaces (the first int4 key): "CT" + 1 for members, + 2 for partitions
MEMBER_NS = 0x43540001
PARTITION_NS = 0x43540002


def partition_key(scope: str) -> int:
    """The advisory lock key (int4) of a partition, the same in every worker."""
    return zlib.crc32(scope.encode()) - 2**31


def fair_share(partitions: int, members: int) -> int:
    """How many partitions one of ``members`` workers may hold."""
    return math.ceil(partitions / max(members, 1))


@dataclass(frozen=True, slots=True)
class BrokerLogin:
    """What every partition's connection has in common."""

    host: str
    port: int
    failover: Sequence[Node]
    protocol: MqttProtocol
    security: MqttSecurity
    session_expiry_s: int
    client_prefix: str
    keepalive_s: int = 30


class PartitionedConsumer:
    """A `Consumer` look-alike holding one MQTT session per partition the worker owns."""

    def __init__(
        self,
        *,
        login: BrokerLogin,
        partitions: Sequence[tuple[str, str]],
        db_url: str,
        check_s: float = 1.0,
    ) -> None:
        self.host = login.host
        self.port = login.port
        self.inbox = Intake()
        self._login = login
        self._scopes = {f"{site}/{gw}": (site, gw) for site, gw in partitions}
        self._db_url = db_url
        self._check_s = check_s
        self._held: dict[str, Consumer] = {}
        self._lock = threading.Lock()  # _held: changed by the rebalancer, read by the writer
        self._conn: psycopg.Connection | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._timeout = 10.0  # for a partition's connection and subscription

    @property
    def held(self) -> list[str]:
        """The partitions this worker owns now."""
        with self._lock:
            return sorted(self._held)

    def start(self, timeout: float = 10.0) -> None:
        """Join the workers, take a fair share of the partitions, keep rebalancing."""
        self._timeout = timeout
        self.rebalance()
        self._thread = threading.Thread(
            target=self._rebalance_loop, name="ingest-partitions", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Give every partition back and leave (unacked messages stay in their sessions)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.inbox.close()
        self._give_back(list(self._held))
        if self._conn is not None:
            self._conn.close()

    def ack(self, messages: Iterable[Received]) -> int:
        """Ack each message on the connection that received it (their numbers are unique)."""
        batch = list(messages)
        with self._lock:
            return sum(c.ack(batch) for c in self._held.values())

    def publish(self, topic: str, payload: bytes, *, retain: bool) -> None:
        """Publish through the partition of the topic's gateway, or any held one."""
        with self._lock:
            consumers = list(self._held.items())
        if not consumers:
            log.warning("no partition held: %s not published (the gateway re-sends)", topic)
            return
        chosen = consumers[0][1]
        try:
            t = Topic.parse(topic.rsplit("/", 1)[0]) if "/ack/" in topic else Topic.parse(topic)
        except TopicError:
            t = None
        for _, consumer in consumers:
            if t is not None and consumer.covers(t.site, t.gateway):
                chosen = consumer
                break
        chosen.publish(topic, payload, retain=retain)

    def rebalance(self) -> None:
        """Take free partitions up to the fair share, or give back what is beyond it."""
        try:
            conn = self._coordination()
            members = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND classid = %s AND objsubid = 2 AND database ="
                " (SELECT oid FROM pg_database WHERE datname = current_database())",
                (MEMBER_NS,),
            ).fetchone()
            share = fair_share(len(self._scopes), members[0] if members else 1)
            held = self.held
            if len(held) > share:
                self._give_back(held[share:])
                return
            for scope in self._scopes:
                if len(self.held) >= share:
                    break
                if scope not in self._held and self._try_lock(conn, scope):
                    self._take(scope)
        except psycopg.OperationalError as err:
            log.error("coordination database lost, giving every partition back: %s", err)  # noqa: TRY400
            self._give_back(self.held)
            if self._conn is not None:
                self._conn.close()
            self._conn = None

    def _coordination(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self._db_url, autocommit=True)
            self._conn.execute("SELECT pg_advisory_lock(%s, pg_backend_pid())", (MEMBER_NS,))
        return self._conn

    @staticmethod
    def _try_lock(conn: psycopg.Connection, scope: str) -> bool:
        row = conn.execute(
            "SELECT pg_try_advisory_lock(%s, %s)", (PARTITION_NS, partition_key(scope))
        ).fetchone()
        return bool(row and row[0])

    def _take(self, scope: str) -> None:
        login = self._login
        consumer = Consumer(
            host=login.host,
            port=login.port,
            client_id=f"{login.client_prefix}:{scope}",
            share_group=None,
            security=login.security,
            session_expiry_s=login.session_expiry_s,
            protocol=login.protocol,
            failover=login.failover,
            scopes=[self._scopes[scope]],
            keepalive_s=login.keepalive_s,
        )
        consumer.inbox = self.inbox
        try:
            consumer.start(self._timeout)
        except BrokerConnectionError:
            self._unlock(scope)
            raise
        with self._lock:
            self._held[scope] = consumer
        log.info("took partition %s", scope)

    def _give_back(self, scopes: Iterable[str]) -> None:
        for scope in scopes:
            with self._lock:
                consumer = self._held.pop(scope, None)
            if consumer is None:
                continue
            consumer.stop(close_inbox=False)  # disconnect first: one client per session
            self._unlock(scope)
            log.info("gave partition %s back", scope)

    def _unlock(self, scope: str) -> None:
        conn = self._conn
        if conn is None or conn.closed:
            return  # the server dropped the lock with the connection
        try:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", (PARTITION_NS, partition_key(scope)))
        except psycopg.OperationalError:
            log.warning("could not unlock %s: the connection is gone, and the lock with it", scope)

    def _rebalance_loop(self) -> None:
        while not self._stop.wait(self._check_s):
            try:
                self.rebalance()
            except BrokerConnectionError as err:  # the broker is away: retry next round
                log.error("cannot take a partition: %s", err)  # noqa: TRY400


def consumer_for(settings: IngestSettings, db_url: str) -> Consumer | PartitionedConsumer:
    """The worker's broker side as configured: one ``$share`` session, or partitions."""
    security = settings.mqtt_security()
    if not settings.partitions:
        return Consumer(
            host=settings.mqtt_host,
            port=settings.mqtt_port,
            client_id=settings.client_id,
            share_group=settings.share_group,
            security=security,
            session_expiry_s=settings.session_expiry_s,
            protocol=settings.mqtt_protocol,
            failover=settings.failover_nodes(),
            keepalive_s=settings.mqtt_keepalive_s,
        )
    login = BrokerLogin(
        host=settings.mqtt_host,
        port=settings.mqtt_port,
        failover=settings.failover_nodes(),
        protocol=settings.mqtt_protocol,
        security=security,
        session_expiry_s=settings.session_expiry_s,
        client_prefix=settings.partition_client_prefix,
        keepalive_s=settings.mqtt_keepalive_s,
    )
    return PartitionedConsumer(
        login=login,
        partitions=settings.partition_scopes(),
        db_url=db_url,
        check_s=settings.partition_check_s,
    )
