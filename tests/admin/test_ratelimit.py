"""Fixed-window rate limits on the clock, and their settings at run time through the admin API."""

from __future__ import annotations

import pytest

from harness.clock import VirtualClock, run_virtual
from simulators.admin.ratelimit import WindowRateLimiter
from tests.admin.support import ADMIN, CLIENT_B, SECRET_B, bearer, client_for, get_token, make_mini, patient


def test_window_allows_limit_points_then_refuses_until_it_resets() -> None:
    clock = VirtualClock()

    async def main() -> None:
        limiter = WindowRateLimiter(clock, limit=3, window_s=60)
        decisions = [limiter.hit("a") for _ in range(4)]
        assert [d.allowed for d in decisions] == [True, True, True, False]
        assert [d.remaining for d in decisions] == [2, 1, 0, 0]
        assert decisions[0].limit == 3
        assert decisions[0].reset_s == 60.0
        assert limiter.hit("b").allowed  # keys are independent
        await clock.sleep(45)
        refused = limiter.hit("a")
        assert not refused.allowed
        assert refused.reset_s == pytest.approx(15.0)
        await clock.sleep(15)
        fresh = limiter.hit("a")
        assert fresh.allowed
        assert fresh.remaining == 2
        assert fresh.reset_s == 60.0

    run_virtual(main)


def test_cost_and_refused_hits_consume_points() -> None:
    async def main() -> None:
        limiter = WindowRateLimiter(VirtualClock(), limit=20, window_s=60)
        search = limiter.hit("user", cost=20)  # Medplum: one search of cost 20 spends a quota of 20
        assert search.allowed
        assert search.remaining == 0
        assert not limiter.hit("user").allowed
        assert limiter.peek("user").consumed == 21
        with pytest.raises(ValueError, match="cost"):
            limiter.hit("user", cost=-1)

    run_virtual(main)


def test_configure_reset_and_disable() -> None:
    clock = VirtualClock()

    async def main() -> None:
        limiter = WindowRateLimiter(clock, limit=1, window_s=10)
        assert limiter.hit("a").allowed
        assert not limiter.hit("a").allowed
        limiter.configure(limit=5)
        assert limiter.hit("a").allowed  # the new limit applies to the open window
        limiter.configure(window_s=100)  # applies to the open window (opened at 0)
        await clock.sleep(10)
        assert limiter.hit("a").reset_s == 90.0
        limiter.configure(window_s=5)  # the open window has now ended: the next hit opens a new one
        assert limiter.hit("a").reset_s == 5.0
        limiter.reset()
        assert limiter.peek("a").remaining == 5
        limiter.configure(limit=0)
        assert not limiter.hit("a").allowed
        limiter.configure(enabled=False)
        assert all(limiter.hit("a").allowed for _ in range(10))
        with pytest.raises(ValueError, match="window_s"):
            limiter.configure(window_s=0)
        with pytest.raises(ValueError, match="limit"):
            limiter.configure(limit=-1)
        assert limiter.settings() == {"limit": 0, "window_s": 5, "enabled": False}

    run_virtual(main)


def test_many_keys_stay_bounded() -> None:
    clock = VirtualClock()

    async def main() -> int:
        limiter = WindowRateLimiter(clock, limit=1, window_s=1)
        for i in range(5000):
            limiter.hit(f"k{i}")
            if i % 1000 == 999:
                await clock.sleep(2)
        return len(limiter._windows)

    assert run_virtual(main) <= 2048


def test_admin_limits_change_at_run_time() -> None:
    async def main() -> None:
        mini = make_mini(limit=2, window_s=60)
        pid = mini.store.create(patient())["id"]
        async with client_for(mini.sim.app) as client:
            token = await get_token(client, CLIENT_B, SECRET_B)
            url = f"/fhir/Patient/{pid}"
            statuses = [(await client.get(url, headers=bearer(token))).status_code for _ in range(3)]
            assert statuses == [200, 200, 429]
            assert (await client.get("/admin/rate-limits", headers=ADMIN)).json() == {
                "fhir": {"limit": 2, "window_s": 60.0, "enabled": True}}
            changed = await client.put("/admin/rate-limits/fhir", json={"limit": 10}, headers=ADMIN)
            assert changed.json() == {"limit": 10, "window_s": 60.0, "enabled": True}
            assert (await client.get(url, headers=bearer(token))).status_code == 200
            await client.put("/admin/rate-limits/fhir", json={"limit": 4}, headers=ADMIN)
            assert (await client.get(url, headers=bearer(token))).status_code == 429
            reset = await client.post("/admin/rate-limits/fhir/reset", headers=ADMIN)
            assert reset.status_code == 200
            assert (await client.get(url, headers=bearer(token))).status_code == 200
            await client.put("/admin/rate-limits/fhir", json={"enabled": False, "limit": 0}, headers=ADMIN)
            assert (await client.get(url, headers=bearer(token))).status_code == 200
            one = await client.get("/admin/rate-limits/fhir", headers=ADMIN)
            assert one.json() == {"limit": 0, "window_s": 60.0, "enabled": False}

    run_virtual(main)


@pytest.mark.parametrize(("method", "path", "body", "status"), [
    ("PUT", "/admin/rate-limits/fhir", {}, 400),
    ("PUT", "/admin/rate-limits/fhir", {"limit": -1}, 400),
    ("PUT", "/admin/rate-limits/fhir", {"window_s": 0}, 400),
    ("PUT", "/admin/rate-limits/fhir", {"window_s": 1e9}, 400),
    ("PUT", "/admin/rate-limits/fhir", {"limit": "many"}, 400),
    ("PUT", "/admin/rate-limits/fhir", {"limit": 5, "burst": 2}, 400),
    ("PUT", "/admin/rate-limits/nope", {"limit": 5}, 404),
    ("GET", "/admin/rate-limits/nope", None, 404),
    ("GET", "/admin/rate-limits/BAD NAME", None, 400),
    ("POST", "/admin/rate-limits/fhir/reset", {"key": ""}, 400),
])
def test_bad_limit_requests_are_4xx_and_change_nothing(method: str, path: str, body: object, status: int) -> None:
    async def main() -> int:
        mini = make_mini(limit=7)
        async with client_for(mini.sim.app) as client:
            response = await client.request(method, path, json=body, headers=ADMIN)
            assert response.json()["resourceType"] == "OperationOutcome"
            assert mini.limiter.settings() == {"limit": 7, "window_s": 60.0, "enabled": True}
            return response.status_code

    assert run_virtual(main) == status
