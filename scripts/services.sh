#!/usr/bin/env bash
# Make sure the services ColdTrace needs are installed and running on this Debian machine:
# PostgreSQL (127.0.0.1:5432) with a `coldtrace` role, and the Mosquitto binary (tests
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
command -v socat >/dev/null 2>&1 || need+=(socat)  # pseudo-terminal pairs for the Modbus RTU test
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

# The application role; works whether local auth is trust, peer or scram.
"${AS_POSTGRES[@]}" psql -q -v ON_ERROR_STOP=1 -d postgres <<'SQL' >/dev/null
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'coldtrace') THEN
    CREATE ROLE coldtrace LOGIN CREATEDB PASSWORD 'coldtrace';
  END IF;
END $$;
SQL

if ! pgrep -x mosquitto >/dev/null 2>&1; then
    echo "starting the system Mosquitto"
    $SUDO mosquitto -d -c /etc/mosquitto/mosquitto.conf || true
fi
echo "services ready: PostgreSQL on 127.0.0.1:5432 (role coldtrace), mosquitto $(mosquitto -h 2>/dev/null | head -1 | awk '{print $3}')"
