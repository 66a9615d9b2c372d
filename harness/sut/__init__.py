"""The external system under test: a process or URL the lab did not build (real mode only).

`model`: the scenario's `sut:` section and its `sut_http` workload streams; `template`: the `{placeholder}`
syntax of their values; `process`: starting, readiness and stopping of the SUT's process; `http`: the
workload's requests to it.
"""
