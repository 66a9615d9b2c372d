"""A fake Epic on FHIR (reference/vendors.md §1): SMART Backend Services JWT auth, FHIR R4, admin API."""

from simulators.epic.app import EpicSimulator, create_epic
from simulators.epic.assertion import AssertionVerifier, InvalidClientAssertion, JtiCache, JwksFetcher
from simulators.epic.settings import EpicClient, EpicSettings

__all__ = ["AssertionVerifier", "EpicClient", "EpicSettings", "EpicSimulator", "InvalidClientAssertion",
           "JtiCache", "JwksFetcher", "create_epic"]
