"""Every ERP domain mounts its routers the same way: ``api.router`` and ``pages.router``."""

from __future__ import annotations

import importlib
import pkgutil

import erp_core
from erp_core.app import ROUTERS

DOMAIN_MODULES = ("api", "pages")


def _domain_routers() -> dict[str, object]:
    found = {}
    for package in pkgutil.iter_modules(erp_core.__path__):
        if not package.ispkg:
            continue
        for leaf in DOMAIN_MODULES:
            name = f"erp_core.{package.name}.{leaf}"
            if importlib.util.find_spec(name) is None:
                continue
            found[name] = importlib.import_module(name).router
    return found


def test_every_domain_router_is_mounted_once() -> None:
    routers = _domain_routers()
    # the split stock domains and deviations are among them (a rename loses none)
    for domain in ("masterdata", "lots", "movements", "shipments", "lot_history", "deviations"):
        assert f"erp_core.{domain}.api" in routers
    assert "erp_core.edge_events.pages" in routers
    missing = [name for name, router in routers.items() if router not in ROUTERS]
    assert not missing, f"add to erp_core.app.ROUTERS: {missing}"
    assert len(set(map(id, ROUTERS))) == len(ROUTERS), "a router is listed twice"


def test_no_stock_catch_all_is_left() -> None:
    assert importlib.util.find_spec("erp_core.stock") is None
