"""The mixed profile: clinician reads and observation writes, three readers to one writer (the classes'
weights)."""

from __future__ import annotations

from loadtests import shapes
from loadtests.clinician_read import ClinicianReader
from loadtests.observation_write import ObservationWriter

__all__ = ["ClinicianReader", "ObservationWriter"]

EhrlabShape = shapes.selected()
