"""The admin side of every simulator: chaos faults, request journal, credentials, tokens, rate limits,
data drift and reset, all under `/admin` behind the simulator's admin token.

Modules (import them directly; this package imports nothing, so `simulators.chaos` can build on
`simulators.admin.faults` without an import cycle):

    clients      ClientRegistry, scope_allows, narrow_scopes   registered clients, credentials, SMART scopes
    tokens       TokenStore, IssuedToken, Grant                access tokens on the injected clock
    ratelimit    WindowRateLimiter, RateDecision               fixed-window limits, tunable at run time
    faults       fault models, FaultScope, ChaosState          what chaos can do and what is active
    body_faults  BodyFaultSend (ResponseTruncated lives in simulators.errors)   damaged and slow response bodies
    journal      RequestJournal, RequestJournalMiddleware      what was asked, by whom, answered how
    auth         admin_route_class, ADMIN_SECURITY             the admin token check (constant time)
    chaos_api, access_api, drift_api                           the admin routers
    assemble     assemble(app, ...) -> Simulation              mounts every admin router, wraps the app

The chaos middleware itself is `simulators.chaos.ChaosMiddleware`.
"""
