"""The README names the demo's sign-in users and password, and they are the seeded ones."""

from __future__ import annotations

from pathlib import Path

from coldtrace.seed import DEMO_PASSWORD, USERS

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_shows_the_demo_sign_in() -> None:
    """A newcomer finds every demo user and the password without running the demo first."""
    text = README.read_text()
    assert f"`{DEMO_PASSWORD}`" in text
    for username, _name, _role in USERS:
        assert f"`{username}`" in text
