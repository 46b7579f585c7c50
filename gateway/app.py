"""The gateway process: wires config, outbox, sources and publisher, and stops cleanly.

`run_gateway` is what ``coldtrace gateway run -c FILE`` calls. Each source runs under
a supervisor so a bug in one adapter restarts that adapter and not the gateway; an
outbox failure (disk full, corrupt file) stops the gateway, because carrying on would
lose readings silently — except a full outbox (its cap or the disk), which refuses new
readings, keeps what it holds and says so until there is room again (docs/reliability.md).
On stop the sources end first, then the publisher sends the
offline state, then the outbox is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Mapping, Sequence

from gateway.alarm_output import AlarmOutputDriver
from gateway.central_alerts import decode_alert_event
from gateway.config import GatewayConfig, load_config
from gateway.errors import OutboxError
from gateway.flow import Backoff
from gateway.outbox import Outbox
from gateway.publisher import Publisher
from gateway.sources.barcode import BarcodeSource
from gateway.sources.base import Clock, EventSink, Sink, Source
from gateway.sources.ble import BleSource
from gateway.sources.llrp import LlrpSource
from gateway.sources.modbus import ModbusLink, ModbusSource, build_links
from gateway.sources.rfid import RfidSource
from telemetry.modbus_profiles import builtin_profiles, builtin_relay_profiles
from telemetry.payloads import Reading

__all__ = [
    "build_alarm_outputs",
    "build_sources",
    "install_signal_handlers",
    "load_config",
    "run_gateway",
]

log = logging.getLogger(__name__)

STOP_GRACE_S = 15.0  # how long the publisher may take to say goodbye to the broker
RESTART_MIN_S = 1.0
RESTART_MAX_S = 60.0


def build_sources(
    cfg: GatewayConfig,
    *,
    clock: Clock,
    events: EventSink | None = None,
    links: Mapping[str, ModbusLink] | None = None,
) -> list[Source]:
    """One source per configured device; RFID readers and scanners deliver to ``events``.

    Modbus devices on one serial port or TCP endpoint share one link from ``links``
    (built here when not given).
    """
    profiles = builtin_profiles()
    if links is None:
        links = build_links([*cfg.modbus, *cfg.alarms])
    sources: list[Source] = [
        ModbusSource(d, profiles[d.profile], clock=clock, link=links[d.link_key])
        for d in cfg.modbus
    ]
    if cfg.ble is not None:
        sources.append(BleSource(cfg.ble, clock=clock))
    if (cfg.rfid or cfg.barcode) and events is None:
        raise ValueError("RFID readers and barcode scanners need an event sink")
    if events is not None:
        sources += [
            (LlrpSource if d.protocol == "llrp" else RfidSource)(d, events=events, clock=clock)
            for d in cfg.rfid
        ]
        sources += [BarcodeSource(d, events=events, clock=clock) for d in cfg.barcode]
    return sources


def install_signal_handlers(stop: asyncio.Event) -> Callable[[], None]:
    """Make SIGTERM and SIGINT set ``stop``; return a function that undoes this."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)

    def remove() -> None:
        for sig in signals:
            loop.remove_signal_handler(sig)

    return remove


async def _supervise(source: Source, sink: Sink) -> None:
    """Run ``source`` forever, restarting it after an unexpected error."""
    backoff = Backoff(initial=RESTART_MIN_S, cap=RESTART_MAX_S)
    while True:
        try:
            await source.run(sink)
        except OutboxError:
            raise
        except Exception:
            delay = backoff.next_delay()
            log.exception("source %s crashed; restarting it in %.0f s", source.name, delay)
            await asyncio.sleep(delay)
        else:
            return


async def _finish(
    tasks: Sequence[asyncio.Task[None]], *, grace: float | None = None
) -> Exception | None:
    """Wait up to ``grace`` s for ``tasks``, cancel what is left; return the first error."""
    if grace is not None and tasks:
        await asyncio.wait(tasks, timeout=grace)
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    return next((r for r in results if isinstance(r, Exception)), None)


async def run_gateway(
    cfg: GatewayConfig,
    *,
    stop: asyncio.Event | None = None,
    clock: Clock = time.time,
) -> None:
    """Run all sources and the publisher until ``stop`` is set (or SIGTERM/SIGINT)."""
    with contextlib.ExitStack() as cleanup:
        if stop is None:
            stop = asyncio.Event()
            cleanup.callback(install_signal_handlers(stop))
        outbox = cleanup.enter_context(
            Outbox.open(
                cfg.outbox.path,
                synchronous=cfg.outbox.synchronous,
                max_bytes=cfg.outbox.max_bytes,
                reserve_bytes=cfg.outbox.min_free_disk_bytes,
            )
        )
        await _run(cfg, outbox, stop, clock)


def build_alarm_outputs(
    cfg: GatewayConfig,
    *,
    links: Mapping[str, ModbusLink],
    clock: Clock,
    on_change: Callable[[], None] = lambda: None,
) -> list[AlarmOutputDriver]:
    """One driver per configured local alarm output, on the shared link of its bus."""
    relays = builtin_relay_profiles()
    return [
        AlarmOutputDriver(
            a, relays[a.profile], link=links[a.link_key], clock=clock, on_change=on_change
        )
        for a in cfg.alarms
    ]


async def _run(cfg: GatewayConfig, outbox: Outbox, stop: asyncio.Event, clock: Clock) -> None:
    sources: list[Source] = []
    alarms: list[AlarmOutputDriver] = []

    def central_alert(payload: bytes) -> None:
        if (event := decode_alert_event(payload)) is not None:
            for alarm in alarms:
                alarm.central(event)

    publisher = Publisher(
        cfg,
        outbox,
        status=lambda: [s.status() for s in sources],
        alarms=lambda: [a.alarm_state() for a in alarms],
        alerts=central_alert if any(a.central_alerts for a in cfg.alarms) else None,
        clock=clock,
    )
    links = build_links([*cfg.modbus, *cfg.alarms])
    sources += build_sources(cfg, clock=clock, events=publisher.sink_events, links=links)
    alarms += build_alarm_outputs(
        cfg, links=links, clock=clock, on_change=publisher.publish_state_soon
    )
    sources += alarms

    def sink(readings: Sequence[Reading]) -> None:
        for alarm in alarms:  # local, first: needs neither the broker nor the outbox
            alarm.observe(readings)
        publisher.store(readings)

    log.info(
        "gateway %s/%s: stream %s, %d readings waiting, %d sources",
        cfg.gateway.site,
        cfg.gateway.id,
        outbox.stream,
        outbox.depth(),
        len(sources),
    )
    source_tasks = [
        asyncio.create_task(_supervise(s, sink), name=f"source {s.name}") for s in sources
    ]
    publisher_task = asyncio.create_task(publisher.run(stop), name="publisher")
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait(
            [stopper, publisher_task, *source_tasks], return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        stop.set()
        stopper.cancel()
        # sources first (no more appends), then the publisher's goodbye
        source_error = await _finish(source_tasks)
        for link in links.values():
            link.close()
        publisher_error = await _finish([publisher_task], grace=STOP_GRACE_S)
    if error := source_error or publisher_error:
        raise error
