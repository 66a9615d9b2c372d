"""Operator steps on a scenario's timeline (credential rotation, forced token expiry, rate limits, drift,
breaker commands): `catalogue` (the models), `driver` (carrying them out)."""

from harness.steps.catalogue import Step

__all__ = ["Step"]
