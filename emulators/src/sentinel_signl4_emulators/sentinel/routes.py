"""Wire format of the ARM Sentinel emulator: ``/subscriptions/…/providers/Microsoft.SecurityInsights/incidents``.

What ARM does in front of the resource provider happens here in ARM's order [order unverified]: route the
path (case-insensitively, like ARM), authenticate the bearer token, check ``api-version``, find the
subscription, throttle (token bucket per subscription, principal and read/write), authorise (RBAC role on the
workspace scope), then call the model. Errors use ARM's ``{"error": {"code", "message"}}`` body.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sentinel_signl4_emulators.common.odata import FieldType, ODataError, OrderBy, Value, parse_filter, parse_orderby
from sentinel_signl4_emulators.entra.clouds import arm_audiences
from sentinel_signl4_emulators.entra.model import BearerError, BearerProblem, EntraModel, TokenInfo
from sentinel_signl4_emulators.sentinel.model import (
    INCIDENT_FIELDS,
    Action,
    Author,
    IncidentWrite,
    OwnerRef,
    Page,
    SentinelError,
    SentinelModel,
    WorkspaceRef,
)

__all__ = [
    "ARM_AUDIENCES",
    "DEFAULT_ORDER",
    "DEFAULT_PAGE_SIZE",
    "MAX_TOP",
    "SUPPORTED_API_VERSIONS",
    "sentinel_routes",
]

#: Audiences ARM accepts in a token (``…/.default`` scope of either resource, with or without "/").
ARM_AUDIENCES: Final = ("https://management.azure.com", "https://management.core.windows.net")

#: Stable api-versions whose incident shape is identical to 2025-09-01 (reference §1.1).
SUPPORTED_API_VERSIONS: Final = frozenset(
    {"2023-02-01", "2023-11-01", "2024-03-01", "2024-09-01", "2025-03-01", "2025-06-01", "2025-09-01"}
)

#: Page size when ``$top`` is absent. The real default is unverified (reference §8); clients must follow
#: ``nextLink`` whatever it is.
DEFAULT_PAGE_SIZE: Final = 50
MAX_TOP: Final = 1000  # "maximum": 1000 in the 2025-09-01 spec

#: Order when ``$orderby`` is absent [unverified: the service's default order is not documented].
DEFAULT_ORDER: Final = OrderBy("properties/createdTimeUtc", descending=True)

_WS = (
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)"
    r"/providers/Microsoft\.OperationalInsights/workspaces/(?P<ws>[^/]+)"
    r"/providers/Microsoft\.SecurityInsights/incidents"
)
_INCIDENT = _WS + r"/(?P<incident>[^/]+)"

Handler = Callable[["_Call"], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class _Operation:
    pattern: re.Pattern[str]
    methods: Mapping[str, tuple[Action, str]]  # HTTP method -> (RBAC action, handler name)


_OPERATIONS: Final = (
    _Operation(re.compile(_WS + r"/?$", re.I), {"GET": (Action.INCIDENTS_READ, "list_incidents")}),
    _Operation(
        re.compile(_INCIDENT + r"/?$", re.I),
        {"GET": (Action.INCIDENTS_READ, "get_incident"), "PUT": (Action.INCIDENTS_WRITE, "put_incident")},
    ),
    _Operation(re.compile(_INCIDENT + r"/comments/?$", re.I), {"GET": (Action.COMMENTS_READ, "list_comments")}),
    _Operation(
        re.compile(_INCIDENT + r"/comments/(?P<comment>[^/]+)/?$", re.I),
        {"GET": (Action.COMMENTS_READ, "get_comment"), "PUT": (Action.COMMENTS_WRITE, "put_comment")},
    ),
    _Operation(re.compile(_INCIDENT + r"/alerts/?$", re.I), {"POST": (Action.ALERTS_READ, "list_alerts")}),
    _Operation(re.compile(_INCIDENT + r"/entities/?$", re.I), {"POST": (Action.ENTITIES_READ, "list_entities")}),
)


#: Calls Sentinel's per-workspace limits count (sentinel.write_limits), by (method, handler).
_LIMITED: Final = {
    ("PUT", "put_incident"): "incidents",
    ("PUT", "put_comment"): "comments",
    ("POST", "list_alerts"): "alerts",
    ("POST", "list_entities"): "entities",
}


@dataclass(frozen=True, slots=True)
class _Call:
    request: Request
    params: Mapping[str, str]  # query parameters, names lower-cased
    path: Mapping[str, str]
    workspace: WorkspaceRef
    caller: TokenInfo
    api_version: str


class _ArmError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})


def sentinel_routes(entra: EntraModel, sentinel: SentinelModel) -> list[BaseRoute]:
    """The ARM routes; mount them on the emulator origin."""
    api = _SentinelApi(entra, sentinel)
    return [Route("/subscriptions/{rest:path}", api.handle, methods=["GET", "PUT", "POST", "PATCH", "DELETE"])]


class _SentinelApi:
    def __init__(self, entra: EntraModel, sentinel: SentinelModel) -> None:
        self.entra = entra
        self.sentinel = sentinel

    async def handle(self, request: Request) -> Response:
        headers = {"x-ms-request-id": str(uuid.uuid4()), "x-ms-correlation-request-id": str(uuid.uuid4())}
        try:
            response = await self._dispatch(request, headers)
        except _ArmError as exc:
            headers.update(exc.headers)
            response = _error(exc.status, exc.code, exc.message)
        except SentinelError as exc:
            response = _error(exc.status, exc.code, exc.message)
        response.headers.update(headers)
        return response

    async def _dispatch(self, request: Request, headers: dict[str, str]) -> Response:
        path = request.url.path
        method = request.method.upper()
        params = {k.lower(): v for k, v in request.query_params.items()}
        operation, match = _route(path)
        caller = self._authenticate(request, match["sub"])
        api_version = _api_version(params)
        if method not in operation.methods:
            raise _ArmError(
                405, "UnsupportedApiVersion",
                f"The HTTP resource that matches the request URI '{request.url}' with API version "
                f"'{api_version}' does not support HTTP method '{method}'.",
            )
        action, handler_name = operation.methods[method]
        workspace = WorkspaceRef(match["sub"], match["rg"], match["ws"])
        self._check_subscription(workspace.subscription_id, caller)
        self._throttle(workspace.subscription_id, caller, action, headers)
        self._authorise(caller, workspace, action, path)
        self._limit(workspace, method, handler_name)
        call = _Call(request, params, match, workspace, caller, api_version)
        handler: Handler = getattr(self, f"_{handler_name}")
        return await handler(call)

    # --- the ARM front door --------------------------------------------------------------------------------

    def _authenticate(self, request: Request, subscription_id: str) -> TokenInfo:
        result = self.entra.validate_bearer(request.headers.get("authorization"),
                                           arm_audiences(request.url.netloc, ARM_AUDIENCES))
        if isinstance(result, TokenInfo):
            return result
        raise _authentication_error(result, self.sentinel.subscription_tenant(subscription_id))

    def _check_subscription(self, subscription_id: str, caller: TokenInfo) -> None:
        tenant = self.sentinel.subscription_tenant(subscription_id)
        if tenant is None:
            raise _ArmError(404, "SubscriptionNotFound", f"The subscription '{subscription_id}' could not be found.")
        if tenant != caller.tenant_id:
            # Wording as commonly reported [unverified].
            raise _ArmError(
                401, "InvalidAuthenticationTokenTenant",
                f"The access token is from the wrong issuer 'https://sts.windows.net/{caller.tenant_id}/'. It "
                f"must match the tenant 'https://sts.windows.net/{tenant}/' associated with this subscription. "
                f"Please use the authority (URL) 'https://login.windows.net/{tenant}' to get the token.",
                {"WWW-Authenticate": _www_authenticate(tenant, "invalid_token", "The access token is from the "
                                                      "wrong issuer.")},
            )

    def _throttle(self, subscription_id: str, caller: TokenInfo, action: Action, headers: dict[str, str]) -> None:
        kind = "writes" if action.is_write else "reads"
        decision = self.sentinel.throttle.take((subscription_id.lower(), caller.client_id), kind)
        headers[f"x-ms-ratelimit-remaining-subscription-{kind}"] = str(decision.remaining)
        if not decision.allowed:
            # Code and wording of ARM's subscription throttling as commonly reported [unverified].
            raise _ArmError(
                429, "SubscriptionRequestsThrottled",
                f"Number of '{kind[:-1]}' requests for subscription '{subscription_id}' actor "
                f"'{caller.app_object_id}' exceeded. Please try again after '{decision.retry_after}' seconds "
                "after the additional tokens are available. Refer to https://aka.ms/arm-throttling",
                {"Retry-After": str(decision.retry_after)},
            )

    def _limit(self, workspace: WorkspaceRef, method: str, handler_name: str) -> None:
        operation = _LIMITED.get((method, handler_name))
        if operation is None:
            return
        decision = self.sentinel.write_limits.take(workspace.resource_id.lower(), operation)
        if not decision.allowed:
            # Status and Retry-After as documented; the code and wording are ARM's common shape [unverified].
            raise _ArmError(
                429, "TooManyRequests",
                f"Too many '{operation}' requests for workspace '{workspace.name}'. Please try again after "
                f"'{decision.retry_after}' seconds.",
                {"Retry-After": str(decision.retry_after)},
            )

    def _authorise(self, caller: TokenInfo, workspace: WorkspaceRef, action: Action, path: str) -> None:
        role = self.sentinel.role_for(caller.client_id, workspace)
        if (role is None or not role.allows(action)) and not self.sentinel.custom_role_allows(
                caller.app_object_id, workspace, action.value):
            # The documented message shape (reference §1.2).
            raise _ArmError(
                403, "AuthorizationFailed",
                f"The client '{caller.client_id}' with object id '{caller.app_object_id}' does not have "
                f"authorization to perform action '{action.value}' over scope '{path}' or the scope is invalid. "
                "If access was recently granted, please refresh your credentials.",
            )

    # --- operations ----------------------------------------------------------------------------------------

    async def _list_incidents(self, call: _Call) -> Response:
        where = None
        if call.params.get("$filter"):
            try:
                where = parse_filter(call.params["$filter"], INCIDENT_FIELDS)
            except ODataError as exc:
                raise _ArmError(400, "BadRequest", f"Invalid $filter: {exc}") from None
        order = DEFAULT_ORDER
        if call.params.get("$orderby"):
            try:
                order = parse_orderby(call.params["$orderby"], INCIDENT_FIELDS)
            except ODataError as exc:
                raise _ArmError(400, "BadRequest", f"Invalid $orderby: {exc}") from None
        top = _top(call.params)
        after = _decode_token(call.params.get("$skiptoken"), order, INCIDENT_FIELDS[order.field])
        page = self.sentinel.query_incidents(call.workspace, where=where, order=order, top=top, after=after)
        return _json(200, _page_body(call, page, order))

    async def _get_incident(self, call: _Call) -> Response:
        return _json(200, self.sentinel.get_incident(call.workspace, call.path["incident"]))

    async def _put_incident(self, call: _Call) -> Response:
        body = await _json_body(call.request)
        resource, created = self.sentinel.put_incident(
            call.workspace, call.path["incident"], _incident_write(body)
        )
        return _json(201 if created else 200, resource)

    async def _list_comments(self, call: _Call) -> Response:
        order = OrderBy("properties/createdTimeUtc")
        after = _decode_token(call.params.get("$skiptoken"), order, FieldType.DATETIME)
        page = self.sentinel.query_comments(
            call.workspace, call.path["incident"], top=_top(call.params), after=after
        )
        return _json(200, _page_body(call, page, order))

    async def _get_comment(self, call: _Call) -> Response:
        return _json(200, self.sentinel.get_comment(call.workspace, call.path["incident"], call.path["comment"]))

    async def _put_comment(self, call: _Call) -> Response:
        body = await _json_body(call.request)
        properties = body.get("properties")
        message = properties.get("message") if isinstance(properties, dict) else None
        if not isinstance(message, str):
            raise _ArmError(400, "BadRequest", "The 'properties.message' field is required.")
        author = Author(object_id=call.caller.app_object_id, name=call.caller.app_display_name)
        resource, created = self.sentinel.put_comment(
            call.workspace, call.path["incident"], call.path["comment"], message, author
        )
        return _json(201 if created else 200, resource)

    async def _list_alerts(self, call: _Call) -> Response:
        return _json(200, {"value": self.sentinel.alert_resources(call.workspace, call.path["incident"])})

    async def _list_entities(self, call: _Call) -> Response:
        return _json(200, self.sentinel.entity_resources(call.workspace, call.path["incident"]))


# --- request parsing -------------------------------------------------------------------------------------------


def _route(path: str) -> tuple[_Operation, dict[str, str]]:
    for operation in _OPERATIONS:
        match = operation.pattern.match(path)
        if match:
            return operation, match.groupdict()
    raise _ArmError(404, "NotFound", f"No HTTP resource was found that matches the request URI '{path}'.")


def _api_version(params: Mapping[str, str]) -> str:
    version = params.get("api-version")
    if not version:
        raise _ArmError(
            400, "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    if version not in SUPPORTED_API_VERSIONS:
        # Code and wording as ARM reports unknown versions for other types [unverified for SecurityInsights].
        supported = ", ".join(sorted(SUPPORTED_API_VERSIONS, reverse=True))
        raise _ArmError(
            400, "NoRegisteredProviderFound",
            f"No registered resource provider found for API version '{version}' and type 'incidents'. "
            f"The supported api-versions are '{supported}'.",
        )
    return version


def _top(params: Mapping[str, str]) -> int:
    raw = params.get("$top")
    if raw is None:
        return DEFAULT_PAGE_SIZE
    try:
        top = int(raw)
    except ValueError:
        raise _ArmError(400, "BadRequest", f"Invalid $top '{raw}': expected an integer.") from None
    if not 1 <= top <= MAX_TOP:
        raise _ArmError(400, "BadRequest", f"Invalid $top '{raw}': must be between 1 and {MAX_TOP}.")
    return top


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _ArmError(
            400, "InvalidRequestContent",
            f"The request content was invalid and could not be deserialized: '{exc}'.",
        ) from None
    if not isinstance(body, dict):
        raise _ArmError(400, "InvalidRequestContent", "The request content must be a JSON object.")
    return body


def _incident_write(body: Mapping[str, Any]) -> IncidentWrite:
    properties = body.get("properties")
    if not isinstance(properties, dict):
        raise _ArmError(400, "BadRequest", "The 'properties' object is required.")
    etag = body.get("etag")
    if etag is not None and not isinstance(etag, str):
        raise _ArmError(400, "BadRequest", "'etag' must be a string.")
    return IncidentWrite(
        etag=etag,
        title=_opt_str(properties, "title"),
        severity=_opt_str(properties, "severity"),
        status=_opt_str(properties, "status"),
        description=_opt_str(properties, "description"),
        classification=_opt_str(properties, "classification"),
        classification_reason=_opt_str(properties, "classificationReason"),
        classification_comment=_opt_str(properties, "classificationComment"),
        owner=_owner(properties.get("owner")),
        labels=_labels(properties.get("labels")),
        first_activity=_opt_time(properties, "firstActivityTimeUtc"),
        last_activity=_opt_time(properties, "lastActivityTimeUtc"),
    )


def _opt_str(properties: Mapping[str, Any], key: str) -> str | None:
    value = properties.get(key)
    if value is not None and not isinstance(value, str):
        raise _ArmError(400, "BadRequest", f"'properties.{key}' must be a string.")
    return value


def _opt_time(properties: Mapping[str, Any], key: str) -> datetime | None:
    text = _opt_str(properties, key)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _ArmError(400, "BadRequest", f"'properties.{key}' is not a valid date-time: '{text}'.") from None
    if moment.tzinfo is None:
        raise _ArmError(400, "BadRequest", f"'properties.{key}' must carry a UTC offset: '{text}'.")
    return moment


def _owner(value: object) -> OwnerRef | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _ArmError(400, "BadRequest", "'properties.owner' must be an object.")
    fields = {}
    for wire, name in (("objectId", "object_id"), ("userPrincipalName", "user_principal_name"), ("email", "email")):
        item = value.get(wire)
        if item is not None and not isinstance(item, str):
            raise _ArmError(400, "BadRequest", f"'properties.owner.{wire}' must be a string.")
        fields[name] = item or None
    return OwnerRef(**fields)


def _labels(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _ArmError(400, "BadRequest", "'properties.labels' must be an array.")
    names = []
    for label in value:
        name = label.get("labelName") if isinstance(label, dict) else None
        if not isinstance(name, str) or not name:
            raise _ArmError(400, "BadRequest", "Every label requires a non-empty 'labelName'.")
        names.append(name)
    return tuple(names)


# Characters left readable in nextLink values (OData paths, quotes, times); everything else is %-encoded.
_QUERY_SAFE: Final = ":/'(),"


# --- paging ----------------------------------------------------------------------------------------------------


def _encode_token(order: OrderBy, cursor: tuple[Value, str]) -> str:
    value, name = cursor
    encoded: object = value.isoformat() if isinstance(value, datetime) else value
    raw = json.dumps({"o": order.field, "d": order.descending, "v": encoded, "n": name}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_token(token: str | None, order: OrderBy, field_type: FieldType) -> tuple[Value, str] | None:
    """The keyset cursor of a ``$skipToken``; it must come from a listing in the same order."""
    if not token:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if data["o"] != order.field or data["d"] != order.descending or not isinstance(data["n"], str):
            raise ValueError("token from another ordering")
        raw = data["v"]
        value: Value
        if field_type is FieldType.DATETIME:
            value = datetime.fromisoformat(raw)
        elif isinstance(raw, int if field_type is FieldType.INT else str):
            value = raw
        else:
            raise ValueError("bad value")
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise _ArmError(400, "BadRequest", "The $skipToken is invalid.") from None
    return value, data["n"]


def _page_body(call: _Call, page: Page, order: OrderBy) -> dict[str, Any]:
    body: dict[str, Any] = {"value": page.items}
    if page.cursor is not None:
        body["nextLink"] = _next_link(call, _encode_token(order, page.cursor))
    return body


def _next_link(call: _Call, token: str) -> str:
    """An absolute URL on the origin the request came to, carrying the query and the new ``$skipToken``."""
    url = call.request.url
    query = [("api-version", call.api_version)]
    for name in ("$filter", "$orderby", "$top"):
        if call.params.get(name):
            query.append((name, call.params[name]))
    query.append(("$skipToken", token))
    encoded = "&".join(f"{k}={quote(v, safe=_QUERY_SAFE)}" for k, v in query)
    return f"{url.scheme}://{url.netloc}{url.path}?{encoded}"


# --- responses -------------------------------------------------------------------------------------------------


def _json(status: int, body: object) -> Response:
    return JSONResponse(body, status_code=status, media_type="application/json; charset=utf-8")


def _error(status: int, code: str, message: str) -> Response:
    return _json(status, {"error": {"code": code, "message": message}})


def _www_authenticate(tenant: str | None, error: str, description: str) -> str:
    authority = f"https://login.windows.net/{tenant}" if tenant else "https://login.windows.net/"
    return f'Bearer authorization_uri="{authority}", error="{error}", error_description="{description}"'


def _authentication_error(problem: BearerError, tenant: str | None) -> _ArmError:
    """ARM's 401s, pointing at the subscription's tenant. Codes per reference §1.10; wordings as commonly
    reported [unverified]."""
    match problem.problem:
        case BearerProblem.MISSING:
            code, message = "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."
        case BearerProblem.INVALID:
            code, message = "InvalidAuthenticationToken", "The access token is invalid."
        case BearerProblem.EXPIRED:
            assert problem.token is not None
            code = "ExpiredAuthenticationToken"
            message = (
                f"The access token expiry UTC time '{problem.token.expires_at:%m/%d/%Y %H:%M:%S}' is earlier than "
                "current UTC time."
            )
        case _:
            assert problem.token is not None
            code = "InvalidAuthenticationTokenAudience"
            allowed = ",".join(f"'{a}/','{a}'" for a in ARM_AUDIENCES)
            message = (
                f"The access token has been obtained for wrong audience or resource '{problem.token.audience}'. "
                f"It should exactly match with one of the allowed audiences {allowed}."
            )
    description = "The authentication failed because of missing 'Authorization' header." if (
        problem.problem is BearerProblem.MISSING
    ) else message
    return _ArmError(401, code, message, {"WWW-Authenticate": _www_authenticate(tenant, "invalid_token", description)})
