"""A fake Cerner / Oracle Health Millennium R4 (reference/vendors.md §2): tenants, Basic-auth system accounts."""

from simulators.cerner.app import CernerSimulator, create_cerner
from simulators.cerner.settings import SANDBOX_TENANT, CernerClient, CernerSettings

__all__ = ["SANDBOX_TENANT", "CernerClient", "CernerSettings", "CernerSimulator", "create_cerner"]
