"""Database settings, connections and the one ordered migration history (Alembic)."""
