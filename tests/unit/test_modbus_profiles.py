"""Register maps: the builtin profiles are the real devices', and encode/decode agree."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from telemetry.modbus_profiles import (
    Profile,
    ProfileError,
    Table,
    builtin_profiles,
    decode,
    encode,
    parse_profiles,
    profiles_from,
)

PROFILES = builtin_profiles()
RENKE = PROFILES["renke-rs-ws-n01"]
XY = PROFILES["xy-md02"]

# Whole tenths that fit each register: signed int16 temperature, uint16 humidity.
TEMP_TENTHS = st.integers(min_value=-0x8000, max_value=0x7FFF)
RH_TENTHS = st.integers(min_value=0, max_value=0xFFFF)
profiles = st.sampled_from([RENKE, XY])


def word_of(profile: Profile, words: list[int], qty: str) -> int:
    reg = next(r for r in profile.registers if r.qty == qty)
    return words[reg.address - profile.first_address]


def test_renke_rs_ws_n01_map():
    assert RENKE.table is Table.HOLDING
    assert RENKE.default_address == 1
    assert (RENKE.first_address, RENKE.count) == (0x0000, 2)
    regs = {r.qty: r for r in RENKE.registers}
    assert (regs["humidity"].address, regs["humidity"].scale, regs["humidity"].signed) == (
        0,
        0.1,
        False,
    )
    assert (regs["temperature"].address, regs["temperature"].scale, regs["temperature"].signed) == (
        1,
        0.1,
        True,
    )
    serial = RENKE.serial
    assert (serial.baudrate, serial.bytesize, serial.parity, serial.stopbits) == (4800, 8, "N", 1)


def test_xy_md02_map():
    assert XY.table is Table.INPUT
    assert XY.default_address == 1
    assert (XY.first_address, XY.count) == (0x0001, 2)
    regs = {r.qty: r for r in XY.registers}
    assert (regs["temperature"].address, regs["temperature"].scale, regs["temperature"].signed) == (
        1,
        0.1,
        True,
    )
    assert (regs["humidity"].address, regs["humidity"].scale, regs["humidity"].signed) == (
        2,
        0.1,
        False,
    )
    serial = XY.serial
    assert (serial.baudrate, serial.bytesize, serial.parity, serial.stopbits) == (9600, 8, "N", 1)


@given(profile=profiles, temp=st.floats(-3276.8, 3276.7), rh=st.floats(0.0, 6553.5))
def test_decode_inverts_encode_within_the_resolution(profile, temp, rh):
    words = encode(profile, {"temperature": temp, "humidity": rh})
    assert len(words) == profile.count
    assert all(0 <= w <= 0xFFFF for w in words)
    back = decode(profile, words)
    assert back["temperature"] == pytest.approx(temp, abs=0.05 + 1e-9)
    assert back["humidity"] == pytest.approx(rh, abs=0.05 + 1e-9)


@given(profile=profiles, temp=TEMP_TENTHS, rh=RH_TENTHS)
def test_whole_tenths_survive_exactly(profile, temp, rh):
    values = {"temperature": temp / 10, "humidity": rh / 10}
    assert decode(profile, encode(profile, values)) == values


@given(profile=profiles, tenths=st.integers(min_value=-0x8000, max_value=-1))
def test_negative_temperatures_are_twos_complement(profile, tenths):
    words = encode(profile, {"temperature": tenths / 10, "humidity": 50.0})
    word = word_of(profile, words, "temperature")
    assert word == tenths + 0x10000
    assert word & 0x8000
    assert decode(profile, words)["temperature"] == tenths / 10


@pytest.mark.parametrize("profile", [RENKE, XY], ids=lambda p: p.name)
def test_minus_20_5_is_0xff33_on_the_wire(profile):
    words = encode(profile, {"temperature": -20.5, "humidity": 45.0})
    assert word_of(profile, words, "temperature") == 0xFF33
    assert word_of(profile, words, "humidity") == 450
    assert decode(profile, words) == {"temperature": -20.5, "humidity": 45.0}


@given(
    profile=profiles,
    temp=st.one_of(st.floats(3276.8, 1e9), st.floats(-1e9, -3276.9)),
)
def test_a_temperature_outside_int16_raises(profile, temp):
    with pytest.raises(ProfileError):
        encode(profile, {"temperature": temp, "humidity": 50.0})


@given(profile=profiles, rh=st.one_of(st.floats(6553.6, 1e9), st.floats(-1e9, -0.1)))
def test_a_humidity_outside_uint16_raises(profile, rh):
    with pytest.raises(ProfileError):
        encode(profile, {"temperature": 5.0, "humidity": rh})


@given(profile=profiles, word=st.one_of(st.integers(max_value=-1), st.integers(min_value=0x10000)))
def test_decode_refuses_words_that_are_not_16_bit(profile, word):
    with pytest.raises(ProfileError):
        decode(profile, [word] * profile.count)


@pytest.mark.parametrize("profile", [RENKE, XY], ids=lambda p: p.name)
def test_decode_refuses_a_short_block(profile):
    with pytest.raises(ProfileError):
        decode(profile, [0] * (profile.count - 1))


SERIAL = 'serial = {baudrate = 9600, bytesize = 8, parity = "N", stopbits = 1}'


@pytest.mark.parametrize(
    "text",
    [
        "- just a list",
        f'dev = {{table = "coils", {SERIAL}, registers = []}}',
        'dev = {table = "input", registers = []}',
        f'dev = {{table = "input", {SERIAL}, registers = [{{address = 1, qty = "temperature"}}]}}',
    ],
    ids=["not-toml", "unknown-table", "no-serial", "register-without-scale"],
)
def test_a_malformed_profiles_file_raises_profile_error(text):
    with pytest.raises(ProfileError):
        parse_profiles(text)


_GOOD = {
    "table": "holding",
    "serial": {"baudrate": 4800, "bytesize": 8, "parity": "N", "stopbits": 1},
    "registers": [
        {"address": 0, "qty": "temperature", "unit": "Cel", "scale": 0.1, "signed": True}
    ],
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"serial": {**_GOOD["serial"], "parity": "Q"}}, "serial.parity"),
        ({"serial": {**_GOOD["serial"], "baudrate": "fast"}}, "serial.baudrate"),
        ({"default_address": 0}, "default_address"),
        ({"registers": []}, "registers"),
        ({"registers": _GOOD["registers"] * 2}, "share an address"),
        ({"registers": [{**_GOOD["registers"][0], "unit": "K"}]}, "not in the wire contract"),
        ({"registers": [{**_GOOD["registers"][0], "scale": 0}]}, "scale"),
        ({"table": "coils"}, "table"),
    ],
)
def test_bad_profile_names_profile_and_field(change: dict[str, object], message: str) -> None:
    doc = {"dev": {**_GOOD, **change}}
    with pytest.raises(ProfileError, match=f"profile dev: .*{message}"):
        profiles_from(doc)


def test_profile_that_is_not_a_mapping() -> None:
    with pytest.raises(ProfileError, match="expected a mapping"):
        parse_profiles("dev = 5")


def test_encode_rejects_missing_and_non_finite_values() -> None:
    profile = builtin_profiles()["renke-rs-ws-n01"]
    with pytest.raises(ProfileError, match="no value for humidity"):
        encode(profile, {"temperature": 4.0})
    with pytest.raises(ProfileError, match="not a finite number"):
        encode(profile, {"temperature": float("nan"), "humidity": 40.0})
