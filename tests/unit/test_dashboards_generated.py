"""The provisioned dashboard JSON is what dashboards/build.py generates, and Grafana 11.3's
types (grafana-foundation-sdk, generated from Grafana's schema) accept all of it."""

from __future__ import annotations

import enum
import json
import types
import typing
from typing import Any

from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards import build
from dashboards.generate import JSON_DIR, dashboard_json, render
from dashboards.targets import sql_targets


def test_committed_json_is_not_stale() -> None:
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in JSON_DIR.glob("*.json")}
    assert on_disk == render(), "dashboards JSON is stale: run `python -m dashboards`"


def _type_errors(value: Any, hint: Any, path: str) -> list[str]:  # noqa: C901
    """Where ``value`` (as the SDK's from_json left it) does not fit the SDK's type ``hint``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is object or (hint is type(None) and value is None):
        return []
    if origin in (typing.Union, types.UnionType):
        errors = [_type_errors(value, a, path) for a in args]
        return [] if any(not e for e in errors) else errors[0]
    if value is None:
        return [f"{path}: null for {hint}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: {type(value).__name__} for a list"]
        return [e for i, v in enumerate(value) for e in _type_errors(v, args[0], f"{path}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{path}: {type(value).__name__} for an object"]
        return [e for k, v in value.items() for e in _type_errors(v, args[1], f"{path}.{k}")]
    if origin is typing.Literal:
        return [] if value in args else [f"{path}: {value!r} not in {args}"]
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        ok = isinstance(value, hint) or value in {m.value for m in hint}
        return [] if ok else [f"{path}: {value!r} is not a {hint.__name__}"]
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{path}: {value!r} is not a number"]
    if isinstance(hint, type) and not isinstance(value, hint):
        return [f"{path}: {type(value).__name__} for {hint.__name__}"]
    if isinstance(value, cogvariants.Dataquery) or not hasattr(value, "to_json"):
        return []
    hints = typing.get_type_hints(type(value))
    return [
        e
        for name, h in hints.items()
        for e in _type_errors(getattr(value, name), h, f"{path}.{name}")
    ]


def _split_sql_annotations(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Take out the annotations' SQL targets: Grafana 11.3's schema types an annotation's
    ``target`` for the built-in annotations only ("TODO.. this should just be a normal
    query target"); they are checked as PostgreSQL targets instead."""
    taken = []
    for annotation in data.get("annotations", {}).get("list", []):
        target = annotation.get("target") or {}
        if "rawSql" in target:
            taken.append(annotation.pop("target"))
    return taken


def test_json_round_trips_through_the_sdk_types() -> None:
    """Read back with the SDK's models of Grafana 11.3's schema, each dashboard gives the
    same JSON (no field the schema does not know: it would be dropped) and every value
    has the schema's type."""
    build.register()
    for name, text in render().items():
        data: dict[str, Any] = json.loads(text)
        for target in _split_sql_annotations(data):
            assert build.SqlTarget.from_json(target).to_json() == target, name
        model = Dashboard.from_json(data)
        assert dashboard_json(model) == data, name
        assert _type_errors(model, Dashboard, name) == []


def test_the_type_check_catches_a_wrong_type() -> None:
    data = json.loads(render()["overview.json"])
    data["panels"][0]["gridPos"]["w"] = "wide"
    data["refresh"] = 60
    errors = _type_errors(Dashboard.from_json(data), Dashboard, "d")
    assert any("gridPos" in e or "grid_pos" in e for e in errors), errors
    assert any("refresh" in e for e in errors), errors


def test_every_panel_names_the_reader_datasource_and_has_sql() -> None:
    for text in render().values():
        data = json.loads(text)
        assert data["uid"].startswith("coldtrace-")
        assert " · " in data["title"], "Chinese and English title"
        for panel in data["panels"]:
            assert panel["datasource"] == {
                "type": build.DATASOURCE_TYPE,
                "uid": build.DATASOURCE_UID,
            }
            assert " · " in panel["title"]
        assert list(sql_targets(data))
