"""The Jinja2 environment of the web pages: one base layout, templates and menu by domain.

A domain package with pages keeps its templates in ``erp_core/<domain>/templates/``;
they are found by that folder alone and named ``<domain>/<file>`` (``web/base.html``).
A folder's ``_nav.html`` is the domain's menu entry (a link, and ``{% set order = N %}``
for its place in the menu): a new module (production, quality, sales) adds its template
folder with a ``_nav.html``, its ``pages.router`` in ``erp_core.app.ROUTERS``, nothing
else. Autoescaping is on for every template; ``Html`` fragments (``erp_core.web.html``)
are markup and pass through unescaped, everything else is escaped.
"""

from __future__ import annotations

from pathlib import Path

from babel.dates import format_date
from babel.numbers import format_decimal, format_percent
from jinja2 import Environment, FileSystemLoader, PrefixLoader, StrictUndefined

from erp_core.web.format import (
    format_age,
    format_moment,
    format_range,
    format_seconds,
    format_value,
    zone_name,
)
from erp_core.web.i18n import DEFAULT_LOCALE, LOCALES, translations
from erp_core.web.words import word_for

ERP_DIR = Path(__file__).resolve().parent.parent
NAV_TEMPLATE = "_nav.html"


def _loader() -> PrefixLoader:
    folders = sorted(p for p in ERP_DIR.glob("*/templates") if p.is_dir())
    return PrefixLoader({p.parent.name: FileSystemLoader(p) for p in folders})


def _measured(value: float | None, unit: str, high: float | None = None) -> str:
    """``4.3 °C`` (a value), or ``2–8 °C`` (``value`` to ``high``: a range)."""
    if high is not None and value is not None:
        return format_range(value, high, unit)
    return format_value(value, unit)


def _environment(locale: str) -> Environment:
    env = Environment(
        loader=_loader(),
        autoescape=True,
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    catalog = translations(locale)
    env.filters.update(
        date=lambda d: format_date(d, format="medium", locale=locale),
        datetime=lambda t: format_moment(t, locale=locale),
        number=lambda n, fmt=None: format_decimal(n, format=fmt, locale=locale),
        percent=lambda n: format_percent(n, format="#,##0.0%", locale=locale),
        duration=format_seconds,
        code=lambda code: catalog.gettext(word_for(str(code))),
        age=lambda t, now: format_age(t, now=now, _=catalog.gettext),
        measured=_measured,
    )
    # the site's time zone as the footer and column heads name it (erp_core.web.format)
    env.globals["site_zone"] = zone_name
    # newstyle: ``_("%(n)s lots", n=...)`` escapes its variables before formatting.
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    return env


ENVIRONMENTS: dict[str, Environment] = {lang: _environment(lang) for lang in LOCALES}


def _menu(env: Environment) -> tuple[str, ...]:
    """Every domain's ``_nav.html``, in the order each declares."""
    names = [n for n in env.list_templates() if n.endswith("/" + NAV_TEMPLATE)]

    def order(name: str) -> int:
        return int(getattr(env.get_template(name).module, "order", 1000))

    return tuple(sorted(names, key=lambda n: (order(n), n)))


MENU = _menu(ENVIRONMENTS[DEFAULT_LOCALE])


def render_template(name: str, /, *, locale: str, **values: object) -> str:
    """``name`` rendered in ``locale`` (its catalog for ``_()`` and ``{% trans %}``).

    The result is HTML whose values were escaped: callers wrap it in ``Html``.
    """
    env = ENVIRONMENTS.get(locale, ENVIRONMENTS[DEFAULT_LOCALE])
    return env.get_template(name).render(values, locale=locale, menu=MENU)
