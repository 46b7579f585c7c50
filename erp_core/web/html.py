"""Escape-by-default HTML building and the page layout every page shares.

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

STYLESHEET = "/static/style.css"


class Html(str):
    """A string that is already HTML: emitted as is, never escaped again."""

    __slots__ = ()


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


def csrf_field(viewer: Viewer) -> Html:
    """The hidden CSRF field every form of a signed-in page carries."""
    return render('<input type="hidden" name="csrf_token" value="{t}">', t=viewer.csrf)


def _who(viewer: Viewer | None) -> Html:
    if viewer is None:
        return Html("")
    return render(
        '<span class="session"><span class="who">Signed in: <strong>{name}</strong> ({user}) · '
        'role {roles}</span> <a href="/account/password">Change password</a>'
        '<form method="post" action="/sign-out" class="signout">{csrf}'
        '<button type="submit">Sign out</button></form></span>',
        name=viewer.full_name,
        user=viewer.username,
        roles=", ".join(viewer.roles) or "none",
        csrf=csrf_field(viewer),
    )


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{refresh}<title>{title} · ColdTrace</title>
<link rel="stylesheet" href="{stylesheet}">
</head>
<body>
<header class="top">
<a class="brand" href="/">ColdTrace</a>
<nav><a href="/">Overview</a><a href="/lots">Lots</a><a href="/alerts">Alerts</a>
<a href="/scans">Scans</a><a href="/dead-letters">Dead letters</a><a href="/docs">API</a></nav>
<span class="clock">Updated {now} UTC</span>{who}
</header>
<main>
<h1>{title}</h1>
{body}
</main>
<footer>All times are UTC. {footnote}</footer>
</body>
</html>
"""


def page(  # noqa: PLR0913 - keyword-only parts of the page
    *,
    title: str,
    body: Html,
    now: datetime,
    refresh_seconds: int | None = None,
    footnote: str = "",
    viewer: Viewer | None = None,
) -> Html:
    """A whole HTML document with the shared header (and who is signed in), navigation, footer."""
    refresh = Html("")
    if refresh_seconds and viewer is not None:
        refresh = render(
            '<meta http-equiv="refresh" content="{s};url={url}">\n',
            s=refresh_seconds,
            url=viewer.refresh_url,
        )
    elif refresh_seconds:
        refresh = render('<meta http-equiv="refresh" content="{s}">\n', s=refresh_seconds)
    return render(
        _PAGE,
        title=title,
        body=body,
        now=format_time(now),
        refresh=refresh,
        stylesheet=STYLESHEET,
        footnote=footnote,
        who=_who(viewer),
    )
