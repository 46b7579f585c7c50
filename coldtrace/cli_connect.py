"""The CLI's database connection: one clear line instead of a traceback when it fails.

``coldtrace alerts list`` after ``coldtrace demo`` used to end in a psycopg traceback: the
CLI read the default database, the demo wrote another. Every CLI command that reads the
application's database connects here; when the database is missing, unreachable or not
migrated, the command prints what it tried (the URL without its password), the variable
that names it and how to point it at the demo, and exits with status 1.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    import psycopg

DEMO_HINT = "after `coldtrace demo`: source var/demo/demo.env"


def shown_url(url: str) -> str:
    """``url`` without the password of its ``user:password@`` part."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1@", url)


def _one_line(err: BaseException) -> str:
    text = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
    return text.rstrip(".") or type(err).__name__


def fail(text: str) -> typer.Exit:
    """Print ``text`` on stderr as one line; the exception that ends the command."""
    print(f"error: {text}", file=sys.stderr)  # noqa: T201 - the CLI's own error line
    return typer.Exit(1)


@contextmanager
def app_connection(url: str | None = None) -> Iterator[psycopg.Connection[Any]]:
    """A connection as the application role (``COLDTRACE_DATABASE_URL``), or a clear exit."""
    # server libraries, imported when a command runs: the CLI modules import on a gateway
    import psycopg
    from psycopg import errors

    from db.settings import URL_ENV, DatabaseSettings

    url = url or DatabaseSettings().url
    where = f"{URL_ENV}={shown_url(url)}"
    try:
        conn = psycopg.connect(url)
    except psycopg.OperationalError as err:
        reason = _one_line(err)
        msg = f"cannot use the database ({where}): {reason}. Set {URL_ENV}; {DEMO_HINT}"
        raise fail(msg) from None
    with conn:
        try:
            yield conn
        except (errors.UndefinedTable, errors.InvalidSchemaName, errors.UndefinedFunction) as err:
            reason = _one_line(err)
            msg = (
                f"the database ({where}) has no ColdTrace schema: {reason}."
                f" Run `coldtrace db upgrade` or set {URL_ENV}; {DEMO_HINT}"
            )
            raise fail(msg) from None
