"""The gateway under failure, as real processes and servers.

- A gateway SIGKILLed in the middle of draining a large outbox into the real ingest
  worker and PostgreSQL, then restarted, stores every seq exactly once.
- A simulated Modbus fridge that vanishes for 20 s while a second one keeps answering
  is polled again when it comes back, with no restart; meanwhile the other device's
  readings keep coming, the state topic reports the failing source and the gap.
- However long a device stays away, the retry delay stays capped (injected backoff).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
import psycopg
import pytest
import yaml

from coldtrace.broker import Broker, free_port
from coldtrace.supervise import Supervisor, coldtrace_args
from firmware_sim.modbus_device import DeviceSpec, SimulatedDevice
from gateway.app import run_gateway
from gateway.config import GatewayConfig
from gateway.flow import Backoff
from gateway.health import HealthState
from gateway.outbox import Outbox
from gateway.sources.modbus import MAX_RETRY_DELAY_S
from telemetry.codec import decode_state
from telemetry.payloads import Reading
from tests.mqtt_helpers import Collector, gateway_mqtt, ingest_env
from tests.mqtt_helpers import wait_until as wait_sync

T0 = 1_767_225_600_000  # 2026-01-01T00:00Z, a day-old backlog is in the past


def prefill(path: Path, total: int, *, sensors: int = 25) -> str:
    """Fill an outbox with ``total`` readings, 100 per append; return its stream id."""
    with Outbox.open(path, synchronous="NORMAL") as box:
        done = 0
        while done < total:
            n = min(100, total - done)
            box.append(
                [
                    Reading(
                        t=T0 + (done + i) * 1000,
                        sensor=f"KILL-{(done + i) % sensors:02d}",
                        qty="temperature",
                        value=round(2.0 + ((done + i) % 60) / 10, 1),
                        unit="Cel",
                    )
                    for i in range(n)
                ]
            )
            done += n
        return box.stream


def db_counts(db_url: str) -> tuple[int, int, int, int]:
    """(rows, distinct seqs, min seq, max seq) of the stored readings."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT gateway_seq), coalesce(min(gateway_seq), 0),"
            " coalesce(max(gateway_seq), 0) FROM telemetry.readings"
        ).fetchone()
    assert row is not None
    return (int(row[0]), int(row[1]), int(row[2]), int(row[3]))


def committed(db_url: str, stream: str) -> int:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT committed_seq FROM telemetry.gateway_streams WHERE stream = %s", (stream,)
        ).fetchone()
    return int(row[0]) if row else 0


