"""Suite-wide test setup.

`EHRLAB_TEST_CPU_HOGS=2 make test` runs the whole suite with two CPU-bound processes beside it (started once by
the controlling pytest process, not once per xdist worker; killed when the session ends, and ending by
themselves after `EHRLAB_TEST_CPU_HOGS_S` seconds, default 3600, or when pytest is gone). The `cpu_hogs`
fixture starts two for one test (bounded to 120 s)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.cpu_hogs import CpuHogs, from_environment

_SESSION_HOGS = pytest.StashKey[CpuHogs]()


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker: the controller runs the suite-wide hogs
        return
    hogs = from_environment()
    if hogs is not None:
        config.stash[_SESSION_HOGS] = hogs.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    hogs = config.stash.get(_SESSION_HOGS, None)
    if hogs is not None:
        hogs.stop()


def pytest_report_header(config: pytest.Config) -> str | None:
    hogs = config.stash.get(_SESSION_HOGS, None)
    return None if hogs is None else f"ehrlab: {hogs.count} CPU-bound processes running beside the suite"


@pytest.fixture
def cpu_hogs() -> Iterator[CpuHogs]:
    """Two CPU-bound processes for the duration of the test (at most 120 s), killed at teardown."""
    hogs = CpuHogs(count=2, seconds=120).start()
    try:
        yield hogs
    finally:
        hogs.stop()
