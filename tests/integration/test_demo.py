"""``coldtrace demo`` as a newcomer runs it: sign-in shown first, stopped by a signal.

The demo runs as a real process with its output to a file (as in a log), on a database
and a port of this test's own. ``kill`` (SIGTERM) used to leave its children running,
the web UI still holding its port, and no summary.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from coldtrace.broker import free_port
from coldtrace.seed import DEMO_PASSWORD
from db import migrate
from tests.fix_services import ADMIN_URL, APP_LOGIN, _url, as_login
from tests.mqtt_helpers import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def demo_database() -> Iterator[str]:
    """A database name for the demo to make; dropped after the test."""
    name = f"ct_demo_{uuid.uuid4().hex[:10]}"
    yield name
    migrate.drop_database(_url(name))


def _alive(procs: list[psutil.Process]) -> list[str]:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(f"{p.pid} {' '.join(p.cmdline()[:4])}")
        except psutil.NoSuchProcess:
            continue
    return out


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_every_child_and_prints_the_summary(
    tmp_path: Path, demo_database: str, signum: signal.Signals
) -> None:
    """SIGTERM (``kill``) or SIGINT (Ctrl-C) ends the demo: no child left, summary printed."""
    api_port = free_port()
    out_path = tmp_path / "demo.out"
    env = {
        **os.environ,
        "COLDTRACE_DATABASE_URL": as_login(_url("coldtrace"), APP_LOGIN),
        "COLDTRACE_DATABASE_OWNER_URL": _url("coldtrace", ADMIN_URL),
        "COLUMNS": "200",
    }
    workdir = tmp_path / "demo"
    args = [sys.executable, "-m", "coldtrace", "demo", "--workdir", str(workdir)]
    args += ["--api-port", str(api_port), "--database", demo_database]
    with out_path.open("wb") as out:
        demo = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    me = psutil.Process(demo.pid)
    try:

        def serving() -> bool:
            conns = psutil.net_connections("tcp")
            return any(c.laddr and c.laddr.port == api_port and c.status == "LISTEN" for c in conns)

        assert wait_until(serving, timeout=120, interval=0.5), out_path.read_text()
        # the demo plant works in China: its pages show Beijing time and say so
        with urllib.request.urlopen(f"http://127.0.0.1:{api_port}/sign-in", timeout=30) as r:
            assert "All times are Asia/Shanghai (UTC+8)." in r.read().decode()
        # a first plain progress line: the live counts reach a log too
        progress = re.compile(r"^demo \d+ s: produced \d+", re.MULTILINE)
        shown = wait_until(lambda: progress.search(out_path.read_text()) is not None, timeout=30)
        assert shown, out_path.read_text()
        children = me.children(recursive=True)
        assert len(children) >= 8, [c.cmdline() for c in children]  # the services + mosquitto
        demo.send_signal(signum)
        code = demo.wait(timeout=120)
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    text = out_path.read_text()
    assert code in {0, 1}, text
    # every child and grandchild has gone, and the port is free again
    assert wait_until(lambda: not _alive(children), timeout=10), _alive(children)
    assert not any(
        c.laddr and c.laddr.port == api_port and c.status == "LISTEN"
        for c in psutil.net_connections("tcp")
    )
    assert "ColdTrace demo — summary" in text
    assert f"{signal.Signals(signum).name}: stopping" in text
    # the sign-in users and their password come before the first progress line
    first_progress = re.search(r"^demo \d+ s: produced", text, re.MULTILINE)
    assert first_progress is not None, text
    sign_in = text.index(DEMO_PASSWORD)
    assert sign_in < first_progress.start()
    assert all(u in text[:sign_in] for u in ("qa (", "qam (", "admin ("))
    # the env file the start and the summary point to names the demo's database
    env_file = workdir / "demo.env"
    assert f"source {env_file}" in text
    assert f"/{demo_database}" in env_file.read_text()
    assert "COLDTRACE_SITE_TIMEZONE=Asia/Shanghai" in env_file.read_text()  # reports too
    assert env_file.stat().st_mode & 0o077 == 0


def test_cli_without_its_database_says_which_variable(tmp_path: Path) -> None:
    """``coldtrace alerts list`` on a missing database: one line naming the variable."""
    missing = as_login(_url(f"ct_missing_{uuid.uuid4().hex[:8]}"), APP_LOGIN)
    for url in (missing, "postgresql://coldtrace_app:secret-pw@127.0.0.1:1/x"):
        env = {**os.environ, "COLDTRACE_DATABASE_URL": url}
        done = subprocess.run(
            [sys.executable, "-m", "coldtrace", "alerts", "list"],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            check=False,
            timeout=60,
        )
        assert done.returncode == 1
        assert "Traceback" not in done.stderr + done.stdout
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1, done.stderr
        assert "COLDTRACE_DATABASE_URL=" in lines[0]
        assert "source var/demo/demo.env" in lines[0]
        assert "secret-pw" not in lines[0]
