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
GET|PUT  /_control/sentinel/write-limits                ``{"window"?, "limits"?: {"incidents"|"comments"|…: n}}``
                                                       → settings, ``granted`` and ``refused`` (429) counts
=======  =============================================  ========================================================

``workspace`` is a workspace resource id, ``subscription/resourceGroup/name`` or a name unique in the emulator.
The SIGNL4 emulator brings its own ``/_control/signl4/…`` routes.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sentinel_signl4_emulators.common.control_util import (
    ControlError,
    control_endpoint,
    json_body,
    object_list,
    object_value,
    optional_str,
    optional_time,
    required_str,
    string_list,
)
from sentinel_signl4_emulators.common.faults import FaultRule
from sentinel_signl4_emulators.common.throttle import BucketPolicy
from sentinel_signl4_emulators.seed import seed_demo
from sentinel_signl4_emulators.sentinel.model import (
    UNSET,
    EntitySeed,
    Role,
    SecurityAlertSeed,
    SentinelError,
    WorkspaceRef,
)
from sentinel_signl4_emulators.sentinel.vocab import Severity

if TYPE_CHECKING:
    from sentinel_signl4_emulators.state import EmulatorState

__all__ = ["control_routes"]

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
        ("/_control/sentinel/write-limits", plane.write_limits, ["GET", "PUT"]),
    ]
    return [Route(path, control_endpoint(handler, SentinelError), methods=methods) for path, handler, methods in routes]


