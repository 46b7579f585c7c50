"""Register maps of Modbus devices, as data: TOML files shared by gateway and simulator.

The gateway decodes register words into readings with `decode`; the simulator encodes
its model's values into the same words with `encode`, so a profile is exercised from
both ends and the same profile reads the real device. Relay modules, which the
gateway drives as local alarm outputs, have a coil map instead (`RelayProfile`,
``profiles/relays.toml``). The files are TOML, read by the standard library's tomllib,
so the wire contract loads no parser library (docs/devices.md, "Profiles").
"""

from __future__ import annotations

import functools
import math
import tomllib
from collections.abc import Mapping
from enum import StrEnum
from importlib import resources
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from telemetry.payloads import UNITS

MAX_BLOCK = 125  # registers per Modbus read request
MAX_SCALE = 1e6  # engineering units per count; a larger one is a typo, not a device


class ProfileError(ValueError):
    """A profile file or a value that does not fit a profile."""


class Table(StrEnum):
    """Which Modbus table holds the registers (and so the function code)."""

    HOLDING = "holding"  # function 03
    INPUT = "input"  # function 04


_FROZEN = ConfigDict(frozen=True, extra="forbid", strict=True)


class Register(BaseModel):
    """One 16-bit register carrying one quantity as a scaled integer."""

    model_config = _FROZEN

    address: int = Field(ge=0, le=0xFFFF)
    qty: str
    unit: str
    # finite and bounded, so every 16-bit word decodes to a finite value
    scale: float = Field(gt=0, le=MAX_SCALE, allow_inf_nan=False)
    signed: bool

    @model_validator(mode="after")
    def _unit_fits_quantity(self) -> Register:
        units = UNITS.get(self.qty)
        if units is None or self.unit not in units:
            raise ValueError(f"{self.qty} in {self.unit!r} is not in the wire contract")
        return self


class SerialDefaults(BaseModel):
    """Factory serial settings of the device."""

    model_config = _FROZEN

    baudrate: int = Field(gt=0)
    bytesize: Literal[7, 8]
    parity: Literal["N", "E", "O"]
    stopbits: Literal[1, 2]


class Profile(BaseModel):
    """A device model's register map."""

    model_config = _FROZEN

    name: str
    description: str = ""
    table: Table
    default_address: int = Field(default=1, ge=1, le=247)
    serial: SerialDefaults
    registers: tuple[Register, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_block(self) -> Profile:
        addresses = [r.address for r in self.registers]
        if len(set(addresses)) != len(addresses):
            raise ValueError("two registers share an address")
        if len({r.qty for r in self.registers}) != len(self.registers):
            raise ValueError("two registers carry the same quantity")
        if max(addresses) - min(addresses) + 1 > MAX_BLOCK:
            raise ValueError(f"registers span more than the {MAX_BLOCK} one read can fetch")
        return self

    @property
    def first_address(self) -> int:
        """Lowest register address, where one block read starts."""
        return min(r.address for r in self.registers)

    @property
    def count(self) -> int:
        """Number of registers one block read must cover."""
        return max(r.address for r in self.registers) - self.first_address + 1


class RelayProfile(BaseModel):
    """A relay module's coil map: channel number -> coil address (write single coil, 05)."""

    model_config = _FROZEN

    name: str
    description: str = ""
    default_address: int = Field(default=1, ge=1, le=247)
    serial: SerialDefaults
    channels: dict[int, int] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct_coils(self) -> RelayProfile:
        coils = list(self.channels.values())
        if len(set(coils)) != len(coils):
            raise ValueError("two channels share a coil address")
        if any(not 0 <= c <= 0xFFFF for c in coils) or any(ch < 1 for ch in self.channels):
            raise ValueError("channels are numbered from 1 and coils are 0..0xFFFF")
        return self


_M = TypeVar("_M", Profile, RelayProfile)


def decode(profile: Profile, words: list[int]) -> dict[str, float]:
    """Turn a block of register words (from ``first_address``) into quantity -> value."""
    if len(words) < profile.count:
        raise ProfileError(f"{profile.name}: got {len(words)} registers, need {profile.count}")
    out: dict[str, float] = {}
    for reg in profile.registers:
        word = words[reg.address - profile.first_address]
        if not 0 <= word <= 0xFFFF:
            raise ProfileError(f"{profile.name}: register word {word} is not 16-bit")
        raw = word - 0x10000 if reg.signed and word & 0x8000 else word
        out[reg.qty] = round(raw * reg.scale, 6)
    return out


def encode(profile: Profile, values: dict[str, float]) -> list[int]:
    """Turn quantity -> value into the register block a device of this model would serve."""
    words = [0] * profile.count
    for reg in profile.registers:
        if reg.qty not in values:
            raise ProfileError(f"{profile.name}: no value for {reg.qty}")
        value = values[reg.qty]
        if not math.isfinite(value):
            raise ProfileError(f"{profile.name}: {reg.qty}={value} is not a finite number")
        raw = round(value / reg.scale)
        lo, hi = (-0x8000, 0x7FFF) if reg.signed else (0, 0xFFFF)
        if not lo <= raw <= hi:
            raise ProfileError(
                f"{profile.name}: {reg.qty}={values[reg.qty]} does not fit a register"
            )
        words[reg.address - profile.first_address] = raw & 0xFFFF
    return words


def parse_profiles(text: str) -> dict[str, Profile]:
    """Parse a profiles TOML document; errors name the profile and the field."""
    return profiles_from(_load(text))


def parse_relay_profiles(text: str) -> dict[str, RelayProfile]:
    """Parse a relay profiles TOML document; errors name the profile and the field."""
    return _validate(_load(text), RelayProfile)


def profiles_from(doc: object) -> dict[str, Profile]:
    """Validate an already parsed profiles document (profile name -> mapping)."""
    return _validate(doc, Profile)


def _load(text: str) -> object:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ProfileError(f"profiles file is not valid TOML: {err}") from err
    except RecursionError as err:
        raise ProfileError("profiles file is not valid TOML: nested too deeply") from err


def _validate(doc: object, model: type[_M]) -> dict[str, _M]:
    if not isinstance(doc, Mapping):
        raise ProfileError("a profiles file must map profile names to profiles")
    profiles: dict[str, _M] = {}
    for name, spec in doc.items():
        if not isinstance(spec, Mapping):
            raise ProfileError(f"profile {name}: expected a mapping, got {type(spec).__name__}")
        try:
            profiles[name] = model.model_validate({"name": name, **spec}, strict=False)
        except ValidationError as err:
            where = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
            )
            raise ProfileError(f"profile {name}: {where}") from None
    return profiles


@functools.cache
def builtin_profiles() -> dict[str, Profile]:
    """The profiles shipped with ColdTrace."""
    text = resources.files("telemetry").joinpath("profiles/modbus.toml").read_text("utf-8")
    return parse_profiles(text)


@functools.cache
def builtin_relay_profiles() -> dict[str, RelayProfile]:
    """The relay module profiles shipped with ColdTrace."""
    text = resources.files("telemetry").joinpath("profiles/relays.toml").read_text("utf-8")
    return parse_relay_profiles(text)
