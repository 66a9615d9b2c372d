"""The system under test: the components an EHR integration is made of (connector, auth, retry, breaker).

Every error it raises at a caller is an `integrations.errors.IntegrationError` (the tree is documented there).
"""