class _ControlPlane:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    async def reset(self, _request: Request) -> Response:
        self.state.reset()
        return Response(status_code=204)

    async def seed(self, request: Request) -> Response:
        body = await json_body(request, required=False)
        scenario = body.get("scenario", "demo")
        if scenario != "demo":
            raise ControlError(400, f"unknown scenario {scenario!r}; known: 'demo'")
        world = seed_demo(self.state, self.state.clock())
        return JSONResponse(world.to_json(), status_code=201)

    async def faults(self, request: Request) -> Response:
        injector = self.state.faults
        if request.method == "DELETE":
            injector.clear()
            return Response(status_code=204)
        if request.method == "POST":
            rule = injector.add(FaultRule.from_json(await json_body(request)))
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
        body = await json_body(request, required=False)
        revoked = self.state.entra.revoke_tokens(optional_str(body, "clientId"))
        return JSONResponse({"revoked": revoked})

    async def create_workspace(self, request: Request) -> Response:
        body = await json_body(request)
        entra, sentinel = self.state.entra, self.state.sentinel
        tenant = entra.add_tenant(optional_str(body, "tenantId"))
        ws = sentinel.create_workspace(
            optional_str(body, "subscriptionId") or str(uuid.uuid4()),
            required_str(body, "resourceGroup"),
            required_str(body, "workspaceName"),
            tenant_id=tenant.tenant_id,
            workspace_id=optional_str(body, "workspaceId"),
        )
        apps = []
        for spec in object_list(body, "apps"):
            secret = optional_str(spec, "clientSecret") or secrets.token_urlsafe(30)
            app = entra.register_app(
                tenant.tenant_id,
                client_id=optional_str(spec, "clientId"),
                display_name=optional_str(spec, "displayName") or "sentinel-signl4",
                secret=secret,
                certificate_pem=optional_str(spec, "certificatePem"),
            )
            role = optional_str(spec, "role") or Role.RESPONDER.value
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
                    user_principal_name=required_str(spec, "userPrincipalName"),
                    display_name=optional_str(spec, "displayName") or required_str(spec, "userPrincipalName"),
                    mail=optional_str(spec, "mail"),
                    object_id=optional_str(spec, "objectId"),
                )
                for spec in object_list(body, "users")
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
        body = await json_body(request)
        ws = sentinel.workspace_named(required_str(body, "workspace"))
        incident = sentinel.create_incident(
            ws.ref,
            title=required_str(body, "title"),
            severity=required_str(body, "severity"),
            status=optional_str(body, "status") or "New",
            created=optional_time(body, "createdTimeUtc"),
            description=optional_str(body, "description"),
            labels=string_list(body, "labels"),
            auto_labels=string_list(body, "autoLabels"),
            owner=optional_str(body, "owner"),
            classification=optional_str(body, "classification"),
            classification_reason=optional_str(body, "classificationReason"),
            classification_comment=optional_str(body, "classificationComment"),
            provider_name=optional_str(body, "providerName") or "Azure Sentinel",
            provider_incident_id=optional_str(body, "providerIncidentId"),
            provider_incident_url=optional_str(body, "providerIncidentUrl"),
            alerts=[_alert(spec, self.state.clock()) for spec in object_list(body, "alerts")],
            entities=[
                EntitySeed(kind=required_str(spec, "kind"), properties=object_value(spec, "properties"))
                for spec in object_list(body, "entities")
            ],
            tactics=string_list(body, "tactics"),
            product_names=string_list(body, "productNames"),
            name=optional_str(body, "name"),
        )
        return JSONResponse(incident, status_code=201)

    async def analyst_edit(self, request: Request) -> Response:
        body = await json_body(request)
        sentinel = self.state.sentinel
        name = request.path_params["name"]
        ref = self._incident_workspace(body, name)

        def given(key: str) -> Any:
            if key not in body:
                return UNSET
            return optional_str(body, key)  # a string, or null to clear

        incident = sentinel.update_incident_as_analyst(
            ref, name,
            title=given("title"),
            severity=given("severity"),
            status=given("status"),
            description=given("description"),
            owner=given("owner"),
            labels=string_list(body, "labels") if "labels" in body else UNSET,
            add_labels=string_list(body, "addLabels"),
            classification=given("classification"),
            classification_reason=given("classificationReason"),
            classification_comment=given("classificationComment"),
        )
        return JSONResponse(incident)

    async def analyst_comment(self, request: Request) -> Response:
        body = await json_body(request)
        name = request.path_params["name"]
        ref = self._incident_workspace(body, name)
        comment = self.state.sentinel.add_comment_as_analyst(
            ref, name, required_str(body, "message"), analyst=required_str(body, "analyst")
        )
        return JSONResponse(comment, status_code=201)

    async def merge(self, request: Request) -> Response:
        body = await json_body(request)
        name = request.path_params["name"]
        ref = self._incident_workspace(body, name)
        return JSONResponse(self.state.sentinel.merge_incidents(ref, name, required_str(body, "into")))

    async def throttle(self, request: Request) -> Response:
        buckets = self.state.sentinel.throttle
        if request.method == "PUT":
            body = await json_body(request)
            for kind, spec in body.items():
                if kind not in buckets.policies() or not isinstance(spec, dict):
                    raise ControlError(400, f"unknown operation type {kind!r}; known: {sorted(buckets.policies())}")
                buckets.configure(kind, BucketPolicy(float(spec["capacity"]), float(spec["refillPerSecond"])))
        return JSONResponse(
            {k: {"capacity": p.capacity, "refillPerSecond": p.refill_per_second} for k, p in buckets.policies().items()}
        )

    async def write_limits(self, request: Request) -> Response:
        limits = self.state.sentinel.write_limits
        if request.method == "PUT":
            body = await json_body(request)
            window = body.get("window")
            counts = body.get("limits")
            if window is not None and not isinstance(window, int | float):
                raise ControlError(400, "'window' must be a number of seconds")
            if counts is not None and not (isinstance(counts, dict)
                                           and all(isinstance(v, int) for v in counts.values())):
                raise ControlError(400, "'limits' must map operations to whole numbers")
            limits.configure(window=float(window) if window is not None else None, limits=counts)
        return JSONResponse(limits.snapshot())

    def _incident_workspace(self, body: Mapping[str, Any], name: str) -> WorkspaceRef:
        workspace = optional_str(body, "workspace")
        if workspace:
            return self.state.sentinel.workspace_named(workspace).ref
        return self.state.sentinel.find_incident(name)[0]


def _alert(spec: Mapping[str, Any], now: datetime) -> SecurityAlertSeed:
    return SecurityAlertSeed(
        display_name=required_str(spec, "displayName"),
        severity=Severity(required_str(spec, "severity")),
        product_name=optional_str(spec, "productName") or "Azure Sentinel",
        time_generated=optional_time(spec, "timeGenerated") or now,
        system_alert_id=optional_str(spec, "systemAlertId") or str(uuid.uuid4()),
        tactics=tuple(string_list(spec, "tactics")),
        description=optional_str(spec, "description") or "",
        compromised_entity=optional_str(spec, "compromisedEntity") or "",
    )
