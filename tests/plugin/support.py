"""Short scenarios for the plugin's tests: a few minutes of virtual time each, well under a second to run."""

from __future__ import annotations

PASSING = """\
name: plugin-steady-reads
description: A short Medplum read workload with no fault; every read succeeds.
runbook: ["000_030ea53f0735abf7.txt §7 (success rate bands)"]
duration: 2m
lab: {max_lateness: 5s}  # reads time out after 10 s: a stall under half that cannot fail one
setup:
  patients: 5
workload:
  - operation: read_patient
    vendor: medplum
    rate: 30/m
expectations:
  - check: success_rate
    min: 99%
    source: "000_030ea53f0735abf7.txt §7 (success rate > 99 % healthy)"
"""

FAILING = """\
name: plugin-medplum-outage
description: Medplum answers 503 for a minute; the breaker opens and reads fail, below the healthy band.
runbook: ["000_030ea53f0735abf7.txt §2 (provider outage)"]
duration: 3m
setup:
  patients: 5
workload:
  - operation: read_patient
    vendor: medplum
    rate: 30/m
faults:
  - kind: outage
    target: medplum
    at: 30s
    for: 1m
expectations:
  - check: success_rate
    name: reads-stay-healthy
    min: 99%
    outside_faults: false
    source: "000_030ea53f0735abf7.txt §7 (success rate > 99 % healthy)"
"""

#: The failing scenario's check, as the failure message names it.
FAILING_CHECK = "reads-stay-healthy"
FAILING_SOURCE = "000_030ea53f0735abf7.txt §7 (success rate > 99 % healthy)"
