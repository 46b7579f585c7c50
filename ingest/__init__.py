"""Ingest: MQTT → decode → PostgreSQL, acknowledged only after the commit."""
