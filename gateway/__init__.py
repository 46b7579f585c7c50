"""ColdTrace edge agent: reads devices, keeps readings in a durable outbox, publishes them.

Entry points are `gateway.app.load_config` and `gateway.app.run_gateway`; see
docs/gateway.md for the configuration and the delivery guarantees.
"""
