"""``/_control/signl4``: the SIGNL4 emulator's control plane (set-up, scripted user actions, what was sent)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sentinel_signl4_emulators.signl4.http import HttpError, json_object
from sentinel_signl4_emulators.signl4.model import (
    Alert,
    Behaviour,
    InboundRejections,
    NotFoundError,
    RateLimit,
    RateLimitPolicy,
    Signl4Model,
    Team,
    limits_for_plan,
)
from sentinel_signl4_emulators.signl4.shapes import (
    alert_details_json,
    annotation_json,
    team_json,
    user_json,
    webhook_json,
)

__all__ = ["ControlPlane"]


def _limits_from_json(items: Any, name: str) -> tuple[RateLimit, ...]:
    if not isinstance(items, list) or not items:
        raise HttpError(400, f"Invalid {name}.", f"{name} must be a non-empty list of {{limit, windowSeconds}}.")
    try:
        return tuple(RateLimit(int(i["limit"]), timedelta(seconds=float(i["windowSeconds"]))) for i in items)
    except (KeyError, TypeError, ValueError) as exc:
        raise HttpError(400, f"Invalid {name}.", str(exc)) from None


def _limits_json(tiers: tuple[RateLimit, ...]) -> list[dict[str, Any]]:
    return [{"limit": t.limit, "windowSeconds": t.window.total_seconds()} for t in tiers]


def _string(body: Mapping[str, Any], key: str, *, required: bool = True) -> str | None:
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value:
        raise HttpError(400, f"Invalid {key}.", f"{key} must be a non-empty string.")
    return value


class ControlPlane:
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
    GET/PUT   /behaviour                             ``{annotationPaths?: "v1"|"v2_timeline"|"both"|"none",
                                                     ignoredSearchFilters?: ["externalId", "modifiedSince"]}``
    PUT       /users/{idOrMail}/hidden-categories    ``{categories: [name]}``: hidden from that user's searches
                                                     unless ``showPersonalHiddenCategories`` is true
    GET/PUT   /inbound-rejections                    ``{maxBodyBytes?: int|null, rejectFields?: [str]}``:
                                                     event bodies above N bytes get 413, bodies with one
                                                     of the fields 400 (ErrorResponseContent)
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
            Route("/behaviour", self.behaviour, methods=["GET", "PUT"]),
            Route("/users/{user}/hidden-categories", self.hidden_categories, methods=["PUT"]),
            Route("/inbound-rejections", self.inbound_rejections, methods=["GET", "PUT"]),
        ]

    async def reset(self, _request: Request) -> Response:
        self.model.reset()
        return Response(status_code=204)

    async def create_subscription(self, request: Request) -> Response:
        body = await json_object(request, required=False)
        subscription = self.model.create_subscription(_string(body, "id", required=False),
                                                      plan=_string(body, "plan", required=False))
        return JSONResponse({"id": subscription.id, "plan": subscription.plan}, status_code=201)

    async def create_team(self, request: Request) -> Response:
        body = await json_object(request)
        team = self.model.create_team(_string(body, "subscriptionId") or "", _string(body, "name") or "",
                                      team_id=_string(body, "id", required=False),
                                      secret=_string(body, "secret", required=False))
        return JSONResponse(_team_control_json(team), status_code=201)

    async def add_secret(self, request: Request) -> Response:
        body = await json_object(request, required=False)
        secret = self.model.add_team_secret(request.path_params["team_id"], _string(body, "secret", required=False))
        return JSONResponse({"secret": secret, "webhookPath": f"/webhook/{secret}"}, status_code=201)

    async def add_member(self, request: Request) -> Response:
        body = await json_object(request)
        self.model.add_member(request.path_params["team_id"], _string(body, "userId") or "")
        return JSONResponse(_team_control_json(self.model.get_team(request.path_params["team_id"])))

    async def create_user(self, request: Request) -> Response:
        body = await json_object(request)
        team_ids = body.get("teamIds", [])
        if not isinstance(team_ids, list) or not all(isinstance(t, str) for t in team_ids):
            raise HttpError(400, "Invalid teamIds.", "teamIds must be a list of strings.")
        user = self.model.create_user(_string(body, "subscriptionId") or "", _string(body, "name") or "",
                                      _string(body, "mail") or "", user_id=_string(body, "id", required=False),
                                      team_ids=team_ids)
        return JSONResponse(user_json(user), status_code=201)

    async def create_api_key(self, request: Request) -> Response:
        body = await json_object(request)
        subscription_id = _string(body, "subscriptionId") or ""
        key = self.model.create_api_key(subscription_id, _string(body, "key", required=False))
        return JSONResponse({"key": key, "subscriptionId": subscription_id}, status_code=201)

    async def webhooks(self, request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse([webhook_json(w) for w in self.model.list_webhooks()])
        body = await json_object(request)
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
            raise HttpError(404, "Unknown action.", "Use acknowledge, close, annotate or escalate.")
        body = await json_object(request)
        alert = self._target(body)
        if action == "escalate":
            self.model.escalate(alert.id)
        else:
            user = _string(body, "user", required=False) or _string(body, "userId", required=False)
            if user is None:
                raise HttpError(400, "Invalid user.", f"{action} needs a user (id or mail).")
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
            raise HttpError(400, "Invalid target.", "Give alertId or externalId.")
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
            body = await json_object(request)
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

    async def inbound_rejections(self, request: Request) -> Response:
        if request.method == "PUT":
            body = await json_object(request, required=False)
            fields = body.get("rejectFields", [])
            if not isinstance(fields, list):
                raise HttpError(400, "Invalid rejectFields.", "rejectFields must be a list of non-empty strings.")
            try:
                rules = InboundRejections.of(body.get("maxBodyBytes"), fields)
            except ValueError as exc:
                raise HttpError(400, "Invalid inbound rejections.", str(exc)) from None
            self.model.set_inbound_rejections(rules)
        rules = self.model.inbound_rejections
        return JSONResponse({"maxBodyBytes": rules.max_body_bytes, "rejectFields": sorted(rules.fields)})


    async def behaviour(self, request: Request) -> Response:
        """The knobs of ``signl4.behaviour``; a PUT changes only the fields it names."""
        current = self.model.behaviour
        if request.method == "PUT":
            body = await json_object(request)
            paths = body.get("annotationPaths", current.annotation_paths)
            ignored = body.get("ignoredSearchFilters", sorted(current.ignored_search_filters))
            if not isinstance(ignored, list) or not all(isinstance(f, str) for f in ignored):
                raise HttpError(400, "Invalid ignoredSearchFilters.", "ignoredSearchFilters must be a list of names.")
            try:
                current = Behaviour(annotation_paths=paths, ignored_search_filters=frozenset(ignored))
            except ValueError as exc:
                raise HttpError(400, "Invalid behaviour.", str(exc)) from None
            self.model.set_behaviour(current)
        return JSONResponse({"annotationPaths": current.annotation_paths,
                             "ignoredSearchFilters": sorted(current.ignored_search_filters)})

    async def hidden_categories(self, request: Request) -> Response:
        body = await json_object(request)
        categories = body.get("categories")
        if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
            raise HttpError(400, "Invalid categories.", "categories must be a list of category names.")
        self.model.hide_categories(request.path_params["user"], categories)
        return Response(status_code=204)


def _team_control_json(team: Team) -> dict[str, Any]:
    return {**team_json(team), "secrets": list(team.secrets),
            "webhookPaths": [f"/webhook/{s}" for s in team.secrets]}


def _alert_control_json(alert: Alert) -> dict[str, Any]:
    return {**alert_details_json(alert), "category": alert.category,
            "annotations": [annotation_json(a) for a in alert.annotations]}
