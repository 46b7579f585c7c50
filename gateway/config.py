"""Gateway configuration: one YAML file, validated, with errors that point at a line.

A gateway runs unattended in a plant or a truck, and the person editing its config
file needs to know exactly what is wrong and where. So the YAML is composed into
nodes, which carry line marks, before it is constructed; pydantic validates the
result, and every error is reported with the file, the field path and the line.
The Modbus sections (devices, alarm outputs, the bus rules) are in
`gateway.config_modbus`, and re-exported here.
"""

from __future__ import annotations

import ssl
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from gateway.config_modbus import (
    AlarmOutput,
    LocalLimit,
    ModbusDevice,
    ModbusEndpoint,
    bus_conflict,
    modbus_profiles,
)
from gateway.config_types import Loc, Section, SensorUid, TopicId, format_loc
from gateway.errors import ConfigError, ConfigIssue
from gateway.outbox import RESERVE_BYTES
from telemetry.modbus_profiles import Profile, builtin_profiles, builtin_relay_profiles

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
    "MqttTls",
    "OutboxConfig",
    "RfidReader",
    "load_config",
    "parse_config",
]

# A batch must stay under the codec's 1 MiB payload limit even with 128-character
# sensor ids (about 230 bytes per reading), and under its 10,000 items.
MAX_BATCH = 4000


class GatewayIdentity(Section):
    """Who this gateway is: its id and its site, both single MQTT topic levels."""

    id: TopicId
    site: TopicId


def _relative_to_file(value: Path, info: ValidationInfo) -> Path:
    """``value`` with ``~`` expanded, relative to the config file's directory."""
    if str(value) in ("", "."):
        raise ValueError("must name a file")
    base = (info.context or {}).get("base_dir")
    value = value.expanduser()
    return value if value.is_absolute() or base is None else Path(base) / value


MQTT_PORT, MQTTS_PORT = 1883, 8883


class MqttTls(Section):
    """TLS to the broker: its certificate is checked against ``ca_file`` and its host name.

    There is deliberately no switch to skip either check: a gateway that would talk to
    any broker would hand its readings, and its password, to whoever answers.
    """

    ca_file: Path | None = None  # None: the system's trusted CAs
    cert_file: Path | None = None  # a client certificate, where the broker asks for one
    key_file: Path | None = None

    @field_validator("ca_file", "cert_file", "key_file")
    @classmethod
    def _file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        path = _relative_to_file(value, info)
        if not path.is_file():
            raise ValueError(f"no such file: {path}")
        return path

    @model_validator(mode="after")
    def _usable(self) -> MqttTls:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        try:
            self.context()
        except (OSError, ssl.SSLError) as err:
            raise ValueError(f"cannot use these TLS files: {err}") from err
        return self

    def context(self) -> ssl.SSLContext:
        """A client context that verifies the broker's certificate chain and host name."""
        cafile = str(self.ca_file) if self.ca_file is not None else None
        context = ssl.create_default_context(cafile=cafile)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert_file is not None and self.key_file is not None:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


