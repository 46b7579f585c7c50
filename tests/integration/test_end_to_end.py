"""The whole chain as real processes: simulated Modbus fridges → gateway → Mosquitto →
ingest → PostgreSQL, and the failures it must survive without losing or doubling a reading.
"""

from __future__ import annotations

import signal
import time

import psycopg
import pytest

from coldtrace.demo import GATEWAY, SITE
from telemetry.payloads import VERSION, Reading, ReadingBatch
from tests.integration.stack import start_stack
from tests.mqtt_helpers import gateway_client, publish, wait_until

pytestmark = pytest.mark.slow


def test_simulated_fridges_to_database(tmp_path, broker, db_url, stacks):
    stack = start_stack(tmp_path, broker, db_url, poll_interval_s=0.2, batch_max=50)
    stacks.append(stack)
    assert wait_until(lambda: stack.stored() >= 300, timeout=60), "nothing reached the database"
    produced, stored = stack.drain()
    assert stored == produced
    stack.assert_each_seq_once(produced)
    with psycopg.connect(db_url) as conn:
        sensors = conn.execute(
            "SELECT s.uid, s.quantity, count(*), min(r.value), max(r.value)"
            " FROM telemetry.readings r JOIN telemetry.sensors s ON s.id = r.sensor_id"
            " GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
        gateway = conn.execute("SELECT id, site FROM telemetry.gateways").fetchall()
        (committed,) = conn.execute(
            "SELECT committed_seq FROM telemetry.gateway_streams"
        ).fetchone()
    assert gateway == [(GATEWAY, SITE)]
    assert committed == produced
    assert [(uid, qty) for uid, qty, *_ in sensors] == [
        (f"FRIDGE-{i}", q) for i in (1, 2, 3) for q in ("humidity", "temperature")
    ]
    for uid, qty, _n, lo, hi in sensors:
        if qty == "temperature" and uid != "FRIDGE-3":
            assert 2 <= lo <= hi <= 8, f"{uid} left 2-8 °C: {lo}..{hi}"
        if qty == "humidity":
            assert 0 <= lo <= hi <= 100

    # the same batch published again adds nothing
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT (extract(epoch FROM r.time) * 1000)::bigint, s.uid, s.quantity, r.value,"
            " s.unit, r.gateway_seq FROM telemetry.readings r"
            " JOIN telemetry.sensors s ON s.id = r.sensor_id"
            " WHERE r.gateway_seq <= 40 ORDER BY r.gateway_seq"
        ).fetchall()
        (stream,) = conn.execute("SELECT stream FROM telemetry.gateway_streams").fetchone()
    again = ReadingBatch(
        v=VERSION,
        gateway=GATEWAY,
        stream=stream,
        seq=(1, 40),
        sent=int(time.time() * 1000),
        items=[Reading(t=t, sensor=u, qty=q, value=v, unit=un) for t, u, q, v, un, _ in rows],
    )
    pub = gateway_client(broker, SITE, GATEWAY)
    publish(pub, f"ct/v1/{SITE}/{GATEWAY}/readings", again)
    time.sleep(2)
    assert stack.stored() == produced


def test_ingest_sigkill_loses_nothing(tmp_path, broker, db_url, stacks):
    stack = start_stack(tmp_path, broker, db_url, poll_interval_s=0.05, batch_max=20)
    stacks.append(stack)
    for round_ in range(2):
        target = stack.stored() + 300
        assert wait_until(lambda t=target: stack.stored() >= t, timeout=60), f"stalled {round_}"
        stack.sup.children["ingest"].kill()
        time.sleep(1.5)  # the gateway goes on producing into its outbox
        stack.sup.children["ingest"].start()
    produced, stored = stack.drain()
    assert produced > 600
    assert stored == produced
    stack.assert_each_seq_once(produced)


def test_broker_outage_is_drained(tmp_path, broker, db_url, stacks):
    stack = start_stack(tmp_path, broker, db_url, poll_interval_s=0.1, batch_max=50)
    stacks.append(stack)
    assert wait_until(lambda: stack.stored() >= 100, timeout=60)
    broker.stop()
    before = stack.produced()
    time.sleep(30)
    during = stack.produced() - before
    assert during > 300, f"the gateway stopped polling while the broker was down ({during})"
    broker.start()
    produced, stored = stack.drain()
    assert stored == produced
    stack.assert_each_seq_once(produced)


def test_dropped_messages_are_resent(tmp_path, make_broker, db_url, stacks):
    # A broker that drops: a tiny queue and a small in-flight window for a stalled subscriber.
    lossy = make_broker("max_inflight_messages 10\nmax_queued_messages 5\n", name="lossy")
    stack = start_stack(
        tmp_path,
        lossy,
        db_url,
        poll_interval_s=0.05,
        batch_max=5,
        ingest_env={"COLDTRACE_INGEST_MAX_MESSAGES": "10"},
    )
    stacks.append(stack)
    assert wait_until(lambda: stack.stored() >= 100, timeout=60)
    ingest = stack.sup.children["ingest"]
    ingest.signal(signal.SIGSTOP)  # paused, connection open: the broker queues, then drops
    time.sleep(6)
    ingest.signal(signal.SIGCONT)
    produced, stored = stack.drain()
    log = (lossy.workdir / "mosquitto.log").read_text()
    assert "dropped" in log.lower(), "the broker dropped nothing, so this test proved nothing"
    assert stored == produced
    stack.assert_each_seq_once(produced)
