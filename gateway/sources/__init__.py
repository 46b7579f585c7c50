"""Gateway sources: one adapter per device protocol, all behind `gateway.sources.base.Source`."""