def outbox_first_seq(path: Path) -> int:
    """The oldest seq still held, read-only (next_seq when empty)."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as conn:
        (oldest,) = conn.execute("SELECT min(seq) FROM readings").fetchone()
        (next_seq,) = conn.execute("SELECT next_seq FROM stream").fetchone()
    return int(oldest) if oldest is not None else int(next_seq)


@pytest.mark.timeout(240)
def test_gateway_sigkill_mid_drain_loses_and_doubles_nothing(
    tmp_path: Path, broker: Broker, db_url: str
) -> None:
    total = 150_000
    outbox = tmp_path / "outbox.sqlite"
    stream = prefill(outbox, total)
    cfg = tmp_path / "gateway.yaml"
    gw_id = "gw-" + uuid.uuid4().hex[:8]
    states = Collector(broker, f"ct/v1/kill/{gw_id}/state")
    cfg.write_text(
        yaml.safe_dump(
            {
                "gateway": {"id": gw_id, "site": "kill"},
                "mqtt": gateway_mqtt(broker, "kill", gw_id, reconnect_max_s=1),
                "outbox": {"path": str(outbox), "batch_max": 500, "resend_after_s": 3},
                "state_interval_s": 2,
            }
        )
    )
    sup = Supervisor(logdir=tmp_path / "logs")
    ingest_args = coldtrace_args("ingest", "--plain-logs")
    sup.add("ingest", ingest_args, {"COLDTRACE_DATABASE_URL": db_url, **ingest_env(broker)})
    sup.add("gateway", coldtrace_args("gateway", "run", "-c", str(cfg), "--plain-logs"))
    gateway = sup.children["gateway"]
    try:
        # kill -9 once ingest has part of the backlog, twice, at different depths
        for fraction in (0.1, 0.4):
            assert wait_sync(lambda f=fraction: committed(db_url, stream) >= total * f, 90), (
                f"drain stalled before {fraction:.0%}"
            )
            gateway.kill()
            at_kill = committed(db_url, stream)
            assert at_kill < total, "the drain finished before the kill; raise total"
            # the gateway deleted nothing that ingest had not committed
            assert outbox_first_seq(outbox) <= at_kill + 1
            time.sleep(0.5)
            gateway.start()
        assert wait_sync(lambda: committed(db_url, stream) == total, 120), "not drained"
        assert wait_sync(lambda: outbox_first_seq(outbox) == total + 1, 30), "outbox not emptied"
        assert db_counts(db_url) == (total, total, 1, total)
        with psycopg.connect(db_url) as conn:
            # device timestamps are kept: seq k was read at T0 + (k - 1) s
            bad = conn.execute(
                "SELECT count(*) FROM telemetry.readings"
                " WHERE (extract(epoch FROM time) * 1000)::bigint <> %s + (gateway_seq - 1) * 1000",
                (T0,),
            ).fetchone()
        assert bad == (0,)

        def drained(payload: bytes) -> bool:
            state = msgspec.json.decode(payload, type=HealthState)
            return (
                state.committed == total
                and state.outbox_depth == 0
                and state.oldest_unconfirmed_t is None
                # gateway and ingest share this machine's clock: the estimate is ~0
                and state.clock_skew_ms is not None
                and abs(state.clock_skew_ms) < 1_000
                and not state.clock_skewed
            )

        assert states.wait_for(lambda ps: any(drained(p) for p in ps), timeout=10), (
            "the state topic did not report the drained outbox and the clock skew"
        )
    finally:
        states.close()
        sup.stop()
    for child in sup.children.values():
        log = child.log_path.read_text(errors="replace") if child.log_path.exists() else ""
        assert "Traceback" not in log, f"{child.name} crashed:\n{log[-3000:]}"


def sensor_counts(path: Path) -> dict[str, tuple[int, int]]:
    """Per sensor: (readings in the outbox, newest device time), read-only."""
    if not path.exists():
        return {}
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as conn:
        rows = conn.execute(
            "SELECT s.sensor, count(*), max(r.t) FROM readings r"
            " JOIN series s ON s.id = r.series GROUP BY s.sensor"
        ).fetchall()
    return {str(s): (int(n), int(t)) for s, n, t in rows}


async def until(cond: Any, what: str, within: float) -> None:
    deadline = time.monotonic() + within
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.1)


@pytest.mark.timeout(90)
def test_vanished_modbus_device_is_polled_again_without_restart(
    tmp_path: Path, broker: Broker
) -> None:
    asyncio.run(vanishing_device(tmp_path, broker))


async def vanishing_device(tmp_path: Path, broker: Broker) -> None:
    """Two simulated fridges; one is unplugged for 20 s and plugged back in."""
    ports = [free_port(), free_port()]
    devices = [
        SimulatedDevice(DeviceSpec(name=f"fridge-{i}", profile="renke-rs-ws-n01", port=p))
        for i, p in enumerate(ports)
    ]
    site, gw = "res", "gw-" + uuid.uuid4().hex[:8]
    outbox = tmp_path / "outbox.sqlite"
    cfg = GatewayConfig.model_validate(
        {
            "gateway": {"id": gw, "site": site},
            "mqtt": gateway_mqtt(broker, site, gw, reconnect_max_s=1),
            "outbox": {"path": str(outbox)},
            "state_interval_s": 0.5,
            "modbus": [
                {
                    "name": f"fridge-{i}",
                    "profile": "renke-rs-ws-n01",
                    "host": "127.0.0.1",
                    "port": p,
                    "sensor": f"RES-{i}",
                    "poll_interval_s": 0.2,
                    "timeout_s": 0.5,
                    "retries": 0,
                }
                for i, p in enumerate(ports)
            ],
        }
    )
    states = Collector(broker, f"ct/v1/{site}/{gw}/state")
    stops = [asyncio.Event(), asyncio.Event()]
    served = [asyncio.create_task(d.serve(stop=s)) for d, s in zip(devices, stops, strict=True)]
    stop = asyncio.Event()
    gateway = asyncio.create_task(run_gateway(cfg, stop=stop))
    try:
        await until(
            lambda: all(sensor_counts(outbox).get(f"RES-{i}", (0, 0))[0] >= 10 for i in (0, 1)),
            "both devices polled",
            20,
        )
        # fridge 0 is unplugged: its server goes away entirely
        stops[0].set()
        await served[0]
        gone_at_ms = int(time.time() * 1000)
        before = sensor_counts(outbox)
        await asyncio.sleep(20)
        during = sensor_counts(outbox)
        # fridge 1 kept being polled at its 0.2 s interval the whole time (>= half the polls)
        assert during["RES-1"][0] - before["RES-1"][0] >= 2 * 50, "fridge 1 starved"
        # nothing from fridge 0 but what a poll under way at the unplug delivered
        assert during["RES-0"][0] - before["RES-0"][0] <= 2
        assert during["RES-0"][1] <= gone_at_ms + 500

        def reported(payload: bytes) -> bool:
            state = msgspec.json.decode(payload, type=HealthState)
            src = {s.name: s for s in state.sources}
            sensors = {s.sensor: s for s in state.sensors}
            return (
                not src["fridge-0"].ok
                and src["fridge-1"].ok
                and sensors["RES-0"].overdue_ms is not None
                and sensors["RES-1"].overdue_ms is None
                and any(g.sensor == "RES-0" and g.end is None for g in state.gaps)
            )

        assert states.wait_for(lambda ps: any(reported(p) for p in ps), timeout=5), (
            "the state topic did not report fridge 0 as failing and overdue"
        )
        # plugged back in on the same port; the same gateway polls it again
        stops[0] = asyncio.Event()
        served[0] = asyncio.create_task(devices[0].serve(stop=stops[0]))
        back_at_ms = int(time.time() * 1000)
        await until(
            lambda: sensor_counts(outbox)["RES-0"][1] > back_at_ms, "fridge 0 polled again", 35
        )
        resumed = time.monotonic()
        count_then = sensor_counts(outbox)["RES-0"][0]
        await until(
            lambda: sensor_counts(outbox)["RES-0"][0] >= count_then + 20, "regular polls", 10
        )
        assert time.monotonic() - resumed < 10
        assert not gateway.done(), "the gateway stopped"
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(gateway, 20)
        for s in stops:
            s.set()
        await asyncio.gather(*served, return_exceptions=True)
        states.close()
    assert gateway.exception() is None


@pytest.mark.parametrize("interval", [0.05, 1.0, 10.0, 60.0])
def test_retry_delay_stays_capped_however_long_the_outage(interval: float) -> None:
    # the backoff a Modbus source uses, driven through a 10 minute (and a 3 day) outage
    # on an injected clock: no delay exceeds the cap, so a device that returns is polled
    # again within one capped delay of its return
    cap = max(interval, MAX_RETRY_DELAY_S)
    backoff = Backoff(initial=interval, cap=cap, jitter=0.2, rand=random.Random(7).random)
    for outage_s in (600.0, 3 * 86_400.0):
        backoff.reset()
        now, attempts = 0.0, []
        while now <= outage_s:  # every attempt in here fails
            attempts.append(now)
            now += backoff.next_delay()
        gaps = [b - a for a, b in itertools.pairwise(attempts)]
        assert max(gaps) <= cap
        assert now - outage_s <= cap  # first attempt after the return
        assert len(attempts) >= outage_s / cap  # it never gave up
    assert cap <= 60.0


@pytest.mark.timeout(60)
def test_failing_devices_never_starve_a_healthy_one(tmp_path: Path, broker: Broker) -> None:
    asyncio.run(failing_devices(tmp_path, broker))


async def failing_devices(tmp_path: Path, broker: Broker) -> None:
    """One good fridge; one unit that answers a Modbus exception; one that never answers."""
    good = SimulatedDevice(DeviceSpec(name="good", profile="renke-rs-ws-n01", port=free_port()))
    silent_port = free_port()
    held: list[asyncio.StreamWriter] = []

    async def swallow(_r: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accepts the connection, reads nothing, answers nothing

    silent = await asyncio.start_server(swallow, "127.0.0.1", silent_port)
    common = {"profile": "renke-rs-ws-n01", "host": "127.0.0.1", "retries": 0}
    site, gw = "res", "gw-" + uuid.uuid4().hex[:8]
    outbox = tmp_path / "outbox.sqlite"
    cfg = GatewayConfig.model_validate(
        {
            "gateway": {"id": gw, "site": site},
            "mqtt": gateway_mqtt(broker, site, gw),
            "outbox": {"path": str(outbox)},
            "state_interval_s": 0.5,
            "modbus": [
                {
                    **common,
                    "name": "good",
                    "port": good.spec.port,
                    "sensor": "OK-1",
                    "poll_interval_s": 0.2,
                    "timeout_s": 0.5,
                },
                # the sim answers exception 0x0B for any unit but its own (1)
                {
                    **common,
                    "name": "no-unit",
                    "port": good.spec.port,
                    "address": 9,
                    "sensor": "EXC-1",
                    "poll_interval_s": 0.1,
                    "timeout_s": 0.5,
                },
                {
                    **common,
                    "name": "mute",
                    "port": silent_port,
                    "sensor": "MUTE-1",
                    "poll_interval_s": 0.1,
                    "timeout_s": 0.3,
                },
            ],
        }
    )
    states = Collector(broker, f"ct/v1/{site}/{gw}/state")
    sim_stop, stop = asyncio.Event(), asyncio.Event()
    served = asyncio.create_task(good.serve(stop=sim_stop))
    gateway = asyncio.create_task(run_gateway(cfg, stop=stop))
    try:
        await until(lambda: sensor_counts(outbox).get("OK-1", (0, 0))[0] >= 10, "first polls", 20)
        start, t0 = sensor_counts(outbox)["OK-1"][0], time.monotonic()
        await asyncio.sleep(5)
        polls = (sensor_counts(outbox)["OK-1"][0] - start) / 2  # two readings per poll
        elapsed = time.monotonic() - t0
        assert polls >= 0.5 * elapsed / 0.2, f"only {polls} polls of the good fridge"
        assert set(sensor_counts(outbox)) == {"OK-1"}

        def reported(payload: bytes) -> bool:
            src = {s.name: s for s in decode_state(payload).sources}
            return (
                src["good"].ok
                and not src["no-unit"].ok
                and not src["mute"].ok
                and "exception" in (src["no-unit"].error or "").lower()
                and src["mute"].error is not None
            )

        assert states.wait_for(lambda ps: any(reported(p) for p in ps), timeout=5), (
            "the failing sources were not reported"
        )
        assert not gateway.done()
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(gateway, 20)
        sim_stop.set()
        await asyncio.gather(served, return_exceptions=True)
        for w in held:
            w.close()
        silent.close()
        states.close()
    assert gateway.exception() is None
