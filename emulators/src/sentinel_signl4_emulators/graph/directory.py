"""Wire format of the Graph directory objects provisioning uses (state in ``graph_directory_model``).

=======  ==========================================================  ================================================
GET      /v1.0/applications?$filter=displayName|appId eq '…'         ``value``
POST     /v1.0/applications                                          ``{displayName}`` → 201 application
GET      /v1.0/applications/{id}                                     the application (passwordCredentials: no secret)
PATCH    /v1.0/applications/{id}                                     ``{keyCredentials}`` → 204 (replaces them)
POST     /v1.0/applications/{id}/addPassword                         ``{passwordCredential}`` → 200 with secretText
POST     /v1.0/applications/{id}/addKey                              ``{keyCredential, passwordCredential, proof}``
                                                                     → 200 keyCredential (proof of possession)
GET|POST /v1.0/applications/{id}/federatedIdentityCredentials        list | ``{name, issuer, subject, audiences}``
GET      /v1.0/servicePrincipals?$filter=appId eq '…'                ``value`` (Microsoft Graph's own with appRoles)
POST     /v1.0/servicePrincipals                                     ``{appId}`` → 201 service principal
GET|POST /v1.0/servicePrincipals/{id}/appRoleAssignedTo              list | ``{principalId, resourceId, appRoleId}``
GET      /v1.0/servicePrincipals/{id}/appRoleAssignments             the app roles granted to that principal
=======  ==========================================================  ================================================

Errors are Graph's ``{"error": {"code", "message"}}``. The caller must hold a Graph token of the tenant; which
directory role or permission it holds is not checked here (an operator's rights are Entra's business).
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from sentinel_signl4_emulators.entra.clouds import graph_audiences
from sentinel_signl4_emulators.entra.model import EntraModel, TokenInfo
from sentinel_signl4_emulators.graph.directory_model import DirectoryError, DirectoryModel

__all__ = ["graph_directory_routes"]

_AUDIENCES = ("https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000")
_EQ = re.compile(r"^\s*(\w+)\s+eq\s+'([^']*)'\s*$", re.IGNORECASE)


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def graph_directory_routes(entra: EntraModel, directory: DirectoryModel) -> list[BaseRoute]:
    api = _DirectoryApi(entra, directory)
    methods = ["GET", "POST"]
    return [
        Route("/v1.0/applications", api.applications, methods=methods),
        Route("/v1.0/applications/{id}", api.application, methods=["GET", "PATCH"]),
        Route("/v1.0/applications/{id}/addPassword", api.add_password, methods=["POST"]),
        Route("/v1.0/applications/{id}/addKey", api.add_key, methods=["POST"]),
        Route("/v1.0/applications/{id}/federatedIdentityCredentials", api.federated, methods=methods),
        Route("/v1.0/servicePrincipals", api.service_principals, methods=methods),
        Route("/v1.0/servicePrincipals/{id}/appRoleAssignedTo", api.assigned_to, methods=methods),
        Route("/v1.0/servicePrincipals/{id}/appRoleAssignments", api.assignments_of, methods=["GET"]),
    ]


class _DirectoryApi:
    def __init__(self, entra: EntraModel, directory: DirectoryModel) -> None:
        self.entra = entra
        self.directory = directory

    async def _call(self, request: Request) -> tuple[TokenInfo, dict[str, Any]]:
        caller = self.entra.validate_bearer(request.headers.get("authorization"),
                                           graph_audiences(request.url.netloc, _AUDIENCES))
        if not isinstance(caller, TokenInfo):
            raise DirectoryError(401, "InvalidAuthenticationToken", "Access token is empty or invalid.")
        body: Any = {}
        if request.method in ("POST", "PATCH"):
            try:
                body = json.loads(await request.body() or b"{}")
            except json.JSONDecodeError:
                raise DirectoryError(400, "BadRequest", "Unable to read JSON request payload.") from None
            if not isinstance(body, dict):
                raise DirectoryError(400, "BadRequest", "The request body must be an object.")
        return caller, body

    @staticmethod
    def _filter(request: Request, *keys: str) -> tuple[str, str] | None:
        text = request.query_params.get("$filter")
        if text is None:
            return None
        match = _EQ.match(text)
        if match is None or match.group(1).lower() not in {k.lower() for k in keys}:
            raise DirectoryError(400, "Request_UnsupportedQuery", f"Only $filter={'|'.join(keys)} eq '…' is emulated.")
        return match.group(1).lower(), match.group(2)

    async def _handle(self, request: Request, work: Any) -> Response:
        try:
            caller, body = await self._call(request)
            status, payload = work(caller, body)
        except DirectoryError as exc:
            return _error(exc.status, exc.code, exc.message)
        if status == 204:
            return Response(status_code=204)
        return JSONResponse(payload, status_code=status)

    async def applications(self, request: Request) -> Response:
        def work(caller: TokenInfo, body: dict[str, Any]) -> tuple[int, Any]:
            if request.method == "POST":
                return 201, self.directory.create_application(caller.tenant_id, str(body.get("displayName") or ""))
            found = self.directory.applications(caller.tenant_id, None)
            flt = self._filter(request, "displayName", "appId")
            if flt is not None:
                key = "displayName" if flt[0] == "displayname" else "appId"
                found = [a for a in found if str(a[key]).lower() == flt[1].lower()]
            return 200, {"value": found}
        return await self._handle(request, work)

    async def application(self, request: Request) -> Response:
        def work(caller: TokenInfo, body: dict[str, Any]) -> tuple[int, Any]:
            if request.method == "PATCH":
                keys = body.get("keyCredentials")
                if set(body) != {"keyCredentials"} or not isinstance(keys, list) \
                        or not all(isinstance(k, dict) for k in keys):
                    raise DirectoryError(400, "Request_BadRequest", "Only a keyCredentials update is emulated.")
                self.directory.set_keys(caller.tenant_id, request.path_params["id"], keys)
                return 204, None
            return 200, self.directory.application(caller.tenant_id, request.path_params["id"])
        return await self._handle(request, work)

    async def add_key(self, request: Request) -> Response:
        def work(caller: TokenInfo, body: dict[str, Any]) -> tuple[int, Any]:
            return 200, self.directory.add_key(caller.tenant_id, request.path_params["id"], body, self.entra.clock())
        return await self._handle(request, work)

    async def add_password(self, request: Request) -> Response:
        def work(caller: TokenInfo, body: dict[str, Any]) -> tuple[int, Any]:
            given = body.get("passwordCredential")
            credential: dict[str, Any] = given if isinstance(given, dict) else {}
            return 200, self.directory.add_password(caller.tenant_id, request.path_params["id"], credential,
                                                    self.entra.clock())
        return await self._handle(request, work)

    async def federated(self, request: Request) -> Response:
        def work(caller: TokenInfo, body: dict[str, Any]) -> tuple[int, Any]:
            if request.method == "POST":
                return 201, self.directory.add_federated(caller.tenant_id, request.path_params["id"], body)
            return 200, {"value": self.directory.federated(caller.tenant_id, request.path_params["id"])}
        return await self._handle(request, work)

    async def service_principals(self, request: Request) -> Response:
        def work(caller: TokenInfo, body: dict[str, Any]) -> tuple[int, Any]:
            if request.method == "POST":
                return 201, self.directory.create_service_principal(caller.tenant_id, str(body.get("appId") or ""))
            flt = self._filter(request, "appId")
            if flt is None:
                raise DirectoryError(400, "Request_UnsupportedQuery", "Only $filter=appId eq '…' is emulated.")
            return 200, {"value": self.directory.service_principals(caller.tenant_id, flt[1])}
        return await self._handle(request, work)

    async def assigned_to(self, request: Request) -> Response:
        def work(caller: TokenInfo, body: dict[str, Any]) -> tuple[int, Any]:
            if request.method == "POST":
                return 201, self.directory.assign_app_role(caller.tenant_id, request.path_params["id"], body)
            return 200, {"value": self.directory.app_role_assignments(request.path_params["id"])}
        return await self._handle(request, work)

    async def assignments_of(self, request: Request) -> Response:
        def work(_caller: TokenInfo, _body: dict[str, Any]) -> tuple[int, Any]:
            return 200, {"value": self.directory.assignments_of(request.path_params["id"])}
        return await self._handle(request, work)
