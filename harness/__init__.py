"""The lab: clocks, randomness, journal, scenarios, runner, checks, reports and the `ehrlab` CLI."""
