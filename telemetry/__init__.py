"""The wire contract between gateways and ingest: topics, payloads, codec. Pure, no I/O."""
