"""Product and logistics identifiers: GTIN, SSCC, EPC tags and UDI labels (GS1, HIBC, MA).

Pure rules and decoders, no I/O, imported by every part that meets an identifier: the
gateway (scans, tag reads), the simulator (the labels and tags it emits), ingest and the
ERP (master data, scan-to-movement, search by a scanned label). A package of its own,
not the wire contract (`telemetry`, which imports only the standard library, msgspec
and pydantic) and not `coldchain` (which the gateway may not import): GS1 element
strings are parsed by biip, a maintained pure-Python library, and this is the one place
that may import it. docs/identifiers.md says what each module reads and why.
"""
