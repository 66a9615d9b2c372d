"""Allscripts/Veradigm Unity API, JSON flavour (vendors.md §4; healthfinch/allscripts-unity-client).

Base `/Unity/UnityService.svc/json`:
- `POST /GetToken` `{"Username", "Password", "Appname"}`: the token as a raw string body;
- `POST /MagicJson` `{"Action", "AppUserID", "Appname", "PatientID", "Token", "Parameter1".."Parameter6",
  "Data"}`: `[{"<action lower-case>info": [rows...]}]`;
- `POST /RetireSecurityToken` `{"Token", "Appname"}`: the token stops working at once.

Errors are Unity's, not HTTP's: HTTP 200 with `[{"Error": "..."}]` from MagicJson (the Ruby client's
`raise_if_response_error` looks exactly for that), and a string containing `error:` from GetToken and
RetireSecurityToken. Only a body that is not a JSON object at all gets an HTTP 400 (what the WCF host
does before Unity sees the call), so bad input never turns into a 5xx.

Tokens live in the simulator's shared `TokenStore` (so the admin API's forced expiry and client
revocation reach Unity sessions too) with the marker scope `unity`, which no FHIR scope check ever
accepts, so a Unity token is not a FHIR bearer token. The Unity token lifetime is a setting: vendors.md
found none documented (a third-party note says 20 minutes, the default). RetireSecurityToken revokes
the token in the store. MagicJson calls count against the per-client limiter, if one is given; the
refusal is a Unity error in a 200 body.

Actions (a handful of real ones, backed by the shared FHIR store): Echo, GetServerInfo, GetPatient,
SearchPatients, GetEncounterList, GetPatientProblems. Row field names follow the Unity developer
guide's style; rows are built from FHIR resources, so drift through the admin API shows up here too.
An unknown action is an error in a 200 body, as Unity answers one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from integrations.clock import Clock
from simulators.admin.clients import ClientRegistry
from simulators.admin.ratelimit import WindowRateLimiter
from simulators.admin.tokens import TokenStore
from simulators.errors import StoreError
from simulators.fhir.store import Resource, ResourceStore

UNITY_BASE = "/Unity/UnityService.svc/json"
#: The marker scope of a Unity session token in the shared token store.
UNITY_SCOPE = "unity"
#: The Ruby client's JSON fixture for a successful RetireSecurityToken.
RETIRED_BODY = '<RetireSecurityTokenResponse xmlns="http://www.allscripts.com/Unity"/>'
_PARAMETERS = tuple(f"Parameter{i}" for i in range(1, 7))
_MAX_BODY = 64 * 1024


@dataclass(frozen=True, slots=True)
class MagicCall:
    """One MagicJson request, as the dispatcher sees it (after the token check)."""

    action: str
    user: str
    appname: str
    patient_id: str
    parameters: tuple[str, ...]  # Parameter1..Parameter6, "" when absent
    data: str


class UnityError(Exception):
    """Answered as `[{"Error": "Magic Error - Action: <action> - <message>"}]` with HTTP 200."""


Action = Callable[[MagicCall], list[dict[str, Any]]]


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, int | float | str):
        return str(value)
    return ""


def _unity_date(value: str | None) -> str:
    """FHIR date/dateTime -> Unity's MM/DD/YYYY (empty when absent or unparsable)."""
    if not value:
        return ""
    try:
        parsed = date.fromisoformat(value[:10])
    except ValueError:
        return ""
    return parsed.strftime("%m/%d/%Y")


