"""The system under test: the components an EHR integration is made of (connector, auth, retry, breaker)."""
