#!/usr/bin/env bash
# Make sure the services ColdTrace needs are installed and running on this Debian machine:
# PostgreSQL (127.0.0.1:5432) with the roles `coldtrace` (owner), `coldtrace_app` and
# `coldtrace_reader`, and the Mosquitto binary (tests
# and the demo start brokers of their own with the project's config; the system broker
# is started too where it is not running). Idempotent; needs root or sudo to install.
set -euo pipefail

SUDO=""
AS_POSTGRES=(runuser -u postgres --)
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; AS_POSTGRES=(sudo -u postgres); fi

need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
# The clustered-broker test starts a three-node NATS cluster of its own (docs/scaling.md);
# only the binary is needed, the system service is neither used nor reconfigured.
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
command -v socat >/dev/null 2>&1 || need+=(socat)  # pseudo-terminal pairs for the Modbus RTU test
# PDF reports (docs/reports.md): WeasyPrint lays out with Debian's pango; Noto CJK prints Chinese.
ldconfig -p 2>/dev/null | grep libpangoft2-1.0 >/dev/null || need+=(libpango-1.0-0 libpangoft2-1.0-0)
fc-list 2>/dev/null | grep -i "Noto Sans CJK" >/dev/null || need+=(fonts-noto-cjk)
# The browser tests drive Debian's headless Chromium (Playwright's own download cannot work
# offline).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing: ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432; }
if ! pg_up; then
    version=$(ls /etc/postgresql | sort -V | tail -1)
    echo "starting PostgreSQL $version"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
    pg_up || { echo "PostgreSQL did not start on 127.0.0.1:5432" >&2; exit 1; }
fi

# The database roles (docs/access-and-audit.md, "Database roles"): `coldtrace` owns the
# schema and runs the migrations; `coldtrace_app` is what ingest, the API, the jobs and
# the notifier log in as; `coldtrace_reader` is Grafana's and the reports'. Their
# privileges on the tables are applied by `coldtrace db upgrade`. The passwords are the
# demo's and the tests' on this development machine; a plant creates its roles with
# `coldtrace db roles` and passwords of its own. Works whether local auth is trust, peer
# or scram, and puts back the attributes a least-privileged role must have whatever an
# earlier run or a person did.
"${AS_POSTGRES[@]}" psql -q -v ON_ERROR_STOP=1 -d postgres <<'SQL' >/dev/null
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coldtrace') THEN
    CREATE ROLE coldtrace LOGIN CREATEDB PASSWORD 'coldtrace';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coldtrace_app') THEN
    CREATE ROLE coldtrace_app LOGIN PASSWORD 'coldtrace_app';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coldtrace_reader') THEN
    CREATE ROLE coldtrace_reader LOGIN PASSWORD 'coldtrace_reader';
  END IF;
END $$;
ALTER ROLE coldtrace NOSUPERUSER NOCREATEROLE NOREPLICATION NOBYPASSRLS;
-- Development only: the tests and the demo drop databases WITH (FORCE) while connections
-- of the application role may still be open, which needs the right to end them.
GRANT pg_signal_backend TO coldtrace;
ALTER ROLE coldtrace_app NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
ALTER ROLE coldtrace_reader NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
-- Grafana's panel queries: no JIT compilation (db/roles.py says why).
ALTER ROLE coldtrace_reader SET jit = off;
DO $$ DECLARE m record; BEGIN
  -- Neither may act as the owner (or as anyone else): no role memberships at all.
  FOR m IN SELECT r.rolname AS granted, u.rolname AS member FROM pg_auth_members a
             JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles u ON u.oid = a.member
            WHERE u.rolname IN ('coldtrace_app', 'coldtrace_reader') LOOP
    EXECUTE format('REVOKE %I FROM %I', m.granted, m.member);
  END LOOP;
END $$;
SQL

if ! pgrep -x mosquitto >/dev/null 2>&1; then
    echo "starting the system Mosquitto"
    $SUDO mosquitto -d -c /etc/mosquitto/mosquitto.conf || true
fi
echo "services ready: PostgreSQL on 127.0.0.1:5432 (roles coldtrace, coldtrace_app, coldtrace_reader), mosquitto $(mosquitto -h 2>/dev/null | head -1 | awk '{print $3}')"
