"""Which language a page is shown in, and its gettext catalog (Babel, compiled at import).

The catalogs are ``erp_core/locale/<lang>/LC_MESSAGES/messages.po`` (extracted with
``pybabel extract -F babel.cfg``, docs/web-ui.md). Only the ``.po`` files are committed:
they are compiled in memory when this module is imported, so an install never ships a
stale ``.mo``. English is the source language (its catalog is the identity).
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DEFAULT_LOCALE = "en"
LOCALES: tuple[str, ...] = ("en", "zh_CN")


def _compile(lang: str) -> NullTranslations:
    po = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=lang)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


CATALOGS: dict[str, NullTranslations] = {lang: _compile(lang) for lang in LOCALES}


def translations(locale: str) -> NullTranslations:
    """The catalog of ``locale`` (English for a locale we do not translate)."""
    return CATALOGS.get(locale, CATALOGS[DEFAULT_LOCALE])


def pick_locale(accept_language: str | None) -> str:
    """The first of the browser's ``Accept-Language`` choices that we translate (pure).

    ``zh``, ``zh-CN``, ``zh-Hans`` → ``zh_CN``; ``en-*`` → ``en``; weights (``q=``)
    order the choices; nothing usable → English.
    """
    if not accept_language:
        return DEFAULT_LOCALE
    choices: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if tag and weight > 0:
            choices.append((-weight, index, tag.lower()))
    for _weight, _index, tag in sorted(choices):
        primary = tag.split("-")[0]
        if primary == "zh" and tag not in {"zh-tw", "zh-hk", "zh-hant", "zh-mo"}:
            return "zh_CN"
        if primary == "en":
            return "en"
    return DEFAULT_LOCALE
