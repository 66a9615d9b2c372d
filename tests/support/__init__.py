"""Helpers shared by the project's own tests (not part of the ehrlab package)."""
