"""Fuzzing gateway YAML config files (gateway/config.py, gateway/config_modbus.py).

Contract: ``parse_config(text, path=)`` and ``load_config(path)`` return a
``GatewayConfig`` or raise ``ConfigError`` — never another exception, never a
traceback for the person at the gateway. The error names the file, and every issue in
it names a line of that file (whatever is wrong: YAML syntax, a character YAML does
not allow, bytes that are not UTF-8, nesting too deep, an alias bomb, a field). A
password is never echoed into the message.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.config import ConfigError, GatewayConfig, load_config, parse_config
from telemetry.modbus_profiles import builtin_profiles, builtin_relay_profiles
from tests.fuzz_support import (
    CONTROL,
    assert_scales_linearly,
    cpu_seconds,
    encoded,
    fuzz_settings,
    hostile_text,
    invalid_utf8,
    json_values,
    mutated,
)

PATH = Path("/etc/coldtrace/gw-01.yaml")
SECRET = "s3cret-Pw!"
BASE: dict[str, Any] = {
    "gateway": {"id": "gw-01", "site": "plant-a"},
    "mqtt": {"host": "broker.local", "port": 1883, "username": "gw-01", "password": SECRET},
    "outbox": {"path": "outbox.sqlite", "batch_max": 500},
    "modbus": [
        {"name": "fridge-1", "profile": "renke-rs-ws-n01", "host": "10.0.0.5", "port": 502},
        {
            "name": "fridge-2",
            "profile": "xy-md02",
            "transport": "rtu",
            "serial_port": "/dev/ttyUSB0",
            "address": 2,
        },
    ],
    "ble": {"loggers": [{"address": "A4:C1:38:00:00:01", "sensor": "ble-1"}]},
    "rfid": [
        {"name": "door-1", "host": "reader-1", "port": 4001},
        {"name": "door-2", "protocol": "llrp", "host": "reader-2"},
    ],
    "barcode": [
        {"name": "dock-1", "url": "socket://scanner:5000"},
        {"name": "desk-1", "keyboard": "-"},
    ],
    "alarms": [
        {
            "name": "buzzer",
            "profile": "waveshare-modbus-rtu-relay",
            "transport": "rtu",
            "serial_port": "/dev/ttyUSB0",
            "address": 5,
            "limits": [{"sensor": "fridge-1", "high": 8.0}],
        }
    ],
}
BASE_TEXT = yaml.safe_dump(BASE, sort_keys=False)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


PATHS = _paths(BASE)[1:]


@st.composite
def edited_configs(draw: st.DrawFn) -> dict[str, Any]:
    """BASE with one to three structural edits: a value replaced, a key dropped or added."""
    doc = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        parent: Any = doc
        try:
            for part in path[:-1]:
                parent = parent[part]
            op = draw(st.sampled_from(["replace", "drop", "add"]))
            if op == "replace":
                parent[path[-1]] = draw(json_values(max_leaves=6))
            elif op == "drop" and isinstance(parent, dict):
                parent.pop(path[-1], None)
            elif isinstance(parent, dict):
                parent[draw(st.text(max_size=8))] = draw(json_values(max_leaves=4))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit removed or replaced this path
    return doc


def _lines(text: str) -> int:
    """Lines of ``text`` as YAML 1.1 counts them: NEL, LS and PS end a line too."""
    return len(re.findall("\r\n|[\r\n\x85\u2028\u2029]", text)) + 1


def _parses_or_names_file_and_lines(text: str) -> GatewayConfig | None:
    try:
        return parse_config(text, path=PATH)
    except ConfigError as err:
        _names_file_and_lines(err, _lines(text))
        return None


def _names_file_and_lines(err: ConfigError, lines: int) -> None:
    assert err.path == PATH
    assert str(PATH) in str(err)
    assert err.issues
    for issue in err.issues:
        assert issue.line is not None, issue
        assert 1 <= issue.line <= lines + 1, (issue, lines)


def test_the_base_config_is_valid() -> None:
    config = parse_config(BASE_TEXT, path=PATH)
    assert [d.name for d in config.modbus] == ["fridge-1", "fridge-2"]


# --- (a) ConfigError naming the file and line, and nothing else ---


@fuzz_settings()
@given(hostile_text("abcdefgimoprstuy:{}[]-, \n\t&*!|>'\"#%@`0123456789", max_size=200))
@example("gateway: {id: gw\x00}")  # a NUL: PyYAML's ReaderError escaped parse_config
@example("mqtt:\n  host: b\x07roker\n")  # a C0 control character, line 2
@example("outbox: {path: \ud800}")  # a lone surrogate
@example("{\x85\x85")  # found by the deep run: NEL ends a line for YAML (line 3 is right)
def test_any_text_is_a_config_or_a_config_error_naming_file_and_line(text: str) -> None:
    _parses_or_names_file_and_lines(text)


@fuzz_settings()
@given(edited_configs())
def test_structural_edits_are_a_config_or_an_error_naming_file_and_line(
    doc: dict[str, Any],
) -> None:
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    try:
        parse_config(text, path=PATH)
    except ConfigError as err:
        _names_file_and_lines(err, _lines(text))
        assert SECRET not in str(err)  # edits never move the password to another key  # noqa: PT017 - either outcome is fine; a refusal has a reason


@fuzz_settings()
@given(mutated(st.just(BASE_TEXT), ":{}[]-, \n#&*!0123456789" + CONTROL))
def test_textual_edits_are_a_config_or_an_error_naming_file_and_line(text: str) -> None:
    _parses_or_names_file_and_lines(text)


@fuzz_settings(scale=0.5)
@given(
    raw=st.one_of(invalid_utf8(), st.binary(max_size=200), mutated(st.just(BASE_TEXT)).map(encoded))
)
def test_any_file_content_is_a_config_or_an_error_naming_file_and_line(
    raw: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path = tmp_path_factory.mktemp("cfg") / "gw.yaml"
    path.write_bytes(raw)
    try:
        load_config(path)
    except ConfigError as err:
        assert str(path) in str(err)  # noqa: PT017 - either outcome is fine; a refusal has a reason
        for issue in err.issues:
            assert issue.line is not None, issue  # was None for a file that is not UTF-8


def test_bytes_that_are_not_utf8_name_their_line(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_bytes(BASE_TEXT.encode() + b"extra: caf\xe9\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (issue,) = caught.value.issues
    assert issue.line == BASE_TEXT.count("\n") + 1
    assert "UTF-8" in issue.message


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("gateway:\n  id: gw\x00\n", 2),  # NUL
        ("gateway: {id: gw-01, site: a}\nmqtt:\n  host: b\x1b[31m\n", 3),  # an ANSI escape
        ("a: 1\nb: " + "[" * 5000 + "]" * 5000 + "\n", 2),  # RecursionError escaped
        ("a: 1\nb:\n" + "".join(" " * i + "- \n" for i in range(2000)), 0),  # block nesting
    ],
    ids=["nul", "escape", "deep-flow", "deep-block"],
)
def test_bad_characters_and_deep_nesting_name_their_line(text: str, line: int) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, path=PATH)
    (issue,) = caught.value.issues
    assert issue.line is not None
    if line:
        assert issue.line == line
    else:
        assert issue.line > 2  # somewhere in the nested block, where it got too deep


# --- time bounds ---


def _bomb(levels: int) -> str:
    text = "gateway: {id: gw-01, site: plant-a}\nmqtt: {host: b}\noutbox: {path: o.sqlite}\n"
    text += "x0: &x0 [a, a, a, a, a, a, a, a, a, a]\n"
    for level in range(1, levels + 1):
        text += f"x{level}: &x{level} [" + ", ".join([f"*x{level - 1}"] * 10) + "]\n"
    return text


def test_an_alias_bomb_is_refused_quickly() -> None:
    # nine levels of ten aliases name 10**10 values: walking each occurrence for line
    # marks took exponential time (353 s for eight levels before the fix)
    assert cpu_seconds(lambda: _parses_or_names_file_and_lines(_bomb(9)), repeat=1) < 5.0


def test_a_recursive_alias_is_refused() -> None:
    # an anchor used inside its own node: PyYAML builds a cyclic structure
    text = "gateway: {id: gw-01, site: plant-a}\nmqtt: {host: b}\noutbox: {path: o.sqlite}\n"
    text += "modbus: &loop [*loop]\n"
    assert _parses_or_names_file_and_lines(text) is None


def test_many_sources_take_linear_time() -> None:
    def validate(n: int) -> None:
        data = copy.deepcopy(BASE)
        data["barcode"] = [{"name": f"scan-{i}", "url": f"socket://s:{i}"} for i in range(n)]
        context = {
            "base_dir": Path("/tmp"),
            "profiles": builtin_profiles(),
            "relay_profiles": builtin_relay_profiles(),
        }
        GatewayConfig.model_validate(data, context=context)

    # the unique-name check counted each name in the whole list: quadratic
    assert_scales_linearly(validate, 2000)


def test_a_long_file_takes_linear_time() -> None:
    def parse(n: int) -> None:
        lines = "".join(f"# comment {i}\n" for i in range(n))
        _parses_or_names_file_and_lines(BASE_TEXT + lines + "unknown: 1\n")

    assert_scales_linearly(parse, 2000)
