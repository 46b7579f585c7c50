"""Gateway YAML config: a good file loads; a bad one says file, field, line and why."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coldtrace.devices_tls import create_ca
from gateway.app import load_config
from gateway.config import ModbusDevice
from gateway.config_modbus import bus_conflict
from gateway.errors import ConfigError

GOOD = """\
gateway:
  id: gw-01
  site: plant-a
mqtt:
  host: broker.local
outbox:
  path: data/outbox.sqlite
modbus:
  - name: cold-room-1
    profile: renke-rs-ws-n01
    host: 10.0.0.5
    sensor: CR1-0001
  - name: fridge-2
    profile: xy-md02
    host: 10.0.0.6
    port: 5020
    address: 7
    poll_interval_s: 2.5
    timeout_s: 1
    retries: 0
"""


def write(tmp_path: Path, text: str, name: str = "gw.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def problems(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value


def test_valid_file_loads_with_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.gateway.id == "gw-01"
    assert cfg.gateway.site == "plant-a"
    assert cfg.mqtt.port == 1883
    assert cfg.mqtt.client_id is None
    assert cfg.outbox.batch_max == 500
    assert cfg.outbox.resend_after_s == 10
    assert cfg.outbox.max_unconfirmed == 50_000
    assert cfg.outbox.synchronous == "FULL"
    # a relative outbox path is relative to the config file, not to the cwd
    assert cfg.outbox.path == tmp_path / "data" / "outbox.sqlite"
    room, fridge = cfg.modbus
    assert room.sensor == "CR1-0001"
    assert room.port == 502
    assert room.address == 1  # the profile's default
    assert room.transport == "tcp"
    assert fridge.sensor == "fridge-2"  # default: the name
    assert (fridge.port, fridge.address, fridge.poll_interval_s, fridge.retries) == (
        5020,
        7,
        2.5,
        0,
    )


def test_example_config_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "gateway" / "examples" / "demo.yaml"
    cfg = load_config(example)
    assert [d.profile for d in cfg.modbus] == ["renke-rs-ws-n01", "xy-md02"]


def test_error_names_file_field_path_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("    port: 5020", "    port: 70000"))
    err = problems(path)
    assert err.path == path
    [issue] = err.issues
    assert issue.field == "modbus[1].port"
    assert issue.line == 16
    assert "less than or equal to 65535" in issue.message
    text = str(err)
    assert str(path) in text
    assert "line 16" in text
    assert "modbus[1].port" in text
    assert "70000" in text


def test_unknown_profile_is_rejected_with_the_known_ones(tmp_path: Path) -> None:
    err = problems(write(tmp_path, GOOD.replace("profile: xy-md02", "profile: xy-md03")))
    [issue] = err.issues
    assert (issue.field, issue.line) == ("modbus[1].profile", 14)
    assert "xy-md03" in issue.message
    assert "renke-rs-ws-n01" in issue.message


def test_missing_field_points_at_its_section(tmp_path: Path) -> None:
    err = problems(write(tmp_path, GOOD.replace("  host: broker.local\n", "  port: 1884\n")))
    [issue] = err.issues
    assert issue.field == "mqtt.host"
    assert issue.line == 4
    assert "required" in issue.message.lower()


def test_every_problem_is_reported_in_line_order(tmp_path: Path) -> None:
    text = GOOD.replace("id: gw-01", "id: gw/01")
    text = text.replace("  path: data/outbox.sqlite\n", "  path: o.db\n  synchronus: FULL\n")
    text = text.replace("    timeout_s: 1", "    timeout_s: -1")
    err = problems(write(tmp_path, text))
    found = [(i.field, i.line) for i in err.issues]
    assert found == [
        ("gateway.id", 2),
        ("outbox.synchronus", 8),
        ("modbus[1].timeout_s", 20),
    ]


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    err = problems(
        write(tmp_path, GOOD.replace("  host: broker.local\n", "  host: a\n  host: b\n"))
    )
    [issue] = err.issues
    assert (issue.field, issue.line) == ("mqtt.host", 6)
    assert "line 5" in issue.message


def test_duplicate_device_names_are_rejected(tmp_path: Path) -> None:
    err = problems(write(tmp_path, GOOD.replace("name: fridge-2", "name: cold-room-1")))
    [issue] = err.issues
    assert issue.field == "modbus"
    assert "modbus[0]" in issue.message
    assert "modbus[1]" in issue.message


def test_password_is_never_echoed(tmp_path: Path) -> None:
    text = GOOD.replace("  host: broker.local\n", "  host: b\n  password: 918273\n")
    err = problems(write(tmp_path, text))
    assert "918273" not in str(err)
    assert err.issues[0].field == "mqtt.password"


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    err = problems(write(tmp_path, GOOD.replace("  site: plant-a", "  site: [plant-a")))
    [issue] = err.issues
    assert issue.line is not None
    assert "not valid YAML" in issue.message


def test_missing_or_empty_file(tmp_path: Path) -> None:
    assert "cannot read" in problems(tmp_path / "nope.yaml").issues[0].message
    assert "mapping" in problems(write(tmp_path, "")).issues[0].message


BUS = """\
gateway: {id: gw-01, site: plant-a}
mqtt: {host: broker.local}
outbox: {path: outbox.sqlite}
modbus:
  - name: room-1
    profile: xy-md02
    transport: rtu
    serial_port: /dev/ttyUSB0
    address: 1
  - name: room-2
    profile: renke-rs-ws-n01
    transport: rtu
    serial_port: /dev/ttyUSB0
    address: 2
    baudrate: 9600
