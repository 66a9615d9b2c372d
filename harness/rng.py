"""Seeded randomness: one seed per run, one independent stream per consumer.

Every component that needs chance gets its own `random.Random`, derived from the run seed and a
stable name (`RandomSource(42).stream("retry.medplum")`). Streams are independent: a component that
draws one more number does not shift what any other component sees, so a change in one place does
not reshuffle a whole replay. Derivation uses SHA-256, not `hash()`, so it does not depend on
PYTHONHASHSEED.
"""

from __future__ import annotations

import hashlib
import random


class RandomSource:
    """Hands out named, reproducible `random.Random` streams for one seed."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def stream(self, name: str) -> random.Random:
        digest = hashlib.sha256(f"{self.seed}:{name}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))


TOKEN_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def random_token(rng: random.Random, length: int) -> str:
    """`length` lower-case letters and digits drawn from `rng`: the lab's credentials, key material and patient
    tokens, reproducible from the run's seed (one `choice` per character, so a stream's later draws stay put)."""
    return "".join(rng.choice(TOKEN_ALPHABET) for _ in range(length))
