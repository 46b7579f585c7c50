"""Gateway configuration: one YAML file, validated, with errors that point at a line.

A gateway runs unattended in a plant or a truck, and the person editing its config
file needs to know exactly what is wrong and where. So the YAML is composed into
nodes, which carry line marks, before it is constructed; pydantic validates the
result, and every error is reported with the file, the field path and the line.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from gateway.errors import ConfigError, ConfigIssue
from telemetry.modbus_profiles import (
    Profile,
    RelayProfile,
    SerialDefaults,
    builtin_profiles,
    builtin_relay_profiles,
)
from telemetry.topics import check_id

__all__ = [
    "MAX_BATCH",
    "AlarmOutput",
    "BarcodeScanner",
    "BleConfig",
    "BleLogger",
    "ConfigError",
    "ConfigIssue",
    "GatewayConfig",
    "GatewayIdentity",
    "LocalLimit",
    "ModbusDevice",
    "ModbusEndpoint",
    "MqttConfig",
    "OutboxConfig",
    "RfidReader",
    "load_config",
    "parse_config",
]

# A batch must stay under the codec's 1 MiB payload limit even with 128-character
# sensor ids (about 230 bytes per reading), and under its 10,000 items.
MAX_BATCH = 4000

Loc = tuple[str | int, ...]


def _topic_id(value: str) -> str:
    return check_id(value, "id")


TopicId = Annotated[str, AfterValidator(_topic_id)]
SensorUid = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[!-~]+$")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GatewayIdentity(_Section):
    """Who this gateway is: its id and its site, both single MQTT topic levels."""

    id: TopicId
    site: TopicId


class MqttConfig(_Section):
    """How to reach the MQTT broker."""

    host: str = Field(min_length=1)
    port: int = Field(default=1883, ge=1, le=65535)
    keepalive_s: int = Field(default=60, ge=5, le=65535)
    client_id: str | None = Field(default=None, min_length=1, max_length=128)
    username: str | None = None
    password: SecretStr | None = None
    reconnect_max_s: float = Field(default=30.0, gt=0, le=3600)


class OutboxConfig(_Section):
    """The durable SQLite outbox and the go-back-N window over it."""

    path: Path
    batch_max: int = Field(default=500, ge=1, le=MAX_BATCH)
    resend_after_s: float = Field(default=10.0, gt=0)
    max_unconfirmed: int = Field(default=50_000, ge=1)
    synchronous: Literal["FULL", "NORMAL"] = "FULL"

    @field_validator("synchronous", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("path")
    @classmethod
    def _relative_to_file(cls, value: Path, info: ValidationInfo) -> Path:
        if str(value) in ("", "."):
            raise ValueError("must name a file")
        base = (info.context or {}).get("base_dir")
        value = value.expanduser()
        return value if value.is_absolute() or base is None else Path(base) / value


def _profiles(info: ValidationInfo) -> Mapping[str, Profile]:
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


class ModbusEndpoint(_Section):
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
        profile = _profiles(info).get(str(data.get("profile"))) if isinstance(data, dict) else None
        # an unknown profile is reported on its own field; address 1 keeps the noise down
        if profile is None:
            return _fill_link_defaults(data, None, 1)
        return _fill_link_defaults(data, profile.serial, profile.default_address)

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str, info: ValidationInfo) -> str:
        known = _profiles(info)
        if value not in known:
            raise ValueError(f"unknown profile {value!r}; built-in profiles: {', '.join(known)}")
        return value


class LocalLimit(_Section):
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


class BleLogger(_Section):
    """One BLE temperature logger, by its Bluetooth address, and the sensor uid it reports as."""

    address: str = Field(pattern=r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
    sensor: SensorUid
    format: Literal["bthome", "govee-h5075"] = "bthome"


class BleConfig(_Section):
    """The BLE scanner: which adapter, and which advertisers are ours (others are ignored)."""

    name: TopicId = "ble"
    adapter: str | None = None  # e.g. hci0; None = the system default
    loggers: list[BleLogger] = Field(min_length=1)
    # formats without a packet id (Govee) repeat each frame several times a second
    min_interval_s: float = Field(default=10.0, ge=0)


class RfidReader(_Section):
    """One RFID reader serving newline-delimited JSON tag events over TCP (docs/edge-devices.md)."""

    name: TopicId
    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    collapse_window_s: float = Field(default=5.0, ge=0)
    timeout_s: float = Field(default=30.0, gt=0)  # silence longer than this reconnects


class BarcodeScanner(_Section):
    """One barcode scanner, one scan per line: a serial port (``url``) or a terminal (``keyboard``).

    ``keyboard`` is for USB HID scanners in keyboard mode ("keyboard wedge"), which type
    each scan followed by Enter into whatever terminal has the input: a tty device such
    as ``/dev/tty2`` (a kiosk console) or ``-`` for the gateway's own standard input.
    """

    name: TopicId
    url: str | None = Field(default=None, min_length=1)  # /dev/ttyACM0, socket://host:port, …
    keyboard: str | None = Field(default=None, min_length=1)  # /dev/tty2, or "-" for stdin
    baudrate: int = Field(default=9600, gt=0)

    @model_validator(mode="after")
    def _one_input(self) -> BarcodeScanner:
        if (self.url is None) == (self.keyboard is None):
            raise ValueError(
                "a scanner needs either 'url' (a serial port or pyserial URL) or "
                "'keyboard' (a terminal a keyboard-mode scanner types into, '-' for stdin)"
            )
        return self


class GatewayConfig(_Section):
    """The whole gateway configuration."""

    gateway: GatewayIdentity
    mqtt: MqttConfig
    outbox: OutboxConfig
    state_interval_s: float = Field(default=60.0, gt=0)
    modbus: list[ModbusDevice] = Field(default_factory=list)
    ble: BleConfig | None = None
    rfid: list[RfidReader] = Field(default_factory=list)
    barcode: list[BarcodeScanner] = Field(default_factory=list)
    alarms: list[AlarmOutput] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_source_names(self) -> GatewayConfig:
        names = [d.name for d in self.modbus] + [d.name for d in self.rfid]
        names += [d.name for d in self.barcode] + ([self.ble.name] if self.ble else [])
        names += [a.name for a in self.alarms]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique; used twice: {', '.join(dupes)}")
        return self

    @model_validator(mode="after")
    def _buses_agree(self) -> GatewayConfig:
        """Units on one serial port agree on its settings and have distinct addresses."""
        if problem := bus_conflict(self):
            loc, message = problem
            raise PydanticCustomError("bus", "{message}", {"message": message, "at": loc})
        return self

    @model_validator(mode="after")
    def _limits_watch_known_sensors(self) -> GatewayConfig:
        known = {d.sensor for d in self.modbus}
        known |= {logger.sensor for logger in self.ble.loggers} if self.ble else set()
        for i, alarm in enumerate(self.alarms):
            for j, limit in enumerate(alarm.limits):
                if limit.sensor not in known:
                    message = f"sensor {limit.sensor!r} is not read by this gateway"
                    at = ("alarms", i, "limits", j, "sensor")
                    raise PydanticCustomError("sensor", "{message}", {"message": message, "at": at})
        return self

    @field_validator("modbus")
    @classmethod
    def _unique(cls, devices: list[ModbusDevice]) -> list[ModbusDevice]:
        for attr in ("name", "sensor"):
            seen: dict[str, int] = {}
            for i, device in enumerate(devices):
                value = getattr(device, attr)
                if value in seen:
                    raise ValueError(
                        f"{attr} {value!r} is used by both modbus[{seen[value]}] and modbus[{i}]"
                    )
                seen[value] = i
        return devices


SERIAL_SETTINGS = ("baudrate", "bytesize", "parity", "stopbits")


def bus_conflict(cfg: GatewayConfig) -> tuple[Loc, str] | None:
    """Find the first RS-485 bus whose units disagree on serial settings or share an address.

    Return the field path of the offending unit and the reason, or None. Alarm outputs
    on the same relay module share its address (one channel each), so units are told
    apart by (profile kind, profile) as well as address.
    """
    units: list[tuple[Loc, ModbusEndpoint, str]] = [
        (("modbus", i), d, f"sensor:{d.profile}") for i, d in enumerate(cfg.modbus)
    ]
    units += [(("alarms", i), a, f"relay:{a.profile}") for i, a in enumerate(cfg.alarms)]
    first_on_port: dict[str, tuple[Loc, ModbusEndpoint]] = {}
    owner: dict[tuple[str, int], tuple[Loc, str]] = {}
    for loc, unit, kind in units:
        if unit.transport != "rtu":
            continue
        port = str(unit.serial_port)
        first_loc, first = first_on_port.setdefault(port, (loc, unit))
        for key in SERIAL_SETTINGS:
            if getattr(unit, key) != getattr(first, key):
                return (*loc, key), (
                    f"{_format_loc(loc)} is on serial port {port} with {key} "
                    f"{getattr(unit, key)}, but {_format_loc(first_loc)} uses "
                    f"{getattr(first, key)}; every unit on one RS-485 bus must use the same "
                    "baud rate, byte size, parity and stop bits"
                )
        seen = owner.setdefault((port, unit.address), (loc, kind))
        if seen[0] != loc and (kind.startswith("sensor:") or seen[1] != kind):
            return (*loc, "address"), (
                f"{_format_loc(loc)} and {_format_loc(seen[0])} both use address "
                f"{unit.address} on serial port {port}; each unit on a bus needs its own"
            )
        if unit.address == 0:
            return (*loc, "address"), "address 0 is the RS-485 broadcast address; use 1-247"
    alarm_channels: dict[tuple[str, int, int], int] = {}
    for i, alarm in enumerate(cfg.alarms):
        other = alarm_channels.setdefault((alarm.link_key, alarm.address, alarm.channel), i)
        if other != i:
            return ("alarms", i, "channel"), (
                f"alarms[{i}] and alarms[{other}] drive the same relay channel {alarm.channel}"
            )
    return None


def _line_marks(
    node: yaml.Node, path: Loc, marks: dict[Loc, int], issues: list[ConfigIssue]
) -> None:
    """Record the 1-based line of every field path below ``node``; flag duplicate keys."""
    marks.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            child = (*path, key_node.value)
            line = key_node.start_mark.line + 1
            if child in marks:
                issues.append(
                    ConfigIssue(
                        _format_loc(child),
                        line,
                        f"key appears twice (first at line {marks[child]})",
                    )
                )
            marks[child] = line
            _line_marks(value_node, child, marks, issues)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _line_marks(item, (*path, i), marks, issues)


def _format_loc(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(loc: Loc, marks: dict[Loc, int]) -> int | None:
    """Return the line of ``loc``, or of its nearest ancestor present in the file."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in marks:
            return marks[loc[:end]]
    return None


