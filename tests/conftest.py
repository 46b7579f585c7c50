"""Fixtures shared by all tiers; service fixtures live in fix_*.py plugins."""

import os

from hypothesis import HealthCheck, settings

pytest_plugins = ["tests.fix_services", "tests.fix_stack"]

# HYPOTHESIS_PROFILE=deep: a fuzz session, many more examples per property
# (docs/fuzzing.md, docs/api.md "API fuzzing"); without it hypothesis' defaults apply, as before.
settings.register_profile(
    "deep", max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# The CLI prints through rich, which wraps at the terminal's width: 80 columns where there is
# no terminal (pytest-xdist workers, CI). Tests read that output, so give every run one width.
os.environ["COLUMNS"] = "300"
