"""Wire format of the Log Analytics query emulator: ``POST|GET /v1/workspaces/{workspaceId}/query``.

In the service's order [order unverified]: authenticate the bearer token (audience ``api.loganalytics.io``),
find the workspace and check the caller's role on it, admit the query (200 per 30 s per principal), wait for one
of the principal's 5 concurrent slots (429 after the queue timeout), run it, and answer ``{"tables": [...]}``
— with an ``error`` member for a partial result, 400 ``BadArgumentError`` for a query the engine rejects, 504
when it runs longer than ``Prefer: wait=<seconds>``. Error bodies follow the documented shapes
(reference microsoft-apis.md §2.3): ``{"error": {"message", "code", "innererror"?}}``.

Quirks kept on purpose: a POST without ``Content-Type: application/json`` or without a body gets an *empty*
200 (documented); ``timespan`` may be ``PT48H``, ``PT86400.0S`` (what azure-monitor-query sends for a
``timedelta``), ``P1D`` or ``start/end``; ``workspaces: null`` and an empty ``Prefer`` header are accepted.

Control plane (never faulted): ``POST /_control/loganalytics/faults`` ``{"kind", "count", "retry_after",
"delay"}``, ``POST /_control/loganalytics/latency`` ``{"seconds"}``, ``GET /_control/loganalytics/queries``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from typing import Any, Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sentinel_signl4_emulators.entra.model import BearerError, BearerProblem, EntraModel, TokenInfo
from sentinel_signl4_emulators.loganalytics.model import (
    LA_AUDIENCES,
    Fault,
    FaultKind,
    LogAnalyticsModel,
    QueryError,
    QueryResult,
    cell,
)

__all__ = ["QUERY_PATH", "build_loganalytics_app", "loganalytics_routes"]

QUERY_PATH: Final = "/v1/workspaces/{workspace_id}/query"

_POLL = 0.005  # seconds between checks for a free concurrency slot


def loganalytics_routes(model: LogAnalyticsModel, entra: EntraModel) -> list[Route]:
    """The query and control routes, with full paths (mount them on the shared origin)."""
    api = _QueryApi(model, entra)
    return [
        Route(QUERY_PATH, api.query, methods=["GET", "POST"]),
        Route("/v1/{rest:path}", api.not_found, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
        Route("/_control/loganalytics/faults", api.add_fault, methods=["POST"]),
        Route("/_control/loganalytics/latency", api.set_latency, methods=["POST"]),
        Route("/_control/loganalytics/queries", api.list_queries, methods=["GET"]),
    ]


def build_loganalytics_app(model: LogAnalyticsModel, entra: EntraModel) -> Starlette:
    """A standalone Starlette app serving the Log Analytics emulator."""
    return Starlette(routes=loganalytics_routes(model, entra))


def _error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


def _query_error(exc: QueryError) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return _error(exc.status, exc.body, headers)


def _bearer_error(problem: BearerError) -> Response:
    # 401 for a missing header and 403 for a rejected token, as the API errors page lists them [doc]; the
    # messages for the 403 cases are [unverified].
    if problem.problem is BearerProblem.MISSING:
        return _error(401, {"error": {"code": "AuthenticationFailed",
                                      "message": "Authentication failed. The 'Authorization' header is missing."}})
    if problem.problem is BearerProblem.WRONG_AUDIENCE:
        return _error(403, {"error": {"code": "InvalidAuthenticationTokenAudience",
                                      "message": "The access token audience is not valid for this resource."}})
    reason = "has expired" if problem.problem is BearerProblem.EXPIRED else "is not valid"
    return _error(403, {"error": {"code": "InvalidAuthenticationToken",
                                  "message": f"The provided authentication token {reason}."}})


def _prefer_wait(header: str | None) -> float | None:
    match = re.search(r"(?:^|,)\s*wait\s*=\s*(\d+)", header or "")
    return float(match.group(1)) if match else None


class _QueryApi:
    def __init__(self, model: LogAnalyticsModel, entra: EntraModel) -> None:
        self.model = model
        self.entra = entra

    async def not_found(self, _request: Request) -> Response:
        return _error(404, {"error": {"message": "The requested path does not exist", "code": "PathNotFoundError"}})

    async def query(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        caller = self.entra.validate_bearer(request.headers.get("authorization"), LA_AUDIENCES)
        if not isinstance(caller, TokenInfo):
            return _bearer_error(caller)
        workspace_id = request.path_params["workspace_id"]
        parsed = await self._parse(request)
        if parsed is None:
            return Response(status_code=200)  # documented: no JSON content type or no body → empty 200
        if isinstance(parsed, Response):
            return parsed
        text, timespan, body = parsed
        status = 200
        try:
            readable = self.model.authorise(workspace_id, caller.client_id)
            self.model.admit(caller.client_id)
            fault = self.model.next_fault()
            if fault is not None and fault.kind is FaultKind.THROTTLE:
                self.model.give_up(caller.client_id)
                raise QueryError(429, "ThrottledError", "Injected fault: throttled.", retry_after=fault.retry_after)
            try:
                await self._wait_for_slot(caller.client_id)
            except asyncio.CancelledError:
                self.model.give_up(caller.client_id)  # the caller hung up while queued
                raise
            try:
                response = await self._run(workspace_id, text, timespan, fault, request, readable)
            finally:
                self.model.finish(caller.client_id)
        except QueryError as exc:
            status = exc.status
            response = _query_error(exc)
        else:
            status = response.status_code
        self.model.record(workspace_id, caller.client_id, text, timespan, status, body=body,
                          prefer=request.headers.get("prefer"))
        response.headers["x-ms-request-id"] = request_id
        return response

    async def _parse(self, request: Request) -> tuple[str, str | None, dict[str, Any] | None] | Response | None:
        if request.method == "GET":
            text = request.query_params.get("query")
            if not text:
                return _error(400, {"error": {"message": "The request had some invalid properties",
                                              "code": "BadArgumentError",
                                              "innererror": {"code": "QueryParameterMissing",
                                                             "message": "The 'query' parameter is required."}}})
            return text, request.query_params.get("timespan"), None
        body = await request.body()
        if not body or "application/json" not in request.headers.get("content-type", "").lower():
            return None
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if not isinstance(document, dict) or not isinstance(document.get("query"), str):
            return _error(400, {"error": {"message": "The request had some invalid properties",
                                          "code": "BadArgumentError",
                                          "innererror": {"code": "BodyInvalid",
                                                         "message": "The body must be a JSON object with a "
                                                                    "'query' string."}}})
        timespan = document.get("timespan")
        query_timespan = request.query_params.get("timespan")
        # Body and query string both set: the service uses the intersection [doc]; the emulator takes the
        # body's, which is what every client we know sends.
        return document["query"], str(timespan) if timespan else query_timespan, document

    async def _wait_for_slot(self, client_id: str) -> None:
        deadline = time.monotonic() + self.model.limits.queue_timeout
        while not self.model.try_start(client_id):
            if time.monotonic() >= deadline:
                raise self.model.give_up(client_id)
            await asyncio.sleep(_POLL)

    async def _run(self, workspace_id: str, text: str, timespan: str | None, fault: Fault | None,
                   request: Request, readable: frozenset[str] | None = None) -> Response:
        delay = self.model.latency + (fault.delay if fault is not None and fault.kind is FaultKind.SLOW else 0.0)
        wait = _prefer_wait(request.headers.get("prefer"))
        if wait is not None and delay > wait:
            await asyncio.sleep(wait)
            # Status as documented for a Prefer: wait overrun; the body wording is [unverified].
            return _error(504, {"error": {"code": "GatewayTimeout",
                                          "message": f"The query did not complete within {wait:g} seconds."}})
        if delay > 0:
            await asyncio.sleep(delay)
        result = self.model.run(workspace_id, text, timespan, fault, readable=readable)
        return JSONResponse(_results_body(result, request.headers.get("prefer")))

    async def add_fault(self, request: Request) -> Response:
        try:
            data = await request.json()
            fault = Fault(FaultKind(data["kind"]), int(data.get("count", 1)), int(data.get("retry_after", 1)),
                          float(data.get("delay", 0.0)))
        except (ValueError, KeyError, TypeError) as exc:
            return _error(400, {"error": {"code": "BadRequest", "message": f"invalid fault: {exc}"}})
        self.model.inject(fault)
        return JSONResponse({"kind": fault.kind.value, "count": fault.count}, status_code=201)

    async def set_latency(self, request: Request) -> Response:
        try:
            seconds = float((await request.json())["seconds"])
        except (ValueError, KeyError, TypeError) as exc:
            return _error(400, {"error": {"code": "BadRequest", "message": f"invalid latency: {exc}"}})
        self.model.latency = max(0.0, seconds)
        return JSONResponse({"seconds": self.model.latency})

    async def list_queries(self, _request: Request) -> Response:
        return JSONResponse({"value": [
            {"workspaceId": r.workspace_id, "clientId": r.client_id, "query": r.query, "timespan": r.timespan,
             "status": r.status, "at": r.at.isoformat()} for r in self.model.records()
        ], "maxConcurrent": self.model.max_concurrent_seen})


def _results_body(result: QueryResult, prefer: str | None) -> dict[str, Any]:
    table = result.table
    body: dict[str, Any] = {"tables": [{
        "name": "PrimaryResult",
        "columns": [{"name": name, "type": kind} for name, kind in table.columns],
        "rows": [[cell(row.get(name), kind) for name, kind in table.columns] for row in table.rows],
    }]}
    if prefer and "include-statistics=true" in prefer:
        body["statistics"] = {"query": {"executionTime": 0.01, "resourceUsage": {}}}
    if prefer and "include-render=true" in prefer:
        body["render"] = {}
    if result.error is not None:
        body["error"] = result.error
    return body
