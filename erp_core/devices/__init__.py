"""Devices: the gateways and sensors of the plant as a maintenance person checks them.

``service`` reads what ingest stores about them (through the monitoring queries, not a
copy of them) plus each sensor's calibration date and where it is assigned now;
``pages`` shows ``/devices``.
"""
