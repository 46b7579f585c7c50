"""HTML pages of master data: items (``/items``) and locations (``/locations``, in location_pages).

Anyone signed in reads them; only the ``admin`` role changes them, as in the API
(``erp_core.masterdata.api``: master data defines what the evidence means). Every form
POST carries the CSRF field and is checked by ``form_user("admin")``. The forms go
through the API's own models and services, so a page refuses exactly what the API
refuses: a change to an existing record needs a reason (kept in the audit trail with
the old and new values), a GTIN needs its check digit, and a change that recorded
history forbids is refused with its rule shown next to the form (``forms``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from erp_core.audit.service import entries_for, set_actor
from erp_core.deps import Connection, Now
from erp_core.masterdata import browse, changes, location_pages
from erp_core.masterdata import service as master
from erp_core.masterdata.forms import (
    Editor,
    FormErrors,
    Text,
    attempt,
    blank_to_none,
    show,
)
from erp_core.masterdata.models import Item, ItemIn, ItemUpdate, ReasonIn
from erp_core.web.i18n import translations
from erp_core.web.paging import PageParam
from erp_core.web.session import PageSession, PageUser

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)
ItemId = Annotated[int, Path(ge=1)]
_ITEM_FIELDS = (
    "name",
    "range_low",
    "range_high",
    "alarm_profile_id",
    "mkt_limit",
    "tor_budget_minutes",
    "shelf_life_days",
)


@router.get("/items")
def items(
    conn: Connection,
    now: Now,
    found: PageUser,
    paging: PageParam,
    q: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    """Every item with its storage condition, by name; search by name or GTIN."""
    search = q.strip()
    rows = browse.items_page(conn, limit=paging.limit, offset=paging.offset, search=search)
    _ = translations(found.viewer.locale).gettext
    return show(
        found,
        template="masterdata/items.html",
        title=_("Items"),
        now=now,
        items=paging.cut(rows),
        search=search,
    )


def _item_form(  # noqa: PLR0913 - keyword-only parts of the form page
    conn: Connection,
    found: PageSession,
    now: Now,
    *,
    values: dict[str, object],
    item_id: int | None = None,
    errors: FormErrors | None = None,
) -> HTMLResponse:
    _ = translations(found.viewer.locale).gettext
    title = _("New item") if item_id is None else _("Change item %(id)s") % {"id": item_id}
    errors = errors or FormErrors()
    return show(
        found,
        template="masterdata/item_form.html",
        title=title,
        now=now,
        status=errors.status,
        item_id=item_id,
        values=values,
        errors=errors,
        profiles=browse.profiles(conn),
    )


@router.get("/items/new")
def new_item(conn: Connection, now: Now, found: PageUser) -> HTMLResponse:
    """The form for a new item (admins send it)."""
    return _item_form(conn, found, now, values={"implantable": False})


@router.post("/items/new")
def create_item(  # noqa: PLR0913, PLR0917 - FastAPI dependencies and form fields
    conn: Connection,
    now: Now,
    editor: Editor,
    gtin: Text = "",
    name: Text = "",
    range_low: Text = "",
    range_high: Text = "",
    alarm_profile_id: Text = "",
    mkt_limit: Text = "",
    tor_budget_minutes: Text = "",
    shelf_life_days: Text = "",
    implantable: Text = "",
) -> Response:
    """Store a new item; errors next to their fields, the item page on success."""
    text = {
        "gtin": gtin,
        "name": name,
        "range_low": range_low,
        "range_high": range_high,
        "alarm_profile_id": alarm_profile_id,
        "mkt_limit": mkt_limit,
        "tor_budget_minutes": tor_budget_minutes,
        "shelf_life_days": shelf_life_days,
    }
    values: dict[str, object] = {**text, "implantable": bool(implantable)}

    def create() -> Item:
        body = ItemIn.model_validate({**blank_to_none(text), "implantable": bool(implantable)})
        set_actor(conn, user=editor.user.username)
        return master.create_item(conn, item=body)

    created = attempt(conn, editor.viewer.locale, create)
    if isinstance(created, FormErrors):
        return _item_form(conn, editor, now, values=values, errors=created)
    return RedirectResponse(f"/items/{created.id}?done=created", status_code=303)


def _item_page(  # noqa: PLR0913 - keyword-only parts of the page
    conn: Connection,
    found: PageSession,
    now: Now,
    item_id: int,
    *,
    done: str = "",
    errors: FormErrors | None = None,
    reason: str = "",
) -> HTMLResponse:
    row = browse.item_row(conn, item_id=item_id)
    errors = errors or FormErrors()
    return show(
        found,
        template="masterdata/item.html",
        title=row.item.name,
        now=now,
        status=errors.status,
        row=row,
        item=row.item,
        done=done,
        errors=errors,
        typed={"reason": reason},
        trail=entries_for(conn, table="erp.items", key={"id": item_id}, limit=50),
    )


@router.get("/items/{item_id}")
def item_detail(
    conn: Connection,
    now: Now,
    found: PageUser,
    item_id: ItemId,
    done: Annotated[str, Query(max_length=20)] = "",
) -> HTMLResponse:
    """One item: its storage condition, alarm profile, change history; retire form."""
    return _item_page(conn, found, now, item_id, done=done)


@router.get("/items/{item_id}/edit")
def edit_item(conn: Connection, now: Now, found: PageUser, item_id: ItemId) -> HTMLResponse:
    """The change form of an item, filled with its values (the GTIN cannot change)."""
    item = master.get_item(conn, item_id=item_id)
    values: dict[str, object] = item.model_dump()
    return _item_form(conn, found, now, values=values, item_id=item_id)


@router.post("/items/{item_id}/edit")
def update_item(  # noqa: PLR0913, PLR0917 - FastAPI dependencies and form fields
    conn: Connection,
    now: Now,
    editor: Editor,
    item_id: ItemId,
    reason: Text = "",
    name: Text = "",
    range_low: Text = "",
    range_high: Text = "",
    alarm_profile_id: Text = "",
    mkt_limit: Text = "",
    tor_budget_minutes: Text = "",
    shelf_life_days: Text = "",
    implantable: Text = "",
) -> Response:
    """Change an item, with the reason; a refused rule is shown above the form."""
    text = dict(
        zip(
            _ITEM_FIELDS,
            (
                name,
                range_low,
                range_high,
                alarm_profile_id,
                mkt_limit,
                tor_budget_minutes,
                shelf_life_days,
            ),
            strict=True,
        )
    )
    current = master.get_item(conn, item_id=item_id)
    values: dict[str, object] = {
        **text,
        "gtin": current.gtin,
        "implantable": bool(implantable),
        "reason": reason,
    }
    fields = {**blank_to_none(text), "implantable": bool(implantable)}

    def change() -> None:
        checked = ItemUpdate.model_validate({**fields, "reason": reason.strip()})
        set_actor(conn, user=editor.user.username, reason=checked.reason)
        wanted = checked.model_dump(exclude={"reason"})
        changes.update_item(conn, item_id=item_id, changes=wanted)

    errors = attempt(conn, editor.viewer.locale, change)
    if errors is None:
        return RedirectResponse(f"/items/{item_id}?done=changed", status_code=303)
    return _item_form(conn, editor, now, values=values, item_id=item_id, errors=errors)


@router.post("/items/{item_id}/retire")
def retire_item(
    conn: Connection,
    now: Now,
    editor: Editor,
    item_id: ItemId,
    reason: Text = "",
) -> Response:
    """Take an item out of use, with the reason; refused while lots are held or undecided."""

    def retire() -> None:
        checked = ReasonIn(reason=reason.strip())
        set_actor(conn, user=editor.user.username, reason=checked.reason)
        changes.retire_item(conn, item_id=item_id, now=now)

    errors = attempt(conn, editor.viewer.locale, retire)
    if errors is None:
        return RedirectResponse(f"/items/{item_id}?done=retired", status_code=303)
    return _item_page(conn, editor, now, item_id, errors=errors, reason=reason)


router.include_router(location_pages.router)
