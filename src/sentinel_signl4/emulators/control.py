"""The emulator's control plane, ``/_control/…``: reset, faults, setup and scripted analyst actions.

Only the emulator serves these routes and they need no authentication. Fault rules never apply to them.

=======  =============================================  ========================================================
POST     /_control/reset                                forget everything (all services, faults)
POST     /_control/seed                                 ``{"scenario": "demo"}`` → the demo world's ids/secrets
GET      /_control/faults                               active fault rules with their fire counts
POST     /_control/faults                               add a FaultRule (``{path, method, kind, status, …}``)
DELETE   /_control/faults                               remove all fault rules
GET      /_control/state                                summary of every service's state
POST     /_control/entra/revoke-tokens                  ``{"clientId"?}``: issued tokens stop working
POST     /_control/sentinel/workspaces                  workspace + apps (with roles) + directory users
POST     /_control/sentinel/incidents                   seed one incident (``workspace`` + properties)
GET      /_control/sentinel/incidents?workspace=…       every incident of the workspace
POST     /_control/sentinel/incidents/{name}/analyst-edit   a human edit (owner, labels, status, …)
POST     /_control/sentinel/incidents/{name}/comments   ``{"message", "analyst"}``: a human comment
POST     /_control/sentinel/incidents/{name}/merge      ``{"into": name}``: Defender merges the incident
GET|PUT  /_control/sentinel/throttle                    ``{"reads"|"writes": {capacity, refillPerSecond}}``
=======  =============================================  ========================================================

``workspace`` is a workspace resource id, ``subscription/resourceGroup/name`` or a name unique in the emulator.
The SIGNL4 emulator brings its own ``/_control/signl4/…`` routes.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from functools import wraps
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sentinel_signl4.domain.enums import Severity
from sentinel_signl4.emulators.faults import FaultRule
from sentinel_signl4.emulators.sentinel_model import (
    UNSET,
    EntitySeed,
    Role,
    SecurityAlertSeed,
    SentinelError,
    WorkspaceRef,
)
from sentinel_signl4.emulators.throttle import BucketPolicy

if TYPE_CHECKING:
    from sentinel_signl4.emulators.app import EmulatorState

__all__ = ["control_routes"]

Endpoint = Callable[[Request], Awaitable[Response]]


class _ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _endpoint(handler: Endpoint) -> Endpoint:
    """Turn bad input into 400 and unknown things into 404, with ``{"error": message}``."""

    @wraps(handler)
    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except _ControlError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        except SentinelError as exc:
            return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status_code=exc.status)
        except KeyError as exc:
            return JSONResponse({"error": str(exc.args[0] if exc.args else exc)}, status_code=404)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    return run


def control_routes(state: EmulatorState) -> list[BaseRoute]:
    plane = _ControlPlane(state)
    routes = [
        ("/_control/reset", plane.reset, ["POST"]),
        ("/_control/seed", plane.seed, ["POST"]),
        ("/_control/faults", plane.faults, ["GET", "POST", "DELETE"]),
        ("/_control/state", plane.summary, ["GET"]),
        ("/_control/entra/revoke-tokens", plane.revoke_tokens, ["POST"]),
        ("/_control/sentinel/workspaces", plane.create_workspace, ["POST"]),
        ("/_control/sentinel/incidents", plane.incidents, ["GET", "POST"]),
        ("/_control/sentinel/incidents/{name}/analyst-edit", plane.analyst_edit, ["POST"]),
        ("/_control/sentinel/incidents/{name}/comments", plane.analyst_comment, ["POST"]),
        ("/_control/sentinel/incidents/{name}/merge", plane.merge, ["POST"]),
        ("/_control/sentinel/throttle", plane.throttle, ["GET", "PUT"]),
    ]
    return [Route(path, _endpoint(handler), methods=methods) for path, handler, methods in routes]


class _ControlPlane:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    async def reset(self, _request: Request) -> Response:
        self.state.reset()
        return Response(status_code=204)

    async def seed(self, request: Request) -> Response:
        from sentinel_signl4.emulators.seed import seed_demo  # the seed imports models only; kept lazy

        body = await _body(request, required=False)
        scenario = body.get("scenario", "demo")
        if scenario != "demo":
            raise _ControlError(400, f"unknown scenario {scenario!r}; known: 'demo'")
        world = seed_demo(self.state, self.state.clock())
        return JSONResponse(world.to_json(), status_code=201)

    async def faults(self, request: Request) -> Response:
        injector = self.state.faults
        if request.method == "DELETE":
            injector.clear()
            return Response(status_code=204)
        if request.method == "POST":
            rule = injector.add(FaultRule.from_json(await _body(request)))
            return JSONResponse(rule.to_json(), status_code=201)
        return JSONResponse({"rules": [rule.to_json() for rule in injector.rules()]})

    async def summary(self, _request: Request) -> Response:
        entra, sentinel = self.state.entra, self.state.sentinel
        return JSONResponse(
            {
                "entra": {
                    "tenants": [
                        {
                            "tenantId": t.tenant_id,
                            "apps": [{"clientId": a.client_id, "displayName": a.display_name} for a in t.apps.values()],
                            "users": [u.user_principal_name for u in t.users.values()],
                        }
                        for t in entra.tenants()
                    ],
                    "tokensIssued": len(entra.tokens()),
                },
                "sentinel": {
                    "workspaces": [
                        {
                            "id": ws.ref.resource_id,
                            "workspaceId": ws.workspace_id,
                            "tenantId": ws.tenant_id,
                            "incidents": len(ws.incidents),
                        }
                        for ws in sentinel.workspaces()
                    ]
                },
                "faults": [rule.to_json() for rule in self.state.faults.rules()],
            }
        )

    async def revoke_tokens(self, request: Request) -> Response:
        body = await _body(request, required=False)
        revoked = self.state.entra.revoke_tokens(_str(body, "clientId"))
        return JSONResponse({"revoked": revoked})

    async def create_workspace(self, request: Request) -> Response:
        body = await _body(request)
        entra, sentinel = self.state.entra, self.state.sentinel
        tenant = entra.add_tenant(_str(body, "tenantId"))
        ws = sentinel.create_workspace(
            _str(body, "subscriptionId") or str(uuid.uuid4()),
            _required(body, "resourceGroup"),
            _required(body, "workspaceName"),
            tenant_id=tenant.tenant_id,
            workspace_id=_str(body, "workspaceId"),
        )
        apps = []
        for spec in _list(body, "apps"):
            secret = _str(spec, "clientSecret") or secrets.token_urlsafe(30)
            app = entra.register_app(
                tenant.tenant_id,
                client_id=_str(spec, "clientId"),
                display_name=_str(spec, "displayName") or "sentinel-signl4",
                secret=secret,
                certificate_pem=_str(spec, "certificatePem"),
            )
            role = _str(spec, "role") or Role.RESPONDER.value
            sentinel.assign_role(app.client_id, ws.ref, Role(role))
            apps.append({"clientId": app.client_id, "clientSecret": secret, "objectId": app.object_id, "role": role})
        users = [
            {
                "objectId": user.object_id,
                "userPrincipalName": user.user_principal_name,
                "displayName": user.display_name,
                "mail": user.mail,
            }
            for user in (
                entra.add_user(
                    tenant.tenant_id,
                    user_principal_name=_required(spec, "userPrincipalName"),
                    display_name=_str(spec, "displayName") or _required(spec, "userPrincipalName"),
                    mail=_str(spec, "mail"),
                    object_id=_str(spec, "objectId"),
                )
                for spec in _list(body, "users")
            )
        ]
        return JSONResponse(
            {
                "tenantId": tenant.tenant_id,
                "subscriptionId": ws.ref.subscription_id,
                "resourceGroup": ws.ref.resource_group,
                "workspaceName": ws.ref.name,
                "workspaceId": ws.workspace_id,
                "resourceId": ws.ref.resource_id,
                "apps": apps,
                "users": users,
            },
            status_code=201,
        )

    async def incidents(self, request: Request) -> Response:
        sentinel = self.state.sentinel
        if request.method == "GET":
            ws = sentinel.workspace_named(request.query_params.get("workspace", ""))
            return JSONResponse({"value": sentinel.list_incidents(ws.ref)})
        body = await _body(request)
        ws = sentinel.workspace_named(_required(body, "workspace"))
        incident = sentinel.create_incident(
            ws.ref,
            title=_required(body, "title"),
            severity=_required(body, "severity"),
            status=_str(body, "status") or "New",
            created=_time(body, "createdTimeUtc"),
            description=_str(body, "description"),
            labels=_strings(body, "labels"),
            auto_labels=_strings(body, "autoLabels"),
            owner=_str(body, "owner"),
            classification=_str(body, "classification"),
            classification_reason=_str(body, "classificationReason"),
            classification_comment=_str(body, "classificationComment"),
            provider_name=_str(body, "providerName") or "Azure Sentinel",
            provider_incident_id=_str(body, "providerIncidentId"),
            provider_incident_url=_str(body, "providerIncidentUrl"),
            alerts=[_alert(spec, self.state.clock()) for spec in _list(body, "alerts")],
            entities=[
                EntitySeed(kind=_required(spec, "kind"), properties=_dict(spec, "properties"))
                for spec in _list(body, "entities")
            ],
            tactics=_strings(body, "tactics"),
            product_names=_strings(body, "productNames"),
            name=_str(body, "name"),
        )
        return JSONResponse(incident, status_code=201)

    async def analyst_edit(self, request: Request) -> Response:
        body = await _body(request)
        sentinel = self.state.sentinel
        name = request.path_params["name"]
        ref = self._incident_workspace(body, name)

        def given(key: str) -> Any:
            if key not in body:
                return UNSET
            return _str(body, key)  # a string, or null to clear

        incident = sentinel.update_incident_as_analyst(
            ref, name,
            title=given("title"),
            severity=given("severity"),
            status=given("status"),
            description=given("description"),
            owner=given("owner"),
            labels=_strings(body, "labels") if "labels" in body else UNSET,
            add_labels=_strings(body, "addLabels"),
            classification=given("classification"),
            classification_reason=given("classificationReason"),
            classification_comment=given("classificationComment"),
        )
        return JSONResponse(incident)

    async def analyst_comment(self, request: Request) -> Response:
        body = await _body(request)
        name = request.path_params["name"]
        ref = self._incident_workspace(body, name)
        comment = self.state.sentinel.add_comment_as_analyst(
            ref, name, _required(body, "message"), analyst=_required(body, "analyst")
        )
        return JSONResponse(comment, status_code=201)

    async def merge(self, request: Request) -> Response:
        body = await _body(request)
        name = request.path_params["name"]
        ref = self._incident_workspace(body, name)
        return JSONResponse(self.state.sentinel.merge_incidents(ref, name, _required(body, "into")))

    async def throttle(self, request: Request) -> Response:
        buckets = self.state.sentinel.throttle
        if request.method == "PUT":
            body = await _body(request)
            for kind, spec in body.items():
                if kind not in buckets.policies() or not isinstance(spec, dict):
                    raise _ControlError(400, f"unknown operation type {kind!r}; known: {sorted(buckets.policies())}")
                buckets.configure(kind, BucketPolicy(float(spec["capacity"]), float(spec["refillPerSecond"])))
        return JSONResponse(
            {k: {"capacity": p.capacity, "refillPerSecond": p.refill_per_second} for k, p in buckets.policies().items()}
        )

    def _incident_workspace(self, body: Mapping[str, Any], name: str) -> WorkspaceRef:
        workspace = _str(body, "workspace")
        if workspace:
            return self.state.sentinel.workspace_named(workspace).ref
        return self.state.sentinel.find_incident(name)[0]


# --- body helpers ----------------------------------------------------------------------------------------------


async def _body(request: Request, *, required: bool = True) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        if required:
            raise _ControlError(400, "a JSON object body is required")
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise _ControlError(400, f"invalid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise _ControlError(400, "the body must be a JSON object")
    return body


def _str(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise _ControlError(400, f"{key!r} must be a string")
    return value


def _required(body: Mapping[str, Any], key: str) -> str:
    value = _str(body, key)
    if not value:
        raise _ControlError(400, f"{key!r} is required")
    return value


def _strings(body: Mapping[str, Any], key: str) -> list[str]:
    value = body.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _ControlError(400, f"{key!r} must be an array of strings")
    return value


def _list(body: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    value = body.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise _ControlError(400, f"{key!r} must be an array of objects")
    return value


def _dict(body: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key) or {}
    if not isinstance(value, dict):
        raise _ControlError(400, f"{key!r} must be an object")
    return value


def _time(body: Mapping[str, Any], key: str) -> datetime | None:
    text = _str(body, key)
    if text is None:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise _ControlError(400, f"{key!r} needs a UTC offset")
    return moment


def _alert(spec: Mapping[str, Any], now: datetime) -> SecurityAlertSeed:
    return SecurityAlertSeed(
        display_name=_required(spec, "displayName"),
        severity=Severity(_required(spec, "severity")),
        product_name=_str(spec, "productName") or "Azure Sentinel",
        time_generated=_time(spec, "timeGenerated") or now,
        system_alert_id=_str(spec, "systemAlertId") or str(uuid.uuid4()),
        tactics=tuple(_strings(spec, "tactics")),
        description=_str(spec, "description") or "",
        compromised_entity=_str(spec, "compromisedEntity") or "",
    )
