"""Error messages a person reads, in the language of the request: 409 refusals, 422 checks.

A refusal (``ConflictError``, 409) keeps its ``code`` for machines; the sentence a
person reads is chosen by that code (``CONFLICTS``) and translated with the pages'
catalog (``erp_core.web.i18n``). The refusal's particulars (which item, which lots, since
when) are data, not prose: outside English they follow the translated sentence as the
service stated them, so nothing the English answer says is lost. In English the answer
stays the service's own sentence, as clients and tests have always read it.

Validation errors (422) keep FastAPI's shape (``type``, ``loc``, ``input``); only
``msg`` is translated, chosen by the ``type`` (``VALIDATION``).

The language is the request's: the signed-in user's setting (stored on the request by
the page session or the API's user dependency, ``remember_locale``), else the browser's
``Accept-Language`` (``pick_locale``), as the pages choose it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from starlette.requests import Request

from erp_core.web.i18n import DEFAULT_LOCALE, pick_locale, translations
from erp_core.web.words import N_

_STATE_KEY = "coldtrace_user_locale"

CONFLICTS: dict[str, str] = {
    "history_locked": N_(
        "Refused: this change would alter what recorded history means. "
        "Create a new record instead, or wait until the records that depend on it are closed."
    ),
    "in_use": N_("Refused: the record is still in use and cannot be retired yet."),
    "retired": N_("Refused: the record is retired and takes no new records."),
    "release_evidence": N_(
        "Refused: this change would alter the evidence of a signed release decision. "
        "QA must put the lot on hold first."
    ),
    "duplicate": N_("Refused: a record with this key already exists."),
    "overlapping_assignment": N_(
        "Refused: the sensor is already assigned somewhere during part of that time."
    ),
    "status_transition": N_("Refused: the lot cannot go from its status to that one."),
    "insufficient_stock": N_("Refused: there is not enough stock of the lot at that place."),
    "backdated": N_("Refused: a movement back-dated this far is not allowed."),
    "lot_quantity": N_("Refused: the quantity does not agree with the lot's records."),
    "shipment_in_transit": N_("Refused: the lot is on a shipment in transit."),
    "shipment_state": N_("Refused: the shipment is not in a state that allows this."),
    "conflict": N_("Refused: the request clashes with the stored records."),
}
"""The sentence a person reads for each refusal code (``ConflictError.code``)."""

VALIDATION: dict[str, str] = {
    "missing": N_("This field is required."),
    "string_too_short": N_("Too short."),
    "string_too_long": N_("Too long."),
    "string_type": N_("Enter text."),
    "float_parsing": N_("Enter a number."),
    "float_type": N_("Enter a number."),
    "int_parsing": N_("Enter a whole number."),
    "int_type": N_("Enter a whole number."),
    "int_from_float": N_("Enter a whole number."),
    "finite_number": N_("Enter a finite number."),
    "greater_than": N_("Too small."),
    "greater_than_equal": N_("Too small."),
    "less_than": N_("Too large."),
    "less_than_equal": N_("Too large."),
    "literal_error": N_("Choose one of the offered values."),
    "enum": N_("Choose one of the offered values."),
    "bool_parsing": N_("Enter yes or no."),
    "datetime_parsing": N_("Enter a date and time."),
    "datetime_from_date_parsing": N_("Enter a date and time."),
    "json_invalid": N_("The request body is not valid JSON."),
    "extra_forbidden": N_("This field is not accepted."),
    "value_error": N_("This value is not accepted."),
}
"""The sentence a person reads for each kind of validation error (pydantic's ``type``)."""

_GENERIC_CONFLICT = CONFLICTS["conflict"]
_GENERIC_INVALID = VALIDATION["value_error"]


def remember_locale(request: Request, locale: str | None) -> None:
    """Note the signed-in user's own language choice (None: the browser's) on the request."""
    setattr(request.state, _STATE_KEY, locale)


def locale_of(request: Request) -> str:
    """The language of this request: the user's setting, else ``Accept-Language``."""
    chosen = getattr(request.state, _STATE_KEY, None)
    if isinstance(chosen, str) and chosen:
        return chosen
    return pick_locale(request.headers.get("accept-language"))


def message_for(code: str, locale: str) -> str:
    """The sentence for refusal ``code`` in ``locale`` (a general one for an unknown code)."""
    return translations(locale).gettext(CONFLICTS.get(code, _GENERIC_CONFLICT))


def validation_message(kind: str, locale: str) -> str:
    """The sentence for validation error ``kind`` (pydantic ``type``) in ``locale``."""
    return translations(locale).gettext(VALIDATION.get(kind, _GENERIC_INVALID))


def conflict_detail(code: str, stated: str, locale: str) -> str:
    """The ``detail`` of a 409: the service's sentence in English, else translated + particulars."""
    if locale == DEFAULT_LOCALE:
        return stated
    return f"{message_for(code, locale)}（{stated}）"


def invalid_detail(stated: str, locale: str) -> str:
    """A refused value's message (``InvalidArgumentError``), for ``locale`` (as 409s)."""
    if locale == DEFAULT_LOCALE:
        return stated
    return f"{validation_message('value_error', locale)}（{stated}）"


def translate_validation(errors: Sequence[Mapping[str, Any]], locale: str) -> list[dict[str, Any]]:
    """FastAPI's 422 ``detail`` items with ``msg`` in ``locale`` (English: unchanged)."""
    if locale == DEFAULT_LOCALE:
        return [dict(e) for e in errors]
    out = []
    for error in errors:
        kind = str(error.get("type", ""))
        stated = error.get("msg", "")
        out.append({**error, "msg": f"{validation_message(kind, locale)}（{stated}）"})
    return out
