"""Register maps of Modbus devices, as data: one YAML file shared by gateway and simulator.

The gateway decodes register words into readings with `decode`; the simulator encodes
its model's values into the same words with `encode`, so a profile is exercised from
both ends and the same profile reads the real device.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Any

import yaml


class ProfileError(ValueError):
    """A profile file or a value that does not fit a profile."""


class Table(StrEnum):
    """Which Modbus table holds the registers (and so the function code)."""

    HOLDING = "holding"  # function 03
    INPUT = "input"  # function 04


@dataclass(frozen=True, slots=True)
class Register:
    """One 16-bit register carrying one quantity as a scaled integer."""

    address: int
    qty: str
    unit: str
    scale: float
    signed: bool


@dataclass(frozen=True, slots=True)
class SerialDefaults:
    """Factory serial settings of the device."""

    baudrate: int
    bytesize: int
    parity: str
    stopbits: int


@dataclass(frozen=True, slots=True)
class Profile:
    """A device model's register map."""

    name: str
    description: str
    table: Table
    default_address: int
    serial: SerialDefaults
    registers: tuple[Register, ...]

    @property
    def first_address(self) -> int:
        """Lowest register address, where one block read starts."""
        return min(r.address for r in self.registers)

    @property
    def count(self) -> int:
        """Number of registers one block read must cover."""
        return max(r.address for r in self.registers) - self.first_address + 1


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
        raw = round(values[reg.qty] / reg.scale)
        lo, hi = (-0x8000, 0x7FFF) if reg.signed else (0, 0xFFFF)
        if not lo <= raw <= hi:
            raise ProfileError(
                f"{profile.name}: {reg.qty}={values[reg.qty]} does not fit a register"
            )
        words[reg.address - profile.first_address] = raw & 0xFFFF
    return words


def _register(name: str, spec: dict[str, Any]) -> Register:
    try:
        return Register(
            address=int(spec["address"]),
            qty=str(spec["qty"]),
            unit=str(spec["unit"]),
            scale=float(spec["scale"]),
            signed=bool(spec["signed"]),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise ProfileError(f"profile {name}: bad register {spec!r}: {err}") from err


def parse_profiles(text: str) -> dict[str, Profile]:
    """Parse a profiles YAML document."""
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict):
        raise ProfileError("a profiles file must map profile names to profiles")
    profiles: dict[str, Profile] = {}
    for name, spec in doc.items():
        try:
            profiles[name] = Profile(
                name=name,
                description=str(spec.get("description", "")),
                table=Table(spec["table"]),
                default_address=int(spec.get("default_address", 1)),
                serial=SerialDefaults(**spec["serial"]),
                registers=tuple(_register(name, r) for r in spec["registers"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ProfileError(f"profile {name}: {err}") from err
    return profiles


def builtin_profiles() -> dict[str, Profile]:
    """The profiles shipped with ColdTrace."""
    text = resources.files("telemetry").joinpath("profiles/modbus.yaml").read_text("utf-8")
    return parse_profiles(text)
