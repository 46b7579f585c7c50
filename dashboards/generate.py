"""Write the dashboards' JSON where Grafana provisions it from (``python -m dashboards``).

The JSON under ``dashboards/provisioning/dashboards/json`` is generated, never edited:
``tests/unit/test_dashboards_generated.py`` fails when it differs from what this module
writes, and names the command that brings it up to date.
"""

from __future__ import annotations

import json
from pathlib import Path

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards.build import all_dashboards

JSON_DIR = Path(__file__).resolve().parent / "provisioning" / "dashboards" / "json"


def dashboard_json(dashboard: object) -> dict[str, object]:
    """A built dashboard as plain JSON data (what Grafana stores)."""
    data: dict[str, object] = json.loads(json.dumps(dashboard, cls=JSONEncoder))
    return data


def render() -> dict[str, str]:
    """Every dashboard's file name and text."""
    return {
        f"{name}.json": json.dumps(dashboard_json(d), indent=2, ensure_ascii=False) + "\n"
        for name, d in all_dashboards().items()
    }


def write(directory: Path = JSON_DIR) -> list[Path]:
    """Write every dashboard and delete JSON files no dashboard produces; the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    files = render()
    for stale in directory.glob("*.json"):
        if stale.name not in files:
            stale.unlink()
    written = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
