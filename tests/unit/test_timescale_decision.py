"""The migrations' TimescaleDB decision: never CREATE EXTENSION where it would be FATAL."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from db.timescale import Decision, Facts, decide

preloads = st.one_of(
    st.none(),
    st.lists(
        st.sampled_from(
            ["timescaledb", "pg_stat_statements", '"$libdir/timescaledb"', "timescaledb.so", "auto"]
        ),
        max_size=3,
    ).map(", ".join),
)
facts = st.builds(Facts, st.booleans(), st.booleans(), preloads, st.booleans())


@given(facts)
def test_extension_is_created_only_where_it_is_installed_loaded_and_absent(f: Facts) -> None:
    d = decide(f)
    if d.timescale and not f.created:  # enable() creates the extension
        assert f.available
        assert f.loader_present if f.preload is None else "timescaledb" in f.preload
    if f.created:
        assert d == Decision(timescale=True, reason=d.reason)
    assert d.reason


@pytest.mark.parametrize(
    ("preload", "loader", "expected"),
    [
        ("", True, False),  # readable and empty: trust it over the setting
        ("pg_stat_statements", True, False),
        ("pg_stat_statements,timescaledb", False, True),
        ('"$libdir/timescaledb"', False, True),
        ("timescaledb_toolkit", True, False),
        (None, True, True),  # shared_preload_libraries unreadable: the loader's setting
        (None, False, False),
    ],
)
def test_installed_extension_is_used_only_when_preloaded(
    preload: str | None, *, loader: bool, expected: bool
) -> None:
    d = decide(Facts(created=False, available=True, preload=preload, loader_present=loader))
    assert d.timescale == expected
    if not expected:
        assert "shared_preload_libraries" in d.reason


def test_not_installed_means_plain_tables() -> None:
    d = decide(Facts(created=False, available=False, preload="timescaledb", loader_present=True))
    assert not d.timescale
    assert "not installed" in d.reason
