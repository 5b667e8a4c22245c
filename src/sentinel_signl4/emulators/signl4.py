"""Wire format of the SIGNL4 emulator: inbound webhook, REST API v2 and the ``/_control/signl4`` control plane.

Requests are decoded here and handed to :class:`~sentinel_signl4.emulators.signl4_model.Signl4Model`; model
objects are rendered here in SIGNL4's JSON shapes. Routes, relative to the shared emulator origin:

* ``POST /webhook/{teamSecret}`` (any other method → 405)
* ``POST /api/v2/events/{teamSecretOrTeamId}`` and ``GET /api/v2/events/{eventId}``
* ``GET /api/v2/users``, ``GET /api/v2/users/{idOrEmail}``, ``GET /api/v2/teams``
* ``GET /api/v2/alerts/{id}``, ``GET …/details``, ``GET …/annotations``, ``POST …/acknowledge|close|annotate``
* ``POST /api/v2/alerts/paged?userId=&maxResults=``
* ``/_control/signl4/...`` (see :class:`_ControlPlane`)

Facts are cited from ``shared/reference/signl4-api.md`` ("ref §n"). Every error body is an
``ErrorResponseContent`` ``{requestId, code, details, message, errors?}`` (ref §3.2). Only one ``code`` value is
known from a real response (3004, unknown event source, ref §1.6); every other error carries ``code`` 0.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from sentinel_signl4.emulators.signl4_model import (
    Alert,
    AlertQuery,
    Annotation,
    AnnotationType,
    ConflictError,
    Event,
    InvalidRequestError,
    NotFoundError,
    OutboundWebhook,
    RateDecision,
    RateLimit,
    RateLimitPolicy,
    RawParameter,
    Signl4Error,
    Signl4Model,
    StatusMapping,
    Team,
    User,
    format_utc,
    limits_for_plan,
)

__all__ = ["build_signl4_app", "decode_payload"]

MAX_PAGE_SIZE = 100
#: maxResults is optional in the v1 spec and its default undocumented; the emulator uses the maximum.
DEFAULT_PAGE_SIZE = MAX_PAGE_SIZE
_MEDIA_JSON = ("application/json", "text/json")
_MEDIA_FORM = "application/x-www-form-urlencoded"
_TOO_MANY = "Too many requests were sent and subsequent requests are blocked for a while."


def build_signl4_app(model: Signl4Model) -> Starlette:
    """The SIGNL4 emulator as one ASGI app: wire routes plus ``/_control/signl4``. Nothing is shared globally."""
    inbound, rest, control = _Inbound(model), _RestApi(model), _ControlPlane(model)
    routes = [
        Route("/webhook/{secret}", inbound.webhook, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
        Route("/api/v2/events/{reference}", rest.events, methods=["GET", "POST"]),
        Route("/api/v2/users", rest.list_users, methods=["GET"]),
        Route("/api/v2/users/{user}", rest.get_user, methods=["GET"]),
        Route("/api/v2/teams", rest.list_teams, methods=["GET"]),
        Route("/api/v2/alerts/paged", rest.search_alerts, methods=["POST"]),
        Route("/api/v2/alerts/{alert_id}", rest.get_alert, methods=["GET"]),
        Route("/api/v2/alerts/{alert_id}/details", rest.get_alert_details, methods=["GET"]),
        Route("/api/v2/alerts/{alert_id}/annotations", rest.list_annotations, methods=["GET"]),
        Route("/api/v2/alerts/{alert_id}/acknowledge", rest.acknowledge, methods=["POST"]),
        Route("/api/v2/alerts/{alert_id}/close", rest.close, methods=["POST"]),
        Route("/api/v2/alerts/{alert_id}/annotate", rest.annotate, methods=["POST"]),
        Mount("/_control/signl4", routes=control.routes()),
        Route("/api/{rest:path}", _unknown_api_route, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
    handlers: Mapping[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        Signl4Error: _model_error, _HttpError: _http_error,
    }
    return Starlette(routes=routes, exception_handlers=handlers)


# ----------------------------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------------------------


class _HttpError(Exception):
    def __init__(self, status: int, message: str, details: str | None = None, *, code: int = 0,
                 errors: list[tuple[str, str]] | None = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(details or message)
        self.status, self.message, self.details, self.code = status, message, details, code
        self.errors, self.headers = errors, dict(headers or {})


def error_response(status: int, message: str, details: str | None = None, *, code: int = 0,
                   errors: list[tuple[str, str]] | None = None,
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    """An ``ErrorResponseContent`` body (ref §3.2), with a fresh ``requestId`` as in the real 3004 sample."""
    body: dict[str, Any] = {"requestId": str(uuid.uuid4()), "code": code, "details": details, "message": message}
    if errors:
        body["errors"] = [{"message": m, "details": d} for m, d in errors]
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, _HttpError)
    return error_response(exc.status, exc.message, exc.details, code=exc.code, errors=exc.errors,
                          headers=exc.headers)


_MODEL_ERROR_STATUS: dict[type[Signl4Error], int] = {NotFoundError: 404, ConflictError: 409, InvalidRequestError: 400}


async def _model_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Signl4Error)
    return error_response(_MODEL_ERROR_STATUS.get(type(exc), 400), exc.message, exc.details)


async def _unknown_api_route(request: Request) -> Response:
    return error_response(404, "Not Found", f"No API operation at {request.url.path}.")


def _rate_headers(decision: RateDecision) -> dict[str, str]:
    """The throttling headers the webhook "always replies with" (ref §1.7).

    No ``Retry-After``: SIGNL4 documents only ``X-RateLimit-Reset`` (a unix timestamp), so a client must derive
    its wait from that; the emulator does not invent a header the service is not known to send.
    """
    return {
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": str(decision.reset_unix),
    }


# ----------------------------------------------------------------------------------------------------------------
# Request decoding
# ----------------------------------------------------------------------------------------------------------------


class PayloadError(ValueError):
    """The body is not in the format its Content-Type announces (webhook 400, ref §1.6)."""


_LINE = re.compile(r"^\s*([^:\s][^:]*?)\s*:\s?(.*)$")


def decode_payload(content_type: str | None, body: bytes) -> list[RawParameter]:
    """Flatten an inbound event body into parameters (ref §1.2, §1.3).

    JSON objects are flattened with a dot per nesting level; non-string JSON values keep their JSON text and do
    not count as text for the title/text search. Forms become one parameter per field. ``text/plain`` (or no
    content type) is read as ``Key: value`` lines, the format of SIGNL4's email channel, with indented or
    key-less lines continuing the previous value; a body without such lines becomes the ``Text``.
    XML and multipart bodies, which SIGNL4 also parses, are not emulated: they are read as plain text.
    """
    media = (content_type or "").split(";", 1)[0].strip().casefold()
    if media in _MEDIA_JSON or media.endswith("+json"):
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PayloadError(f"The body is not valid JSON: {exc}") from None
        if isinstance(document, dict):
            return list(_flatten(document, ""))
        return [_scalar("Text", document)] if document is not None else []
    text = _decode_text(body)
    if media == _MEDIA_FORM:
        return [RawParameter(k, v) for k, v in parse_qsl(text, keep_blank_values=True)]
    return _parse_lines(text)


def _decode_text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"The body is not UTF-8 text: {exc}") from None


def _flatten(document: Mapping[str, Any], prefix: str) -> list[RawParameter]:
    params: list[RawParameter] = []
    for key, value in document.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            params.extend(_flatten(value, name))
        elif value is not None:
            params.append(_scalar(name, value))
    return params


def _scalar(name: str, value: Any) -> RawParameter:
    if isinstance(value, str):
        return RawParameter(name, value, is_text=True)
    return RawParameter(name, json.dumps(value, separators=(",", ":")), is_text=False)


def _parse_lines(text: str) -> list[RawParameter]:
    pairs: list[list[str]] = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if match and not line[:1].isspace():
            pairs.append([match.group(1), match.group(2).strip()])
        elif pairs and line.strip():
            pairs[-1][1] = f"{pairs[-1][1]}\n{line.strip()}".strip()
    if not pairs:
        return [RawParameter("Text", text.strip())] if text.strip() else []
    return [RawParameter(name, value) for name, value in pairs]


def _folded(items: Mapping[str, str] | Any) -> dict[str, Any]:
    """Case-insensitive view of query parameters or a JSON object, as ASP.NET model binding reads them."""
    return {str(k).casefold(): v for k, v in items.items()}


def _status_mapping(request: Request) -> StatusMapping | None:
    """ExtIDParam/ExtIdParam, ExtStatusParam, NewStatus, AckStatus, ResolvedStatus (ref §1.5). Both spellings of
    ExtIDParam appear in the docs, so names are matched case-insensitively."""
    query = _folded(request.query_params)
    mapping = StatusMapping(
        ext_id_param=query.get("extidparam"), ext_status_param=query.get("extstatusparam"),
        new_status=query.get("newstatus"), ack_status=query.get("ackstatus"),
        resolved_status=query.get("resolvedstatus"),
    )
    return None if mapping == StatusMapping() else mapping


async def _json_object(request: Request, *, required: bool = True) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        if required:
            raise _HttpError(400, "Required information could not be found in the request.", "The body is empty.")
        return {}
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _HttpError(400, "The submitted body is invalid.", f"The body is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise _HttpError(400, "The submitted body is invalid.", "The body must be a JSON object.")
    return document


def _client_key(request: Request) -> str:
    return request.client.host if request.client else "unknown"


# ----------------------------------------------------------------------------------------------------------------
# Inbound webhook (ref §1)
# ----------------------------------------------------------------------------------------------------------------


class _Inbound:
    def __init__(self, model: Signl4Model) -> None:
        self.model = model

    async def webhook(self, request: Request) -> Response:
        """``/webhook/{teamSecret}``: the secret in the URL is the only authentication (ref §1.1)."""
        secret = request.path_params["secret"]
        team = self.model.team_for_secret(secret)
        if request.method != "POST":
            decision = (self.model.check_event_limit(team.subscription_id, consume=False) if team is not None
                        else self.model.check_invalid_limit(_client_key(request), consume=False))
            return error_response(405, "Method not allowed.", f"The webhook accepts POST, not {request.method}.",
                                  headers={**_rate_headers(decision), "Allow": "POST"})
        if team is None:
            return _unknown_source(self.model, request, secret)
        return await _raise_event(self.model, request, team, team.secrets[secret])


def _unknown_source(model: Signl4Model, request: Request, reference: str) -> Response:
    """The real answer to a wrong secret (ref §1.6), throttled at the "10 per min" of bad requests (§1.7)."""
    decision = model.check_invalid_limit(_client_key(request))
    if not decision.allowed:
        return error_response(429, "Error raising event.", _TOO_MANY, headers=_rate_headers(decision))
    return error_response(404, "Error raising event.", f"An event source with ID {reference} was not found.",
                          code=3004, headers=_rate_headers(decision))


async def _raise_event(model: Signl4Model, request: Request, team: Team, event_source_id: str | None) -> Response:
    """Decode, throttle and process one inbound event; 201 ``{"eventId": …}`` on success (ref §1.6)."""
    try:
        params = decode_payload(request.headers.get("content-type"), await request.body())
    except PayloadError as exc:
        decision = model.check_invalid_limit(_client_key(request))
        if not decision.allowed:
            return error_response(429, "Error raising event.", _TOO_MANY, headers=_rate_headers(decision))
        return error_response(400, "Error raising event.",
                              f"The submitted body is invalid and not in the format specified in the content-type. "
                              f"{exc}", headers=_rate_headers(decision))
    decision = model.check_event_limit(team.subscription_id)
    if not decision.allowed:
        return error_response(429, "Error raising event.", _TOO_MANY, headers=_rate_headers(decision))
    event = model.raise_event(team.id, params, mapping=_status_mapping(request), event_source_id=event_source_id)
    return JSONResponse({"eventId": event.id}, status_code=201, headers=_rate_headers(decision))


# ----------------------------------------------------------------------------------------------------------------
# REST API v2 (ref §3)
# ----------------------------------------------------------------------------------------------------------------


class _RestApi:
    def __init__(self, model: Signl4Model) -> None:
        self.model = model

    def _authenticate(self, request: Request) -> str:
        """The subscription of the ``X-S4-Api-Key`` header (ref §3.1); lap.sh's digest of the live spec also lists
        the key as query parameter, so ``?x-s4-api-key=`` is accepted too.

        Missing or wrong key → 401. The real status is undocumented (v1 lists 400/403 for its operations; ref §6).
        """
        key = request.headers.get("x-s4-api-key") or _folded(request.query_params).get("x-s4-api-key")
        subscription_id = self.model.subscription_for_api_key(key) if key else None
        if subscription_id is None:
            raise _HttpError(401, "Authorization failed.",
                             "The X-S4-Api-Key header is missing or does not name a valid API key.")
        return subscription_id

    def _guard(self, request: Request) -> str:
        """Authenticate and count one call against the REST limit (ref §1.7). The ``X-RateLimit-*`` headers are
        documented for the webhook only, so REST answers do not carry them."""
        subscription_id = self._authenticate(request)
        if not self.model.check_rest_limit(subscription_id).allowed:
            raise _HttpError(429, "Too many requests.", _TOO_MANY)
        return subscription_id

    async def events(self, request: Request) -> Response:
        reference = request.path_params["reference"]
        if request.method == "GET":
            subscription_id = self._guard(request)
            return JSONResponse(event_json(self.model.get_event(reference, subscription_id)))
        # POST /v2/events/{webhookIdOrTeamId}: "The JSON content can be the same as for the SIGNL4 webhook API"
        # (ref §1.1). Counted as an inbound event, not a REST call ("REST API Endpoints other than …/v2/events").
        subscription_id = self._authenticate(request)
        team = self.model.team_for_reference(subscription_id, reference)
        if team is None:
            return _unknown_source(self.model, request, reference)
        return await _raise_event(self.model, request, team, team.secrets.get(reference))

    async def list_users(self, request: Request) -> Response:
        subscription_id = self._guard(request)
        return JSONResponse([user_json(u) for u in self.model.list_users(subscription_id)])

    async def get_user(self, request: Request) -> Response:
        subscription_id = self._guard(request)
        return JSONResponse(user_json(self.model.find_user(subscription_id, request.path_params["user"])))

    async def list_teams(self, request: Request) -> Response:
        subscription_id = self._guard(request)
        return JSONResponse([team_json(t) for t in self.model.list_teams(subscription_id)])

    async def get_alert(self, request: Request) -> Response:
        subscription_id = self._guard(request)
        return JSONResponse(alert_json(self.model.get_alert(request.path_params["alert_id"], subscription_id)))

    async def get_alert_details(self, request: Request) -> Response:
        subscription_id = self._guard(request)
        alert = self.model.get_alert(request.path_params["alert_id"], subscription_id)
        return JSONResponse(alert_details_json(alert))

    async def list_annotations(self, request: Request) -> Response:
        subscription_id = self._guard(request)
        alert = self.model.get_alert(request.path_params["alert_id"], subscription_id)
        if not alert.annotations:
            return Response(status_code=204)  # v1: "204 No annotations were found for the alert." (ref §3.3)
        return JSONResponse([annotation_json(a) for a in alert.annotations])

    async def acknowledge(self, request: Request) -> Response:
        return await self._change_status(request, self.model.acknowledge)

    async def close(self, request: Request) -> Response:
        return await self._change_status(request, self.model.close)

    async def _change_status(self, request: Request, action: Callable[[str, str, str | None], Alert]) -> Response:
        """v1 body ``{userId, description}``; MindCloud's v2 digest names them ``{uid, descr}`` (ref §3.3,
        [DERIVED], open question 1): both are accepted."""
        subscription_id = self._guard(request)
        alert = self.model.get_alert(request.path_params["alert_id"], subscription_id)
        body = _folded(await _json_object(request))
        user = body.get("userid") or body.get("uid")
        description = body.get("description") or body.get("descr")
        if not isinstance(user, str) or not user:
            raise _HttpError(400, "Required information could not be found in the request.",
                             "userId (or uid) is required with API key authentication.")
        if description is not None and not isinstance(description, str):
            raise _HttpError(400, "The submitted body is invalid.", "description must be a string.")
        self.model.find_user(subscription_id, user)
        return JSONResponse(alert_json(action(alert.id, user, description)))

    async def annotate(self, request: Request) -> Response:
        """``{type: 1, text, userId}`` → ``{id, teamId, text, timestamp, type, userId}`` (ref §3.3, [DERIVED])."""
        subscription_id = self._guard(request)
        alert = self.model.get_alert(request.path_params["alert_id"], subscription_id)
        body = _folded(await _json_object(request))
        user, text, kind = body.get("userid"), body.get("text"), body.get("type", int(AnnotationType.TEXT))
        if not isinstance(user, str) or not user or not isinstance(text, str):
            raise _HttpError(400, "Required information could not be found in the request.",
                             "userId and text are required.")
        if kind not in {t.value for t in AnnotationType} or isinstance(kind, bool):
            raise _HttpError(400, "The submitted body is invalid.", f"Unknown annotation type {kind!r}.")
        self.model.find_user(subscription_id, user)
        return JSONResponse(annotation_json(self.model.annotate(alert.id, user, text, AnnotationType(kind))))

    async def search_alerts(self, request: Request) -> Response:
        """``POST /v2/alerts/paged`` (ref §3.3): 200 with a page, 204 when nothing matches."""
        subscription_id = self._guard(request)
        query_params = _folded(request.query_params)
        user_id = query_params.get("userid")
        if not user_id:
            raise _HttpError(400, "Required information could not be found in the request.",
                             "userId is required when using SIGNL4 API key authentication.")
        max_results = _page_size(query_params.get("maxresults"))
        query, cursor = parse_alert_filter(await _json_object(request, required=False))
        page = self.model.search_alerts(subscription_id, user_id, query, max_results=max_results,
                                        after_row_key=cursor)
        if not page.results:
            return Response(status_code=204)
        token: dict[str, str | None] = {"nextPartitionKey": None, "nextRowKey": None, "nextTableName": None}
        if page.next_row_key is not None:
            # Shaped like the Azure Table continuation SIGNL4 exposes; only nextRowKey carries our cursor.
            token = {"nextPartitionKey": subscription_id, "nextRowKey": page.next_row_key, "nextTableName": "alerts"}
        return JSONResponse({"results": [alert_json(a) for a in page.results],
                             "hasMore": page.next_row_key is not None, "continuationToken": token})


def _page_size(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_PAGE_SIZE
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise _HttpError(400, "The submitted request is invalid.",
                         f"maxResults must be between 1 and {MAX_PAGE_SIZE}, not {raw!r}.")
    return size


def parse_alert_filter(body: Mapping[str, Any]) -> tuple[AlertQuery, str | None]:
    """The paged-search body, in either spelling: the official sample's ``teamid``/``modSince`` and the v2 swagger's
    ``teamIds``/``modifiedSince`` (ref §3.3). Unknown fields are ignored, as ASP.NET does."""
    fields = _folded(body)
    problems: list[tuple[str, str]] = []

    def strings(name: str) -> frozenset[str]:
        value = fields.get(name)
        if value is None:
            return frozenset()
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return frozenset(v for v in value if v)
        problems.append((f"Invalid {name}.", f"{name} must be a list of strings."))
        return frozenset()

    def text(name: str) -> str | None:
        value = fields.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            return value
        problems.append((f"Invalid {name}.", f"{name} must be a string."))
        return None

    def moment(*names: str) -> datetime | None:
        raw = next((text(n) for n in names if text(n) is not None), None)
        if raw is None:
            return None
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            problems.append((f"Invalid {names[0]}.", f"{raw!r} is not an ISO 8601 date-time."))
            return None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)

    team_ids = strings("teamids") | ({t} if (t := text("teamid")) else frozenset())
    status_mask = fields.get("alertstatuscodes") or 0
    if isinstance(status_mask, bool) or not isinstance(status_mask, int) or not 0 <= status_mask <= 63:
        problems.append(("Invalid alertStatusCodes.", "alertStatusCodes must be a bitmask of 1, 2, 4, 8, 16, 32."))
        status_mask = 0
    mode = fields.get("usercreatedalertsfiltermode") or 0
    if mode not in (0, 1, 2) or isinstance(mode, bool):
        problems.append(("Invalid userCreatedAlertsFilterMode.", "Must be 0, 1 or 2."))
    if text("afterid"):
        # The meaning of afterId is undocumented; refusing it beats silently returning a different result.
        problems.append(("Unsupported afterId.", "The emulator does not implement afterId; use continuationToken."))
    token = fields.get("continuationtoken")
    cursor = None
    if isinstance(token, dict):
        row_key = _folded(token).get("nextrowkey")
        cursor = row_key if isinstance(row_key, str) and row_key else None
    elif token is not None:
        problems.append(("Invalid continuationToken.", "continuationToken must be an object."))
    query = AlertQuery(
        team_ids=team_ids, alert_ids=strings("alertids"), category_ids=strings("categoryids"),
        external_id=text("externalid"), status_mask=status_mask, min_created=moment("mincreated"),
        max_created=moment("maxcreated"), modified_since=moment("modifiedsince", "modsince"),
        text=text("texttosearch"), only_user_created=mode == 2,
    )
    if problems:
        raise _HttpError(400, "The submitted filter is invalid.", problems[0][1], errors=problems)
    return query, cursor


# ----------------------------------------------------------------------------------------------------------------
# JSON shapes (v2 field names of ref §3.3; fields whose shape is unknown are left out, not made up)
# ----------------------------------------------------------------------------------------------------------------


def _when(moment: datetime | None) -> str | None:
    return format_utc(moment) if moment is not None else None


def user_json(user: User) -> dict[str, Any]:
    """A v2 user, limited to the fields the model knows (``dutyInfos``, ``contactAddresses``… are omitted)."""
    return {"id": user.id, "name": user.name, "mail": user.mail, "subscriptionId": user.subscription_id,
            "isDeactivated": False, "isEnabled": True, "isInvite": False, "timeZone": user.timezone}


def team_json(team: Team) -> dict[str, Any]:
    """``TeamInfo`` (v1 and v2 alike, ref §3.3)."""
    return {"id": team.id, "name": team.name, "memberIds": list(team.member_ids),
            "subscriptionId": team.subscription_id, "timezone": team.timezone}


def alert_json(alert: Alert) -> dict[str, Any]:
    """A v2 alert (ref §3.3 "Get an alert"). Alerting pattern, distribution and workflow fields are omitted: the
    emulator does not model them. ``history.acknowledgements`` holds user ids, as v1's list does."""
    return {
        "categoryId": alert.category_id,
        "categoryName": alert.category,
        "eventId": alert.event_id,
        "eventSourceId": alert.event_source_id,
        "externalId": alert.external_id,
        "flags": int(alert.flags),
        "history": {
            "acknowledgedAt": _when(alert.acknowledged_at),
            "acknowledgements": list(alert.acknowledgements),
            "closedAt": _when(alert.closed_at),
            "closedBy": alert.closed_by,
            "created": format_utc(alert.created),
            # Events raised through a webhook have no creating user.
            "createdBy": None,
            "createdByName": None,
        },
        "id": alert.id,
        "lastModified": format_utc(alert.last_modified),
        "requiredAcknowledgements": alert.required_acknowledgements,
        "severity": int(alert.severity),
        "status": int(alert.status),
        "subscriptionId": alert.subscription_id,
        "teamId": alert.team_id,
        "text": alert.text,
        "title": alert.title,
    }


