"""Value types of deviations: the disposition a QA user gives one."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Disposition = Literal["use_as_is", "reject", "investigate"]


class DispositionIn(BaseModel):
    """A deviation's disposition; closing it is signed."""

    disposition: Disposition
    comment: str = Field(min_length=1)
    capa_ref: str | None = None
    password: str = Field(min_length=1, repr=False)
