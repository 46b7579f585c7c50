"""The BLE advertisement formats the gateway reads (BTHome v2, Govee H5075).

Decoding is left to the maintained parsers Home Assistant uses (bthome-ble, govee-ble),
which pull in a BLE/D-Bus stack (habluetooth, bleak, dbus-fast); so the decoders live
here, beside the BLE source (`gateway.sources.ble`) that alone needs them, and not in
the wire contract (`telemetry`), which every process imports. The frames the simulator
advertises are written by `firmware_sim.ble` from the formats' specifications, as a
device's firmware would; the round-trip tests keep both sides in agreement. No I/O.
"""
