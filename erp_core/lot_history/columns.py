"""A query's result as numpy columns, packed by PostgreSQL: no Python object per row.

A year of one-minute readings from three sensors is 1.6 million rows; fetched as tuples
they cost seconds of datetime and float objects, and even binary COPY hands psycopg one
message per row. Here the server packs every row into fixed-width big-endian fields
(``int4send``, ``timestamptz_send``, …) and concatenates them into one ``bytea``, which
numpy reads in place. A timestamptz travels as µs since 2000-01-01 and is returned as µs
since the Unix epoch (``coldchain.tor.micros``). The rows come in no particular order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import psycopg

Kind = Literal["int4", "int8", "float8", "timestamptz"]

# kind: (send function, wire format, numpy type returned)
_KINDS: dict[str, tuple[str, str, type[np.int64 | np.float64]]] = {
    "int4": ("int4send", ">i4", np.int64),
    "int8": ("int8send", ">i8", np.int64),
    "float8": ("float8send", ">f8", np.float64),
    "timestamptz": ("timestamptz_send", ">i8", np.int64),
}
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 minus 1970-01-01, in µs


def fetch_columns(
    conn: psycopg.Connection[Any],
    query: str,
    params: Mapping[str, Any] | Sequence[Any],
    kinds: Sequence[Kind],
) -> list[npt.NDArray[Any]]:
    """The columns of ``query``, one per ``kinds``, as int64 or float64 arrays.

    No value may be NULL (``ValueError``). The packed result must stay under PostgreSQL's
    1 GB limit for one value: tens of millions of rows.
    """
    names = [f"c{i}" for i in range(len(kinds))]
    packed = " || ".join(f"{_KINDS[k][0]}({n})" for k, n in zip(kinds, names, strict=True))
    row = conn.execute(
        f"SELECT count(*), coalesce(string_agg({packed}, ''::bytea), ''::bytea) "  # noqa: S608 - names and send functions are ours
        f"FROM ({query}) AS q({', '.join(names)})",
        params,
        binary=True,
    ).fetchone()
    assert row is not None  # an aggregate always returns a row
    count, blob = row
    layout = np.dtype([(n, _KINDS[k][1]) for k, n in zip(kinds, names, strict=True)])
    if len(blob) != count * layout.itemsize:
        raise ValueError(f"{count} rows do not pack into {list(kinds)}: a NULL or another type")
    rows = np.frombuffer(blob, layout)
    columns: list[npt.NDArray[Any]] = []
    for kind, name in zip(kinds, names, strict=True):
        column = rows[name].astype(_KINDS[kind][2])
        if kind == "timestamptz":
            column += _PG_EPOCH_US
        columns.append(column)
    return columns
