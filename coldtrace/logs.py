"""Logging set-up shared by the CLI's long-running commands."""

from __future__ import annotations

import logging

from rich.logging import RichHandler


def setup(level: str = "INFO", *, plain: bool = False) -> None:
    """Configure the root logger once: rich on a terminal, plain lines for supervised children."""
    handler: logging.Handler
    if plain:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler = RichHandler(show_path=False, rich_tracebacks=True)
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
