"""Red team (issue 9): what one stolen gateway credential can do to everyone else.

Mosquitto's ACL file checks what a client may *read* when a message is delivered, not
when it subscribes (``security_default.c``: subscriptions are always granted), and a
shared subscription hands each message to one member of the group in turn — if that
member may not read it, the message is dropped for the whole group. So a gateway that
joined ingest's group ``$share/ingest/…`` made the broker throw away its share of every
gateway's readings and state (four joins: four messages in five gone).

And Mosquitto let any account connect with any client id, cutting off the client that
had it and taking over its persistent session: a gateway's account could keep ingest (or
another gateway) off the broker. The broker now uses the account name as the client id
(``use_username_as_clientid``, docs/mqtt.md).
"""

from __future__ import annotations

import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from coldtrace.broker import Broker
from coldtrace.devices import Role
from tests.integration.ingest_helpers import running_worker, scalar
from tests.mqtt_helpers import batch, gateway_client, publish, wait_until

pytestmark = pytest.mark.timeout(120)

READINGS = "ct/v1/plant-1/gw-1/readings"


def _joiners(broker: Broker, n: int, group: str) -> list[mqtt.Client]:
    """``n`` connections of gateway gw-2's account, each a member of ``group``."""
    creds = broker.gateway_credentials("plant-1", "gw-2")
    out = []
    for i in range(n):
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"thief-{i}")
        c.username_pw_set(creds.username, creds.password)
        subscribed: list[object] = []
        c.on_subscribe = lambda *args, s=subscribed: s.append(args)
        c.connect(broker.host, broker.port)
        c.loop_start()
        c.subscribe(f"$share/{group}/ct/v1/+/+/readings", qos=1)
        assert wait_until(lambda s=subscribed: bool(s), timeout=10)
        out.append(c)
    return out


def test_a_gateway_joining_the_ingest_share_group_steals_nothing(
    broker: Broker, db_url: str
) -> None:
    env = broker.service_env(Role.INGEST)
    group = env.get("COLDTRACE_INGEST_SHARE_GROUP", "ingest")
    assert group != "ingest", "ingest's group is a secret of its account, not a known name"
    pub = gateway_client(broker, "plant-1", "gw-1")
    with running_worker(broker, db_url):
        # the thief knows the documented default and tries it; the real name it cannot know
        thieves = _joiners(broker, 4, "ingest")
        for seq in range(1, 21):
            publish(pub, READINGS, batch(seq, 1))
        stored = "SELECT count(*) FROM telemetry.readings"
        assert wait_until(lambda: scalar(db_url, stored) == 20, timeout=10), (
            f"only {scalar(db_url, stored)} of 20 readings reached ingest"
        )
    for c in thieves:
        c.disconnect()
        c.loop_stop()


def _thief(broker: Broker, gateway: str, client_id: str) -> str:
    """Connect as ``gateway``'s account asking for ``client_id`` with a clean session, as
    an attacker in a loop would; return the CONNACK reason, once disconnected."""
    creds = broker.gateway_credentials("plant-1", gateway)
    thief = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    thief.username_pw_set(creds.username, creds.password)
    answers: list[str] = []
    thief.on_connect = lambda _c, _u, _f, reason, _p: answers.append(str(reason))
    thief.connect(broker.host, broker.port)
    thief.loop_start()
    assert wait_until(lambda: bool(answers), timeout=10)
    time.sleep(0.3)
    thief.disconnect()
    thief.loop_stop()
    return answers[0]


def test_a_gateway_cannot_cut_ingest_off_by_taking_its_client_id(
    broker: Broker, db_url: str
) -> None:
    """Red team (issue 9): gw-2's account connecting as ``ingest-test`` (the client id the
    worker asks for; the default is the documented ``coldtrace-ingest-1``) used to
    disconnect the worker, and with ``clean_session`` wipe the worker's session and what
    the broker had queued for it; done in a loop, ingest stored nothing. The broker now
    uses the account name as the client id: the thief is let in, as ``gw-2``."""
    pub = gateway_client(broker, "plant-1", "gw-1")
    with running_worker(broker, db_url) as (worker, _thread):
        before = worker.consumer.generation
        publish(pub, READINGS, batch(1, 1))  # something in flight / queued for ingest
        # the id the worker asked for, its account's name (now its real id), the default
        for client_id in ("ingest-test", broker.ingest_credentials.username, "coldtrace-ingest-1"):
            for _ in range(3):
                assert _thief(broker, "gw-2", client_id) == "Success"
        for seq in range(2, 21):
            publish(pub, READINGS, batch(seq, 1))
        stored = "SELECT count(*) FROM telemetry.readings"
        assert wait_until(lambda: scalar(db_url, stored) == 20, timeout=10), (
            f"only {scalar(db_url, stored)} of 20 readings reached ingest"
        )
        time.sleep(1.5)  # paho reconnects a cut-off worker after 1 s
        assert worker.consumer.generation == before, "the worker was cut off and reconnected"
    log = (broker.workdir / "mosquitto.log").read_text()
    assert "as gw-2 (" in log  # the thief got in, under its own name
    assert "Client ingest already connected" not in log


def test_a_gateway_cannot_cut_another_gateway_off_by_taking_its_client_id(
    broker: Broker,
) -> None:
    """The same attack on a gateway: gw-2 asking for gw-1's client id (the default
    ``coldtrace-{site}-{gateway}``, or the account name) leaves gw-1 connected."""
    victim = gateway_client(broker, "plant-1", "gw-1", client_id="coldtrace-plant-1-gw-1")
    for client_id in ("coldtrace-plant-1-gw-1", "gw-1"):
        assert _thief(broker, "gw-2", client_id) == "Success"
    time.sleep(0.5)
    assert victim.disconnects == [], "gw-1 was cut off"
    publish(victim, READINGS, batch(1, 1))  # still connected, still itself
    victim.disconnect()
    victim.loop_stop()
