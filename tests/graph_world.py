"""A Graph emulator world for tests: one tenant, three apps with different Graph permissions, directory users.

Requests go through the shared emulator app (``build_app``), so the ``/v1.0`` mount is exercised too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from sentinel_signl4_emulators.app import EmulatorState
from sentinel_signl4_emulators.graph.model import AlertSeed, Permission
from spec_validation import assert_valid

GRAPH = "https://graph.microsoft.com"
LOGIN = "https://login.microsoftonline.com"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
ARM_SCOPE = "https://management.azure.com/.default"
GRAPH_BUNDLE = "graph/security-alerts-incidents.schema.json"

TENANT = "3f1c9a52-6d0e-4b7a-9c21-8e5d4f3a2b10"
OTHER_TENANT = "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
WRITER_ID = "0c7e4a1b-2d3f-4e5a-8b6c-7d8e9f0a1b2c"
READER_ID = "1d8f5b2c-3e4a-4f6b-9c7d-8e9f0a1b2c3d"
NOBODY_ID = "2e9a6c3d-4f5b-4a7c-8d8e-9f0a1b2c3d4e"
OTHER_WRITER_ID = "ff7e4a1b-2d3f-4e5a-8b6c-7d8e9f0a1b2c"  # an app of OTHER_TENANT
SECRET = "graph~Secret.0123456789"

ADELE = {"id": "87d349ed-44d7-43e1-9a83-5f2406dee5bd", "userPrincipalName": "AdeleV@contoso.com",
         "displayName": "Adele Vance", "mail": "AdeleV@contoso.com"}
MEGAN = {"id": "48d31887-5fad-4d73-a9f5-3c356e68a038", "userPrincipalName": "meganb@contoso.onmicrosoft.com",
         "displayName": "Megan Bowen", "mail": "Megan.Bowen@contoso.com"}
DOLLAR = {"id": "5bde3e51-d13b-4db1-9948-fe4b109d11a7", "userPrincipalName": "$svc-soc@contoso.com",
          "displayName": "SOC service", "mail": None}
GUEST = {"id": "6c0e7a3b-9e2f-4c6d-8a1b-2f3e4d5c6b7a",
         "userPrincipalName": "lee_fabrikam.com#EXT#@contoso.onmicrosoft.com", "displayName": "Lee Gu (guest)",
         "mail": "lee@fabrikam.com"}


def seed_graph_world(state: EmulatorState) -> None:
    """Apps (writer: every permission; reader: read-only security; nobody: none), users, no incidents."""
    entra, graph = state.entra, state.graph
    entra.register_app(TENANT, client_id=WRITER_ID, display_name="sentinel-signl4", secret=SECRET)
    entra.register_app(TENANT, client_id=READER_ID, display_name="soc-dashboard", secret=SECRET)
    entra.register_app(TENANT, client_id=NOBODY_ID, display_name="unconsented", secret=SECRET)
    entra.register_app(OTHER_TENANT, client_id=OTHER_WRITER_ID, secret=SECRET)
    graph.grant(WRITER_ID, [Permission.SECURITY_INCIDENT_READ_WRITE, Permission.SECURITY_ALERT_READ_WRITE,
                            Permission.USER_READ_ALL])
    graph.grant(OTHER_WRITER_ID, [Permission.SECURITY_INCIDENT_READ_WRITE])
    graph.grant(READER_ID, [Permission.SECURITY_INCIDENT_READ, Permission.SECURITY_ALERT_READ])
    for user in (ADELE, MEGAN, DOLLAR, GUEST):
        entra.add_user(TENANT, object_id=user["id"], user_principal_name=str(user["userPrincipalName"]),
                       display_name=str(user["displayName"]), mail=user["mail"])


async def graph_token(http: httpx.AsyncClient, *, client_id: str = WRITER_ID, tenant: str = TENANT,
                      scope: str = GRAPH_SCOPE) -> str:
    response = await http.post(f"{LOGIN}/{tenant}/oauth2/v2.0/token", data={
        "client_id": client_id, "client_secret": SECRET, "grant_type": "client_credentials", "scope": scope})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@dataclass
class GraphCaller:
    """A signed-in Graph caller: ``get/patch/post`` under ``/v1.0`` with its bearer token."""

    http: httpx.AsyncClient
    token: str
    prefer_unknown_enums: bool = True

    def headers(self, **extra: str) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}", **extra}
        if self.prefer_unknown_enums:
            headers["Prefer"] = "include-unknown-enum-members"
        return headers

    async def get(self, path: str, **params: str) -> httpx.Response:
        return await self.http.get(f"{GRAPH}/v1.0/{path}", params=params, headers=self.headers())

    async def patch(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.http.patch(f"{GRAPH}/v1.0/{path}", json=body, headers=self.headers())

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return await self.http.post(f"{GRAPH}/v1.0/{path}", json=body, headers=self.headers())


def alert(title: str = "Suspicious PowerShell command line", **kwargs: Any) -> AlertSeed:
    return AlertSeed(title=title, **kwargs)


def assert_graph_valid(body: Any, definition: str) -> None:
    """``body`` matches ``microsoft.graph.…`` ``definition`` of tests/specs/graph (draft-07)."""
    assert_valid(body, definition, bundle=GRAPH_BUNDLE)


def assert_graph_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response is Graph's error shape with ``status`` and ``code``; returns the ``error`` object."""
    assert response.status_code == status, response.text
    body = response.json()
    assert_graph_valid(body, "microsoft.graph.ODataErrors.ODataError")
    error: dict[str, Any] = body["error"]
    assert error["code"] == code
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    assert response.headers["request-id"] == error["innerError"]["request-id"]
    return error
