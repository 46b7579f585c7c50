"""Building blocks of the gateway config models: section base, id types, field paths.

Shared by `gateway.config` and `gateway.config_modbus`, so neither imports the other's
internals.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from telemetry.topics import check_id

Loc = tuple[str | int, ...]
"""A field path, as pydantic reports it: ``("modbus", 1, "port")``."""


def _topic_id(value: str) -> str:
    return check_id(value, "id")


TopicId = Annotated[str, AfterValidator(_topic_id)]
SensorUid = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[!-~]+$")]


class Section(BaseModel):
    """A config section: unknown keys are errors, and a loaded config does not change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def format_loc(loc: Loc) -> str:
    """Write a field path as the file shows it: ``modbus[1].port``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
