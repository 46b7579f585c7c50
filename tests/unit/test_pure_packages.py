"""The pure packages load no device, network or database library — checked on what loads.

Each case imports every module of a package in a fresh interpreter and lists the
top-level modules then loaded that are neither the standard library's nor the
project's own; that list must lie within what ARCHITECTURE allows the package. This
sees a library pulled in indirectly (through another module, or a library's own
imports), which a look at the import lines would miss: ``telemetry.epc`` once loaded
biip through ``telemetry.gs1``, and ``telemetry.bthome`` loaded habluetooth, bleak and
dbus-fast for every process that imported the wire contract.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OWN = {"telemetry", "identifiers"}
PYDANTIC = {
    "pydantic",
    "pydantic_core",
    "typing_extensions",
    "annotated_types",
    "typing_inspection",
}

# package (or modules) -> third-party top-level modules it may load
ALLOWED: dict[str, set[str]] = {
    # the wire contract: stdlib, msgspec, pydantic (its Modbus profiles are TOML: tomllib)
    "telemetry": {"msgspec", *PYDANTIC},
    # identifiers: biip (pure Python) parses GS1 element strings
    "identifiers": {"biip"},
    # whoever needs only the check digit, the GTIN-14 form or an EPC loads nothing at all
    "identifiers.gtin identifiers.epc": set(),
}

LOADER = """
import importlib, pkgutil, sys
for name in sys.argv[1:]:
    module = importlib.import_module(name)
    for info in pkgutil.walk_packages(getattr(module, "__path__", []), name + "."):
        importlib.import_module(info.name)
print(sorted({m.split(".")[0] for m in sys.modules} - set(sys.stdlib_module_names)))
"""


def third_party_loaded(*modules: str) -> set[str]:
    """Top-level third-party modules loaded by importing ``modules`` and all their submodules."""
    out = subprocess.run(
        [sys.executable, "-c", LOADER, *modules],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    # names starting with "_" are interpreter and site machinery (_distutils_hack, …)
    return {m for m in ast.literal_eval(out) if not m.startswith("_")} - OWN


@pytest.mark.parametrize("modules", sorted(ALLOWED))
def test_a_pure_package_loads_only_what_it_may(modules: str) -> None:
    loaded = third_party_loaded(*modules.split())
    assert loaded <= ALLOWED[modules], f"{modules} loads {sorted(loaded - ALLOWED[modules])}"


def test_the_check_sees_a_library_loaded_indirectly() -> None:
    # the check itself can fail: the gateway's BLE decoders pull in the D-Bus stack
    assert {"bthome_ble", "habluetooth", "bleak"} <= third_party_loaded("gateway.ble")
