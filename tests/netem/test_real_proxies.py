"""Real mode routes each vendor's traffic through its own proxy (issue 4, "One fault vocabulary"): a
network fault aimed at one vendor cuts that vendor's connector off and leaves the others untouched."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from harness.clock import RealClock
from harness.faults.catalogue import ProxyDownFault
from harness.faults.driver import FaultDriver
from harness.journal import Journal
from harness.lab import Lab
from harness.rng import RandomSource
from integrations.fhir.errors import ConnectorError

VENDORS = ["medplum", "cerner"]


async def _reads(lab: Lab) -> dict[str, str]:
    """Each vendor's read of its first patient: "ok", or the connector error's name."""
    results: dict[str, str] = {}
    for name in VENDORS:
        vendor = lab.vendor(name)
        try:
            await vendor.client.connector.read("Patient", vendor.patients[0])
            results[name] = "ok"
        except ConnectorError as exc:
            results[name] = type(exc).__name__
    return results


@pytest.mark.real_network
def test_each_vendor_has_its_own_proxy_and_a_fault_on_one_spares_the_others() -> None:
    async def main() -> tuple[list[tuple[str, str]], dict[str, str], dict[str, str], dict[str, str]]:
        clock = RealClock(scale=20)
        async with Lab(mode="real", clock=clock, sources=RandomSource(1), vendors=VENDORS, patients=1,
                       listener=lambda event: None) as lab:
            urls = [(lab.vendor(n).base_url, lab.vendor(n).proxy_url) for n in VENDORS]
            before = await _reads(lab)
            driver = FaultDriver(lab, Journal(clock))
            down = ProxyDownFault.model_validate({"kind": "proxy_down", "target": "medplum", "at": 0})
            await driver.start("f1", down)
            try:
                during = await _reads(lab)
            finally:
                await driver.stop_all()
            after = await _reads(lab)
            return urls, before, during, after

    urls, before, during, after = asyncio.run(main())
    proxies = [httpx.URL(proxy) for _, proxy in urls]
    assert all(base != proxy for base, proxy in urls)  # the connector never talks to a simulator directly
    assert len({p.port for p in proxies}) == len(VENDORS)  # one proxy per vendor
    assert before == {"medplum": "ok", "cerner": "ok"}
    assert during["medplum"] != "ok"
    assert during["cerner"] == "ok"
    assert after == {"medplum": "ok", "cerner": "ok"}
