"""``provision apply``: create each connector's custom role and its assignment through Azure's APIs, as the operator.

What it does per identity of the plan: looks the identity's service principal up in Microsoft Graph
(``servicePrincipals?$filter=appId eq …``), creates or updates each connector's custom role (``PUT …/roleDefinitions``,
found by ``roleName`` first, so a re-run updates the same role), and assigns it on the workspace
(``PUT …/roleAssignments``; 409 ``RoleAssignmentExists`` counts as done; 400 ``PrincipalNotFound`` right after a
principal was created is Entra's replication delay and is retried, bounded). ARM api-version 2022-04-01.

Not done here (yet): creating app registrations, secrets, certificates, federated credentials and Graph app role
assignments. An identity that needs one of those is reported as "skipped" with what to run instead
(``provision script``); roles and assignments of existing identities (managed identities, configured client ids)
are applied. One tenant's failure does not stop the others; the outcome says what happened where.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from sentinel_signl4.provision.plan import IdentityPlan, TenantPlan
from sentinel_signl4.provision.role import RoleDefinition

__all__ = ["ApplyError", "OperatorTokens", "TenantOutcome", "apply_plans"]

API_VERSION = "2022-04-01"
_NAMESPACE = uuid.UUID("6f1d3c52-5b0e-4a43-9c8e-2f7e0b7a9a10")  # ids derived from names: a re-run reuses them


class OperatorTokens(Protocol):
    """Bearer tokens of the operator running ``apply`` (``TokenProvider`` over an azure-identity credential)."""

    async def token(self, scope: str) -> str: ...


class ApplyError(Exception):
    """A step that failed; the message names the call and Azure's error code and message."""


@dataclass
class TenantOutcome:
    tenant_id: str
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class _Arm:
    http: httpx.AsyncClient
    tokens: OperatorTokens
    arm: str
    arm_scope: str
    graph: str
    graph_scope: str

    async def call(self, method: str, url: str, body: dict[str, Any] | None = None, *,
                   graph: bool = False) -> tuple[int, dict[str, Any]]:
        token = await self.tokens.token(self.graph_scope if graph else self.arm_scope)
        response = await self.http.request(method, url, json=body, headers={"Authorization": f"Bearer {token}"})
        try:
            data = response.json() if response.content else {}
        except ValueError:
            data = {}
        return response.status_code, data if isinstance(data, dict) else {}


def _error_text(status: int, data: dict[str, Any]) -> tuple[str, str]:
    error = data.get("error") if isinstance(data.get("error"), dict) else {}
    assert isinstance(error, dict)
    return str(error.get("code") or f"HTTP{status}"), str(error.get("message") or "")[:400]


async def apply_plans(plans: Sequence[TenantPlan], *, tokens_for: Callable[[str], OperatorTokens],
                      http: httpx.AsyncClient, arm_endpoint: str = "https://management.azure.com",
                      graph_endpoint: str = "https://graph.microsoft.com",
                      arm_scope: str = "https://management.azure.com/.default",
                      graph_scope: str = "https://graph.microsoft.com/.default", echo: Callable[[str], None] = print,
                      attempts: int = 10, wait: float = 15.0) -> list[TenantOutcome]:
    """Apply every tenant's plan with the operator's tokens for that tenant; never raises for one tenant.

    The endpoints may be overridden (a sovereign cloud, a proxy, the emulators); the token scopes are the cloud's.
    """
    outcomes = []
    for plan in plans:
        outcome = TenantOutcome(plan.tenant_id)
        echo(f"== tenant {plan.tenant_id}")
        try:
            arm = _Arm(http, tokens_for(plan.tenant_id), arm_endpoint.rstrip("/"), arm_scope,
                       graph_endpoint.rstrip("/"), graph_scope)
            for identity in plan.identities:
                await _identity(arm, identity, outcome, echo, attempts, wait)
        except Exception as exc:  # noqa: BLE001 - one tenant's failure must not stop the others
            outcome.error = str(exc) if isinstance(exc, ApplyError) else f"{type(exc).__name__}: {exc}"
            echo(f"  FAILED: {outcome.error}")
        outcomes.append(outcome)
    return outcomes