def alert_details_json(alert: Alert) -> dict[str, Any]:
    """``/details`` adds attachments and parameters (ref §3.3); timeline and escalation entries are omitted because
    their shape is not known."""
    details = alert_json(alert)
    details["attachments"] = []
    details["parameters"] = [{"name": p.name, "order": i, "type": p.type, "value": p.value}
                             for i, p in enumerate(alert.parameters)]
    return details


def annotation_json(annotation: Annotation) -> dict[str, Any]:
    return {"id": annotation.id, "teamId": annotation.team_id, "text": annotation.text,
            "timestamp": format_utc(annotation.timestamp), "type": int(annotation.type),
            "userId": annotation.user_id}


def event_json(event: Event) -> dict[str, Any]:
    """A v2 event (ref §3.3 "Events"): ``targets[].alertId`` maps the webhook's eventId to its alert(s)."""
    return {
        "acknowledgedAlerts": list(event.acknowledged_alert_ids),
        "closedAlerts": list(event.closed_alert_ids),
        "creationTime": format_utc(event.created),
        "eventSourceId": event.event_source_id,
        "eventSourceTeamId": event.team_id,
        "eventStatus": int(event.status),
        "externalId": event.external_id,
        "id": event.id,
        "lastModified": format_utc(event.last_modified),
        "parameters": [{"name": p.name, "type": p.type, "value": p.value} for p in event.parameters],
        "severity": int(event.severity),
        "targets": [{"alertId": alert_id, "eventId": event.id, "teamId": event.team_id,
                     "creationTime": format_utc(event.created)} for alert_id in event.target_alert_ids],
        "text": event.text,
        "title": event.title,
    }


