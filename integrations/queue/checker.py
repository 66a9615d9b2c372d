"""A total-queue checker in the style of Jepsen's (`jepsen.checker/total-queue`): given what was enqueued
and what was processed, did every acknowledged job run, did anything run that was never enqueued, and
what ran more than once?

Enqueues are `ok` (the store acknowledged them), `indeterminate` (the call failed in a way that leaves it
unknown, e.g. the connection dropped after sending) or `failed` (known not to have happened). Verdict:

- lost: acknowledged, never processed. Must be empty.
- unexpected: processed, but never attempted (or known to have failed). Must be empty.
- duplicated: processed more than once. Allowed: the queue is at-least-once (a worker killed after
  running a job but before recording it runs again elsewhere); counted, so a test can bound them.
- recovered: processed though its enqueue was indeterminate. Allowed.

`valid` is `not lost and not unexpected`. The checker reads only ids, never job data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TotalQueueResult:
    attempted: int
    acknowledged: int
    processed: int  # distinct ids processed
    lost: tuple[str, ...]
    unexpected: tuple[str, ...]
    duplicated: dict[str, int]  # id -> times processed (> 1)
    recovered: tuple[str, ...]

    @property
    def valid(self) -> bool:
        return not self.lost and not self.unexpected

    def summary(self) -> str:
        return (f"attempted={self.attempted} acknowledged={self.acknowledged} processed={self.processed} "
                f"lost={len(self.lost)} unexpected={len(self.unexpected)} duplicated={len(self.duplicated)} "
                f"recovered={len(self.recovered)} valid={self.valid}")


def check_total_queue(ok: Iterable[str], processed: Iterable[str], *, indeterminate: Iterable[str] = (),
                      failed: Iterable[str] = ()) -> TotalQueueResult:
    """`ok`, `indeterminate`, `failed`: enqueue outcomes by job id; `processed`: one id per processing."""
    acked = set(ok)
    unknown = set(indeterminate) - acked
    refused = set(failed) - acked - unknown
    runs = Counter(processed)
    attempted = acked | unknown | refused
    return TotalQueueResult(
        attempted=len(attempted), acknowledged=len(acked), processed=len(runs),
        lost=tuple(sorted(acked - runs.keys())),
        unexpected=tuple(sorted(job for job in runs if job not in acked and job not in unknown)),
        duplicated={job: n for job, n in sorted(runs.items()) if n > 1},
        recovered=tuple(sorted(job for job in runs if job in unknown)))
