"""Simulated devices for demos and CI: fridge thermal models and the Modbus servers."""