class MqttConfig(Section):
    """How to reach the MQTT broker, and as whom (docs/mqtt.md)."""

    host: str = Field(min_length=1)
    port: int = Field(default=MQTT_PORT, ge=1, le=65535)  # 8883 when tls is given
    keepalive_s: int = Field(default=60, ge=5, le=65535)
    client_id: str | None = Field(default=None, min_length=1, max_length=128)
    username: str | None = Field(default=None, min_length=1)
    password: SecretStr | None = None
    password_file: Path | None = None  # instead of password: a file holding only it
    tls: MqttTls | None = None
    reconnect_max_s: float = Field(default=30.0, gt=0, le=3600)
    # A clustered broker's other nodes, "host:port": after a lost connection or a failed
    # attempt the next reconnect goes to the next node of [host:port, *failover].
    failover: list[str] = Field(default_factory=list)

    @field_validator("failover")
    @classmethod
    def _nodes(cls, value: list[str]) -> list[str]:
        for node in value:
            host, sep, port = node.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"broker node {node!r} is not host:port")
        return value

    def nodes(self) -> list[tuple[str, int]]:
        """Every broker node to try, in order: host:port first, then the failover list."""
        others = [n.rpartition(":") for n in self.failover]
        return [(self.host, self.port), *((h, int(p)) for h, _, p in others)]

    @model_validator(mode="before")
    @classmethod
    def _tls_port(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("tls") is not None and "port" not in data:
            return {**data, "port": MQTTS_PORT}
        return data

    @field_validator("password_file")
    @classmethod
    def _readable(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        path = _relative_to_file(value, info)
        try:
            path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ValueError(f"cannot read the password file: {err}") from err
        return path

    @model_validator(mode="after")
    def _credentials_pair(self) -> MqttConfig:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        has_password = self.password is not None or self.password_file is not None
        if (self.username is None) == has_password:
            raise ValueError("username and password go together (`coldtrace devices provision`)")
        return self

    def secret(self) -> str | None:
        """The password, read from ``password_file`` at each call if that is how it is given.

        Raises OSError if the file cannot be read any more.
        """
        if self.password_file is not None:
            return self.password_file.read_text("utf-8").strip()
        return self.password.get_secret_value() if self.password is not None else None


class OutboxConfig(Section):
    """The durable SQLite outbox and the go-back-N window over it."""

    path: Path
    batch_max: int = Field(default=500, ge=1, le=MAX_BATCH)
    resend_after_s: float = Field(default=10.0, gt=0)
    max_unconfirmed: int = Field(default=50_000, ge=1)
    synchronous: Literal["FULL", "NORMAL"] = "FULL"
    # The outbox file's size cap (None: only the disk's room); past it, or with less than
    # min_free_disk_bytes free on its disk, new readings are refused, counted and
    # reported, and what it holds is kept (docs/reliability.md).
    max_bytes: int | None = Field(default=None, ge=1024 * 1024)
    min_free_disk_bytes: int = Field(default=RESERVE_BYTES, ge=0)

    @field_validator("synchronous", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("path")
    @classmethod
    def _relative_to_file(cls, value: Path, info: ValidationInfo) -> Path:
        return _relative_to_file(value, info)


class BleLogger(Section):
    """One BLE temperature logger, by its Bluetooth address, and the sensor uid it reports as."""

    address: str = Field(pattern=r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
    sensor: SensorUid
    format: Literal["bthome", "govee-h5075"] = "bthome"


class BleConfig(Section):
    """The BLE scanner: which adapter, and which advertisers are ours (others are ignored)."""

    name: TopicId = "ble"
    adapter: str | None = None  # e.g. hci0; None = the system default
    loggers: list[BleLogger] = Field(min_length=1)
    # formats without a packet id (Govee) repeat each frame several times a second
    min_interval_s: float = Field(default=10.0, ge=0)


LLRP_PORT = 5084  # the IANA port of LLRP


class RfidReader(Section):
    """One RFID reader over TCP: a JSON tag stream or LLRP (docs/edge-devices.md).

    ``port`` is required for ``json``; for ``llrp`` it defaults to the LLRP port, 5084.
    """

    name: TopicId
    protocol: Literal["json", "llrp"] = "json"
    host: str = Field(min_length=1)
    port: int = Field(ge=1, le=65535)
    collapse_window_s: float = Field(default=5.0, ge=0)
    timeout_s: float = Field(default=30.0, gt=0)  # silence longer than this reconnects

    @model_validator(mode="before")
    @classmethod
    def _llrp_port(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("protocol") == "llrp" and "port" not in data:
            return {**data, "port": LLRP_PORT}
        return data


class BarcodeScanner(Section):
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


class GatewayConfig(Section):
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
        dupes = sorted(n for n, count in Counter(names).items() if count > 1)
        if dupes:
            raise ValueError(f"source names must be unique; used twice: {', '.join(dupes)}")
        return self

    @model_validator(mode="after")
    def _buses_agree(self) -> GatewayConfig:
        """Units on one serial port agree on its settings and have distinct addresses."""
        if problem := bus_conflict(self.modbus, self.alarms):
            loc, message = problem
            raise PydanticCustomError("bus", "{message}", {"message": message, "at": loc})
        return self

    @model_validator(mode="after")
    def _limits_watch_known_sensors(self, info: ValidationInfo) -> GatewayConfig:
        known = {d.sensor for d in self.modbus}
        ble = {logger.sensor for logger in self.ble.loggers} if self.ble else set()
        known |= ble
        # a Modbus sensor delivers exactly its profile's quantities: a limit on another
        # one (a typo such as "temp") would never see a reading and never sound
        profiles = modbus_profiles(info)
        quantities = {
            d.sensor: {r.qty for r in profiles[d.profile].registers}
            for d in self.modbus
            if d.profile in profiles and d.sensor not in ble
        }
        for i, alarm in enumerate(self.alarms):
            for j, limit in enumerate(alarm.limits):
                if limit.sensor not in known:
                    message = f"sensor {limit.sensor!r} is not read by this gateway"
                    at = ("alarms", i, "limits", j, "sensor")
                    raise PydanticCustomError("sensor", "{message}", {"message": message, "at": at})
                qtys = quantities.get(limit.sensor)
                if qtys is not None and limit.qty not in qtys:
                    message = (
                        f"sensor {limit.sensor!r} delivers {', '.join(sorted(qtys))}, "
                        f"not {limit.qty!r}"
                    )
                    at = ("alarms", i, "limits", j, "qty")
                    raise PydanticCustomError("qty", "{message}", {"message": message, "at": at})
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


def _line_marks(
    root: yaml.Node, path: Loc, marks: dict[Loc, int], issues: list[ConfigIssue]
) -> None:
    """Record the 1-based line of every field path below ``root``; flag duplicate keys.

    Iterative, and each node is walked once: an alias repeats a node (its fields then
    point at the alias's line), so walking every occurrence would take exponential
    time on nested aliases, and forever on a recursive one.
    """
    stack: list[tuple[yaml.Node, Loc]] = [(root, path)]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        marks.setdefault(path, node.start_mark.line + 1)
        if id(node) in seen:
            continue
        seen.add(id(node))
        children: list[tuple[yaml.Node, Loc]] = []
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue
                child = (*path, key_node.value)
                line = key_node.start_mark.line + 1
                if child in marks:
                    first = f"first at line {marks[child]}"
                    issues.append(
                        ConfigIssue(format_loc(child), line, f"key appears twice ({first})")
                    )
                marks[child] = line
                children.append((value_node, child))
        elif isinstance(node, yaml.SequenceNode):
            children = [(item, (*path, i)) for i, item in enumerate(node.value)]
        stack.extend(reversed(children))  # popped in document order


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
    return ConfigIssue(format_loc(loc), _line_of(loc, marks), message)


def parse_config(
    text: str, *, path: Path, profiles: Mapping[str, Profile] | None = None
) -> GatewayConfig:
    """Parse and validate config ``text`` read from ``path``; raise `ConfigError`."""
    try:
        loader = yaml.SafeLoader(text)  # checks every character: NUL, C0 controls, surrogates
    except yaml.reader.ReaderError as err:
        where = text.count("\n", 0, err.position) + 1
        raise ConfigError(path, [ConfigIssue("", where, f"not valid YAML: {err}")]) from err
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except RecursionError as err:
        deep = ConfigIssue("", loader.get_mark().line + 1, "not valid YAML: nested too deeply")
        raise ConfigError(path, [deep]) from err
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
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(path, [ConfigIssue("", None, f"cannot read the file: {err}")]) from err
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ConfigError(path, [ConfigIssue("", line, f"not UTF-8 text: {err}")]) from err
    return parse_config(text, path=path)