def _obj(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _first(items: object) -> dict[str, Any]:
    return items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else {}


def _coding_text(concept: object) -> str:
    if not isinstance(concept, dict):
        return ""
    if isinstance(concept.get("text"), str):
        return str(concept["text"])
    coding = _first(concept.get("coding"))
    return _text(coding.get("display") or coding.get("code"))


class UnityActions:
    """The action dispatcher: `Action` name -> handler, all reading the shared FHIR store."""

    def __init__(self, store: ResourceStore, clock: Clock, *, product_version: str, system: str) -> None:
        self._store = store
        self._clock = clock
        self.product_version = product_version
        self.system = system
        self.handlers: dict[str, Action] = {
            "Echo": self.echo,
            "GetServerInfo": self.get_server_info,
            "GetPatient": self.get_patient,
            "SearchPatients": self.search_patients,
            "GetEncounterList": self.get_encounter_list,
            "GetPatientProblems": self.get_patient_problems,
        }

    def dispatch(self, call: MagicCall) -> list[dict[str, Any]]:
        handler = self.handlers.get(call.action)
        if handler is None:
            raise UnityError("Unknown or unsupported action")
        return handler(call)

    # -- actions -----------------------------------------------------------------------------------

    def echo(self, call: MagicCall) -> list[dict[str, Any]]:
        return [{"userid": call.user, "appname": call.appname, "patientid": call.patient_id,
                 **{f"parameter{i + 1}": p for i, p in enumerate(call.parameters)}}]

    def get_server_info(self, call: MagicCall) -> list[dict[str, Any]]:
        now = self._clock.now()
        return [{
            "ServerDateTimeOffset": now.isoformat(timespec="microseconds"),
            "ServerTime": now.replace(tzinfo=None).isoformat(timespec="seconds"),
            "ProductVersion": self.product_version,
            "System": self.system,
            "ServerTimeZone": "UTC",
        }]

    def get_patient(self, call: MagicCall) -> list[dict[str, Any]]:
        patient = self._patient(call)
        return [self._patient_row(patient)]

    def search_patients(self, call: MagicCall) -> list[dict[str, Any]]:
        term = call.parameters[0].strip().lower()
        if not term:
            raise UnityError("Parameter1 (search string) is required")
        rows = []
        for patient in self._all("Patient"):
            row = self._patient_row(patient)
            last, first = row["LastName"].lower(), row["FirstName"].lower()
            names = (last, first, f"{last}, {first}")
            if any(name.startswith(term) for name in names) or term in (row["ID"].lower(), row["MRN"].lower()):
                rows.append(row)
        return rows

    def get_encounter_list(self, call: MagicCall) -> list[dict[str, Any]]:
        patient = self._patient(call)
        rows = []
        for encounter in self._for_patient("Encounter", patient["id"]):
            period = _obj(encounter.get("period"))
            rows.append({"ID": encounter["id"], "patientID": patient["id"],
                         "DTTM": _text(period.get("start")), "EncType": _coding_text(_first(encounter.get("type"))),
                         "Status": _text(encounter.get("status"))})
        return rows

    def get_patient_problems(self, call: MagicCall) -> list[dict[str, Any]]:
        patient = self._patient(call)
        rows = []
        for condition in self._for_patient("Condition", patient["id"]):
            rows.append({"problemid": condition["id"], "problemtext": _coding_text(condition.get("code")),
                         "status": _coding_text(condition.get("clinicalStatus")),
                         "onsetdate": _unity_date(_text(condition.get("onsetDateTime")))})
        return rows

    # -- helpers -----------------------------------------------------------------------------------

    def _patient(self, call: MagicCall) -> Resource:
        if not call.patient_id:
            raise UnityError("PatientID is required")
        try:
            return self._store.read_shared("Patient", call.patient_id)
        except StoreError:
            raise UnityError("Patient not found") from None

    def _all(self, resource_type: str) -> list[Resource]:
        return self._store.search(resource_type, copy_results=False)

    def _for_patient(self, resource_type: str, patient_id: str) -> list[Resource]:
        reference = f"Patient/{patient_id}"
        return self._store.search(resource_type, where=lambda r: _obj(r.get("subject")).get("reference") == reference,
                                  copy_results=False)

    @staticmethod
    def _patient_row(patient: Resource) -> dict[str, Any]:
        name = _first(patient.get("name"))
        given = _list(name.get("given"))
        address = _first(patient.get("address"))
        lines = _list(address.get("line"))
        phone = next((t for t in _list(patient.get("telecom")) if isinstance(t, dict) and t.get("system") == "phone"),
                     {})
        identifier = _first(patient.get("identifier"))
        gender = _text(patient.get("gender"))
        return {
            "ID": patient["id"],
            "MRN": _text(identifier.get("value")),
            "LastName": _text(name.get("family")),
            "FirstName": _text(given[0]) if given else "",
            "MiddleName": _text(given[1]) if len(given) > 1 else "",
            "Sex": {"female": "F", "male": "M"}.get(gender, "U"),
            "DateofBirth": _unity_date(_text(patient.get("birthDate"))),
            "Addr1": _text(lines[0]) if lines else "",
            "City": _text(address.get("city")),
            "State": _text(address.get("state")),
            "ZIP": _text(address.get("postalCode")),
            "HomePhone": _text(phone.get("value")),
        }


def _error_rows(action: str, message: str) -> JSONResponse:
    shown = action if len(action) <= 64 and action.isidentifier() else "(invalid action)"  # never echo junk
    prefix = f"Magic Error - Action: {shown} - " if action else "Magic Error - "
    return JSONResponse([{"Error": prefix + message}])


def _text_response(body: str) -> Response:
    return Response(body, media_type="text/plain; charset=utf-8")


async def _json_object(request: Request) -> dict[str, Any] | None:
    raw = await request.body()
    if len(raw) > _MAX_BODY:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _bad_body() -> Response:
    return Response("The request body must be a JSON object.", status_code=400,
                    media_type="text/plain; charset=utf-8")


class UnityService:
    """Unity's three JSON endpoints over a token store, a client registry and the action dispatcher."""

    def __init__(self, *, registry: ClientRegistry, tokens: TokenStore, actions: UnityActions, appname: str,
                 lifetime_s: float, limiter: WindowRateLimiter | None = None) -> None:
        self.registry = registry
        self.tokens = tokens
        self.actions = actions
        self.appname = appname
        self.lifetime_s = lifetime_s
        self.limiter = limiter

    def __repr__(self) -> str:
        return f"UnityService(appname={self.appname!r}, actions={sorted(self.actions.handlers)!r})"

    def session(self, token: str) -> str | None:
        """The client id of a live Unity token, else None."""
        grant = self.tokens.check(token) if token else None
        if grant is None or UNITY_SCOPE not in grant.scopes:
            return None
        return str(grant.client_id)

    def router(self) -> APIRouter:
        router = APIRouter(prefix=UNITY_BASE, tags=["Unity"])
        text = {"text/plain": {"schema": {"type": "string"}}}
        errors: dict[int | str, dict[str, Any]] = {"default": {"description": "Not a JSON object", "content": text}}

        def body(*names: str) -> dict[str, Any]:
            fields = {name: {"type": "string", "maxLength": 40} for name in names}
            return {"requestBody": {"required": True, "content": {"application/json": {"schema": {
                "type": "object", "properties": fields}}}}}

        @router.post("/GetToken", summary="Unity GetToken: a security token as a raw string",
                     responses={200: {"content": text}, **errors},
                     openapi_extra=body("Username", "Password", "Appname"))
        async def get_token(request: Request) -> Response:
            body = await _json_object(request)
            if body is None:
                return _bad_body()
            username, password, appname = (_text(body.get(k)) for k in ("Username", "Password", "Appname"))
            if not username or not password:
                return _text_response("error: Username and Password are required.")
            if appname != self.appname:
                return _text_response("error: Appname is not licensed for this Unity server.")
            if not self.registry.verify_secret(username, password):
                return _text_response("error: Username and password not valid for any licensed application.")
            issued = self.tokens.issue(username, [UNITY_SCOPE], lifetime_s=self.lifetime_s)
            request.state.ehrlab_client = username
            return _text_response(str(issued.value))

        @router.post("/RetireSecurityToken", summary="Unity RetireSecurityToken: end a session at once",
                     responses={200: {"content": {**text, "application/xml": {"schema": {"type": "string"}}}},
                                **errors}, openapi_extra=body("Token", "Appname"))
        async def retire(request: Request) -> Response:
            body = await _json_object(request)
            if body is None:
                return _bad_body()
            token = _text(body.get("Token"))
            client = self.session(token)
            if client is None:
                return _text_response("error: Invalid security token.")
            request.state.ehrlab_client = client
            self.tokens.revoke(token)
            return Response(RETIRED_BODY, media_type="application/xml; charset=utf-8")

        @router.post("/MagicJson", summary="Unity Magic action dispatcher (errors in HTTP 200 bodies)",
                     responses={200: {"content": {"application/json": {"schema": {"type": "array"}}}}, **errors},
                     openapi_extra=body("Action", "Token", "Appname", "AppUserID", "PatientID", *_PARAMETERS))
        async def magic(request: Request) -> Response:
            body = await _json_object(request)
            if body is None:
                return _bad_body()
            action = _text(body.get("Action"))
            client = self.session(_text(body.get("Token")))
            if client is None:
                return _error_rows(action, "Invalid or expired security token.")
            request.state.ehrlab_client = client
            if self.limiter is not None and not self.limiter.hit(client).allowed:
                return _error_rows(action, "The request limit for this application has been reached.")
            if not action:
                return _error_rows(action, "Action is required.")
            appname = _text(body.get("Appname"))
            if appname != self.appname:
                return _error_rows(action, "Appname does not match the security token.")
            call = MagicCall(action=action, user=_text(body.get("AppUserID")), appname=appname,
                             patient_id=_text(body.get("PatientID")),
                             parameters=tuple(_text(body.get(name)) for name in _PARAMETERS),
                             data=_text(body.get("Data")))
            try:
                rows = self.actions.dispatch(call)
            except UnityError as exc:
                return _error_rows(action, str(exc))
            return JSONResponse([{f"{action.lower()}info": rows}])

        return router
