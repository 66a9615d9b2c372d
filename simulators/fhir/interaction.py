"""What a vendor plugs into the FHIR core: who is calling (`Authorizer`) and what they did (`InteractionHook`).

- `Interaction`: the FHIR RESTful interaction a request performs (read, vread, search, create, update,
  patch, delete, history, operation).
- `Authorizer`: the vendor's async check of a call, `await authorize(request, resource_type,
  interaction)`. It checks the bearer token and the scopes for that resource type and interaction and
  returns the client id, or raises `OutcomeError` (401/403 in the vendor's shape, or 429 for a quota).
  Batch and transaction entries are authorized one by one, with the outer request. System-level calls
  (`$export` of everything, polling an export job) pass `resource_type="*"`.
- `InteractionHook`: called once per finished interaction with (client id, interaction, resource type,
  resource id or None, HTTP status), also for failed ones (so Medplum can write an AuditEvent per call).
  A call refused by the authorizer never reaches the hook: there is no authenticated client to blame.
- `SMART_LETTERS`: the SMART v2 scope letter ("c", "r", "u", "d", "s") each interaction needs, for
  authorizers built on `simulators.admin.clients.scope_allows`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import StrEnum

from starlette.requests import Request


class Interaction(StrEnum):
    READ = "read"
    VREAD = "vread"
    SEARCH = "search"
    CREATE = "create"
    UPDATE = "update"
    PATCH = "patch"
    DELETE = "delete"
    HISTORY = "history"
    OPERATION = "operation"


#: (request, resource type or "*", interaction) -> client id; raises OutcomeError to refuse.
Authorizer = Callable[[Request, str, Interaction], Awaitable[str]]
#: (client id, interaction, resource type, resource id or None, status) after each interaction.
InteractionHook = Callable[[str, Interaction, str, str | None, int], None]

#: SMART v2 permission letter per interaction (scopes-and-launch-context: c r u d s).
SMART_LETTERS: dict[Interaction, str] = {
    Interaction.READ: "r",
    Interaction.VREAD: "r",
    Interaction.HISTORY: "r",
    Interaction.OPERATION: "r",
    Interaction.SEARCH: "s",
    Interaction.CREATE: "c",
    Interaction.UPDATE: "u",
    Interaction.PATCH: "u",
    Interaction.DELETE: "d",
}


async def allow_all(request: Request, resource_type: str, interaction: Interaction) -> str:
    """An authorizer for tests and open sandboxes: everyone is client "anonymous"."""
    return "anonymous"
