"""Fuzzing Modbus register maps (telemetry/modbus_profiles.py) and the gateway's register decoding.

Contracts:

- ``parse_profiles(text: str) -> dict[str, Profile]``: any other text (not TOML, nested
  too deeply, a field out of range, a scale that is not a finite number ≤ 1e6)
  raises ``ProfileError`` naming the profile and field, and nothing else; so does
  ``profiles_from(doc)`` for any parsed document.
- ``decode(profile, words) -> dict[str, float]``: every block of 16-bit words a device
  can answer decodes to finite values; a short block or a word that is not 16-bit
  raises ``ProfileError``. ``encode`` is its inverse on the register values.
- ``to_readings`` (gateway/sources/modbus.py) makes readings the wire contract accepts.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gateway.sources.modbus import to_readings
from telemetry.modbus_profiles import (
    MAX_BLOCK,
    Profile,
    ProfileError,
    builtin_profiles,
    decode,
    encode,
    parse_profiles,
    profiles_from,
)
from telemetry.payloads import UNITS
from tests.fuzz_support import (
    assert_scales_linearly,
    fuzz_settings,
    hostile_text,
    json_values,
    mutated,
)

SERIAL = {"baudrate": 9600, "bytesize": 8, "parity": "N", "stopbits": 1}
SCALES = [10.0**k for k in range(-4, 4)] + [0.5, 0.25, 2.0, 5.0]  # what device manuals use


@st.composite
def profile_docs(draw: st.DrawFn) -> dict[str, object]:
    """A valid profile: distinct quantities at distinct addresses within one read block."""
    qtys = draw(st.lists(st.sampled_from(sorted(UNITS)), min_size=1, max_size=6, unique=True))
    base = draw(st.integers(0, 0xFFFF - MAX_BLOCK))
    offsets = draw(
        st.lists(st.integers(0, MAX_BLOCK - 1), min_size=len(qtys), max_size=len(qtys), unique=True)
    )
    registers = [
        {
            "address": base + offset,
            "qty": qty,
            "unit": draw(st.sampled_from(sorted(UNITS[qty]))),
            "scale": draw(st.sampled_from(SCALES)),
            "signed": draw(st.booleans()),
        }
        for qty, offset in zip(qtys, offsets, strict=True)
    ]
    return {
        "table": draw(st.sampled_from(["holding", "input"])),
        "serial": SERIAL,
        "registers": registers,
    }


def _parse_or_refuse(text: str | dict[str, object]) -> dict[str, Profile] | None:
    try:
        return parse_profiles(text) if isinstance(text, str) else profiles_from(text)
    except ProfileError as err:
        assert str(err)  # noqa: PT017 - either outcome is fine; a refusal has a reason
        return None


def _all_words_decode_finitely(profile: Profile, words: list[int]) -> None:
    values = decode(profile, words)
    assert set(values) == {r.qty for r in profile.registers}
    assert all(math.isfinite(v) for v in values.values())
    for reading in to_readings(profile, words, sensor="fridge-1", t_ms=1_764_000_000_000):
        assert math.isfinite(reading.value)
        assert reading.unit in UNITS[reading.qty]


# --- (a) profile files: nothing but ProfileError ---


@fuzz_settings()
@given(hostile_text("{}[]=.-, \n\t'\"#_"))
def test_any_text_is_profiles_or_a_profile_error(text: str) -> None:
    _parse_or_refuse(text)


@fuzz_settings()
@given(st.dictionaries(st.text(max_size=10), json_values(), max_size=3))
def test_any_document_structure_is_profiles_or_a_profile_error(doc: dict[str, object]) -> None:
    _parse_or_refuse(doc)


ONE_LINE = (
    'p = {table = "holding", serial = {baudrate = 9600, bytesize = 8, parity = "N", stopbits = 1},'
    ' registers = [{address = 1, qty = "temperature", unit = "Cel", scale = 0.1, signed = true}]}'
)
BLOCK = (
    '[r]\ntable = "input"\nserial = {baudrate = 4800, bytesize = 8, parity = "E", stopbits = 2}\n'
    "registers = [\n"
    '  {address = 0x10, qty = "humidity", unit = "%", scale = 0.01, signed = false},\n]\n'
)
VALID_TOML = st.sampled_from([ONE_LINE, BLOCK])


@fuzz_settings()
@given(mutated(VALID_TOML, "0123456789.-={}[], \n.infnantrue"))
@example(ONE_LINE.replace("scale = 0.1", "scale = inf"))  # was accepted: every value inf
@example(ONE_LINE.replace("scale = 0.1", "scale = 1e308"))  # 65535 × 1e308 = inf
def test_edited_profile_files_are_profiles_or_a_profile_error(text: str) -> None:
    profiles = _parse_or_refuse(text)
    for profile in (profiles or {}).values():
        # every block a device can answer decodes to finite numbers: the extremes
        _all_words_decode_finitely(profile, [0xFFFF] * profile.count)
        _all_words_decode_finitely(profile, [0x8000] * profile.count)


@pytest.mark.parametrize("depth", [50, 400, 1500])
def test_deep_nesting_is_a_profile_error(depth: int) -> None:
    # 1500 levels raised RecursionError out of PyYAML's composer (when profiles were YAML)
    for text in ("p = " + "[" * depth + "]" * depth, "p = " + "{a = " * depth + "1" + "}" * depth):
        with pytest.raises(ProfileError):
            parse_profiles(text)


def test_huge_files_take_linear_time() -> None:
    # TOML has no aliases, so the "billion laughs" file of YAML cannot be written
    one = ONE_LINE.replace("p = ", "p{i} = ").replace("{", "{{").replace("}", "}}")
    one = one.replace("p{{i}}", "p{i}") + "\n"
    assert_scales_linearly(lambda n: parse_profiles("".join(one.format(i=i) for i in range(n))), 25)


# --- (a) register words: finite values or ProfileError ---


@fuzz_settings()
@given(
    profile=profile_docs().map(lambda d: profiles_from({"p": d})["p"]),
    data=st.data(),
)
def test_every_register_block_decodes_to_finite_values(
    profile: Profile, data: st.DataObject
) -> None:
    words = data.draw(
        st.lists(st.integers(0, 0xFFFF), min_size=profile.count, max_size=profile.count)
    )
    _all_words_decode_finitely(profile, words)


@fuzz_settings()
@given(
    st.sampled_from(sorted(builtin_profiles().values(), key=lambda p: p.name)),
    st.lists(st.integers(-(2**20), 2**20), max_size=6),
)
def test_any_int_list_is_values_or_a_profile_error(profile: Profile, words: list[int]) -> None:
    try:
        values = decode(profile, words)
    except ProfileError as err:
        assert profile.name in str(err)  # noqa: PT017 - either outcome is fine; a refusal has a reason
        assert len(words) < profile.count or any(not 0 <= w <= 0xFFFF for w in words)
        return
    assert all(math.isfinite(v) for v in values.values())


# --- (b) round trip ---


@fuzz_settings()
@given(profile_docs(), st.data())
def test_decode_then_encode_gives_the_register_words_back(
    doc: dict[str, object], data: st.DataObject
) -> None:
    profile = profiles_from({"p": doc})["p"]
    words = [0] * profile.count
    for reg in profile.registers:
        words[reg.address - profile.first_address] = data.draw(st.integers(0, 0xFFFF))
    assert encode(profile, decode(profile, words)) == words


# --- (c) known answers ---


def test_xy_md02_manual_examples() -> None:
    # XY-MD02 manual (function 04): temperature 0x0131 = 305 -> 30.5 °C; "the temperature
    # is signed": 0xFF33 = -205 -> -20.5 °C; humidity 0x0222 = 546 -> 54.6 %
    xy = builtin_profiles()["xy-md02"]
    assert decode(xy, [0x0131, 0x0222]) == {"temperature": 30.5, "humidity": 54.6}
    assert decode(xy, [0xFF33, 0x0222])["temperature"] == -20.5
    with pytest.raises(ProfileError, match="registers"):
        decode(xy, [0x0131])
