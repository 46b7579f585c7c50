"""Red team (issue 9): a lost or truncated anchor file must not be forgotten in a minute.

The attacker holds the database superuser's login and can write the anchor file but not
read the record key (shell access to the host as another account, or a backup
operator): rewrite an audit entry, re-hash the chain, then delete the anchor file (or
cut its last lines). The ERP jobs used to start a fresh file at their next periodic
checkpoint — anchoring the rewritten head — and ``audit verify`` then said "intact".
Now the jobs never start a file for a trail that has entries (a person does, ``audit
checkpoint --start``), and refuse a file that lost the line they wrote last; both are
logged as errors at every attempt, and ``verify`` keeps saying what is wrong.
"""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg
import pytest

from erp_core import jobs
from erp_core.audit import anchoring, keys
from tests.integration.test_audit_anchor import (
    T0,
    anchored,
    records,  # noqa: F401 - the fixture
    rewrite_as_superuser,
    users,
)


def _runner(records: tuple[keys.Keyring, Path]) -> jobs.Anchoring:  # noqa: F811
    return jobs.Anchoring(records[0], records[1], every_s=60)


def test_a_deleted_anchor_file_is_not_started_again_by_the_jobs(
    db_url: str,
    superuser_db_url: str,
    records: tuple[keys.Keyring, Path],  # noqa: F811 - the fixture
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = _runner(records)
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert jobs.anchor_once(conn, config, now=lambda: T0)  # a new installation
    users(db_url, "ann", "ben", "cy")
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert jobs.anchor_once(conn, config, now=lambda: T0)
    assert anchored(db_url, records).status == "intact"

    rewrite_as_superuser(superuser_db_url, 2)
    records[1].unlink()
    with caplog.at_level(logging.ERROR), psycopg.connect(db_url, autocommit=True) as conn:
        # a restarted job runner, which remembers nothing
        assert not jobs.anchor_once(conn, config, now=lambda: T0)
    assert "holds no anchor" in caplog.text
    assert "--start" in caplog.text
    assert anchored(db_url, records).status == "unanchored"


def test_a_truncated_anchor_file_stops_the_job_runner_that_wrote_it(
    db_url: str,
    superuser_db_url: str,
    records: tuple[keys.Keyring, Path],  # noqa: F811 - the fixture
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = _runner(records)
    state = jobs.AnchorState()
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert jobs.anchor_once(conn, config, now=lambda: T0, state=state)
        users(db_url, "ann", "ben")
        assert jobs.anchor_once(conn, config, now=lambda: T0, state=state)
    first_line = records[1].read_text().splitlines()[0]

    rewrite_as_superuser(superuser_db_url, 2)
    records[1].write_text(first_line + "\n")  # the anchor of entry 2 is gone
    assert anchored(db_url, records).status == "intact"  # what is left agrees: the hole
    with caplog.at_level(logging.ERROR), psycopg.connect(db_url, autocommit=True) as conn:
        assert not jobs.anchor_once(conn, config, now=lambda: T0, state=state)
    assert "no longer holds the checkpoint written last" in caplog.text
    assert len(records[1].read_text().splitlines()) == 1, "nothing anchored after the cut"
    assert [a.seq for a in anchoring.read_anchors(records[1], records[0])[0]] == [0]
