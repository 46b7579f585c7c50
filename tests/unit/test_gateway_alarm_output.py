"""The alarm output driver after a start: it never switches a relay off on no evidence."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from gateway.alarm_output import AlarmOutputDriver
from gateway.config import AlarmOutput
from telemetry.modbus_profiles import builtin_relay_profiles
from telemetry.payloads import Reading

PROFILE = "waveshare-modbus-rtu-relay"


class FakeLink:
    """Records the coil writes the driver asks for instead of talking Modbus."""

    def __init__(self) -> None:
        self.writes: list[bool] = []

    async def call(self, _unit: object, request: Callable[[Any], Awaitable[None]]) -> None:
        link = self

        class Client:
            async def write_coil(self, _coil: int, *, value: bool, device_id: int) -> Any:
                link.writes.append(value)

                class Ok:
                    def isError(self) -> bool:  # noqa: N802 - pymodbus's name
                        return False

                return Ok()

        await request(Client())


def driver(link: FakeLink, sensors: list[str]) -> AlarmOutputDriver:
    cfg = AlarmOutput.model_validate(
        {
            "name": "buzzer",
            "profile": PROFILE,
            "transport": "tcp",
            "host": "127.0.0.1",
            "port": 5020,
            "refresh_s": 0.05,
            "limits": [{"sensor": s, "low": 2.0, "high": 8.0} for s in sensors],
        }
    )
    return AlarmOutputDriver(
        cfg,
        builtin_relay_profiles()[PROFILE],
        link=link,
        clock=lambda: 0.0,  # type: ignore[arg-type]
    )


def temp(sensor: str, value: float) -> Reading:
    return Reading(t=0, sensor=sensor, qty="temperature", value=value, unit="Cel")


def test_no_off_write_until_every_watched_sensor_has_answered() -> None:
    async def scenario() -> None:
        link = FakeLink()
        out = driver(link, ["fridge-a", "fridge-b"])
        task = asyncio.create_task(out.run(lambda _r: None))
        try:
            await asyncio.sleep(0.2)  # several refresh periods, no reading yet
            assert link.writes == []  # a coil left on before the restart stays on
            out.observe([temp("fridge-a", 5.0)])
            await asyncio.sleep(0.2)
            assert link.writes == []  # fridge-b unknown: still no off
            out.observe([temp("fridge-b", 5.0)])
            await asyncio.sleep(0.1)
            assert link.writes
            assert not any(link.writes)
            assert out.alarm_state().output_on is False
        finally:
            task.cancel()

    asyncio.run(scenario())


def test_a_broken_limit_switches_on_at_once_even_before_all_are_known() -> None:
    async def scenario() -> None:
        link = FakeLink()
        out = driver(link, ["fridge-a", "fridge-b"])
        task = asyncio.create_task(out.run(lambda _r: None))
        try:
            out.observe([temp("fridge-a", 9.0)])
            await asyncio.sleep(0.1)
            assert link.writes
            assert all(link.writes)
        finally:
            task.cancel()

    asyncio.run(scenario())


class BrokenLink:
    """A relay module that does not answer."""

    async def call(self, _unit: object, _request: object) -> None:
        raise TimeoutError


def test_a_failed_write_is_reported_at_once_not_at_the_next_period() -> None:
    async def scenario() -> None:
        changes: list[int] = []
        cfg = AlarmOutput.model_validate(
            {
                "name": "buzzer",
                "profile": PROFILE,
                "transport": "tcp",
                "host": "127.0.0.1",
                "port": 5020,
                "refresh_s": 60,
                "limits": [{"sensor": "fridge-a", "high": 8.0}],
            }
        )
        out = AlarmOutputDriver(
            cfg,
            builtin_relay_profiles()[PROFILE],
            link=BrokenLink(),  # type: ignore[arg-type]
            clock=lambda: 0.0,
            on_change=lambda: changes.append(1),
        )
        task = asyncio.create_task(out.run(lambda _r: None))
        try:
            out.observe([temp("fridge-a", 9.0)])  # alarm on: one change
            await asyncio.sleep(0.1)
            assert out.alarm_state().error is not None
            assert len(changes) == 2  # the alarm turning on, then its relay failing
        finally:
            task.cancel()

    asyncio.run(scenario())
