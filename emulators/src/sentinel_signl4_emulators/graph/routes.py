"""Wire format of the Microsoft Graph emulator: ``/v1.0/security/{incidents,alerts_v2}`` and ``/v1.0/users``.

=======  ===============================================  ============================================================
GET      /v1.0/security/incidents                          ``$filter $top $skip $count $expand=alerts``, nextLink
GET      /v1.0/security/incidents/{id}                     ``$expand=alerts``; a merged incident has status redirected
PATCH    /v1.0/security/incidents/{id}                     assignedTo, classification, determination, status,
                                                           customTags → 200 with the updated incident
POST     /v1.0/security/incidents/{id}/comments            ``{"comment"}`` → 200 with the full comment list
GET      /v1.0/security/alerts_v2[/{id}]                   ``$filter $top $skip $count``
PATCH    /v1.0/security/alerts_v2/{id}                     assignedTo, classification, determination, status
POST     /v1.0/security/alerts_v2/{id}/comments            as for incidents
GET      /v1.0/users/{id | userPrincipalName}              also ``/users('{upn}')``; ``$select``; 404 unknown
GET      /v1.0/users?$filter=mail eq '…'                   ``eq``/``and``/``or`` on mail, userPrincipalName, id, …
=======  ===============================================  ============================================================

Order at the front door: authenticate the bearer token (401 ``InvalidAuthenticationToken``), count the request
against the app's per-tenant budget (security endpoints only; 429 ``TooManyRequests`` + ``Retry-After``), check
the application permission (403 ``Authorization_RequestDenied``), then call the model. Every error body is
``{"error": {"code", "message", "innerError": {"date", "request-id", "client-request-id"}}}`` and every response
carries ``request-id`` and ``client-request-id`` headers (the client's value is echoed). Evolvable enum members
are only sent to clients that send ``Prefer: include-unknown-enum-members`` (reference §3.1).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sentinel_signl4_emulators.common.odata import And, Comparison, Expr, FieldType, Not, ODataError, Or, parse_filter
from sentinel_signl4_emulators.entra.clouds import graph_audiences
from sentinel_signl4_emulators.entra.model import BearerError, BearerProblem, EntraModel, TokenInfo, User
from sentinel_signl4_emulators.graph.control import graph_control_routes
from sentinel_signl4_emulators.graph.model import (
    ALERT_FIELDS,
    INCIDENT_FIELDS,
    GraphError,
    GraphModel,
    Operation,
)

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "GRAPH_AUDIENCES",
    "MAX_PAGE_SIZE",
    "USER_PROPERTIES",
    "build_graph_app",
    "graph_routes",
]

#: Audiences Graph accepts: the resource URI and the Graph application id.
GRAPH_AUDIENCES: Final = ("https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000")

#: Page size without ``$top`` and the largest page served; both unverified (reference §8). A larger ``$top``
#: is capped silently and the rest follows through ``@odata.nextLink`` — clients must follow it anyway.
DEFAULT_PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 50

#: ``microsoft.graph.user`` properties ``$select`` accepts (a subset of the real type; an unknown name is a 400).
USER_PROPERTIES: Final = frozenset({
    "id", "displayName", "givenName", "surname", "mail", "userPrincipalName", "jobTitle", "mobilePhone",
    "officeLocation", "preferredLanguage", "businessPhones", "accountEnabled", "userType", "otherMails",
})
#: Returned without ``$select`` (reference §3.5).
_DEFAULT_USER_PROPERTIES: Final = (
    "businessPhones", "displayName", "givenName", "id", "jobTitle", "mail", "mobilePhone", "officeLocation",
    "preferredLanguage", "surname", "userPrincipalName",
)
_USER_FILTER_FIELDS: Final[Mapping[str, FieldType]] = {
    "id": FieldType.STRING, "mail": FieldType.STRING, "userPrincipalName": FieldType.STRING,
    "displayName": FieldType.STRING,
}
_PREFER_UNKNOWN_ENUMS: Final = "include-unknown-enum-members"
_METADATA: Final = "https://graph.microsoft.com/v1.0/$metadata"
_QUERY_SAFE: Final = "$'/:(),"

Handler = Callable[["_Call"], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class _Call:
    request: Request
    caller: TokenInfo
    include_unknown: bool

    @property
    def tenant_id(self) -> str:
        return self.caller.tenant_id

    def query(self, name: str) -> str | None:
        return self.request.query_params.get(name)


def graph_routes(model: GraphModel, entra: EntraModel) -> list[BaseRoute]:
    """The Graph routes (``/v1.0/…`` and ``/_control/graph/…``); mount them on the emulator origin."""
    api = _GraphApi(model, entra)
    any_method = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    routes: list[BaseRoute] = [
        Route("/v1.0/security/incidents", api.handler(Operation.INCIDENTS_READ, api.list_incidents, "GET"),
              methods=any_method),
        Route("/v1.0/security/incidents/{id}", api.incident, methods=any_method),
        Route("/v1.0/security/incidents/{id}/comments",
              api.handler(Operation.INCIDENTS_WRITE, api.comment_incident, "POST"), methods=any_method),
        Route("/v1.0/security/alerts_v2", api.handler(Operation.ALERTS_READ, api.list_alerts, "GET"),
              methods=any_method),
        Route("/v1.0/security/alerts_v2/{id}", api.alert, methods=any_method),
        Route("/v1.0/security/alerts_v2/{id}/comments",
              api.handler(Operation.ALERTS_WRITE, api.comment_alert, "POST"), methods=any_method),
        Route("/v1.0/users", api.handler(Operation.USERS_READ, api.list_users, "GET"), methods=any_method),
        Route("/v1.0/users/{ref}", api.handler(Operation.USERS_READ, api.get_user, "GET"), methods=any_method),
        Route("/v1.0/users({ref})", api.handler(Operation.USERS_READ, api.get_user, "GET"), methods=any_method),
        *graph_control_routes(model, entra),
        Route("/v1.0/{rest:path}", api.unknown_segment, methods=any_method),
    ]
    return routes


def build_graph_app(model: GraphModel, entra: EntraModel) -> Starlette:
    """The Graph emulator as a standalone ASGI app (tests); the shared emulator app mounts :func:`graph_routes`."""
    return Starlette(routes=graph_routes(model, entra))


class _GraphApi:
    def __init__(self, model: GraphModel, entra: EntraModel) -> None:
        self.model = model
        self.entra = entra

    # --- the front door ----------------------------------------------------------------------------------------

    def handler(self, operation: Operation, handle: Handler, method: str) -> Callable[[Request], Awaitable[Response]]:
        """An endpoint serving ``method`` with ``handle`` after authentication, throttling and authorisation."""

        async def endpoint(request: Request) -> Response:
            return await self._serve(request, {method: (operation, handle)})

        return endpoint

    async def incident(self, request: Request) -> Response:
        return await self._serve(request, {
            "GET": (Operation.INCIDENTS_READ, self.get_incident),
            "PATCH": (Operation.INCIDENTS_WRITE, self.update_incident),
        })

    async def alert(self, request: Request) -> Response:
        return await self._serve(request, {
            "GET": (Operation.ALERTS_READ, self.get_alert),
            "PATCH": (Operation.ALERTS_WRITE, self.update_alert),
        })

    async def unknown_segment(self, request: Request) -> Response:
        segment = request.path_params["rest"].split("/", 1)[0]
        return _error(request, GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'."))

    async def _serve(self, request: Request, methods: Mapping[str, tuple[Operation, Handler]]) -> Response:
        try:
            if request.method not in methods:
                raise GraphError(405, "Request_BadRequest",
                                 f"The HTTP method '{request.method}' is not allowed on this resource.")
            operation, handle = methods[request.method]
            caller = self._authenticate(request)
            if operation.is_security:
                decision = self.model.take_request(caller.client_id, caller.tenant_id)
                if not decision.allowed:
                    # Wording unverified; the code and Retry-After header are documented (reference §3.4).
                    raise GraphError(429, "TooManyRequests",
                                     "Too many requests. Retry after the interval in the Retry-After header.",
                                     {"Retry-After": str(decision.retry_after)})
            self.model.authorize(caller.client_id, operation)
            response = await handle(_Call(request, caller, _prefers_unknown_enums(request)))
        except GraphError as exc:
            return _error(request, exc)
        _stamp(request, response)
        return response

    def _authenticate(self, request: Request) -> TokenInfo:
        result = self.entra.validate_bearer(request.headers.get("authorization"),
                                           graph_audiences(request.url.netloc, GRAPH_AUDIENCES))
        if isinstance(result, TokenInfo):
            return result
        raise _authentication_error(result)

    # --- security/incidents ------------------------------------------------------------------------------------

    async def list_incidents(self, call: _Call) -> Response:
        _only_options(call, {"$filter", "$top", "$skip", "$count", "$expand"})
        where = _filter(call, INCIDENT_FIELDS)
        skip, top = _skip(call), _top(call)
        expand = _expand(call, "microsoft.graph.security.incident")
        items, total = self.model.query_incidents(call.tenant_id, where=where, skip=skip, top=top,
                                                  expand_alerts=expand, include_unknown=call.include_unknown)
        return _collection(call, "security/incidents", items, total, skip)

    async def get_incident(self, call: _Call) -> Response:
        _only_options(call, {"$expand"})
        expand = _expand(call, "microsoft.graph.security.incident")
        body = self.model.get_incident(call.tenant_id, call.request.path_params["id"], expand_alerts=expand,
                                       include_unknown=call.include_unknown)
        return _entity("security/incidents/$entity", body)

    async def update_incident(self, call: _Call) -> Response:
        changes = await _json_object(call.request)
        body = self.model.update_incident(call.tenant_id, call.request.path_params["id"], changes,
                                          actor=call.caller.app_display_name, include_unknown=call.include_unknown)
        return _entity("security/incidents/$entity", body)

    async def comment_incident(self, call: _Call) -> Response:
        text = _comment(await _json_object(call.request))
        comments = self.model.add_incident_comment(call.tenant_id, call.request.path_params["id"], text,
                                                   author=call.caller.app_display_name)
        return _entity("Collection(microsoft.graph.security.alertComment)", {"value": comments})

    # --- security/alerts_v2 ------------------------------------------------------------------------------------

    async def list_alerts(self, call: _Call) -> Response:
        _only_options(call, {"$filter", "$top", "$skip", "$count"})
        where = _filter(call, ALERT_FIELDS)
        skip, top = _skip(call), _top(call)
        items, total = self.model.query_alerts(call.tenant_id, where=where, skip=skip, top=top,
                                               include_unknown=call.include_unknown)
        return _collection(call, "security/alerts_v2", items, total, skip)

    async def get_alert(self, call: _Call) -> Response:
        _only_options(call, set())
        body = self.model.get_alert(call.tenant_id, call.request.path_params["id"],
                                    include_unknown=call.include_unknown)
        return _entity("security/alerts_v2/$entity", body)

    async def update_alert(self, call: _Call) -> Response:
        changes = await _json_object(call.request)
        body = self.model.update_alert(call.tenant_id, call.request.path_params["id"], changes,
                                       include_unknown=call.include_unknown)
        return _entity("security/alerts_v2/$entity", body)

    async def comment_alert(self, call: _Call) -> Response:
        text = _comment(await _json_object(call.request))
        comments = self.model.add_alert_comment(call.tenant_id, call.request.path_params["id"], text,
                                                author=call.caller.app_display_name)
        return _entity("Collection(microsoft.graph.security.alertComment)", {"value": comments})

    # --- users -------------------------------------------------------------------------------------------------

    async def get_user(self, call: _Call) -> Response:
        _only_options(call, {"$select"})
        ref = _user_reference(call.request.path_params["ref"])
        select = _select(call)
        wanted = ref.lower()
        for user in self.entra.users(call.tenant_id):
            # The path takes an object id or a user principal name, never a mail address (reference §3.5).
            if wanted in (user.object_id.lower(), user.user_principal_name.lower()):
                return _entity("users/$entity", _render_user(user, select))
        raise GraphError(404, "Request_ResourceNotFound",
                         f"Resource '{ref}' does not exist or one of its queried reference-property objects are "
                         "not present.")

    async def list_users(self, call: _Call) -> Response:
        _only_options(call, {"$filter", "$select", "$top"})
        where = _filter(call, _USER_FILTER_FIELDS)
        if where is not None:
            _only_equality(where)
        select = _select(call)
        top = _top(call, maximum=999)
        users = [u for u in self.entra.users(call.tenant_id) if where is None or _user_matches(where, u)]
        users.sort(key=lambda u: u.user_principal_name.lower())
        body = {"@odata.context": f"{_METADATA}#users", "value": [_render_user(u, select) for u in users[:top]]}
        return _json(200, body)


# --- query options -------------------------------------------------------------------------------------------


def _prefers_unknown_enums(request: Request) -> bool:
    preferences = ",".join(request.headers.getlist("prefer"))
    return any(part.strip().lower() == _PREFER_UNKNOWN_ENUMS for part in preferences.split(","))


def _only_options(call: _Call, allowed: set[str]) -> None:
    for name in call.request.query_params:
        if name.startswith("$") and name not in allowed:
            raise GraphError(400, "BadRequest", f"Query option '{name}' is not allowed on this resource.")


def _filter(call: _Call, fields: Mapping[str, FieldType]) -> Expr | None:
    text = call.query("$filter")
    if text is None:
        return None
    try:
        return parse_filter(text, fields)
    except ODataError as exc:
        raise GraphError(400, "BadRequest", f"Invalid filter clause: {exc}") from exc


def _int_option(call: _Call, name: str) -> int | None:
    text = call.query(name)
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise GraphError(400, "BadRequest", f"Invalid value '{text}' for query option '{name}'.") from None
    if value < 0:
        raise GraphError(400, "BadRequest", f"Invalid value '{text}' for query option '{name}'.")
    return value


def _skip(call: _Call) -> int:
    return _int_option(call, "$skip") or 0


def _top(call: _Call, *, maximum: int = MAX_PAGE_SIZE) -> int:
    top = _int_option(call, "$top")
    if top == 0:
        raise GraphError(400, "BadRequest", "Invalid value '0' for query option '$top'.")
    return min(top, maximum) if top is not None else min(DEFAULT_PAGE_SIZE, maximum)


def _expand(call: _Call, type_name: str) -> bool:
    text = call.query("$expand")
    if text is None:
        return False
    for name in (part.strip() for part in text.split(",")):
        if name != "alerts":
            raise GraphError(400, "BadRequest", f"Could not find a property named '{name}' on type '{type_name}'.")
    return True


def _select(call: _Call) -> tuple[str, ...] | None:
    text = call.query("$select")
    if text is None:
        return None
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    for name in names:
        if name not in USER_PROPERTIES:
            raise GraphError(400, "BadRequest", f"Could not find a property named '{name}' on type "
                                                "'microsoft.graph.user'.")
    return names


def _only_equality(expr: Expr) -> None:
    # Directory objects support eq on these properties with the default consistency level; ne, not and ranges
    # need advanced queries (ConsistencyLevel: eventual), which the connector never sends.
    if isinstance(expr, And | Or):
        _only_equality(expr.left)
        _only_equality(expr.right)
    elif isinstance(expr, Not) or (isinstance(expr, Comparison) and expr.op != "eq"):
        raise GraphError(400, "Request_UnsupportedQuery", "Unsupported or invalid query filter clause specified.")


def _user_matches(expr: Expr, user: User) -> bool:
    if isinstance(expr, And):
        return _user_matches(expr.left, user) and _user_matches(expr.right, user)
    if isinstance(expr, Or):
        return _user_matches(expr.left, user) or _user_matches(expr.right, user)
    assert isinstance(expr, Comparison)  # _only_equality ruled out the rest
    actual = {"id": user.object_id, "mail": user.mail, "userPrincipalName": user.user_principal_name,
              "displayName": user.display_name}[expr.field]
    # Directory string comparisons are case-insensitive.
    return actual is not None and isinstance(expr.value, str) and actual.lower() == expr.value.lower()


def _user_reference(raw: str) -> str:
    """The key of ``users/{key}`` or of ``users('{key}')``, the form UPNs starting with ``$`` need (§3.5)."""
    if len(raw) >= 2 and raw.startswith("'") and raw.endswith("'"):
        return raw[1:-1].replace("''", "'")
    return raw


def _render_user(user: User, select: tuple[str, ...] | None) -> dict[str, Any]:
    # The directory model knows four properties; the others exist on the type and are null here.
    known: dict[str, Any] = {
        "id": user.object_id, "displayName": user.display_name, "mail": user.mail,
        "userPrincipalName": user.user_principal_name, "businessPhones": [], "otherMails": [],
        "accountEnabled": True, "userType": "Member",
    }
    return {name: known.get(name) for name in (select or _DEFAULT_USER_PROPERTIES)}


# --- bodies ----------------------------------------------------------------------------------------------------


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        raise GraphError(400, "BadRequest", "Unable to read JSON request payload. Please ensure Content-Type "
                                            "header is set and payload is of valid JSON format.") from None
    if not isinstance(data, dict):
        raise GraphError(400, "BadRequest", "The request body must be a JSON object.")
    return data


def _comment(body: Mapping[str, Any]) -> str:
    text = body.get("comment")
    if not isinstance(text, str):
        raise GraphError(400, "BadRequest", "Property 'comment' is required and must be a string.")
    return text


# --- responses -------------------------------------------------------------------------------------------------


def _json(status: int, body: object, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=dict(headers or {}),
                        media_type="application/json;odata.metadata=minimal;odata.streaming=true;"
                                   "IEEE754Compatible=false;charset=utf-8")


def _entity(context: str, body: Mapping[str, Any]) -> Response:
    return _json(200, {"@odata.context": f"{_METADATA}#{context}", **body})


def _collection(call: _Call, entity_set: str, items: list[dict[str, Any]], total: int, skip: int) -> Response:
    body: dict[str, Any] = {"@odata.context": f"{_METADATA}#{entity_set}"}
    if (call.query("$count") or "").lower() == "true":
        body["@odata.count"] = total
    body["value"] = items
    if skip + len(items) < total:
        body["@odata.nextLink"] = _next_link(call, skip + len(items))
    return _json(200, body)


def _next_link(call: _Call, skip: int) -> str:
    """An absolute URL on the origin the request came to, with the same options and the next ``$skip``."""
    url = call.request.url
    query = [(k, v) for k, v in call.request.query_params.multi_items() if k != "$skip"]
    query.append(("$skip", str(skip)))
    encoded = "&".join(f"{quote(k, safe='$')}={quote(v, safe=_QUERY_SAFE)}" for k, v in query)
    return f"{url.scheme}://{url.netloc}{url.path}?{encoded}"


def _request_ids(request: Request) -> tuple[str, str]:
    request_id = getattr(request.state, "graph_request_id", None) or str(uuid.uuid4())
    request.state.graph_request_id = request_id
    return request_id, request.headers.get("client-request-id") or request_id


def _stamp(request: Request, response: Response) -> None:
    request_id, client_request_id = _request_ids(request)
    response.headers["request-id"] = request_id
    response.headers["client-request-id"] = client_request_id


def _error(request: Request, exc: GraphError) -> Response:
    request_id, client_request_id = _request_ids(request)
    inner = {"date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "request-id": request_id,
             "client-request-id": client_request_id}
    response = _json(exc.status, {"error": {"code": exc.code, "message": exc.message, "innerError": inner}},
                     exc.headers)
    _stamp(request, response)
    return response


def _authentication_error(problem: BearerError) -> GraphError:
    """Graph's 401s: code ``InvalidAuthenticationToken`` for every problem; wordings as commonly reported."""
    messages = {
        BearerProblem.MISSING: "Access token is empty.",
        BearerProblem.INVALID: "Access token validation failure.",
        BearerProblem.EXPIRED: "Lifetime validation failed, the token is expired.",
        BearerProblem.WRONG_AUDIENCE: "Access token validation failure. Invalid audience.",
    }
    challenge = ('Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
                 'client_id="00000003-0000-0000-c000-000000000000"')
    return GraphError(401, "InvalidAuthenticationToken", messages[problem.problem], {"WWW-Authenticate": challenge})
