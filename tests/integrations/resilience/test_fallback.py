"""Fallback to cached patient context (runbook 000_030ea53f0735abf7.txt §2, §8; TTL from runbook
004_bc3882054056792c.txt "Caching"): degradation.activated when the breaker opens or the monitor says
UNHEALTHY, degradation.cleared when it recovers, cached reads marked degraded, "EHR temporarily
unavailable" when nothing is cached, expiry at 300 s of virtual time."""

from __future__ import annotations

import pytest

from harness.clock import VirtualClock, run_virtual
from integrations.events import (
    BreakerState,
    BreakerTransitioned,
    DegradationActivated,
    DegradationCleared,
    FeatureFlagChanged,
)
from integrations.fhir import BreakerConfig, CircuitOpen, NotFound, ServerError
from integrations.resilience import (
    DEFAULT_TTL_S,
    EhrUnavailable,
    MonitorConfig,
    PatientContextCache,
    ProviderMonitor,
    TtlCache,
)
from tests.integrations.resilience.support import down, ehr, make_rig


def test_cache_entries_expire_at_exactly_the_ttl() -> None:
    async def main() -> list[float | None]:
        clock = VirtualClock()
        cache: TtlCache[str, str] = TtlCache(clock)
        cache.put("k", "v")
        ages = []
        for at in (0.0, 299.999, 300.0):
            await clock.sleep(at - clock.monotonic())
            hit = cache.get("k")
            ages.append(None if hit is None else round(hit.age_s, 6))
        return ages

    assert DEFAULT_TTL_S == 300.0
    assert run_virtual(main) == [0.0, 299.999, None]


def test_cache_keeps_at_most_max_entries_and_its_repr_has_no_keys() -> None:
    async def main() -> tuple[list[bool], str, int]:
        clock = VirtualClock()
        cache: TtlCache[str, str] = TtlCache(clock, max_entries=2)
        for key in ("p1", "p2", "p3"):
            cache.put(key, "Jane Doe")
        context = PatientContextCache(clock)
        return [cache.get(k) is not None for k in ("p1", "p2", "p3")], repr(cache) + repr(context), len(cache._entries)

    present, text, size = run_virtual(main)
    assert present == [False, True, True]
    assert size == 2
    assert "p2" not in text
    assert "Doe" not in text


