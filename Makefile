# The two set-up commands of the README: `make demo` and `make test`. Both create the
# virtual environment and make sure PostgreSQL and Mosquitto are installed and running.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: all install services test test-timescale chaos demo lint bench clean messages

all: test

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

services:
	bash scripts/services.sh

# Each test has its own database and broker, so tests run in parallel, one worker per core
# (TEST_WORKERS=0 runs them in this process, e.g. to debug).
TEST_WORKERS ?= auto
PARALLEL := -n $(TEST_WORKERS)
# The API fuzz (schemathesis) counts, in its last test, what its other tests sent in the same
# process; under pytest-xdist its generated cases do not all run, so it runs on its own.
SERIAL := tests/integration/test_api_schemathesis.py
test: install services
	$(VENV)/bin/pytest -q $(PARALLEL) --deselect $(SERIAL)
	$(VENV)/bin/pytest -q -p no:xdist $(SERIAL)

# Faults injected into the running chain, one table row each (docs/reliability.md); about
# 10 minutes, loopback and its own processes only; not part of `make test`.
chaos: install services
	$(VENV)/bin/pytest -p no:cacheprovider -q tests/chaos $(CHAOS_ARGS)

# The whole suite against a PostgreSQL of your own with TimescaleDB preloaded, given by
# URL (docs/timescaledb.md): its owner role's and its superuser's logins to the database
# postgres, roles created as scripts/services.sh does. Timescale-only tests must run there.
# Like `make test`: the API fuzz runs on its own after the rest.
TIMESCALE_ADMIN_URL ?= postgresql://coldtrace:coldtrace@127.0.0.1:5433/postgres
TIMESCALE_SUPERUSER_URL ?= postgresql://postgres@127.0.0.1:5433/postgres
test-timescale: install
	psql "$(TIMESCALE_SUPERUSER_URL)" -Atc "SHOW shared_preload_libraries" | grep -q timescaledb \
		|| { echo "no TimescaleDB preloaded at $(TIMESCALE_SUPERUSER_URL)" >&2; exit 1; }
	COLDTRACE_TEST_ADMIN_URL="$(TIMESCALE_ADMIN_URL)" \
	COLDTRACE_TEST_SUPERUSER_URL="$(TIMESCALE_SUPERUSER_URL)" \
	COLDTRACE_TEST_REQUIRE_TIMESCALE=1 \
		$(VENV)/bin/pytest -q $(PARALLEL) --deselect $(SERIAL) $(PYTEST_ARGS)
	COLDTRACE_TEST_ADMIN_URL="$(TIMESCALE_ADMIN_URL)" \
	COLDTRACE_TEST_SUPERUSER_URL="$(TIMESCALE_SUPERUSER_URL)" \
	COLDTRACE_TEST_REQUIRE_TIMESCALE=1 $(VENV)/bin/pytest -q -p no:xdist $(SERIAL) $(PYTEST_ARGS)

demo: install services
	$(VENV)/bin/coldtrace demo $(DEMO_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy db telemetry identifiers coldchain firmware_sim gateway ingest erp_core coldtrace dashboards
	$(VENV)/bin/lint-imports

# Re-extract the pages' messages and merge them into the catalogs (then translate the new
# ones in erp_core/locale/zh_CN/LC_MESSAGES/messages.po; docs/web-ui.md).
messages: install
	$(VENV)/bin/pybabel extract -F babel.cfg --no-location --sort-output -o $(VENV)/messages.pot .
	$(VENV)/bin/pybabel update -i $(VENV)/messages.pot -d erp_core/locale --no-wrap --ignore-obsolete --no-fuzzy-matching

bench: install services
	$(PY) bench/ingest.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
