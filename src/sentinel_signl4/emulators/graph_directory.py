"""The part of Microsoft Graph's directory that provisioning reads: service principals by app id.

``GET /v1.0/servicePrincipals?$filter=appId eq '{appId}'`` (REST reference: learn.microsoft.com/graph/api/
serviceprincipal-list) answers ``{"value": [{"id", "appId", "displayName"}]}`` for an app registered in the caller's
tenant; ``id`` is the object id ARM role assignments name as ``principalId``. Anything else under
``/v1.0/servicePrincipals`` is 404 here.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sentinel_signl4.emulators.entra_model import EntraModel, TokenInfo

__all__ = ["graph_directory_routes"]

_AUDIENCES = ("https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000")
_APP_ID = re.compile(r"^\s*appId\s+eq\s+'([^']+)'\s*$", re.IGNORECASE)


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def graph_directory_routes(entra: EntraModel) -> list[BaseRoute]:
    async def service_principals(request: Request) -> Response:
        caller = entra.validate_bearer(request.headers.get("authorization"), _AUDIENCES)
        if not isinstance(caller, TokenInfo):
            return _error(401, "InvalidAuthenticationToken", "Access token is empty or invalid.")
        match = _APP_ID.match(request.query_params.get("$filter", ""))
        if match is None:
            return _error(400, "Request_UnsupportedQuery", "Only $filter=appId eq '…' is supported here.")
        wanted = match.group(1).lower()
        value = [{"id": app.object_id, "appId": app.client_id, "displayName": app.display_name}
                 for tenant in entra.tenants() if tenant.tenant_id == caller.tenant_id
                 for app in tenant.apps.values() if app.client_id == wanted]
        return JSONResponse({"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#servicePrincipals",
                             "value": value})

    return [Route("/v1.0/servicePrincipals", service_principals, methods=["GET"])]
