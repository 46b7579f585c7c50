"""HTML pages of locations: the site → area → unit tree, one place with its sensors, forms.

Mounted by ``erp_core.masterdata.pages`` (its router includes this one). Same rules as
the item pages: anyone signed in reads, ``admin`` changes (CSRF and role checked by
``form_user``), a change or a retirement needs a reason, and a refusal of a rule
(``history_locked``: the kind of a used place; ``in_use``: a place still holding stock
or sensors; ``retired``) is shown next to the form in the viewer's language.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from erp_core.audit.service import entries_for, set_actor
from erp_core.deps import Connection, Now
from erp_core.errors import InvalidArgumentError
from erp_core.masterdata import browse, changes
from erp_core.masterdata import service as master
from erp_core.masterdata.forms import (
    SITE_RULE,
    Editor,
    FormErrors,
    Text,
    attempt,
    blank_to_none,
    show,
)
from erp_core.masterdata.models import Location, LocationIn, LocationUpdate, ReasonIn
from erp_core.web.i18n import translations
from erp_core.web.paging import PageParam
from erp_core.web.session import PageSession, PageUser

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
LocationId = Annotated[int, Path(ge=1)]


@router.get("/locations")
def locations(conn: Connection, now: Now, found: PageUser, paging: PageParam) -> HTMLResponse:
    """Every location as a tree: each site, its areas, their rooms, fridges and trucks."""
    rows = browse.tree_page(conn, limit=paging.limit, offset=paging.offset)
    _ = translations(found.viewer.locale).gettext
    return show(
        found,
        template="masterdata/locations.html",
        title=_("Locations"),
        now=now,
        tree=paging.cut(rows),
    )


def _location_form(  # noqa: PLR0913 - keyword-only parts of the form page
    conn: Connection,
    found: PageSession,
    now: Now,
    *,
    values: dict[str, object],
    location_id: int | None = None,
    errors: FormErrors | None = None,
) -> HTMLResponse:
    _ = translations(found.viewer.locale).gettext
    title = (
        _("New location")
        if location_id is None
        else _("Change location %(id)s") % {"id": location_id}
    )
    errors = errors or FormErrors()
    return show(
        found,
        template="masterdata/location_form.html",
        title=title,
        now=now,
        status=errors.status,
        location_id=location_id,
        values=values,
        errors=errors,
        parents=[p for p in browse.parents(conn) if p.id != location_id],
    )


@router.get("/locations/new")
def new_location(
    conn: Connection,
    now: Now,
    found: PageUser,
    parent: Annotated[int | None, Query(ge=1)] = None,
) -> HTMLResponse:
    """The form for a new location (``?parent=`` preselects where it goes)."""
    values: dict[str, object] = {"parent_id": parent, "kind": "site" if parent is None else ""}
    return _location_form(conn, found, now, values=values)


@router.post("/locations/new")
def create_location(  # noqa: PLR0913, PLR0917 - FastAPI dependencies and form fields
    conn: Connection,
    now: Now,
    editor: Editor,
    code: Text = "",
    name: Text = "",
    kind: Text = "",
    parent_id: Text = "",
) -> Response:
    """Store a new location; errors next to their fields, its page on success."""
    text = {"code": code, "name": name, "kind": kind, "parent_id": parent_id}

    def create() -> Location:
        body = LocationIn.model_validate({**blank_to_none(text), "name": name.strip()})
        set_actor(conn, user=editor.user.username)
        return master.create_location(conn, location=body)

    created = attempt(conn, editor.viewer.locale, create)
    if isinstance(created, FormErrors):
        return _location_form(conn, editor, now, values=dict(text), errors=created)
    return RedirectResponse(f"/locations/{created.id}?done=created", status_code=303)


def _tree_checked(fields: dict[str, object]) -> dict[str, object]:
    """The form's fields to change; InvalidArgumentError unless only a site has no parent.

    The form always sends a parent ("nothing" for a site): a site keeps none (there is
    nothing to change), every other kind must name one, as when it was created.
    """
    wanted = {k: v for k, v in fields.items() if k != "reason"}
    if (wanted["kind"] == "site") != (wanted["parent_id"] is None):
        raise InvalidArgumentError("parent_id", wanted["parent_id"], SITE_RULE)
    if wanted["parent_id"] is None:
        del wanted["parent_id"]
    return wanted


def _location_page(  # noqa: PLR0913 - keyword-only parts of the page
    conn: Connection,
    found: PageSession,
    now: Now,
    location_id: int,
    *,
    done: str = "",
    errors: FormErrors | None = None,
    reason: str = "",
) -> HTMLResponse:
    location = master.get_location(conn, location_id=location_id)
    errors = errors or FormErrors()
    return show(
        found,
        template="masterdata/location.html",
        title=f"{location.code} · {location.name}" if location.name else location.code,
        now=now,
        status=errors.status,
        location=location,
        path=browse.path_to(conn, location_id=location_id),
        children=browse.children(conn, location_id=location_id),
        sensors=browse.sensors_at(conn, location_id=location_id),
        done=done,
        errors=errors,
        typed={"reason": reason},
        trail=entries_for(conn, table="erp.locations", key={"id": location_id}, limit=50),
    )


@router.get("/locations/{location_id}")
def location_detail(
    conn: Connection,
    now: Now,
    found: PageUser,
    location_id: LocationId,
    done: Annotated[str, Query(max_length=20)] = "",
) -> HTMLResponse:
    """One location: where it is, what is under it, its sensors, its change history."""
    return _location_page(conn, found, now, location_id, done=done)


@router.get("/locations/{location_id}/edit")
def edit_location(
    conn: Connection, now: Now, found: PageUser, location_id: LocationId
) -> HTMLResponse:
    """The change form of a location, filled with its values."""
    values: dict[str, object] = master.get_location(conn, location_id=location_id).model_dump()
    return _location_form(conn, found, now, values=values, location_id=location_id)


@router.post("/locations/{location_id}/edit")
def update_location(  # noqa: PLR0913, PLR0917 - FastAPI dependencies and form fields
    conn: Connection,
    now: Now,
    editor: Editor,
    location_id: LocationId,
    reason: Text = "",
    code: Text = "",
    name: Text = "",
    kind: Text = "",
    parent_id: Text = "",
) -> Response:
    """Change a location, with the reason; a refused rule is shown above the form."""
    text = {"code": code, "name": name, "kind": kind, "parent_id": parent_id}
    values: dict[str, object] = {**text, "reason": reason}
    fields = {**blank_to_none(text), "name": name.strip()}

    def change() -> None:
        checked = LocationUpdate.model_validate({**fields, "reason": reason.strip()})
        set_actor(conn, user=editor.user.username, reason=checked.reason)
        changes.update_location(
            conn, location_id=location_id, changes=_tree_checked(checked.model_dump())
        )

    errors = attempt(conn, editor.viewer.locale, change)
    if errors is None:
        return RedirectResponse(f"/locations/{location_id}?done=changed", status_code=303)
    return _location_form(conn, editor, now, values=values, location_id=location_id, errors=errors)


@router.post("/locations/{location_id}/retire")
def retire_location(
    conn: Connection,
    now: Now,
    editor: Editor,
    location_id: LocationId,
    reason: Text = "",
) -> Response:
    """Take a location out of use, with the reason; refused while anything still uses it."""

    def retire() -> None:
        checked = ReasonIn(reason=reason.strip())
        set_actor(conn, user=editor.user.username, reason=checked.reason)
        changes.retire_location(conn, location_id=location_id, now=now)

    errors = attempt(conn, editor.viewer.locale, retire)
    if errors is None:
        return RedirectResponse(f"/locations/{location_id}?done=retired", status_code=303)
    return _location_page(conn, editor, now, location_id, errors=errors, reason=reason)
