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

import json
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from functools import wraps
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sentinel_signl4.emulators.entra_model import EntraModel
from sentinel_signl4.emulators.graph_model import AlertSeed, GraphError, GraphModel, Permission

__all__ = ["graph_control_routes"]

Endpoint = Callable[[Request], Awaitable[Response]]


class _ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _endpoint(handler: Endpoint) -> Endpoint:
    """Bad input → 400, unknown things → 404, model refusals → the status Graph would send."""

    @wraps(handler)
    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except _ControlError as exc:
            return JSONResponse({"error": str(exc)}, status_code=exc.status)
        except GraphError as exc:
            return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status_code=exc.status)
        except KeyError as exc:
            return JSONResponse({"error": str(exc.args[0] if exc.args else exc)}, status_code=404)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)

    return run


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
    return [Route(path, _endpoint(handler), methods=methods) for path, handler, methods in routes]


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
        body = await _body(request)
        client_id = _required(body, "clientId")
        self.model.grant(client_id, [Permission(p) for p in _strings(body, "permissions")])
        return JSONResponse({"clientId": client_id,
                             "permissions": sorted(p.value for p in self.model.permissions_of(client_id))})

    async def revoke(self, request: Request) -> Response:
        body = await _body(request)
        client_id = _required(body, "clientId")
        permissions = [Permission(p) for p in _strings(body, "permissions")] if "permissions" in body else None
        self.model.revoke(client_id, permissions)
        return JSONResponse({"clientId": client_id,
                             "permissions": sorted(p.value for p in self.model.permissions_of(client_id))})

    async def add_user(self, request: Request) -> Response:
        body = await _body(request)
        upn = _required(body, "userPrincipalName")
        user = self.entra.add_user(self._tenant(body), user_principal_name=upn,
                                   display_name=_str(body, "displayName") or upn, mail=_str(body, "mail"),
                                   object_id=_str(body, "id"))
        return JSONResponse({"id": user.object_id, "userPrincipalName": user.user_principal_name,
                             "displayName": user.display_name, "mail": user.mail}, status_code=201)

    async def create_incident(self, request: Request) -> Response:
        body = await _body(request)
        incident = self.model.create_incident(
            self._tenant(body),
            display_name=_required(body, "displayName"),
            severity=_str(body, "severity"),
            status=_str(body, "status") or "active",
            created=_time(body, "createdDateTime"),
            alerts=[_alert_seed(spec) for spec in _list(body, "alerts")],
            assigned_to=_str(body, "assignedTo"),
            classification=_str(body, "classification") or "unknown",
            determination=_str(body, "determination") or "unknown",
            custom_tags=_strings(body, "customTags"),
            system_tags=_strings(body, "systemTags"),
            description=_str(body, "description"),
            summary=_str(body, "summary"),
            incident_id=_str(body, "id"),
        )
        return JSONResponse(incident, status_code=201)

    async def add_alert(self, request: Request) -> Response:
        body = await _body(request)
        alert = self.model.add_alert(self._tenant(body), _alert_seed(body), incident_id=_str(body, "incidentId"))
        return JSONResponse(alert, status_code=201)

    async def merge(self, request: Request) -> Response:
        body = await _body(request)
        target = self.model.merge_incidents(self._tenant(body), _required(body, "sourceId"),
                                            _required(body, "targetId"))
        return JSONResponse(target)

    async def analyst_edit(self, request: Request) -> Response:
        body = await _body(request)
        analyst = _required(body, "analyst")
        changes = {k: v for k, v in body.items() if k not in ("analyst", "tenantId")}
        incident = self.model.update_incident(self._tenant(body), request.path_params["id"], changes,
                                              actor=analyst, include_unknown=True)
        return JSONResponse(incident)

    async def analyst_comment(self, request: Request) -> Response:
        body = await _body(request)
        comments = self.model.add_incident_comment(self._tenant(body), request.path_params["id"],
                                                   _required(body, "comment"), author=_required(body, "analyst"))
        return JSONResponse({"value": comments}, status_code=201)

    async def throttle(self, request: Request) -> Response:
        if request.method == "PUT":
            body = await _body(request)
            limit = body.get("limit")
            window = body.get("windowSeconds", 60)
            if not isinstance(limit, int) or not isinstance(window, int | float):
                raise _ControlError(400, "'limit' must be an integer and 'windowSeconds' a number")
            self.model.configure_throttle(limit, float(window))
        return JSONResponse(self._budget())

    def _budget(self) -> dict[str, Any]:
        return {"limit": self.model.throttle_limit, "windowSeconds": self.model.throttle_window}

    def _tenant(self, body: Mapping[str, Any]) -> str:
        tenant = _str(body, "tenantId")
        if tenant:
            return tenant.lower()
        tenants = self.entra.tenants()
        if len(tenants) != 1:
            raise _ControlError(400, "'tenantId' is required when the directory does not hold exactly one tenant")
        return tenants[0].tenant_id


# --- body helpers ----------------------------------------------------------------------------------------------


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        data = json.loads(raw) if raw else {}
    except ValueError as exc:
        raise _ControlError(400, f"body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise _ControlError(400, "body must be a JSON object")
    return data


def _str(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _ControlError(400, f"'{key}' must be a string")
    return value


def _required(body: Mapping[str, Any], key: str) -> str:
    value = _str(body, key)
    if not value:
        raise _ControlError(400, f"'{key}' is required")
    return value


def _list(body: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    value = body.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise _ControlError(400, f"'{key}' must be a list of objects")
    return value


def _strings(body: Mapping[str, Any], key: str) -> list[str]:
    value = body.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _ControlError(400, f"'{key}' must be a list of strings")
    return value


def _time(body: Mapping[str, Any], key: str) -> datetime | None:
    text = _str(body, key)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _ControlError(400, f"'{key}' is not an ISO-8601 time: {text!r}") from exc
    if moment.tzinfo is None:
        raise _ControlError(400, f"'{key}' needs a time zone (e.g. Z): {text!r}")
    return moment


def _alert_seed(spec: Mapping[str, Any]) -> AlertSeed:
    evidence = spec.get("evidence") or []
    if not isinstance(evidence, list) or not all(isinstance(item, dict) for item in evidence):
        raise _ControlError(400, "'evidence' must be a list of objects")
    return AlertSeed(
        title=_required(spec, "title"),
        severity=_str(spec, "severity") or "medium",
        status=_str(spec, "status") or "new",
        service_source=_str(spec, "serviceSource") or "microsoftDefenderForEndpoint",
        detection_source=_str(spec, "detectionSource") or "antivirus",
        product_name=_str(spec, "productName"),
        category=_str(spec, "category"),
        mitre_techniques=tuple(_strings(spec, "mitreTechniques")),
        description=_str(spec, "description") or "",
        created=_time(spec, "createdDateTime"),
        evidence=tuple(evidence),
        alert_id=_str(spec, "id"),
    )
