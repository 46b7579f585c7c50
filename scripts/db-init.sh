#!/bin/sh
# The docker-compose database's one-time init step (docker-entrypoint-initdb.d, runs as
# the superuser on the first start of an empty volume): the ColdTrace roles with the
# passwords from the environment, the database owned by the owner role, and TimescaleDB
# in it. `coldtrace db upgrade` (the migrate service, as the owner) does the rest,
# including the privileges of coldtrace_app and coldtrace_reader. Elsewhere the same is
# `coldtrace db roles` (docs/access-and-audit.md) or scripts/services.sh (development).
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v owner_pw="$COLDTRACE_DB_OWNER_PASSWORD" \
    -v app_pw="$COLDTRACE_DB_APP_PASSWORD" \
    -v reader_pw="$COLDTRACE_DB_READER_PASSWORD" <<'SQL'
CREATE ROLE coldtrace LOGIN CREATEDB PASSWORD :'owner_pw';
CREATE ROLE coldtrace_app LOGIN PASSWORD :'app_pw';
CREATE ROLE coldtrace_reader LOGIN PASSWORD :'reader_pw';
ALTER ROLE coldtrace_reader SET jit = off;  -- Grafana's panel queries (db/roles.py)
CREATE DATABASE coldtrace OWNER coldtrace;
\connect coldtrace
CREATE EXTENSION IF NOT EXISTS timescaledb;
SQL
