"""Control plane of the Graph emulator, ``/_control/graph/…``: seed, grant, merge, script analysts, inspect.

No authentication (only the emulator serves these), never faulted. ``tenantId`` may be omitted when the
directory holds exactly one tenant.

=======  ==================================================  ===================================================
GET      /_control/graph/state                               every tenant's incidents (expanded), grants, budget
POST     /_control/graph/reset                               forget incidents, alerts, grants, request counts
POST     /_control/graph/permissions                         ``{clientId, permissions: [...]}``: admin consent
POST     /_control/graph/permissions/revoke                  ``{clientId, permissions?}``: withdraw (all if absent)
POST     /_control/graph/users                               ``{userPrincipalName, displayName, mail?, id?}``
POST     /_control/graph/incidents                           ``{displayName, severity?, status?, alerts: [...]…}``
POST     /_control/graph/alerts                              ``{title, …, incidentId?}`` (new incident if absent)
POST     /_control/graph/merge                               ``{sourceId, targetId}``: Defender merges incidents
POST     /_control/graph/incidents/{id}/analyst-edit         ``{analyst, status?, assignedTo?, customTags?, …}``
POST     /_control/graph/incidents/{id}/comments             ``{analyst, comment}``
GET|PUT  /_control/graph/throttle                            ``{limit, windowSeconds}``
=======  ==================================================  ===================================================

Alert specs take the Graph property names: ``title, severity, status, serviceSource, detectionSource,
productName, category, mitreTechniques, description, createdDateTime, evidence, id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sentinel_signl4_emulators.common.control_util import (
    ControlError,
    control_endpoint,
    json_body,
    object_list,
    optional_str,
    optional_time,
    required_str,
    string_list,
)
from sentinel_signl4_emulators.entra.model import EntraModel
from sentinel_signl4_emulators.graph.model import AlertSeed, GraphError, GraphModel, Permission

__all__ = ["graph_control_routes"]

def graph_control_routes(model: GraphModel, entra: EntraModel) -> list[BaseRoute]:
    plane = _ControlPlane(model, entra)
    routes = [
        ("/_control/graph/state", plane.state, ["GET"]),
        ("/_control/graph/reset", plane.reset, ["POST"]),
        ("/_control/graph/permissions", plane.grant, ["POST"]),
        ("/_control/graph/permissions/revoke", plane.revoke, ["POST"]),
        ("/_control/graph/users", plane.add_user, ["POST"]),
        ("/_control/graph/incidents", plane.create_incident, ["POST"]),
        ("/_control/graph/alerts", plane.add_alert, ["POST"]),
        ("/_control/graph/merge", plane.merge, ["POST"]),
        ("/_control/graph/incidents/{id}/analyst-edit", plane.analyst_edit, ["POST"]),
        ("/_control/graph/incidents/{id}/comments", plane.analyst_comment, ["POST"]),
        ("/_control/graph/throttle", plane.throttle, ["GET", "PUT"]),
    ]
    return [Route(path, control_endpoint(handler, GraphError), methods=methods) for path, handler, methods in routes]


class _ControlPlane:
    def __init__(self, model: GraphModel, entra: EntraModel) -> None:
        self.model = model
        self.entra = entra

    async def state(self, _request: Request) -> Response:
        tenants = sorted(set(self.model.tenant_ids()) | {t.tenant_id for t in self.entra.tenants()})
        return JSONResponse({
            "tenants": {tid: {"incidents": self.model.incidents(tid)} for tid in tenants},
            "permissions": {
                app.client_id: sorted(p.value for p in self.model.permissions_of(app.client_id))
                for tenant in self.entra.tenants() for app in tenant.apps.values()
            },
            "throttle": self._budget(),
        })

    async def reset(self, _request: Request) -> Response:
        self.model.reset()
        return Response(status_code=204)

    async def grant(self, request: Request) -> Response:
        body = await json_body(request)
        client_id = required_str(body, "clientId")
        self.model.grant(client_id, [Permission(p) for p in string_list(body, "permissions")])
        return JSONResponse({"clientId": client_id,
                             "permissions": sorted(p.value for p in self.model.permissions_of(client_id))})

    async def revoke(self, request: Request) -> Response:
        body = await json_body(request)
        client_id = required_str(body, "clientId")
        permissions = [Permission(p) for p in string_list(body, "permissions")] if "permissions" in body else None
        self.model.revoke(client_id, permissions)
        return JSONResponse({"clientId": client_id,
                             "permissions": sorted(p.value for p in self.model.permissions_of(client_id))})

    async def add_user(self, request: Request) -> Response:
        body = await json_body(request)
        upn = required_str(body, "userPrincipalName")
        user = self.entra.add_user(self._tenant(body), user_principal_name=upn,
                                   display_name=optional_str(body, "displayName") or upn,
                                   mail=optional_str(body, "mail"), object_id=optional_str(body, "id"))
        return JSONResponse({"id": user.object_id, "userPrincipalName": user.user_principal_name,
                             "displayName": user.display_name, "mail": user.mail}, status_code=201)

    async def create_incident(self, request: Request) -> Response:
        body = await json_body(request)
        incident = self.model.create_incident(
            self._tenant(body),
            display_name=required_str(body, "displayName"),
            severity=optional_str(body, "severity"),
            status=optional_str(body, "status") or "active",
            created=optional_time(body, "createdDateTime"),
            alerts=[_alert_seed(spec) for spec in object_list(body, "alerts")],
            assigned_to=optional_str(body, "assignedTo"),
            classification=optional_str(body, "classification") or "unknown",
            determination=optional_str(body, "determination") or "unknown",
            custom_tags=string_list(body, "customTags"),
            system_tags=string_list(body, "systemTags"),
            description=optional_str(body, "description"),
            summary=optional_str(body, "summary"),
            incident_id=optional_str(body, "id"),
        )
        return JSONResponse(incident, status_code=201)

    async def add_alert(self, request: Request) -> Response:
        body = await json_body(request)
        alert = self.model.add_alert(self._tenant(body), _alert_seed(body),
                                     incident_id=optional_str(body, "incidentId"))
        return JSONResponse(alert, status_code=201)

    async def merge(self, request: Request) -> Response:
        body = await json_body(request)
        target = self.model.merge_incidents(self._tenant(body), required_str(body, "sourceId"),
                                            required_str(body, "targetId"))
        return JSONResponse(target)

    async def analyst_edit(self, request: Request) -> Response:
        body = await json_body(request)
        analyst = required_str(body, "analyst")
        changes = {k: v for k, v in body.items() if k not in ("analyst", "tenantId")}
        incident = self.model.update_incident(self._tenant(body), request.path_params["id"], changes,
                                              actor=analyst, include_unknown=True)
        return JSONResponse(incident)

    async def analyst_comment(self, request: Request) -> Response:
        body = await json_body(request)
        comments = self.model.add_incident_comment(self._tenant(body), request.path_params["id"],
                                                   required_str(body, "comment"), author=required_str(body, "analyst"))
        return JSONResponse({"value": comments}, status_code=201)

    async def throttle(self, request: Request) -> Response:
        if request.method == "PUT":
            body = await json_body(request)
            limit = body.get("limit")
            window = body.get("windowSeconds", 60)
            if not isinstance(limit, int) or not isinstance(window, int | float):
                raise ControlError(400, "'limit' must be an integer and 'windowSeconds' a number")
            self.model.configure_throttle(limit, float(window))
        return JSONResponse(self._budget())

    def _budget(self) -> dict[str, Any]:
        return {"limit": self.model.throttle_limit, "windowSeconds": self.model.throttle_window}

    def _tenant(self, body: Mapping[str, Any]) -> str:
        tenant = optional_str(body, "tenantId")
        if tenant:
            return tenant.lower()
        tenants = self.entra.tenants()
        if len(tenants) != 1:
            raise ControlError(400, "'tenantId' is required when the directory does not hold exactly one tenant")
        return tenants[0].tenant_id


def _alert_seed(spec: Mapping[str, Any]) -> AlertSeed:
    evidence = object_list(spec, "evidence")
    return AlertSeed(
        title=required_str(spec, "title"),
        severity=optional_str(spec, "severity") or "medium",
        status=optional_str(spec, "status") or "new",
        service_source=optional_str(spec, "serviceSource") or "microsoftDefenderForEndpoint",
        detection_source=optional_str(spec, "detectionSource") or "antivirus",
        product_name=optional_str(spec, "productName"),
        category=optional_str(spec, "category"),
        mitre_techniques=tuple(string_list(spec, "mitreTechniques")),
        description=optional_str(spec, "description") or "",
        created=optional_time(spec, "createdDateTime"),
        evidence=tuple(evidence),
        alert_id=optional_str(spec, "id"),
    )
