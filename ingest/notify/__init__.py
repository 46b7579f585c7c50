"""Notifications: alert events (the transactional outbox) → routed deliveries → channels."""
