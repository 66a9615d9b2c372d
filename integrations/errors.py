"""The integration's one error root. Every error `integrations` raises at a caller is an `IntegrationError`.

Each package keeps its own tree under this root (documented where it is defined); a caller that must
tell "the integration failed in a way it knows" from "a bug" catches `IntegrationError` and nothing
broader. The lab's runner does exactly that: an operation failing with an `IntegrationError` is journaled
under the class's own name; anything else is `Unexpected<Name>`, a bug in the system under test.

```
IntegrationError                        root (this module)
├── ConnectorError                      integrations.fhir.errors: one FHIR call to a vendor failed
│   ├── AuthError                       the vendor refused the credentials or the token: rotate or fix them
│   │   └── CredentialsRejected         every credential on offer was refused; no token request until a new one
│   ├── Forbidden                       403: scopes or policy deny the request: check the client's scopes
│   ├── NotFound                        404 / 410: no such resource (or deleted)
│   ├── ValidationFailed                400 / 422: the request or resource was invalid: check its format
│   ├── Conflict                        409: a duplicate, or (Cerner) a stale version
│   ├── PreconditionFailed              412: the If-Match version is not current: re-read, re-apply
│   ├── RateLimited                     429 (FHIR or token endpoint): wait `retry_after_s` and retry
│   │   └── ClientThrottled             the client's own limiter refused to wait longer; nothing was sent
│   ├── ServerError                     5xx (FHIR or token endpoint): the vendor is failing: check its status
│   ├── UnexpectedStatus                any other status (3xx, 405, 406, 415 ...)
│   ├── RequestTimeout                  no answer in time (FHIR or token endpoint): network or vendor slow
│   ├── ConnectionFailed                refused / reset / dropped (FHIR or token endpoint): network or vendor down
│   ├── MalformedResponse               a 2xx that is not what was asked for (a FHIR body, a token answer)
│   ├── CircuitOpen                     the breaker refused the call; nothing was sent: wait for half-open
│   ├── ConfigurationError              start-up configuration unusable (auth_errors): fix the settings
│   ├── UnityCallFailed                 Allscripts Unity answered an error row (auth_errors)
│   └── ResilienceError                 integrations.resilience.errors
│       ├── EhrUnavailable              the provider is down and nothing is cached (000 §8)
│       └── FeatureDisabled             a feature flag is off for this caller (000 §3)
│           └── WritesDisabled          the vendor's write kill switch is on; nothing was sent
├── SystemsError                        integrations.systems.errors: the multi-system layer
│   ├── ConfigError                     the systems registry's configuration is invalid (also a ValueError)
│   ├── UnknownSystem                   no system with this id (also a KeyError)
│   └── FailoverExhausted               no configured system could serve a read: `attempts` say why, each
├── QueueError                          integrations.queue.errors: the job queue
│   ├── StoreUnavailable                the store (SQLite, Redis) did not answer: retry the operation
│   ├── JobNotFound                     no job with this id
│   └── InvalidJobState                 the job is not in the state the operation needs
├── UnrecoverableJobError               integrations.queue.errors: a handler fails its job without retries
│   └── NoHandler                       no handler registered for the job's name (integrations.queue.worker)
├── SyncError                           integrations.sync.errors: the sync pipeline
│   ├── ConsentDenied                   no active consent covers the operation: consent enforced, not a fault
│   ├── UnknownPatientToken             an unknown patient token
│   ├── WrongOrganisation               the patient or record belongs to another organisation
│   ├── InvalidResource                 an inbound FHIR resource is malformed or not valid R4
│   ├── ExportForbidden                 the requester's role may not export this patient (002 §6.2)
│   ├── RecordNotFound                  no local record with this kind and id
│   └── AuditMirrorError                integrations.sync.audit_mirror_models: the audit mirror
│       └── MalformedAuditEvent         one AuditEvent could not be mirrored (counted, never raised out of a run)
├── ServiceError                        integrations.service.errors: the HTTP service's own 4xx answers
│   ├── Unauthenticated                 401: no bearer token
│   ├── Forbidden                       403: a wrong token or secret, another organisation
│   ├── NotFound                        404: no such vendor, flag, job
│   ├── Conflict                        409: not in a state the operation needs
│   ├── BadRequest                      400: a malformed body, header or query parameter
│   └── InvalidBody                     422: a body of the wrong shape (integrations.service.bodies)
└── UnknownFeatureFlag                  integrations.resilience.errors: a flag name nobody registered (a LookupError)
```

Token endpoint failures are classified as the same failure on a FHIR call would be (runbook
`000_030ea53f0735abf7.txt §4`): a 5xx is `ServerError` ("check Epic status"), a 429 `RateLimited`, no
answer `RequestTimeout` / `ConnectionFailed`, a 2xx without a usable token `MalformedResponse`; only a
refusal (400 `invalid_client`, 401, other 4xx) is `AuthError` ("rotate credentials"). Those raised at
the token endpoint carry `token_endpoint=True`.

Not in the tree, on purpose: bad arguments and misuse raise `ValueError` / `TypeError` (a bug in the
caller, journaled `Unexpected*` by the lab), and `integrations.fhir._parsing.BadBody`, which never leaves
the connector (it becomes `MalformedResponse`). `tests/integrations/test_error_tree.py` fails when an
exception class in `integrations/` is outside this root or missing from this page.
"""

from __future__ import annotations


class IntegrationError(Exception):
    """Root of every failure the integration raises at a caller: typed, documented, attributable."""
