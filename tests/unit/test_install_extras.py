"""Each role installs only what it runs: an edge gateway no server library, a server no BLE stack.

``pip install 'coldtrace[gateway]'`` goes on an edge PC next to the devices, and
``pip install 'coldtrace[server]'`` on the ingest/ERP host, where a BLE/D-Bus stack
(bleak, dbus-fast, habluetooth) has nothing to do and only widens what must be kept
patched. Both are checked the way pip resolves them, without a network or a fresh
virtual environment (so the test takes a second, in `make test` like every other):

1. the install: the requirements of the core and the extra, in pyproject.toml, closed
   over the metadata of the installed distributions (the dev environment holds them
   all), with environment markers evaluated here — the set of distributions pip
   would install;
2. the code: every module of the packages the role runs is imported in a fresh
   interpreter in which any library outside that set cannot be found, as if it were
   not installed — so a module that needs one fails here, not at the plant.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import re
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
OWN = {"db", "telemetry", "identifiers", "coldchain", "firmware_sim", "gateway", "ingest"}
OWN |= {"erp_core", "dashboards", "coldtrace"}

BLE_STACK = re.compile(r"^(bleak.*|bthome-ble|govee-ble|habluetooth|bluetooth-.*|dbus.*)$")
SERVER_LIBS = re.compile(
    r"^(fastapi.*|starlette|uvicorn|psycopg.*|sqlalchemy|alembic|numpy|pydantic-settings"
    r"|prometheus-client|aiosmtplib|argon2-cffi|pyjwt|python-multipart)$"
)

# what each role runs: its packages (every module) and the CLI it starts them with
CLI = sorted(f"coldtrace.{p.stem}" for p in (ROOT / "coldtrace").glob("cli*.py"))
SHARED = ["telemetry", "identifiers"]
ROLES = {
    "server": [*SHARED, "db", "coldchain", "ingest", "erp_core", "dashboards", *CLI],
    "gateway": [*SHARED, "gateway", *CLI],
    "sim": [*SHARED, "firmware_sim"],
}
SKIP = ("db.migrations",)  # alembic scripts, run by alembic and not importable on their own


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def resolved(extra: str) -> frozenset[str]:
    """The distributions ``pip install 'coldtrace[extra]'`` installs (normalised names)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    optional = project["optional-dependencies"]
    todo = [Requirement(r) for r in [*project["dependencies"], *optional[extra]]]
    seen: set[tuple[str, str]] = set()  # (distribution, one of its extras or "")
    while todo:
        req = todo.pop()
        if _norm(req.name) == "coldtrace":  # a self-reference such as coldtrace[gateway,sim]
            todo += [Requirement(r) for e in req.extras for r in optional[e]]
            continue
        for wanted in ("", *req.extras):
            if (_norm(req.name), wanted) in seen:
                continue
            seen.add((_norm(req.name), wanted))
            for text in md.requires(req.name) or []:
                sub = Requirement(text)
                if sub.marker is None or sub.marker.evaluate({"extra": wanted}):
                    todo.append(sub)
    return frozenset(name for name, _ in seen)


def test_a_gateway_install_carries_no_server_library() -> None:
    server_libs = sorted(d for d in resolved("gateway") if SERVER_LIBS.match(d))
    assert server_libs == [], server_libs
    assert {"bleak", "bthome-ble", "paho-mqtt", "biip"} <= resolved("gateway")  # sanity


def test_a_server_install_carries_no_ble_or_dbus_stack() -> None:
    ble = sorted(d for d in resolved("server") if BLE_STACK.match(d))
    assert ble == [], ble
    assert {"fastapi", "psycopg", "numpy", "biip"} <= resolved("server")  # sanity


IMPORTER = """
import importlib, importlib.abc, importlib.metadata as md, json, pkgutil, sys
allowed, own, skip, packages = json.loads(sys.argv[1])
norm = lambda n: n.replace("_", "-").replace(".", "-").lower()
absent = {
    top for top, dists in md.packages_distributions().items()
    if top not in own and not any(norm(d) in allowed for d in dists)
}
class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in absent:
            raise ModuleNotFoundError(f"No module named {name!r} (not in this install)", name=name)
        return None
sys.meta_path.insert(0, NotInstalled())
before = set(sys.modules)  # the interpreter's start-up (site hooks) is not the role's code
for name in packages:
    module = importlib.import_module(name)
    for info in pkgutil.walk_packages(getattr(module, "__path__", []), name + "."):
        if not info.name.startswith(tuple(skip)):
            importlib.import_module(info.name)
print(sorted({m.split(".")[0] for m in set(sys.modules) - before} & absent))
"""


def import_as_installed(extra: str, packages: list[str]) -> subprocess.CompletedProcess[str]:
    """Import every module of ``packages`` where only ``coldtrace[extra]`` is installed."""
    arg = json.dumps([sorted(resolved(extra)), sorted(OWN), list(SKIP), packages])
    return subprocess.run(
        [sys.executable, "-c", IMPORTER, arg], capture_output=True, text=True, check=False, cwd=ROOT
    )


@pytest.mark.parametrize("extra", sorted(ROLES))
def test_every_module_of_a_role_imports_with_only_its_install(extra: str) -> None:
    done = import_as_installed(extra, ROLES[extra])
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]"


def test_the_import_check_refuses_a_library_outside_the_install() -> None:
    # the check can fail: the gateway's BLE decoders are not importable on a server
    done = import_as_installed("server", ["gateway.ble"])
    assert done.returncode != 0
    assert "not in this install" in done.stderr
