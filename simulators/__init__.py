"""Fake vendor servers (FastAPI apps) with an admin/chaos API, and how they are served."""
