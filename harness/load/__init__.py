"""`ehrlab load`: locust load runs against the simulators and the integration service, gated on the SLA
catalogue.

Modules: `profiles` (what each profile runs and needs), `gates` (catalogue entries as gates over locust's
stats, and the abort-on-fail watch), `launcher` (the subprocess that serves the simulators and the service
and plays a fault timeline), `run` (the orchestration: launcher, locust master and workers, RSS samples),
`report` (summary.json, junit.xml), `command` (arguments and exit codes). Nothing here imports locust:
locust patches gevent on import, so it runs only in its own processes (`python -m locust`).
"""
