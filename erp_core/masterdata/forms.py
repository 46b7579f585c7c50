"""The master-data pages' shared parts: who may edit, the page frame, and refusals.

A form sends text; the page turns it into the API's own models (``ItemIn``,
``LocationIn``, ``ItemUpdate`` …) and services, so a page and the API accept and refuse
exactly the same things. What goes wrong is shown next to the form: a value the model
or the service refuses next to its field (``FormErrors.fields``), a rule that refused
the change (``ConflictError``, 409: ``history_locked``, ``in_use``, ``retired``,
``release_evidence`` …) above the form as a sentence in the viewer's language with the
service's particulars (``FormErrors.refusal``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, TypeVar

from fastapi import Depends, Form
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from erp_core.auth.models import Role
from erp_core.deps import DbConnection
from erp_core.errors import ConflictError, InvalidArgumentError
from erp_core.masterdata.errors import InvalidGtinError
from erp_core.masterdata.service import NOT_FINITE, TEMPERATURES
from erp_core.web.errors_i18n import message_for, validation_message
from erp_core.web.html import Html, page
from erp_core.web.i18n import translations
from erp_core.web.session import PageSession, form_user
from erp_core.web.templates import render_template
from erp_core.web.words import N_

Editor = Annotated[PageSession, Depends(form_user("admin"))]
"""The sender of a master-data form: signed in, CSRF checked, role admin (as the API)."""
EDITORS = frozenset({Role.ADMIN})
Text = Annotated[str, Form(max_length=2000)]
"""A form field as sent; the API's models check it (a longer one is a 422 anyway)."""

SITE_RULE = "a site has no parent; every other kind has one"
"""The location tree's rule, as ``master.create_location`` states it (pages check it too)."""
_FIELD_RULES: dict[tuple[str, str], str] = {
    ("range_low", "must be below range_high"): N_("Must be below the highest storage temperature."),
    **{(name, NOT_FINITE): N_("Enter a finite number.") for name in TEMPERATURES},
    ("parent_id", SITE_RULE): N_("A site has no parent; every other kind of location has one."),
}


def show(
    found: PageSession,
    *,
    template: str,
    title: str,
    now: datetime,
    status: int = 200,
    **values: object,
) -> HTMLResponse:
    """``template`` (in the viewer's language) in the base layout, as a response."""
    body = render_template(
        template,
        locale=found.viewer.locale,
        viewer=found.viewer,
        may_edit=found.user.has_any(EDITORS),
        **values,
    )
    return HTMLResponse(
        page(title=title, body=Html(body), now=now, viewer=found.viewer), status_code=status
    )


@dataclass(frozen=True, slots=True)
class Refusal:
    """A rule's refusal, for the page: the translated sentence and the service's particulars."""

    code: str
    sentence: str
    particulars: str


@dataclass(slots=True)
class FormErrors:
    """What to show next to a form: messages per field, or a refusal of the whole change."""

    fields: dict[str, str] = field(default_factory=dict)
    refusal: Refusal | None = None

    def __bool__(self) -> bool:
        return bool(self.fields) or self.refusal is not None

    @property
    def status(self) -> int:
        """The page's status: 409 for a refused rule, 422 for a refused value, else 200."""
        if self.refusal is not None:
            return 409
        return 422 if self.fields else 200


def blank_to_none(values: Mapping[str, str]) -> dict[str, str | None]:
    """Form text with surrounding blanks removed; an empty field is "not given" (None)."""
    return {k: (v.strip() or None) for k, v in values.items()}


def from_validation(err: ValidationError, locale: str) -> FormErrors:
    """The model's complaints, each next to its field, in ``locale``."""
    found = FormErrors()
    for problem in err.errors():
        name = str(problem["loc"][0]) if problem["loc"] else "form"
        found.fields.setdefault(name, validation_message(problem["type"], locale))
    return found


def from_invalid(err: InvalidArgumentError, locale: str) -> FormErrors:
    """A value the service refused, next to its field, in ``locale``."""
    _ = translations(locale).gettext
    if err.reason == "may not be empty":
        text = validation_message("missing", locale)
    elif isinstance(err, InvalidGtinError):
        text = _("Not a GTIN-8, -12, -13 or -14 with a valid check digit (%(why)s).") % {
            "why": err.reason.split(": ", 1)[-1]
        }
    elif (err.name, err.reason) in _FIELD_RULES:
        text = _(_FIELD_RULES[err.name, err.reason])
    else:
        text = f"{validation_message('value_error', locale)} ({err.reason})"
    return FormErrors(fields={err.name: text})


def from_conflict(err: ConflictError, locale: str) -> FormErrors:
    """A rule's refusal of the change, as a sentence in ``locale`` and its particulars."""
    return FormErrors(
        refusal=Refusal(code=err.code, sentence=message_for(err.code, locale), particulars=str(err))
    )


T = TypeVar("T")


def attempt(conn: DbConnection, locale: str, action: Callable[[], T]) -> T | FormErrors:
    """``action()``'s result, or what to show by the form when it was refused.

    One place turns a form's refusals into messages: a field the models refuse
    (``ValidationError``), a value the service refuses (``InvalidArgumentError``) and a
    rule the records refuse (``ConflictError``); the transaction is rolled back so the
    page that shows them reads the records as they were.
    """
    refused: FormErrors
    try:
        return action()
    except ValidationError as err:
        refused = from_validation(err, locale)
    except InvalidArgumentError as err:
        refused = from_invalid(err, locale)
    except ConflictError as err:
        refused = from_conflict(err, locale)
    conn.rollback()
    return refused