async def _identity(arm: _Arm, identity: IdentityPlan, outcome: TenantOutcome, echo: Callable[[str], None],
                    attempts: int, wait: float) -> None:
    who = ", ".join(identity.connectors)
    missing = [what for what, needed in (
        ("an app registration", identity.creates_app), ("a federated credential", identity.federated is not None),
        ("Graph permissions " + ", ".join(identity.graph_permissions), bool(identity.graph_permissions)),
    ) if needed]
    if identity.creates_app:
        note = f"{who}: needs {', '.join(missing)}: run `provision script` (apply only grants existing identities)"
        outcome.skipped.append(note)
        echo(f"  skipped {note}")
        return
    assert identity.client_id is not None
    principal = await _principal(arm, identity.client_id)
    for role in identity.roles:
        role_id = await _ensure_role(arm, role, identity.tenant_id)
        outcome.done.append(f"role {role.name}")
        echo(f"  custom role {role.name}: {len(role.actions)} actions")
        await _ensure_assignment(arm, principal, role, role_id, attempts, wait)
        outcome.done.append(f"assignment of {role.name} on {role.assign_at}")
        echo(f"  assigned {role.name} on {role.assign_at}")
    if missing:
        note = f"{who}: {', '.join(missing)} not applied: run `provision script` for them"
        outcome.skipped.append(note)
        echo(f"  skipped {note}")


async def _principal(arm: _Arm, client_id: str) -> str:
    flt = quote(f"appId eq '{client_id}'")
    url = f"{arm.graph}/v1.0/servicePrincipals?$filter={flt}"
    status, data = await arm.call("GET", url, graph=True)
    if status != 200:
        code, message = _error_text(status, data)
        raise ApplyError(f"Graph servicePrincipals lookup of {client_id} -> {status} {code}: {message}")
    found = data.get("value")
    if not isinstance(found, list) or not found:
        raise ApplyError(f"no service principal for client id {client_id} in this tenant")
    return str(found[0]["id"])


async def _ensure_role(arm: _Arm, role: RoleDefinition, tenant_id: str) -> str:
    subscription = "/".join(role.assignable_scopes[0].split("/")[:3])
    flt = quote(f"roleName eq '{role.name}'")
    status, data = await arm.call(
        "GET", f"{arm.arm}{subscription}/providers/Microsoft.Authorization/roleDefinitions"
               f"?$filter={flt}&api-version={API_VERSION}")
    if status != 200:
        code, message = _error_text(status, data)
        raise ApplyError(f"list role definitions -> {status} {code}: {message}")
    existing = [item for item in data.get("value") or [] if isinstance(item, dict)]
    role_id = str(existing[0]["name"]) if existing else str(uuid.uuid5(_NAMESPACE, f"{tenant_id}/{role.name}"))
    body = {"properties": {
        "roleName": role.name, "description": role.description, "type": "CustomRole",
        "permissions": [{"actions": list(role.actions), "notActions": [], "dataActions": [], "notDataActions": []}],
        "assignableScopes": list(role.assignable_scopes),
    }}
    status, data = await arm.call(
        "PUT", f"{arm.arm}{subscription}/providers/Microsoft.Authorization/roleDefinitions/{role_id}"
               f"?api-version={API_VERSION}", body)
    if status not in (200, 201):
        code, message = _error_text(status, data)
        raise ApplyError(f"create role {role.name} -> {status} {code}: {message}")
    return str(data.get("id") or f"{subscription}/providers/Microsoft.Authorization/roleDefinitions/{role_id}")


async def _ensure_assignment(arm: _Arm, principal: str, role: RoleDefinition, role_id: str, attempts: int,
                             wait: float) -> None:
    name = uuid.uuid5(_NAMESPACE, f"{principal}/{role_id}/{role.assign_at}".lower())
    url = (f"{arm.arm}{role.assign_at}/providers/Microsoft.Authorization/roleAssignments/{name}"
           f"?api-version={API_VERSION}")
    body = {"properties": {"roleDefinitionId": role_id, "principalId": principal, "principalType": "ServicePrincipal"}}
    for attempt in range(1, attempts + 1):
        status, data = await arm.call("PUT", url, body)
        code, message = _error_text(status, data)
        if status in (200, 201) or (status == 409 and code == "RoleAssignmentExists"):
            return
        if status == 400 and code == "PrincipalNotFound" and attempt < attempts:
            await asyncio.sleep(wait)  # Entra replicates a new principal to ARM within minutes
            continue
        raise ApplyError(f"assign {role.name} on {role.assign_at} -> {status} {code}: {message}")
