"""Wire format of the emulated ``Microsoft.Authorization`` ARM provider: custom roles and role assignments.

=======  ==========================================================================  ==============================
PUT      {scope}/providers/Microsoft.Authorization/roleDefinitions/{id}              create or update a custom role
GET      {scope}/providers/Microsoft.Authorization/roleDefinitions[?$filter=roleName eq '…']   list (``value``)
GET      {scope}/providers/Microsoft.Authorization/roleDefinitions/{id}
PUT      {scope}/providers/Microsoft.Authorization/roleAssignments/{id}              201; 409 RoleAssignmentExists
GET      {scope}/providers/Microsoft.Authorization/roleAssignments[?$filter=principalId eq '…']
=======  ==========================================================================  ==============================

``{scope}`` is ``/subscriptions/{id}[/resourceGroups/{rg}[/providers/…/{resource}]]``. api-version 2022-04-01
(REST reference: learn.microsoft.com/rest/api/authorization). Errors are ARM's ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sentinel_signl4_emulators.authorization.model import AuthorizationError, AuthorizationModel
from sentinel_signl4_emulators.entra.clouds import arm_audiences
from sentinel_signl4_emulators.entra.model import EntraModel, TokenInfo
from sentinel_signl4_emulators.sentinel.model import SentinelModel

__all__ = ["authorization_routes", "is_authorization_path"]

_ARM_AUDIENCES = ("https://management.azure.com", "https://management.core.windows.net")
_PATH = re.compile(r"^(?P<scope>/subscriptions/(?P<sub>[^/]+)(?:/.*?)?)/providers/Microsoft\.Authorization/"
                   r"(?P<kind>roleDefinitions|roleAssignments)(?:/(?P<id>[^/]+))?/?$", re.IGNORECASE)
_FILTER = re.compile(r"^\s*(roleName|principalId)\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)


def is_authorization_path(path: str) -> bool:
    return "/providers/microsoft.authorization/" in path.lower()


def authorization_routes(entra: EntraModel, sentinel: SentinelModel, model: AuthorizationModel) -> list[BaseRoute]:
    api = _AuthorizationApi(entra, sentinel, model)
    return [Route("/subscriptions/{rest:path}", api.handle, methods=["GET", "PUT"])]


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


class _AuthorizationApi:
    def __init__(self, entra: EntraModel, sentinel: SentinelModel, model: AuthorizationModel) -> None:
        self.entra = entra
        self.sentinel = sentinel
        self.model = model

    async def handle(self, request: Request) -> Response:
        try:
            return await self._dispatch(request)
        except AuthorizationError as exc:
            return _error(exc.status, exc.code, exc.message)

    async def _dispatch(self, request: Request) -> Response:
        match = _PATH.match(request.url.path)
        if match is None:
            raise AuthorizationError(404, "InvalidResourceType", "The resource type could not be found.")
        caller = self.entra.validate_bearer(request.headers.get("authorization"),
                                           arm_audiences(request.url.netloc, _ARM_AUDIENCES))
        if not isinstance(caller, TokenInfo):
            raise AuthorizationError(401, "InvalidAuthenticationToken", "The access token is invalid.")
        if not request.query_params.get("api-version"):
            raise AuthorizationError(400, "MissingApiVersionParameter",
                                     "The api-version query parameter (?api-version=) is required for all requests.")
        subscription = match["sub"]
        tenant = self.sentinel.subscription_tenant(subscription)
        if tenant is None:
            raise AuthorizationError(404, "SubscriptionNotFound",
                                     f"The subscription '{subscription}' could not be found.")
        if tenant != caller.tenant_id:
            raise AuthorizationError(401, "InvalidAuthenticationTokenTenant",
                                     "The access token is from the wrong issuer.")
        scope, kind, item = match["scope"], match["kind"].lower(), match["id"]
        flt = _filter(request.query_params.get("$filter"))
        if request.method == "PUT" and item:
            try:
                body = json.loads(await request.body() or b"{}")
            except json.JSONDecodeError:
                raise AuthorizationError(400, "InvalidRequestContent", "The request content is not valid JSON.") \
                    from None
            if not isinstance(body, dict):
                raise AuthorizationError(400, "InvalidRequestContent", "The request content must be an object.")
            if kind == "roledefinitions":
                role = self.model.put_definition(
                    subscription, item, body, caller_oid=caller.app_object_id, client_id=caller.client_id,
                    tenant_of=self.sentinel.subscription_tenant)
                return JSONResponse(role.to_arm(), status_code=201)
            assignment = self.model.put_assignment(scope, item, body, caller_oid=caller.app_object_id,
                                                   client_id=caller.client_id, tenant_id=tenant)
            return JSONResponse(assignment.to_arm(), status_code=201)
        if request.method != "GET":
            raise AuthorizationError(405, "MethodNotAllowed", f"{request.method} is not supported here.")
        if kind == "roledefinitions":
            roles = self.model.definitions(scope, flt.get("rolename"))
            if item:
                found = [r for r in roles if r.id == item.lower()]
                if not found:
                    raise AuthorizationError(404, "RoleDefinitionDoesNotExist",
                                             "The specified role definition does not exist.")
                return JSONResponse(found[0].to_arm())
            return JSONResponse({"value": [r.to_arm() for r in roles]})
        assignments = self.model.assignments(scope, flt.get("principalid"))
        if item:
            found_assignments = [a for a in assignments if a.id == item.lower()]
            if not found_assignments:
                raise AuthorizationError(404, "RoleAssignmentNotFound", "The role assignment does not exist.")
            return JSONResponse(found_assignments[0].to_arm())
        return JSONResponse({"value": [a.to_arm() for a in assignments]})


def _filter(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    match = _FILTER.match(text)
    if match is None:
        raise AuthorizationError(400, "InvalidFilter", f"The filter '{text}' is not supported.")
    return {match.group(1).lower(): match.group(2)}

