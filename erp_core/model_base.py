"""The base of the ERP domains' request bodies (``…In``) and records: frozen, strict."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """Immutable once built; a field the model does not know is refused (422)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
