"""Modbus units in the gateway config: sensors, relay alarm outputs, and the RS-485 bus rules.

A Modbus unit is reached over TCP or an RS-485 serial line (`ModbusEndpoint`); a
sensor (`ModbusDevice`) is polled through a register profile, an alarm output
(`AlarmOutput`) switches one channel of a relay module. Units on one serial port are
one bus: `bus_conflict` finds settings that cannot work on one (mixed baud rates,
two units at one address), so the file is refused with the line to fix rather than
failing at the plant. Profiles come from the validation context (``profiles``,
``relay_profiles``) or the built-in ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Self

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from gateway.config_types import Loc, Section, SensorUid, TopicId, format_loc
from telemetry.modbus_profiles import (
    Profile,
    RelayProfile,
    SerialDefaults,
    builtin_profiles,
    builtin_relay_profiles,
)


def modbus_profiles(info: ValidationInfo) -> Mapping[str, Profile]:
    """The sensor profiles of this validation: from its context, or the built-in ones."""
    context = info.context or {}
    profiles = context.get("profiles")
    return profiles if profiles is not None else builtin_profiles()


def _relay_profiles(info: ValidationInfo) -> Mapping[str, RelayProfile]:
    context = info.context or {}
    profiles = context.get("relay_profiles")
    return profiles if profiles is not None else builtin_relay_profiles()


def _fill_link_defaults(data: Any, serial: SerialDefaults | None, default_address: int) -> Any:
    """Fill serial settings (rtu) and ``address`` from the device's profile."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    if serial is not None and data.get("transport") == "rtu":
        for key in ("baudrate", "bytesize", "parity", "stopbits"):
            data.setdefault(key, getattr(serial, key))
    if data.get("address") is None:
        data["address"] = default_address
    return data


class ModbusEndpoint(Section):
    """Where a Modbus unit is reached: TCP host and port, or an RS-485 serial line, and its id.

    Units that share a serial port (an RS-485 bus) or a TCP endpoint (an RTU-to-TCP
    converter) share one client and are polled one at a time (`link_key`).
    """

    transport: Literal["tcp", "rtu"] = "tcp"
    host: str | None = Field(default=None, min_length=1)  # tcp
    port: int = Field(default=502, ge=1, le=65535)  # tcp
    serial_port: str | None = Field(default=None, min_length=1)  # rtu: /dev/ttyUSB0, a URL
    baudrate: int = Field(default=9600, gt=0)  # rtu; default from the profile
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    address: int = Field(ge=0, le=247)
    timeout_s: float = Field(default=3.0, gt=0)
    retries: int = Field(default=3, ge=0, le=10)

    @model_validator(mode="after")
    def _transport_needs_its_address(self) -> Self:
        if self.transport == "tcp" and self.host is None:
            raise ValueError("a tcp device needs 'host'")
        if self.transport == "rtu" and self.serial_port is None:
            raise ValueError("an rtu device needs 'serial_port' (e.g. /dev/ttyUSB0)")
        return self

    @property
    def link_key(self) -> str:
        """The shared link this unit is reached through: its serial port or host:port."""
        if self.transport == "rtu":
            return f"rtu:{self.serial_port}"
        return f"tcp:{self.host}:{self.port}"

    @property
    def link_label(self) -> str:
        """The link and unit, as error messages name them."""
        link = self.serial_port if self.transport == "rtu" else f"{self.host}:{self.port}"
        return f"{link} unit {self.address}"


class ModbusDevice(ModbusEndpoint):
    """One Modbus sensor polled by the gateway, over TCP or RTU (RS-485 serial)."""

    name: TopicId
    profile: str
    poll_interval_s: float = Field(default=10.0, gt=0)
    sensor: SensorUid

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any, info: ValidationInfo) -> Any:
        """Fill ``sensor`` from ``name``, and ``address`` and serial settings from the profile."""
        if (
            isinstance(data, dict)
            and data.get("sensor") is None
            and isinstance(data.get("name"), str)
        ):
            data = {**data, "sensor": data["name"]}
        profile = (
            modbus_profiles(info).get(str(data.get("profile"))) if isinstance(data, dict) else None
        )
        # an unknown profile is reported on its own field; address 1 keeps the noise down
        if profile is None:
            return _fill_link_defaults(data, None, 1)
        return _fill_link_defaults(data, profile.serial, profile.default_address)

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str, info: ValidationInfo) -> str:
        known = modbus_profiles(info)
        if value not in known:
            raise ValueError(f"unknown profile {value!r}; built-in profiles: {', '.join(known)}")
        return value


