"""A fake Medplum server (reference/vendors.md §3): OAuth client credentials, FHIR R4, healthcheck, chaos."""

from simulators.medplum.app import MedplumSimulator, create_medplum
from simulators.medplum.auth import AccessToken, TokenStore
from simulators.medplum.settings import MedplumSettings

__all__ = ["AccessToken", "MedplumSettings", "MedplumSimulator", "TokenStore", "create_medplum"]
