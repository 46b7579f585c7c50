"""Escape-by-default HTML fragments, and the page layout (``web/base.html``) around them.

``Html`` marks a string as markup that is safe to emit; everything else passed to
``render`` is escaped (quotes included, so values are safe inside attributes too).
Concatenating ``Html`` with a plain ``str`` yields a plain ``str``, which is escaped
again if it reaches ``render`` — the failure mode is double escaping, never injection.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from erp_core.web.format import format_time
from erp_core.web.i18n import DEFAULT_LOCALE
from erp_core.web.templates import render_template


class Html(str):
    """A string that is already HTML: emitted as is, never escaped again."""

    __slots__ = ()

    def __html__(self) -> str:
        """Markup for Jinja2 (markupsafe): a fragment passed to a template is not escaped."""
        return self


def escape(value: object) -> Html:
    """``value`` as HTML text; ``Html`` passes through unchanged, None becomes empty."""
    if isinstance(value, Html):
        return value
    if value is None:
        return Html("")
    return Html(html.escape(str(value), quote=True))


def render(template: str, /, **values: object) -> Html:
    """Fill the ``{name}`` fields of ``template`` with escaped ``values``."""
    return Html(template.format_map({name: escape(v) for name, v in values.items()}))


def join(parts: Iterable[Html], separator: str = "") -> Html:
    """Concatenate fragments (the separator is literal markup)."""
    return Html(separator.join(escape(p) for p in parts))


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is looking at a page: shown in the header, and the CSRF token of their forms."""

    username: str
    full_name: str
    roles: tuple[str, ...]
    csrf: str
    # Where the page's automatic refresh goes: the same page, marked as not user activity.
    refresh_url: str
    # The language the pages are shown in (erp_core.web.i18n.pick_locale).
    locale: str = DEFAULT_LOCALE
    # The user's own choice of language (None: the browser's), and the page they are on
    # (where the language form returns to).
    chosen_locale: str | None = None
    page_url: str = "/"
    # The language the browser asks for (what "As the browser" means for this viewer).
    browser_locale: str = DEFAULT_LOCALE


def csrf_field(viewer: Viewer) -> Html:
    """The hidden CSRF field every form of a signed-in page carries."""
    return render('<input type="hidden" name="csrf_token" value="{t}">', t=viewer.csrf)


def page(  # noqa: PLR0913 - keyword-only parts of the page
    *,
    title: str,
    body: Html,
    now: datetime,
    refresh_seconds: int | None = None,
    footnote: str = "",
    viewer: Viewer | None = None,
    locale: str | None = None,
) -> Html:
    """A whole HTML document in the base layout (``web/base.html``): menu, who, footer.

    The language is ``locale``, else the viewer's, else English.
    """
    shown = locale or (viewer.locale if viewer is not None else DEFAULT_LOCALE)
    document = render_template(
        "web/base.html",
        locale=shown,
        title=title,
        body=body,
        now=format_time(now),
        refresh_seconds=refresh_seconds,
        footnote=footnote,
        viewer=viewer,
    )
    return Html(document)