def _issue(error: Mapping[str, Any], marks: dict[Loc, int]) -> ConfigIssue:
    loc: Loc = tuple(error["loc"]) + tuple((error.get("ctx") or {}).get("at", ()))
    message = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    secret = any(part == "password" for part in loc)
    scalar = isinstance(value, str | int | float | bool)
    if error["type"] != "missing" and scalar and not secret and repr(value) not in message:
        message += f" (got {value!r})"
    return ConfigIssue(_format_loc(loc), _line_of(loc, marks), message)


def parse_config(
    text: str, *, path: Path, profiles: Mapping[str, Profile] | None = None
) -> GatewayConfig:
    """Parse and validate config ``text`` read from ``path``; raise `ConfigError`."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = mark.line + 1 if mark is not None else None
        reason = " ".join(p for p in (err.context, err.problem) if p)
        raise ConfigError(path, [ConfigIssue("", line, f"not valid YAML: {reason}")]) from err
    except yaml.YAMLError as err:
        raise ConfigError(path, [ConfigIssue("", None, f"not valid YAML: {err}")]) from err
    finally:
        loader.dispose()
    if node is None or not isinstance(data, dict):
        line = node.start_mark.line + 1 if node is not None else 1
        raise ConfigError(path, [ConfigIssue("", line, "the file must be a YAML mapping")])
    marks: dict[Loc, int] = {}
    issues: list[ConfigIssue] = []
    _line_marks(node, (), marks, issues)
    context = {
        "base_dir": path.absolute().parent,
        "profiles": profiles or builtin_profiles(),
        "relay_profiles": builtin_relay_profiles(),
    }
    try:
        config = GatewayConfig.model_validate(data, context=context)
    except ValidationError as err:
        issues.extend(_issue(e, marks) for e in err.errors())
        raise ConfigError(path, _in_line_order(issues)) from err
    if issues:  # duplicate keys, which yaml itself lets pass (the last one wins)
        raise ConfigError(path, _in_line_order(issues))
    return config


def _in_line_order(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    return sorted(issues, key=lambda i: (i.line or 0, i.field))


def load_config(path: Path | str) -> GatewayConfig:
    """Read and validate the gateway config file at ``path``; raise `ConfigError`."""
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(path, [ConfigIssue("", None, f"cannot read the file: {err}")]) from err
    return parse_config(text, path=path)