def test_outage_activates_fallback_serves_cache_and_clears_after_recovery() -> None:
    async def main() -> dict[str, object]:
        rig = make_rig()
        out: dict[str, object] = {}
        first = await rig.client.read("Patient", "p1")
        out["first"] = (first.degraded, first.source, first.age_s)
        await rig.clock.sleep(10)
        rig.vendor.default = down  # t=10: outage
        # 503s: the third fills the window (1 success + 3 failures = 75 %) and opens the breaker; the
        # fourth is refused by it. Every one is answered from the cached copy.
        served = [await rig.client.read("Patient", "p1") for _ in range(4)]
        out["during"] = [(s.degraded, s.age_s) for s in served]
        sent = len(rig.vendor.requests)
        again = await rig.client.read("Patient", "p1")  # cache first: nothing sent while OPEN
        out["open_read"] = (again.degraded, len(rig.vendor.requests) - sent)
        with pytest.raises(EhrUnavailable) as missing:
            await rig.client.read("Patient", "p2")  # never cached
        out["missing"] = (missing.value.retry_after_s, type(missing.value.__cause__).__name__, str(missing.value))
        out["status_open"] = rig.client.status()
        rig.vendor.default = ehr  # the provider recovers; the breaker half-opens at t=70
        await rig.clock.sleep(60)
        trials = [await rig.client.read("Patient", "p1") for _ in range(2)]  # HALF_OPEN: the trials reach it
        out["trials"] = [t.degraded for t in trials]
        out["status_after"] = rig.client.status()
        await rig.close()
        out["events"] = [(t, type(e).__name__, getattr(e, "to_state", None)) for t, e in rig.events
                         if isinstance(e, DegradationActivated | DegradationCleared | BreakerTransitioned)]
        out["activated"] = rig.of(DegradationActivated)[0][1]
        out["cleared"] = rig.of(DegradationCleared)[0][1]
        return out

    out = run_virtual(main)
    assert out["first"] == (False, "provider", None)
    assert out["during"] == [(True, 10.0)] * 4
    assert out["open_read"] == (True, 0)
    retry_after, cause, message = out["missing"]  # type: ignore[misc]
    assert retry_after == pytest.approx(60.0)
    assert cause == "CircuitOpen"
    assert "EHR temporarily unavailable" in message
    assert "p2" not in message
    assert out["events"] == [
        (10.0, "BreakerTransitioned", BreakerState.OPEN), (10.0, "DegradationActivated", None),
        (70.0, "BreakerTransitioned", BreakerState.HALF_OPEN),
        (70.0, "BreakerTransitioned", BreakerState.CLOSED), (70.0, "DegradationCleared", None),
    ]
    activated = out["activated"]
    assert isinstance(activated, DegradationActivated)
    assert activated.reasons == ("breaker_open", "provider_unhealthy")
    assert activated.cached_entries == 1
    cleared = out["cleared"]
    assert isinstance(cleared, DegradationCleared)
    # served from cache during the episode: the 3rd and 4th outage reads and the OPEN read; p2 unavailable
    assert (cleared.duration_s, cleared.served_from_cache, cleared.unavailable) == (60.0, 3, 1)
    assert out["trials"] == [False, False]
    open_status, after = out["status_open"], out["status_after"]
    assert open_status.fallback_active
    assert open_status.breaker_state is BreakerState.OPEN
    assert not after.fallback_active
    assert after.breaker_state is BreakerState.CLOSED


def test_unhealthy_monitor_alone_activates_fallback_and_reads_go_cache_first() -> None:
    async def main() -> dict[str, object]:
        rig = make_rig(breaker=BreakerConfig(window_size=50, minimum_calls=50), latency=2.5)  # > 2000 ms
        out: dict[str, object] = {}
        await rig.client.search("Patient", {"name": "Doe"})
        for pid in ("p1", "p2", "p3", "p4"):  # 5 slow samples: UNHEALTHY on latency, breaker still CLOSED
            await rig.client.read("Patient", pid)
        out["active"] = (rig.client.fallback_active, rig.client.degradation.reasons, rig.kit.breaker.state)
        sent = len(rig.vendor.requests)
        cached = await rig.client.search("Patient", {"name": ["Doe"]})  # same search, params normalised
        out["cached"] = (cached.degraded, len(rig.vendor.requests) - sent)
        fresh = await rig.client.read("Patient", "p9")  # not cached: the provider is still asked
        out["fresh"] = (fresh.degraded, fresh.value.id)
        rig.kit.vendor.latency = 0.0
        await rig.clock.sleep(60)  # the slow samples leave the window; nothing new came in
        out["later"] = rig.client.status().fallback_active
        await rig.close()
        return out

    out = run_virtual(main)
    assert out["active"] == (True, ("provider_unhealthy",), BreakerState.CLOSED)
    assert out["cached"] == (True, 0)
    assert out["fresh"] == (False, "p9")
    assert out["later"] is False


def test_a_single_failure_falls_back_without_activating_and_other_errors_pass_through() -> None:
    async def main() -> tuple[bool, bool, type[BaseException], type[BaseException], int]:
        rig = make_rig(breaker=BreakerConfig(window_size=10, minimum_calls=10))
        await rig.client.read("Patient", "p1")
        rig.vendor.script.append(lambda request: down(request))
        one = await rig.client.read("Patient", "p1")  # one 503: served from cache, breaker and monitor fine
        with pytest.raises(NotFound) as not_found:
            await rig.client.search("Observation")  # the provider answered 404: its answer, not an outage
        rig.vendor.script.append(lambda request: down(request))
        with pytest.raises(EhrUnavailable) as unavailable:
            await rig.client.search("Patient", {"name": "x"})
        await rig.close()
        return (one.degraded, rig.client.fallback_active, type(not_found.value),
                type(unavailable.value.__cause__), len(rig.of(DegradationActivated)))

    assert run_virtual(main) == (True, False, NotFound, ServerError, 0)


