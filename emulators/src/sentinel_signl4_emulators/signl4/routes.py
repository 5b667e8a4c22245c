"""Wire format of the SIGNL4 emulator: inbound webhook, REST API v2 and the ``/_control/signl4`` control plane.

Requests are decoded here and handed to :class:`~sentinel_signl4_emulators.signl4.model.Signl4Model`; model
objects are rendered in SIGNL4's JSON shapes. Routes, relative to the shared emulator origin:

* ``POST /webhook/{teamSecret}`` (any other method → 405)
* ``POST /api/v2/events/{teamSecretOrTeamId}`` and ``GET /api/v2/events/{eventId}``
* ``GET /api/v2/users``, ``GET /api/v2/users/{idOrEmail}``, ``GET /api/v2/teams``
* ``GET /api/v2/alerts/{id}``, ``GET …/details``, ``GET …/timeline``, ``POST …/acknowledge|close|annotate``
* ``GET /api/alerts/{id}/annotations`` (v1); which of it and the v2 timeline answer is a knob (``signl4.behaviour``)
* ``POST /api/v2/alerts/paged?userId=&maxResults=``
* ``/_control/signl4/...`` (see :class:`~sentinel_signl4_emulators.signl4.control.ControlPlane`)

Facts are cited from ``shared/reference/signl4-api.md`` ("ref §n"). Every error body is an
``ErrorResponseContent`` ``{requestId, code, details, message, errors?}`` (ref §3.2). Only one ``code`` value is
known from a real response (3004, unknown event source, ref §1.6); every other error carries ``code`` 0.

This module holds the routes, the inbound webhook and the REST API; body decoding (``signl4.decode``), error
responses and JSON bodies (``signl4.http``), the JSON shapes (``signl4.shapes``) and the control plane
(``signl4.control``) live in sibling modules.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from sentinel_signl4_emulators.signl4.control import ControlPlane
from sentinel_signl4_emulators.signl4.decode import PayloadError, decode_payload, status_mapping
from sentinel_signl4_emulators.signl4.http import (
    HttpError,
    client_key,
    error_response,
    folded,
    http_error,
    json_object,
    model_error,
    rate_headers,
    unknown_api_route,
)
from sentinel_signl4_emulators.signl4.model import (
    Alert,
    AlertQuery,
    AnnotationType,
    Signl4Error,
    Signl4Model,
    Team,
)
from sentinel_signl4_emulators.signl4.shapes import (
    alert_details_json,
    alert_json,
    annotation_json,
    annotation_v1_json,
    event_json,
    team_json,
    timeline_json,
    user_json,
)

__all__ = ["build_signl4_app", "decode_payload"]

MAX_PAGE_SIZE = 100
#: maxResults is optional in the v1 spec and its default undocumented; the emulator uses the maximum.
DEFAULT_PAGE_SIZE = MAX_PAGE_SIZE
_TOO_MANY = "Too many requests were sent and subsequent requests are blocked for a while."


def build_signl4_app(model: Signl4Model) -> Starlette:
    """The SIGNL4 emulator as one ASGI app: wire routes plus ``/_control/signl4``. Nothing is shared globally."""
    inbound, rest, control = _Inbound(model), _RestApi(model), ControlPlane(model)
    routes = [
        Route("/webhook/{secret}", inbound.webhook, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
        Route("/api/v2/events/{reference}", rest.events, methods=["GET", "POST"]),
        Route("/api/v2/users", rest.list_users, methods=["GET"]),
        Route("/api/v2/users/{user}", rest.get_user, methods=["GET"]),
        Route("/api/v2/teams", rest.list_teams, methods=["GET"]),
        Route("/api/v2/alerts/paged", rest.search_alerts, methods=["POST"]),
        Route("/api/v2/alerts/{alert_id}", rest.get_alert, methods=["GET"]),
        Route("/api/v2/alerts/{alert_id}/details", rest.get_alert_details, methods=["GET"]),
        Route("/api/v2/alerts/{alert_id}/timeline", rest.timeline, methods=["GET"]),
        Route("/api/alerts/{alert_id}/annotations", rest.list_annotations_v1, methods=["GET"]),
        Route("/api/v2/alerts/{alert_id}/acknowledge", rest.acknowledge, methods=["POST"]),
        Route("/api/v2/alerts/{alert_id}/close", rest.close, methods=["POST"]),
        Route("/api/v2/alerts/{alert_id}/annotate", rest.annotate, methods=["POST"]),
        Mount("/_control/signl4", routes=control.routes()),
        Route("/api/{rest:path}", unknown_api_route, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
    handlers: Mapping[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        Signl4Error: model_error, HttpError: http_error,
    }
    return Starlette(routes=routes, exception_handlers=handlers)


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
                        else self.model.check_invalid_limit(client_key(request), consume=False))
            return error_response(405, "Method not allowed.", f"The webhook accepts POST, not {request.method}.",
                                  headers={**rate_headers(decision), "Allow": "POST"})
        if team is None:
            return _unknown_source(self.model, request, secret)
        return await _raise_event(self.model, request, team, team.secrets[secret])


def _unknown_source(model: Signl4Model, request: Request, reference: str) -> Response:
    """The real answer to a wrong secret (ref §1.6), throttled at the "10 per min" of bad requests (§1.7)."""
    decision = model.check_invalid_limit(client_key(request))
    if not decision.allowed:
        return error_response(429, "Error raising event.", _TOO_MANY, headers=rate_headers(decision))
    return error_response(404, "Error raising event.", f"An event source with ID {reference} was not found.",
                          code=3004, headers=rate_headers(decision))


async def _raise_event(model: Signl4Model, request: Request, team: Team, event_source_id: str | None) -> Response:
    """Decode, throttle and process one inbound event; 201 ``{"eventId": …}`` on success (ref §1.6)."""
    body = await request.body()
    rules = model.inbound_rejections
    if rules.too_large(len(body)):
        # As a front end answers before the application sees the body: plain text, no throttling headers.
        return PlainTextResponse(f"Request Entity Too Large: the body has {len(body)} bytes, more than "
                                 f"{rules.max_body_bytes}.", status_code=413)
    try:
        params = decode_payload(request.headers.get("content-type"), body)
        rejected = rules.rejected_field(params)
        if rejected is not None:
            raise PayloadError(f"The field {rejected!r} is not accepted.")
    except PayloadError as exc:
        decision = model.check_invalid_limit(client_key(request))
        if not decision.allowed:
            return error_response(429, "Error raising event.", _TOO_MANY, headers=rate_headers(decision))
        return error_response(400, "Error raising event.",
                              f"The submitted body is invalid and not in the format specified in the content-type. "
                              f"{exc}", headers=rate_headers(decision))
    decision = model.check_event_limit(team.subscription_id)
    if not decision.allowed:
        return error_response(429, "Error raising event.", _TOO_MANY, headers=rate_headers(decision))
    event = model.raise_event(team.id, params, mapping=status_mapping(request), event_source_id=event_source_id)
    return JSONResponse({"eventId": event.id}, status_code=201, headers=rate_headers(decision))


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
        key = request.headers.get("x-s4-api-key") or folded(request.query_params).get("x-s4-api-key")
        subscription_id = self.model.subscription_for_api_key(key) if key else None
        if subscription_id is None:
            raise HttpError(401, "Authorization failed.",
                             "The X-S4-Api-Key header is missing or does not name a valid API key.")
        return subscription_id

    def _guard(self, request: Request) -> str:
        """Authenticate and count one call against the REST limit (ref §1.7). The ``X-RateLimit-*`` headers are
        documented for the webhook only, so REST answers do not carry them."""
        subscription_id = self._authenticate(request)
        if not self.model.check_rest_limit(subscription_id).allowed:
            raise HttpError(429, "Too many requests.", _TOO_MANY)
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

    async def list_annotations_v1(self, request: Request) -> Response:
        """v1 ``GET /alerts/{id}/annotations`` → ``[AlertAnnotationInfo]`` (ref §3.3, [OFFICIAL])."""
        if not self.model.behaviour.serves_v1_annotations:
            return await unknown_api_route(request)
        subscription_id = self._guard(request)
        alert = self.model.get_alert(request.path_params["alert_id"], subscription_id)
        if not alert.annotations:
            return Response(status_code=204)  # v1: "204 No annotations were found for the alert." (ref §3.3)
        return JSONResponse([annotation_v1_json(a) for a in alert.annotations])

    async def timeline(self, request: Request) -> Response:
        """v2 ``GET /v2/alerts/{id}/timeline`` (ref §3.3, [DERIVED]; entry shape: ``timeline_json``)."""
        if not self.model.behaviour.serves_v2_timeline:
            return await unknown_api_route(request)
        subscription_id = self._guard(request)
        return JSONResponse(timeline_json(self.model.get_alert(request.path_params["alert_id"], subscription_id)))

    async def acknowledge(self, request: Request) -> Response:
        return await self._change_status(request, self.model.acknowledge)

    async def close(self, request: Request) -> Response:
        return await self._change_status(request, self.model.close)

    async def _change_status(self, request: Request, action: Callable[[str, str, str | None], Alert]) -> Response:
        """v1 body ``{userId, description}``; MindCloud's v2 digest names them ``{uid, descr}`` (ref §3.3,
        [DERIVED], open question 1): both are accepted."""
        subscription_id = self._guard(request)
        alert = self.model.get_alert(request.path_params["alert_id"], subscription_id)
        body = folded(await json_object(request))
        user = body.get("userid") or body.get("uid")
        description = body.get("description") or body.get("descr")
        if not isinstance(user, str) or not user:
            raise HttpError(400, "Required information could not be found in the request.",
                             "userId (or uid) is required with API key authentication.")
        if description is not None and not isinstance(description, str):
            raise HttpError(400, "The submitted body is invalid.", "description must be a string.")
        self.model.find_user(subscription_id, user)
        return JSONResponse(alert_json(action(alert.id, user, description)))

    async def annotate(self, request: Request) -> Response:
        """``{type: 1, text, userId}`` → ``{id, teamId, text, timestamp, type, userId}`` (ref §3.3, [DERIVED])."""
        subscription_id = self._guard(request)
        alert = self.model.get_alert(request.path_params["alert_id"], subscription_id)
        body = folded(await json_object(request))
        user, text, kind = body.get("userid"), body.get("text"), body.get("type", int(AnnotationType.TEXT))
        if not isinstance(user, str) or not user or not isinstance(text, str):
            raise HttpError(400, "Required information could not be found in the request.",
                             "userId and text are required.")
        if kind not in {t.value for t in AnnotationType} or isinstance(kind, bool):
            raise HttpError(400, "The submitted body is invalid.", f"Unknown annotation type {kind!r}.")
        self.model.find_user(subscription_id, user)
        return JSONResponse(annotation_json(self.model.annotate(alert.id, user, text, AnnotationType(kind))))

    async def search_alerts(self, request: Request) -> Response:
        """``POST /v2/alerts/paged`` (ref §3.3): 200 with a page, 204 when nothing matches."""
        subscription_id = self._guard(request)
        query_params = folded(request.query_params)
        user_id = query_params.get("userid")
        if not user_id:
            raise HttpError(400, "Required information could not be found in the request.",
                             "userId is required when using SIGNL4 API key authentication.")
        max_results = _page_size(query_params.get("maxresults"))
        query, cursor = parse_alert_filter(await json_object(request, required=False))
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
        raise HttpError(400, "The submitted request is invalid.",
                         f"maxResults must be between 1 and {MAX_PAGE_SIZE}, not {raw!r}.")
    return size


def parse_alert_filter(body: Mapping[str, Any]) -> tuple[AlertQuery, str | None]:
    """The paged-search body, in either spelling: the official sample's ``teamid``/``modSince`` and the v2 swagger's
    ``teamIds``/``modifiedSince`` (ref §3.3). Unknown fields are ignored, as ASP.NET does."""
    fields = folded(body)
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
    show_hidden = fields.get("showpersonalhiddencategories", False)
    if not isinstance(show_hidden, bool):
        problems.append(("Invalid showPersonalHiddenCategories.", "showPersonalHiddenCategories must be a boolean."))
        show_hidden = False
    mode = fields.get("usercreatedalertsfiltermode") or 0
    if mode not in (0, 1, 2) or isinstance(mode, bool):
        problems.append(("Invalid userCreatedAlertsFilterMode.", "Must be 0, 1 or 2."))
    if text("afterid"):
        # The meaning of afterId is undocumented; refusing it beats silently returning a different result.
        problems.append(("Unsupported afterId.", "The emulator does not implement afterId; use continuationToken."))
    token = fields.get("continuationtoken")
    cursor = None
    if isinstance(token, dict):
        row_key = folded(token).get("nextrowkey")
        cursor = row_key if isinstance(row_key, str) and row_key else None
    elif token is not None:
        problems.append(("Invalid continuationToken.", "continuationToken must be an object."))
    query = AlertQuery(
        team_ids=team_ids, alert_ids=strings("alertids"), category_ids=strings("categoryids"),
        external_id=text("externalid"), status_mask=status_mask, min_created=moment("mincreated"),
        max_created=moment("maxcreated"), modified_since=moment("modifiedsince", "modsince"),
        text=text("texttosearch"), only_user_created=mode == 2, show_hidden_categories=show_hidden,
    )
    if problems:
        raise HttpError(400, "The submitted filter is invalid.", problems[0][1], errors=problems)
    return query, cursor