class LocalLimit(Section):
    """A limit the gateway checks itself, so the local alarm works without the network."""

    sensor: SensorUid
    qty: str = "temperature"
    low: float | None = None
    high: float | None = None

    @model_validator(mode="after")
    def _some_limit(self) -> LocalLimit:
        if self.low is None and self.high is None:
            raise ValueError("a limit needs 'low', 'high' or both")
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValueError(f"low {self.low} must be below high {self.high}")
        return self


class AlarmOutput(ModbusEndpoint):
    """A local alarm output: one channel of a Modbus relay module, on while a limit is broken."""

    name: TopicId
    profile: str
    channel: int = Field(default=1, ge=1)
    limits: list[LocalLimit] = Field(min_length=1)
    refresh_s: float = Field(default=30.0, gt=0)  # re-write the coil (a module that lost power)
    central_alerts: bool = False  # also on while a central alert on a watched sensor is open

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any, info: ValidationInfo) -> Any:
        """Fill ``address`` and serial settings from the relay profile."""
        profile = (
            _relay_profiles(info).get(str(data.get("profile"))) if isinstance(data, dict) else None
        )
        if profile is None:
            return _fill_link_defaults(data, None, 1)
        return _fill_link_defaults(data, profile.serial, profile.default_address)

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str, info: ValidationInfo) -> str:
        known = _relay_profiles(info)
        if value not in known:
            raise ValueError(
                f"unknown relay profile {value!r}; built-in relay profiles: {', '.join(known)}"
            )
        return value

    @model_validator(mode="after")
    def _known_channel(self, info: ValidationInfo) -> AlarmOutput:
        channels = _relay_profiles(info)[self.profile].channels
        if self.channel not in channels:
            raise PydanticCustomError(
                "channel",
                "{profile} has channels {channels}, not {channel}",
                {
                    "profile": self.profile,
                    "channels": f"{min(channels)}-{max(channels)}",
                    "channel": self.channel,
                    "at": ("channel",),
                },
            )
        return self


SERIAL_SETTINGS = ("baudrate", "bytesize", "parity", "stopbits")


def bus_conflict(
    modbus: Sequence[ModbusDevice], alarms: Sequence[AlarmOutput]
) -> tuple[Loc, str] | None:
    """Find the first bus whose units disagree on serial settings or share an address.

    A bus is a serial port, or a TCP host and port (an RTU-to-TCP converter, or one
    Modbus TCP device): addresses must be distinct on either, serial settings agree
    on a serial port.

    Return the field path of the offending unit and the reason, or None. Alarm outputs
    on the same relay module share its address (one channel each), so units are told
    apart by (profile kind, profile) as well as address.
    """
    units: list[tuple[Loc, ModbusEndpoint, str]] = [
        (("modbus", i), d, f"sensor:{d.profile}") for i, d in enumerate(modbus)
    ]
    units += [(("alarms", i), a, f"relay:{a.profile}") for i, a in enumerate(alarms)]
    first_on_port: dict[str, tuple[Loc, ModbusEndpoint]] = {}
    owner: dict[tuple[str, int], tuple[Loc, str]] = {}  # (link_key, address) -> first unit
    for loc, unit, kind in units:
        if unit.transport == "rtu":
            port = str(unit.serial_port)
            where = f"serial port {port}"
            first_loc, first = first_on_port.setdefault(port, (loc, unit))
            for key in SERIAL_SETTINGS:
                if getattr(unit, key) != getattr(first, key):
                    return (*loc, key), (
                        f"{format_loc(loc)} is on serial port {port} with {key} "
                        f"{getattr(unit, key)}, but {format_loc(first_loc)} uses "
                        f"{getattr(first, key)}; every unit on one RS-485 bus must use the same "
                        "baud rate, byte size, parity and stop bits"
                    )
        else:
            # units behind one RTU-to-TCP converter are one bus too: two sensors at one
            # address would both read the same device, each under its own sensor id
            where = f"{unit.host}:{unit.port}"
        seen = owner.setdefault((unit.link_key, unit.address), (loc, kind))
        if seen[0] != loc and (kind.startswith("sensor:") or seen[1] != kind):
            return (*loc, "address"), (
                f"{format_loc(loc)} and {format_loc(seen[0])} both use address "
                f"{unit.address} on {where}; each unit on a bus needs its own"
            )
        if unit.transport == "rtu" and unit.address == 0:
            return (*loc, "address"), "address 0 is the RS-485 broadcast address; use 1-247"
    alarm_channels: dict[tuple[str, int, int], int] = {}
    for i, alarm in enumerate(alarms):
        other = alarm_channels.setdefault((alarm.link_key, alarm.address, alarm.channel), i)
        if other != i:
            return ("alarms", i, "channel"), (
                f"alarms[{i}] and alarms[{other}] drive the same relay channel {alarm.channel}"
            )
    return None
