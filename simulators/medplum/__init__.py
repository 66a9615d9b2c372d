"""A fake Medplum server (reference/vendors.md §3): OAuth client credentials, FHIR R4 on the shared core,
quotas with Medplum's RateLimit header, AuditEvents, healthcheck, and the admin/chaos API."""

from simulators.medplum.app import MedplumSimulator, create_medplum
from simulators.medplum.personality import medplum_personality
from simulators.medplum.settings import MedplumSettings

__all__ = ["MedplumSettings", "MedplumSimulator", "create_medplum", "medplum_personality"]
