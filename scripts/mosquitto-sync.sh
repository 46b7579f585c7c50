#!/bin/sh
# Copy the broker's identity and TLS files (made with `coldtrace devices`, mounted
# read-only at /auth) to where the broker's own user can read them, with their modes.
# docker-compose runs this before Mosquitto starts, and again to reload (docs/mqtt.md):
#   docker compose exec mqtt sh -c 'sh /config/mosquitto-sync.sh && kill -HUP 1'
set -eu
dest=/mosquitto/config
for f in passwd acl ca.crt server.crt server.key; do
    if [ ! -f "/auth/$f" ]; then
        echo "missing /auth/$f: run the one-time provisioning of docs/mqtt.md first" >&2
        exit 1
    fi
    cp "/auth/$f" "$dest/$f.new"
    chown mosquitto:mosquitto "$dest/$f.new"
    case "$f" in passwd|server.key) chmod 600 "$dest/$f.new" ;; *) chmod 644 "$dest/$f.new" ;; esac
    mv "$dest/$f.new" "$dest/$f"
done
