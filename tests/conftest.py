"""Fixtures shared by all tiers; service fixtures live in fix_*.py plugins."""

import os

from hypothesis import HealthCheck, settings

pytest_plugins = ["tests.fix_services"]

# HYPOTHESIS_PROFILE=deep: many more examples for the fuzz tests (docs/api.md, "API fuzzing")
settings.register_profile(
    "deep", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
if "HYPOTHESIS_PROFILE" in os.environ:
    settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])
