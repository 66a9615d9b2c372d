"""Where ids, version ids and timestamps come from: seeded factories, so the same seed gives the same ids.

- `uuid_ids(rng)`: resource ids are version-4 UUIDs drawn from `rng` (`rng_uuid`);
- `uuid_versions(rng)`: Medplum's version ids, a fresh UUID per version (reference/vendors.md §3);
- `integer_versions(first)`: HAPI's and Cerner's "1", "2", ... (Cerner starts at "0", vendors.md §2);
- `format_instant`: a FHIR instant with milliseconds and Z, as Medplum writes `meta.lastUpdated`.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

#: Makes the id of a new resource.
IdFactory = Callable[[], str]
#: Makes the next version id from the previous one (None for a new resource).
VersionIdFactory = Callable[[str | None], str]


def rng_uuid(rng: random.Random) -> str:
    """A version-4 UUID drawn from `rng`, so the same seed gives the same UUIDs."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def uuid_ids(rng: random.Random) -> IdFactory:
    return lambda: rng_uuid(rng)


def uuid_versions(rng: random.Random) -> VersionIdFactory:
    """Medplum: every version id is a fresh UUID."""
    return lambda previous: rng_uuid(rng)


def integer_versions(first: int = 1) -> VersionIdFactory:
    """HAPI/Cerner: "1", "2", ... (Cerner starts at "0": `integer_versions(0)`)."""
    return lambda previous: str(first if previous is None else int(previous) + 1)


def format_instant(moment: datetime) -> str:
    """FHIR instant with milliseconds and Z, as Medplum writes `meta.lastUpdated`."""
    if moment.tzinfo is None:
        raise ValueError("instant must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