def webhook_json(webhook: OutboundWebhook) -> dict[str, Any]:
    """v1 ``WebhookInfo`` (ref §2.1)."""
    return {"enabled": webhook.enabled, "externalAddress": webhook.url, "id": webhook.id, "name": webhook.name,
            "subscriptionId": webhook.subscription_id, "teamId": webhook.team_id}


# ----------------------------------------------------------------------------------------------------------------
# Control plane
# ----------------------------------------------------------------------------------------------------------------


def _limits_from_json(items: Any, name: str) -> tuple[RateLimit, ...]:
    if not isinstance(items, list) or not items:
        raise _HttpError(400, f"Invalid {name}.", f"{name} must be a non-empty list of {{limit, windowSeconds}}.")
    try:
        return tuple(RateLimit(int(i["limit"]), timedelta(seconds=float(i["windowSeconds"]))) for i in items)
    except (KeyError, TypeError, ValueError) as exc:
        raise _HttpError(400, f"Invalid {name}.", str(exc)) from None


def _limits_json(tiers: tuple[RateLimit, ...]) -> list[dict[str, Any]]:
    return [{"limit": t.limit, "windowSeconds": t.window.total_seconds()} for t in tiers]


def _string(body: Mapping[str, Any], key: str, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise _HttpError(400, f"Invalid {key}.", f"{key} must be a non-empty string.")
    return value


class _ControlPlane:
    """``/_control/signl4``: set up tenants, script users' actions, read what SIGNL4 would have sent.

    ========  =====================================  ====================================================
    POST      /reset                                 forget everything
    POST      /subscriptions                         ``{id?, plan?: "commercial"|"free"}``
    POST      /teams                                 ``{subscriptionId, name, id?, secret?}``
    POST      /teams/{teamId}/secrets                ``{secret?}`` → ``{secret}``
    POST      /teams/{teamId}/members                ``{userId}``
    POST      /users                                 ``{subscriptionId, name, mail, id?, teamIds?}``
    POST      /api-keys                              ``{subscriptionId, key?}`` → ``{key, subscriptionId}``
    GET/POST  /webhooks                              ``{subscriptionId, url, teamId?, name?}`` → WebhookInfo
    GET       /alerts?externalId=&teamId=            alerts with parameters and annotations, newest first
    POST      /actions/{action}                      acknowledge|close|annotate|escalate;
                                                     ``{alertId | externalId [, teamId], user?, text?,
                                                     description?}``; by externalId the newest alert
    GET       /notifications                         recorded outbound notifications (not drained)
    POST      /notifications/drain                   return and forget them
    GET       /deliveries                            notifications still owed to registered webhooks
    GET/PUT   /rate-limits                           ``{subscriptionId?, plan?, events?, rest?, invalid?}``;
                                                     tiers as ``[{limit, windowSeconds}]``
    ========  =====================================  ====================================================
    """

    def __init__(self, model: Signl4Model) -> None:
        self.model = model

    def routes(self) -> list[Route]:
        return [
            Route("/reset", self.reset, methods=["POST"]),
            Route("/subscriptions", self.create_subscription, methods=["POST"]),
            Route("/teams", self.create_team, methods=["POST"]),
            Route("/teams/{team_id}/secrets", self.add_secret, methods=["POST"]),
            Route("/teams/{team_id}/members", self.add_member, methods=["POST"]),
            Route("/users", self.create_user, methods=["POST"]),
            Route("/api-keys", self.create_api_key, methods=["POST"]),
            Route("/webhooks", self.webhooks, methods=["GET", "POST"]),
            Route("/alerts", self.list_alerts, methods=["GET"]),
            Route("/actions/{action}", self.act, methods=["POST"]),
            Route("/notifications", self.notifications, methods=["GET"]),
            Route("/notifications/drain", self.drain, methods=["POST"]),
            Route("/deliveries", self.deliveries, methods=["GET"]),
            Route("/rate-limits", self.rate_limits, methods=["GET", "PUT"]),
        ]

    async def reset(self, _request: Request) -> Response:
        self.model.reset()
        return Response(status_code=204)

    async def create_subscription(self, request: Request) -> Response:
        body = await _json_object(request, required=False)
        subscription = self.model.create_subscription(_string(body, "id", required=False),
                                                      plan=_string(body, "plan", required=False))
        return JSONResponse({"id": subscription.id, "plan": subscription.plan}, status_code=201)

    async def create_team(self, request: Request) -> Response:
        body = await _json_object(request)
        team = self.model.create_team(_string(body, "subscriptionId") or "", _string(body, "name") or "",
                                      team_id=_string(body, "id", required=False),
                                      secret=_string(body, "secret", required=False))
        return JSONResponse(_team_control_json(team), status_code=201)

    async def add_secret(self, request: Request) -> Response:
        body = await _json_object(request, required=False)
        secret = self.model.add_team_secret(request.path_params["team_id"], _string(body, "secret", required=False))
        return JSONResponse({"secret": secret, "webhookPath": f"/webhook/{secret}"}, status_code=201)

    async def add_member(self, request: Request) -> Response:
        body = await _json_object(request)
        self.model.add_member(request.path_params["team_id"], _string(body, "userId") or "")
        return JSONResponse(_team_control_json(self.model.get_team(request.path_params["team_id"])))

    async def create_user(self, request: Request) -> Response:
        body = await _json_object(request)
        team_ids = body.get("teamIds", [])
        if not isinstance(team_ids, list) or not all(isinstance(t, str) for t in team_ids):
            raise _HttpError(400, "Invalid teamIds.", "teamIds must be a list of strings.")
        user = self.model.create_user(_string(body, "subscriptionId") or "", _string(body, "name") or "",
                                      _string(body, "mail") or "", user_id=_string(body, "id", required=False),
                                      team_ids=team_ids)
        return JSONResponse(user_json(user), status_code=201)

    async def create_api_key(self, request: Request) -> Response:
        body = await _json_object(request)
        subscription_id = _string(body, "subscriptionId") or ""
        key = self.model.create_api_key(subscription_id, _string(body, "key", required=False))
        return JSONResponse({"key": key, "subscriptionId": subscription_id}, status_code=201)

    async def webhooks(self, request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse([webhook_json(w) for w in self.model.list_webhooks()])
        body = await _json_object(request)
        webhook = self.model.register_webhook(
            _string(body, "subscriptionId") or "", _string(body, "url") or "",
            team_id=_string(body, "teamId", required=False),
            name=_string(body, "name", required=False) or "Webhook (Outbound)",
        )
        return JSONResponse(webhook_json(webhook), status_code=201)

    async def list_alerts(self, request: Request) -> Response:
        alerts = self.model.list_alerts(external_id=request.query_params.get("externalId"),
                                        team_id=request.query_params.get("teamId"))
        return JSONResponse([_alert_control_json(a) for a in alerts])

    async def act(self, request: Request) -> Response:
        action = request.path_params["action"]
        if action not in ("acknowledge", "close", "annotate", "escalate"):
            raise _HttpError(404, "Unknown action.", "Use acknowledge, close, annotate or escalate.")
        body = await _json_object(request)
        alert = self._target(body)
        if action == "escalate":
            self.model.escalate(alert.id)
        else:
            user = _string(body, "user", required=False) or _string(body, "userId", required=False)
            if user is None:
                raise _HttpError(400, "Invalid user.", f"{action} needs a user (id or mail).")
            if action == "acknowledge":
                self.model.acknowledge(alert.id, user, _string(body, "description", required=False))
            elif action == "close":
                self.model.close(alert.id, user, _string(body, "description", required=False))
            else:
                self.model.annotate(alert.id, user, _string(body, "text") or "")
        return JSONResponse(_alert_control_json(self.model.get_alert(alert.id)))

    def _target(self, body: Mapping[str, Any]) -> Alert:
        alert_id = _string(body, "alertId", required=False)
        if alert_id is not None:
            return self.model.get_alert(alert_id)
        external_id = _string(body, "externalId", required=False)
        if external_id is None:
            raise _HttpError(400, "Invalid target.", "Give alertId or externalId.")
        alerts = self.model.list_alerts(external_id=external_id, team_id=_string(body, "teamId", required=False))
        if not alerts:
            raise NotFoundError("No alert with id was found.", f"No alert was created with external id {external_id}.")
        return alerts[0]

    async def notifications(self, _request: Request) -> Response:
        return JSONResponse(self.model.notifications())

    async def drain(self, _request: Request) -> Response:
        return JSONResponse(self.model.drain_notifications())

    async def deliveries(self, _request: Request) -> Response:
        return JSONResponse([{"url": url, "notification": n} for url, n in self.model.pending_deliveries()])

    async def rate_limits(self, request: Request) -> Response:
        if request.method == "PUT":
            body = await _json_object(request)
            subscription_id = _string(body, "subscriptionId", required=False)
            plan = _string(body, "plan", required=False)
            base = limits_for_plan(plan) if plan is not None else self.model.limits_of(subscription_id)
            if "events" in body or "rest" in body or plan is not None:
                policy = RateLimitPolicy(
                    events=_limits_from_json(body["events"], "events") if "events" in body else base.events,
                    rest=_limits_from_json(body["rest"], "rest") if "rest" in body else base.rest,
                )
                self.model.set_rate_limits(policy, subscription_id)
            if "invalid" in body:
                self.model.set_invalid_request_limits(_limits_from_json(body["invalid"], "invalid"))
        subscription_id = request.query_params.get("subscriptionId")
        policy = self.model.limits_of(subscription_id)
        return JSONResponse({"events": _limits_json(policy.events), "rest": _limits_json(policy.rest),
                             "invalid": _limits_json(self.model.invalid_request_limits)})


def _team_control_json(team: Team) -> dict[str, Any]:
    return {**team_json(team), "secrets": list(team.secrets),
            "webhookPaths": [f"/webhook/{s}" for s in team.secrets]}


def _alert_control_json(alert: Alert) -> dict[str, Any]:
    return {**alert_details_json(alert), "category": alert.category,
            "annotations": [annotation_json(a) for a in alert.annotations]}