def test_cached_context_expires_at_300_s_during_an_outage() -> None:
    async def main() -> tuple[float | None, type[BaseException]]:
        rig = make_rig()
        await rig.client.search_all("Patient")
        rig.kit.breaker.force_open()  # t=0: an operator takes the provider out
        await rig.clock.sleep(299)
        served = await rig.client.search_all("Patient")
        await rig.clock.sleep(1)  # t=300: the copy is exactly TTL old
        with pytest.raises(EhrUnavailable) as expired:
            await rig.client.search_all("Patient")
        await rig.close()
        return served.age_s, type(expired.value.__cause__)

    assert run_virtual(main) == (299.0, CircuitOpen)


def test_reads_flag_off_serves_only_the_cache_and_is_a_degradation_reason() -> None:
    async def main() -> dict[str, object]:
        rig = make_rig()
        await rig.client.read("Patient", "p1")
        sent = len(rig.vendor.requests)
        await rig.clock.sleep(5)
        rig.flags.update("fake_fhir_read_only", False)  # runbook 000 §8: reads off
        cached = await rig.client.read("Patient", "p1")
        with pytest.raises(EhrUnavailable, match="reads are disabled"):
            await rig.client.read("Patient", "p2")
        rig.flags.set_user_override("dr-who", "fake_fhir_read_only", True)
        own = await rig.client.read("Patient", "p2", user="dr-who")  # this user still reads from the provider
        rig.flags.update("fake_fhir_read_only", True)
        await rig.close()
        kinds = [(t, type(e).__name__) for t, e in rig.events
                 if isinstance(e, FeatureFlagChanged | DegradationActivated | DegradationCleared)]
        return {"cached": cached.degraded, "own": own.degraded, "sent": len(rig.vendor.requests) - sent,
                "kinds": kinds, "reasons": rig.of(DegradationActivated)[0][1].reasons}  # type: ignore[attr-defined]

    out = run_virtual(main)
    assert out["cached"] is True
    assert out["own"] is False
    assert out["sent"] == 1
    assert out["reasons"] == ("reads_disabled",)
    assert out["kinds"] == [(5.0, "FeatureFlagChanged"), (5.0, "DegradationActivated"), (5.0, "FeatureFlagChanged"),
                            (5.0, "FeatureFlagChanged"), (5.0, "DegradationCleared")]


def test_events_and_reprs_carry_no_patient_data() -> None:
    async def main() -> str:
        rig = make_rig()
        await rig.client.read("Patient", "p1")
        rig.vendor.default = down
        for _ in range(4):
            await rig.client.read("Patient", "p1")
        with pytest.raises(EhrUnavailable) as error:
            await rig.client.read("Patient", "p7")
        text = " ".join(repr(e) for _, e in rig.events)
        text += repr(rig.client) + repr(rig.client.cache) + repr(rig.monitor) + repr(error.value)
        text += repr(await rig.client.read("Patient", "p1"))
        await rig.close()
        return text

    text = run_virtual(main)
    for secret in ("p7", "Doe", "Jane"):
        assert secret not in text


def test_client_builds_its_own_monitor_and_cache_when_not_given() -> None:
    async def main() -> tuple[ProviderMonitor, PatientContextCache, bool]:
        from integrations.resilience import FeatureFlags, ResilientFhirClient
        from tests.integrations.fakes import make_kit

        kit = make_kit()
        client = ResilientFhirClient(kit.connector, clock=kit.clock, flags=FeatureFlags.for_vendors(["fake"]))
        await kit.close()
        return client.monitor, client.cache, client.monitor.breaker is kit.breaker

    monitor, cache, shared = run_virtual(main)
    assert shared
    assert monitor.config == MonitorConfig()
    assert cache.reads.ttl_s == 300.0
