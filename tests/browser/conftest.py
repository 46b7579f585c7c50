"""Browser tests: the real app in uvicorn, driven by Debian's headless Chromium (Playwright).

Playwright's own browser download cannot work on the plants' offline machines nor here,
so it drives the system ``chromium`` (installed by scripts/services.sh) through its
executable path. Every page a test visits is saved as a screenshot under the test's
``tmp_path`` (``Browse.shot``), to be looked at when a test fails or a page changes.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for one test module; module-scoped because Playwright's sync API holds an
    event loop on the main thread until it stops, and later tests call ``asyncio.run``."""
    if not Path(CHROMIUM).exists():
        pytest.fail("no chromium: run `bash scripts/services.sh` (make test does)")
    with sync_playwright() as p:
        # root in a container has no user namespace for Chromium's sandbox
        launched = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


class Browse:
    """One browser tab on the app: each page it shows is saved as a numbered screenshot."""

    def __init__(self, page: Page, base_url: str, shots: Path) -> None:
        self.page = page
        self.base_url = base_url
        self.shots = shots
        self.taken: list[Path] = []

    def open(self, path: str) -> Page:
        """Go to ``path`` and screenshot it."""
        response = self.page.goto(self.base_url + path)
        assert response is not None
        assert response.status < 500, response.status
        self.shot(path)
        return self.page

    def submit(self, button: str) -> Page:
        """Click ``button`` (a selector), wait for the next page and screenshot it."""
        with self.page.expect_navigation():
            self.page.click(button)
        self.shot(self.page.url.removeprefix(self.base_url))
        return self.page

    def shot(self, name: str) -> Path:
        slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-") or "root"
        path = self.shots / f"{len(self.taken) + 1:02d}-{slug}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path


def browse(browser: Browser, base_url: str, shots: Path, *, locale: str = "en-GB") -> Browse:
    """A fresh browser context (no cookies) in ``locale`` at a desktop width."""
    shots.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(locale=locale, viewport={"width": 1280, "height": 900})
    return Browse(context.new_page(), base_url, shots)
