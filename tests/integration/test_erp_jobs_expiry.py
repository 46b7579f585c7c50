"""Expired lots are put on hold by the ERP's job runner, and the notifier runs no ERP job.

`coldtrace erp-jobs` runs as a real process against the test database; before issue 10
this job ran inside the notifier (``ingest/notify/jobs.py``), which then depended on the
ERP's tables. Now the notifier's jobs are alert jobs only and it imports no ``erp_core``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import psycopg
import pytest

from erp_core.audit.service import set_actor
from ingest.notify.jobs import alert_jobs
from tests.integration.stock_fixtures import StockApi, api_for, item, lot


@pytest.fixture
def api(db_url: str) -> Iterator[StockApi]:
    yield from api_for(db_url)


def status(db_url: str, lot_id: int) -> str:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT status FROM erp.lots WHERE id = %s", (lot_id,)).fetchone()
    assert row is not None
    return str(row[0])


def test_coldtrace_erp_jobs_locks_an_expired_lot(
    api: StockApi, db_url: str, owner_db_url: str
) -> None:
    product = item(api)
    old, fresh = lot(api, product, "OLD-1"), lot(api, product, "NEW-1")
    with psycopg.connect(owner_db_url) as owner:  # only the owner may set a trigger aside
        owner.execute("ALTER TABLE erp.lots DISABLE TRIGGER lots_status")  # backdate expiry only
        set_actor(owner, user="test-setup")
        owner.execute("UPDATE erp.lots SET expires_on = '2020-01-31' WHERE id = %s", (old,))
        owner.execute("ALTER TABLE erp.lots ENABLE TRIGGER lots_status")
    env = {**os.environ, "COLDTRACE_DATABASE_URL": db_url}
    env.pop("COLDTRACE_RECORD_KEY_FILE", None)  # no anchoring needed here
    proc = subprocess.Popen(
        [sys.executable, "-m", "coldtrace", "erp-jobs", "--plain-logs", "--interval", "0.5"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while status(db_url, old) != "on_hold":
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "erp-jobs did not lock the expired lot"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert status(db_url, fresh) == "quarantine"
    assert "expired lot(s) put on hold" in err
    with psycopg.connect(db_url) as conn:
        actor = conn.execute(
            "SELECT actor FROM erp.audit_log WHERE table_name = 'erp.lots' ORDER BY id DESC LIMIT 1"
        ).fetchone()
    assert actor == ("system:expiry",)


def test_the_notifier_runs_alert_jobs_only_and_imports_no_erp_code(db_url: str) -> None:
    names = [job.__name__ for job in alert_jobs(db_url, escalate_after_minutes=15)]
    assert names == ["escalate_due", "sweep"]
    probe = (
        "import sys, ingest.notify.main, ingest.notify.jobs, ingest.alerts, ingest.evaluate; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'erp_core'))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