alarms:
  - name: siren
    profile: waveshare-modbus-rtu-relay
    transport: rtu
    serial_port: /dev/ttyUSB0
    address: 3
    channel: 2
    limits:
      - {sensor: room-1, low: 2, high: 8}
"""


def test_units_on_one_bus_load_with_shared_settings(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, BUS))
    units = [*cfg.modbus, *cfg.alarms]
    assert {u.link_key for u in units} == {"rtu:/dev/ttyUSB0"}
    assert {(u.baudrate, u.bytesize, u.parity, u.stopbits) for u in units} == {(9600, 8, "N", 1)}
    [siren] = cfg.alarms
    assert (siren.channel, siren.limits[0].qty, siren.limits[0].high) == (2, "temperature", 8)


def test_units_on_one_bus_must_agree_on_serial_settings(tmp_path: Path) -> None:
    # the Renke's factory baud rate is 4800: without the override it disagrees with the XY-MD02
    path = write(tmp_path, BUS.replace("    baudrate: 9600\n", ""))
    err = problems(path)
    [issue] = err.issues
    assert issue.field == "modbus[1].baudrate"
    assert issue.line == 10  # the unit's entry, since the baud rate came from its profile
    assert "/dev/ttyUSB0" in issue.message
    assert "4800" in issue.message
    assert "9600" in issue.message
    assert "modbus[0]" in issue.message
    assert str(path) in str(err)


def test_units_on_one_bus_need_distinct_addresses(tmp_path: Path) -> None:
    err = problems(write(tmp_path, BUS.replace("    address: 3\n", "    address: 2\n")))
    [issue] = err.issues
    assert (issue.field, issue.line) == ("alarms[0].address", 21)
    assert "address 2" in issue.message
    assert "modbus[1]" in issue.message


def test_devices_on_different_ports_may_differ(tmp_path: Path) -> None:
    text = BUS.replace("    baudrate: 9600\n", "").replace(
        "serial_port: /dev/ttyUSB0\n    address: 2", "serial_port: /dev/ttyUSB1\n    address: 2"
    )
    cfg = load_config(write(tmp_path, text))
    assert [d.baudrate for d in cfg.modbus] == [9600, 4800]


def test_alarm_limit_must_watch_a_known_sensor(tmp_path: Path) -> None:
    err = problems(write(tmp_path, BUS.replace("sensor: room-1,", "sensor: room-9,")))
    [issue] = err.issues
    assert (issue.field, issue.line) == ("alarms[0].limits[0].sensor", 24)
    assert "room-9" in issue.message


def test_alarm_channel_must_exist_on_the_module(tmp_path: Path) -> None:
    err = problems(write(tmp_path, BUS.replace("channel: 2", "channel: 9")))
    [issue] = err.issues
    assert (issue.field, issue.line) == ("alarms[0].channel", 22)
    assert "1-8" in issue.message


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["/dev/ttyUSB0", "/dev/ttyUSB1"]),
            st.sampled_from([4800, 9600]),
            st.integers(0, 4),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_bus_rules_hold_for_any_set_of_sensors(units: list[tuple[str, int, int]]) -> None:
    devices = [
        ModbusDevice.model_validate(
            {
                "name": f"d{i}",
                "profile": "xy-md02",
                "transport": "rtu",
                "serial_port": port,
                "baudrate": baud,
                "address": address,
            }
        )
        for i, (port, baud, address) in enumerate(units)
    ]
    ports = {port for port, _, _ in units}
    consistent = all(len({b for p, b, _ in units if p == port}) == 1 for port in ports)
    distinct = all(
        len([a for p, _, a in units if p == port]) == len({a for p, _, a in units if p == port})
        for port in ports
    )
    no_broadcast = all(a != 0 for _, _, a in units)
    problem = bus_conflict(devices, [])
    assert (problem is None) == (consistent and distinct and no_broadcast)
    if problem is not None:
        loc, message = problem
        assert loc[0] == "modbus"
        assert isinstance(loc[1], int)
        assert units[loc[1]][0] in message or "broadcast" in message


def test_units_behind_one_tcp_converter_need_distinct_addresses(tmp_path: Path) -> None:
    converter = "transport: tcp\n    host: 10.0.0.5\n    port: 502"
    text = (
        BUS.replace("transport: rtu\n    serial_port: /dev/ttyUSB0", converter)
        .replace("    baudrate: 9600\n", "")
        .replace("    address: 2\n", "    address: 1\n")
    )
    err = problems(write(tmp_path, text))
    [issue] = err.issues
    assert issue.field == "modbus[1].address"
    assert "address 1 on 10.0.0.5:502" in issue.message
    # the same address behind two different converters is two devices
    other = text.replace("host: 10.0.0.5", "host: 10.0.0.6", 1)
    assert len(load_config(write(tmp_path, other)).modbus) == 2


def test_alarm_limit_must_watch_a_quantity_the_sensor_delivers(tmp_path: Path) -> None:
    # a typo here was accepted and the limit never saw a reading: an alarm that never sounds
    err = problems(write(tmp_path, BUS.replace("sensor: room-1,", "sensor: room-1, qty: temp,")))
    [issue] = err.issues
    assert issue.field == "alarms[0].limits[0].qty"
    assert issue.line == 24
    assert "'temp'" in issue.message
    assert "temperature" in issue.message
    ok = BUS.replace("sensor: room-1,", "sensor: room-1, qty: humidity,")
    assert load_config(write(tmp_path, ok)).alarms[0].limits[0].qty == "humidity"


# --- mqtt.tls and credentials (docs/mqtt.md) ---


def test_tls_section_loads_relative_to_the_file_and_defaults_to_port_8883(tmp_path: Path) -> None:
    create_ca(tmp_path / "certs", now=datetime.now(UTC))
    text = GOOD.replace(
        "  host: broker.local\n",
        "  host: broker.local\n  username: gw-01\n  password: s3cret-s3cret\n"
        "  tls:\n    ca_file: certs/ca.crt\n",
    )
    cfg = load_config(write(tmp_path, text))
    assert cfg.mqtt.port == 8883
    assert cfg.mqtt.tls is not None
    assert cfg.mqtt.tls.ca_file == tmp_path / "certs" / "ca.crt"
    context = cfg.mqtt.tls.context()
    assert context.check_hostname  # the broker's host name is verified, always
    assert len(context.get_ca_certs()) == 1


def test_tls_files_that_do_not_exist_or_are_not_certificates_name_their_line(
    tmp_path: Path,
) -> None:
    (tmp_path / "junk.crt").write_text("not a certificate\n")
    missing = GOOD.replace("  host: broker.local\n", "  host: b\n  tls:\n    ca_file: nope.crt\n")
    [issue] = problems(write(tmp_path, missing)).issues
    assert (issue.field, issue.line) == ("mqtt.tls.ca_file", 7)
    assert "no such file" in issue.message
    junk = GOOD.replace("  host: broker.local\n", "  host: b\n  tls:\n    ca_file: junk.crt\n")
    [issue] = problems(write(tmp_path, junk)).issues
    assert (issue.field, issue.line) == ("mqtt.tls", 6)
    assert "cannot use these TLS files" in issue.message
    half = GOOD.replace("  host: broker.local\n", "  host: b\n  tls:\n    cert_file: junk.crt\n")
    [issue] = problems(write(tmp_path, half)).issues
    assert "cert_file and key_file go together" in issue.message


def test_a_username_needs_its_password(tmp_path: Path) -> None:
    text = GOOD.replace("  host: broker.local\n", "  host: b\n  username: gw-01\n")
    [issue] = problems(write(tmp_path, text)).issues
    assert issue.field == "mqtt"
    assert "username and password go together" in issue.message


def test_the_password_may_live_in_a_file_of_its_own(tmp_path: Path) -> None:
    (tmp_path / "mqtt.password").write_text("from-the-file\n")
    text = GOOD.replace(
        "  host: broker.local\n",
        "  host: b\n  username: gw-01\n  password_file: mqtt.password\n",
    )
    cfg = load_config(write(tmp_path, text))
    assert cfg.mqtt.secret() == "from-the-file"
    both = text.replace("  password_file:", "  password: x\n  password_file:")
    assert "not both" in problems(write(tmp_path, both)).issues[0].message
    missing = text.replace("mqtt.password\n", "gone.password\n")
    [issue] = problems(write(tmp_path, missing)).issues
    assert issue.field == "mqtt.password_file"
    assert "cannot read the password file" in issue.message
