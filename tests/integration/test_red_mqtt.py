"""Red team (issue 9): what one stolen gateway credential can still do to everyone else.

Mosquitto's ACL file checks what a client may *read* when a message is delivered, not
when it subscribes (``security_default.c``: subscriptions are always granted), and a
shared subscription hands each message to one member of the group in turn — if that
member may not read it, the message is dropped for the whole group. So a gateway that
joined ingest's group ``$share/ingest/…`` made the broker throw away its share of every
gateway's readings and state (four joins: four messages in five gone).
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


@pytest.mark.xfail(
    strict=True,
    reason=(
        "design: Mosquitto lets any account connect with any client id and cuts off the "
        "client that had it (MQTT requires it) — and hands over its persistent session. "
        "Needs client ids bound to accounts: the dynamic-security plugin's per-client "
        "`clientid`, or `use_username_as_clientid` with one account per ingest worker "
        "(docs/mqtt.md, red-team notes)"
    ),
)
def test_a_gateway_cannot_cut_ingest_off_by_taking_its_client_id(
    broker: Broker, db_url: str
) -> None:
    """Red team (issue 9): gw-2's account connecting as ``ingest-test`` (a worker's
    client id; the default is the documented ``coldtrace-ingest-1``) disconnects the
    worker, and with ``clean_session`` wipes the worker's session and what the broker
    had queued for it; done in a loop, ingest stores nothing."""
    creds = broker.gateway_credentials("plant-1", "gw-2")
    with running_worker(broker, db_url) as (worker, _thread):
        before = worker.consumer.generation
        thief = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="ingest-test")
        thief.username_pw_set(creds.username, creds.password)
        thief.connect(broker.host, broker.port)
        thief.loop_start()
        time.sleep(1.0)
        thief.disconnect()
        thief.loop_stop()
        time.sleep(3.0)  # paho reconnects a cut-off worker after 1 s
        assert worker.consumer.generation == before, "the worker was cut off and reconnected"
