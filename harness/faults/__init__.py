"""Faults: the catalogue a scenario names, and the driver that injects them."""
