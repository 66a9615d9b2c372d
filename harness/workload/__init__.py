"""Workload: operations against vendors and when they arrive."""
