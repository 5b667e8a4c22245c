"""``provision apply``: create each connector's custom role and its assignment through Azure's APIs, as the operator.

What it does per identity of the plan, each step only when what it makes does not exist yet (a re-run converges):
through Microsoft Graph, the app registration (found by display name) and its service principal, a client secret
named ``sentinel-signl4`` valid ``secret_days`` (written to a file with mode 0600 in ``out_dir``, never printed), a
workload identity's federated credential, and the app role assignments to Microsoft Graph's service principal the
connectors need (that is the admin consent); through ARM, each connector's custom role (``PUT …/roleDefinitions``,
found by ``roleName`` first) and its assignment on the workspace (``PUT …/roleAssignments``; 409
``RoleAssignmentExists`` counts as done; 400 ``PrincipalNotFound`` right after the principal was created is
Entra's replication delay and is retried, bounded). ARM api-version 2022-04-01, Graph v1.0.

A managed identity gets no app registration and no secret: its existing service principal gets the roles and the
Graph app role assignments. Certificates are not created here (the key must be generated and proven locally):
``provision script`` does that. One tenant's failure does not stop the others; the outcome says what happened where.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from sentinel_signl4.provision.certificate import (
    RENEW_BEFORE,
    key_credential,
    new_certificate,
    proof_of,
    read_certificate,
    write_certificate,
)
from sentinel_signl4.provision.plan import CREDENTIAL_NAME, GRAPH_APP_ID, IdentityPlan, PlanOptions, TenantPlan
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
    #: What the connector's configuration needs, per identity: client id, and the secret's file and expiry.
    identities: list[dict[str, str]] = field(default_factory=list)

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
                      attempts: int = 10, wait: float = 15.0, options: PlanOptions | None = None,
                      show_secret: bool = False) -> list[TenantOutcome]:
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
                await _identity(arm, identity, outcome, echo, attempts, wait, options or PlanOptions(), show_secret)
        except Exception as exc:  # noqa: BLE001 - one tenant's failure must not stop the others
            outcome.error = str(exc) if isinstance(exc, ApplyError) else f"{type(exc).__name__}: {exc}"
            echo(f"  FAILED: {outcome.error}")
        outcomes.append(outcome)
    return outcomes


async def _identity(arm: _Arm, identity: IdentityPlan, outcome: TenantOutcome, echo: Callable[[str], None],
                    attempts: int, wait: float, options: PlanOptions, show_secret: bool) -> None:
    who = ", ".join(identity.connectors)
    record: dict[str, str] = {"tenant_id": identity.tenant_id, "connectors": who}
    if identity.managed:
        assert identity.client_id is not None
        app_id, app_object = identity.client_id, None
    else:
        app_id, app_object = await _ensure_application(arm, identity, outcome, echo)
    record["client_id"] = app_id
    principal = await _ensure_service_principal(arm, app_id, create=not identity.managed, outcome=outcome, echo=echo)
    if identity.creates_secret and app_object is not None:
        secret_file = Path(options.out_dir) / f"sentinel-signl4-{identity.tenant_id[:8]}.secret"
        expiry = await _ensure_secret(arm, app_object, secret_file, options.secret_days, outcome, echo, show_secret)
        record["client_secret_file"] = str(secret_file)
        if expiry:
            record["client_secret_expires"] = expiry
    if identity.creates_certificate and app_object is not None:
        cert_file = Path(options.out_dir) / f"sentinel-signl4-{identity.tenant_id[:8]}.pem"
        expiry = await _ensure_certificate(arm, app_object, cert_file, options.secret_days, outcome, echo)
        record["certificate_path"] = str(cert_file.absolute())
        record["certificate_expires"] = expiry
    if identity.federated is not None and app_object is not None:
        await _ensure_federated(arm, app_object, identity, outcome, echo)
    if identity.graph_permissions:
        await _ensure_graph_permissions(arm, principal, identity.graph_permissions, outcome, echo)
    for role in identity.roles:
        role_id = await _ensure_role(arm, role, identity.tenant_id)
        outcome.done.append(f"role {role.name}")
        echo(f"  custom role {role.name}: {len(role.actions)} actions")
        await _ensure_assignment(arm, principal, role, role_id, attempts, wait)
        outcome.done.append(f"assignment of {role.name} on {role.assign_at}")
        echo(f"  assigned {role.name} on {role.assign_at}")
    outcome.identities.append(record)
    env_file = Path(options.out_dir) / f"sentinel-signl4-{identity.tenant_id[:8]}-{app_id[:8]}.env"
    _write_env(env_file, record)
    echo(f"  connector(s) {who}: tenant_id = {identity.tenant_id}, client_id = {app_id}"
         + (f", client secret in {record['client_secret_file']}" if "client_secret_file" in record else "")
         + f"; values in {env_file}")


def _write_env(path: Path, record: dict[str, str]) -> None:
    """The values to configure, as an env file (no secret in it: the secret's file is named instead)."""
    names = {"tenant_id": "AZURE_TENANT_ID", "client_id": "AZURE_CLIENT_ID",
             "client_secret_file": "AZURE_CLIENT_SECRET_FILE", "client_secret_expires": "AZURE_CLIENT_SECRET_EXPIRES",
             "certificate_path": "AZURE_CLIENT_CERTIFICATE_PATH",
             "certificate_expires": "AZURE_CLIENT_CERTIFICATE_EXPIRES"}
    lines = [f"# sentinel-signl4 provision apply: connector(s) {record['connectors']}"]
    lines += [f"{env}={record[key]}" for key, env in names.items() if key in record]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


async def _graph_list(arm: _Arm, path: str, what: str) -> list[dict[str, Any]]:
    status, data = await arm.call("GET", f"{arm.graph}/v1.0/{path}", graph=True)
    if status != 200:
        code, message = _error_text(status, data)
        raise ApplyError(f"Graph {what} -> {status} {code}: {message}")
    return [item for item in data.get("value") or [] if isinstance(item, dict)]


async def _graph_create(arm: _Arm, path: str, body: dict[str, Any], what: str) -> dict[str, Any]:
    status, data = await arm.call("POST", f"{arm.graph}/v1.0/{path}", body, graph=True)
    if status not in (200, 201):
        code, message = _error_text(status, data)
        raise ApplyError(f"Graph {what} -> {status} {code}: {message}")
    return data


async def _ensure_application(arm: _Arm, identity: IdentityPlan, outcome: TenantOutcome,
                              echo: Callable[[str], None]) -> tuple[str, str]:
    """The app's client id and application object id: the configured app, else found by name, else created."""
    if identity.client_id is not None:
        flt, what = quote(f"appId eq '{identity.client_id}'"), f"application {identity.client_id}"
    else:
        flt, what = quote(f"displayName eq '{identity.app_name}'"), f"application {identity.app_name}"
    found = await _graph_list(arm, f"applications?$filter={flt}", f"lookup of {what}")
    if found:
        return str(found[0]["appId"]), str(found[0]["id"])
    if identity.client_id is not None:
        raise ApplyError(f"no app registration with client id {identity.client_id} in this tenant")
    app = await _graph_create(arm, "applications", {"displayName": identity.app_name,
                                                    "signInAudience": "AzureADMyOrg"}, f"create {what}")
    outcome.done.append(f"app registration {identity.app_name}")
    echo(f"  created app registration {identity.app_name} ({app['appId']})")
    return str(app["appId"]), str(app["id"])


async def _ensure_service_principal(arm: _Arm, app_id: str, *, create: bool, outcome: TenantOutcome,
                                    echo: Callable[[str], None]) -> str:
    flt = quote(f"appId eq '{app_id}'")
    found = await _graph_list(arm, f"servicePrincipals?$filter={flt}", f"service principal lookup of {app_id}")
    if found:
        return str(found[0]["id"])
    if not create:
        raise ApplyError(f"no service principal for client id {app_id} in this tenant")
    sp = await _graph_create(arm, "servicePrincipals", {"appId": app_id}, f"create service principal of {app_id}")
    outcome.done.append(f"service principal of {app_id}")
    echo(f"  created service principal {sp['id']}")
    return str(sp["id"])


async def _ensure_secret(arm: _Arm, app_object: str, path: Path, days: int, outcome: TenantOutcome,
                         echo: Callable[[str], None], show_secret: bool = False) -> str | None:
    status, app = await arm.call("GET", f"{arm.graph}/v1.0/applications/{app_object}", graph=True)
    if status != 200:  # never add a second secret because the first could not be seen
        code, message = _error_text(status, app)
        raise ApplyError(f"Graph application {app_object} -> {status} {code}: {message}")
    existing = [p for p in (app.get("passwordCredentials") or []) if isinstance(p, dict)
                and p.get("displayName") == CREDENTIAL_NAME]
    if existing:
        echo(f"  client secret {CREDENTIAL_NAME} exists: kept (delete it in Entra ID to rotate)")
        return str(existing[0].get("endDateTime") or "") or None
    end = (datetime.now(UTC) + timedelta(days=days)).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    created = await _graph_create(arm, f"applications/{app_object}/addPassword",
                                  {"passwordCredential": {"displayName": CREDENTIAL_NAME, "endDateTime": end}},
                                  "add a client secret")
    secret = str(created.get("secretText") or "")
    if not secret:
        raise ApplyError("Graph addPassword answered without secretText")
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(secret)
    os.chmod(path, 0o600)
    outcome.done.append(f"client secret (expires {end})")
    echo(f"  client secret written to {path} (mode 0600); expires {end}")
    if show_secret:  # asked for explicitly (--show-secret): the only place a secret is printed
        echo(f"  client secret: {secret}")
    return end


async def _ensure_certificate(arm: _Arm, app_object: str, path: Path, days: int, outcome: TenantOutcome,
                              echo: Callable[[str], None]) -> str:
    """The certificate in ``path`` registered on the app (provision/certificate.py); its expiry. The first one is
    uploaded with Update application, a renewal with addKey and a proof signed by the current key."""
    status, app = await arm.call("GET", f"{arm.graph}/v1.0/applications/{app_object}", graph=True)
    if status != 200:
        code, message = _error_text(status, app)
        raise ApplyError(f"Graph application {app_object} -> {status} {code}: {message}")
    registered = {str(k.get("customKeyIdentifier") or "").upper() for k in app.get("keyCredentials") or []
                  if isinstance(k, dict)}
    current = await asyncio.to_thread(read_certificate, path)
    now = datetime.now(UTC)
    if current is not None and current.thumbprint in registered and current.expires - now > RENEW_BEFORE:
        echo(f"  certificate {path} is registered: kept (expires {current.expires.isoformat()})")
        return _stamp(current.expires)
    fresh = await asyncio.to_thread(new_certificate, CREDENTIAL_NAME, days)
    if current is not None and current.thumbprint in registered:
        body = {"keyCredential": key_credential(fresh, CREDENTIAL_NAME), "passwordCredential": None,
                "proof": proof_of(current, app_object)}
        await _graph_create(arm, f"applications/{app_object}/addKey", body, "addKey (certificate renewal)")
        what = "renewed through addKey (the old one stays valid until it expires)"
    elif registered:
        # addKey needs a proof signed by one of them, and an update would replace them all: the operator decides.
        raise ApplyError(f"the application has certificates but none of their private keys is in {path}: put the "
                         "current one there to renew it, or remove them in Entra ID")
    else:
        status, data = await arm.call("PATCH", f"{arm.graph}/v1.0/applications/{app_object}",
                                      {"keyCredentials": [key_credential(fresh, CREDENTIAL_NAME)]}, graph=True)
        if status not in (200, 204):
            code, message = _error_text(status, data)
            raise ApplyError(f"Graph update application (keyCredentials) -> {status} {code}: {message}")
        what = "uploaded (public part only)"
    await asyncio.to_thread(write_certificate, path, fresh)
    expiry = _stamp(fresh.expires)
    outcome.done.append(f"certificate {fresh.thumbprint} (expires {expiry})")
    echo(f"  certificate generated; private key written to {path} (mode 0600); {what}; expires {expiry}")
    return expiry


def _stamp(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


async def _ensure_federated(arm: _Arm, app_object: str, identity: IdentityPlan, outcome: TenantOutcome,
                            echo: Callable[[str], None]) -> None:
    fed = identity.federated
    assert fed is not None
    path = f"applications/{app_object}/federatedIdentityCredentials"
    if any(item.get("name") == fed.name for item in await _graph_list(arm, path, "federated credentials")):
        echo(f"  federated credential {fed.name} exists")
        return
    await _graph_create(arm, path, {"name": fed.name, "issuer": fed.issuer, "subject": fed.subject,
                                    "audiences": [fed.audience]}, f"create federated credential {fed.name}")
    outcome.done.append(f"federated credential {fed.name}")
    echo(f"  created federated credential {fed.name} for {fed.subject}")


async def _ensure_graph_permissions(arm: _Arm, principal: str, permissions: Sequence[str], outcome: TenantOutcome,
                                    echo: Callable[[str], None]) -> None:
    flt = quote(f"appId eq '{GRAPH_APP_ID}'")
    found = await _graph_list(arm, f"servicePrincipals?$filter={flt}", "Microsoft Graph's service principal")
    if not found:
        raise ApplyError("Microsoft Graph's service principal is not in this tenant")
    graph = found[0]
    roles = {str(r.get("value")): str(r.get("id")) for r in graph.get("appRoles") or [] if isinstance(r, dict)}
    held = {str(a.get("appRoleId")) for a in await _graph_list(
        arm, f"servicePrincipals/{principal}/appRoleAssignments", "app role assignments")}
    for permission in permissions:
        role_id = roles.get(permission)
        if role_id is None:
            raise ApplyError(f"Microsoft Graph has no app role {permission}")
        if role_id in held:
            echo(f"  Graph permission {permission} granted already")
            continue
        await _graph_create(arm, f"servicePrincipals/{graph['id']}/appRoleAssignedTo",
                            {"principalId": principal, "resourceId": graph["id"], "appRoleId": role_id},
                            f"grant {permission}")
        outcome.done.append(f"Graph permission {permission}")
        echo(f"  granted Graph application permission {permission} (admin consent)")


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
