"""Fixtures shared by all tiers; service fixtures live in fix_*.py plugins."""

pytest_plugins = ["tests.fix_services"]
