"""Locustfiles and load shapes (`ehrlab load PROFILE` runs them; see README "Load runs").

Every module here imports locust, which patches the standard library with gevent on import: they run
only in locust's own processes, never in the lab or the test session. Targets come from `EHRLAB_*`
environment variables the launcher sets (see `loadtests.common`), so each file is a plain locustfile:

    EHRLAB_FHIR_URL=http://127.0.0.1:8080 ... locust -f loadtests/clinician_read.py
"""
