"""Read failover across vendors in the lab (runbook 004_bc3882054056792c.txt "Connection Management":
automatic failover; "Error Handling": on a timeout "use alternate system"): the integration's system
registry (`integrations.systems`) configured with the scenario's primary and fallback vendors, and
patients registered at all of them under one enterprise identifier (an EMPI number), as a hospital's
master patient index would have them.

`setup.failover: {primary: epic, fallbacks: [cerner], patients: 10}` seeds `patients` shared Patients in
each of those simulators (same EMPI identifier, each system's own id), builds the registry over the lab's
own transports (so the scenario's faults reach it: in virtual mode the network emulator, in real mode the
vendor's proxy), and the workload operation `read_patient_failover` reads a shared patient by the primary's
id through `FailoverReader`. The registry's systems are named `<vendor>_prod`, so their breakers and
events do not mix with the lab's own `<vendor>` clients in the journal.
"""

from __future__ import annotations

import random
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx

from harness.lab import Lab, VendorRuntime
from harness.scenario.model import FailoverSetup
from harness.vendors import VENDORS, CernerAdapter
from integrations.events import EventListener
from integrations.systems import FailoverReader, SystemRegistry
from integrations.systems.identity import Identifier

EMPI = "urn:oid:2.16.840.1.113883.3.7777.1"  # the lab's enterprise master patient index namespace


class _Borrowed(httpx.AsyncBaseTransport):
    """The lab's transport lent to the registry: its owner, the lab, closes it, not the registry."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        return None


@dataclass
class SharedPatient:
    identifier: Identifier
    ids: dict[str, str]  # vendor -> that system's Patient id


@dataclass
class FailoverLayer:
    reader: FailoverReader
    primary: str
    patients: list[SharedPatient]

    def system_id(self, vendor: str) -> str:
        return f"{vendor}_prod"


def _auth(runtime: VendorRuntime, token_url: str) -> dict[str, Any]:
    secrets = runtime.secrets
    if runtime.name == "epic":
        assert secrets.signing_key is not None
        return {"method": "private_key_jwt", "token_url": token_url, "client_id": secrets.client_id,
                "private_key": secrets.signing_key.as_pem(private=True).decode(), "key_id": secrets.key_id,
                "algorithm": "ES384"}
    if runtime.name == "cerner":
        return {"method": "client_secret_basic", "token_url": token_url, "client_id": secrets.client_id,
                "client_secret": secrets.client_secret, "scope": CernerAdapter.scope}
    return {"method": "client_secret_post", "token_url": token_url, "client_id": secrets.client_id,
            "client_secret": secrets.client_secret}


def _seed(lab: Lab, vendors: list[str], count: int, rng: random.Random) -> list[SharedPatient]:
    shared = []
    for i in range(count):
        identifier = Identifier(EMPI, f"EMPI-{i:05d}")
        body = {"resourceType": "Patient", "active": True,
                "identifier": [{"system": identifier.system, "value": identifier.value}],
                "name": [{"family": f"Shared{i:03d}", "given": ["Lab"]}],
                "gender": rng.choice(["female", "male"]),
                "birthDate": f"{rng.randint(1940, 2010)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"}
        ids = {}
        for vendor in vendors:
            store = getattr(lab.vendor(vendor).simulator, "store", None)
            if store is None:
                raise TypeError(f"the {vendor} simulator has no store to seed")
            ids[vendor] = str(store.create(body)["id"])
        shared.append(SharedPatient(identifier=identifier, ids=ids))
    return shared


async def start_failover(stack: AsyncExitStack, setup: FailoverSetup, lab: Lab, rng: random.Random,
                         listener: EventListener) -> FailoverLayer:
    vendors = [setup.primary, *setup.fallbacks]
    patients = _seed(lab, vendors, setup.patients, rng)
    systems = []
    for vendor in vendors:
        runtime = lab.vendor(vendor)
        adapter = VENDORS[vendor]
        systems.append({"id": f"{vendor}_prod", "vendor": vendor, "base_url": f"{runtime.proxy_url}{adapter.fhir_path}",
                        "auth": _auth(runtime, f"{runtime.proxy_url}{adapter.token_path}")})
    transports = {f"{v}_prod": lab.vendor(v).transport for v in vendors}

    def transport_for(system: Any) -> httpx.AsyncBaseTransport:
        transport = transports[system.id]
        if isinstance(transport, httpx.AsyncHTTPTransport):  # real mode: a transport of the registry's own
            return httpx.AsyncHTTPTransport()
        return _Borrowed(transport)

    registry = SystemRegistry.build({"systems": systems}, clock=lab.clock, rng=rng, transport_for=transport_for,
                                    listener=listener)
    stack.push_async_callback(registry.aclose)
    reader = FailoverReader(registry, listener=listener)
    return FailoverLayer(reader=reader, primary=setup.primary, patients=patients)
