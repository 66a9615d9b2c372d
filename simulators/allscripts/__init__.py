"""A fake Allscripts / Veradigm (reference/vendors.md §4): Unity API and a read-only FHIR R4 base."""

from simulators.allscripts.app import AllscriptsSimulator, create_allscripts
from simulators.allscripts.settings import AllscriptsClient, AllscriptsSettings

__all__ = ["AllscriptsClient", "AllscriptsSettings", "AllscriptsSimulator", "create_allscripts"]
