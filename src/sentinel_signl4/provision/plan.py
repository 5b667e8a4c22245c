"""What provisioning creates, per tenant and per identity: the input of ``plan`` and of both scripts.

Connectors of a tenant that share an identity share its plan: one app registration (or managed identity), each
connector's own custom role and its assignment on that connector's workspace, and the union of the Microsoft Graph
application permissions they need. A connector without a client id gets the app registration named by
``--app-name`` (one per tenant; a re-run finds it by that name).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sentinel_signl4.config.schema import CLOUDS
from sentinel_signl4.provision.role import RoleDefinition, graph_permissions, role_of
from sentinel_signl4.provision.targets import ConnectorTarget, IdentityKind, ProvisionInputError

__all__ = ["FederatedCredential", "IdentityPlan", "PlanOptions", "TenantPlan", "build_plan", "render_plan"]

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"  # Microsoft Graph's well-known application id
CREDENTIAL_NAME = "sentinel-signl4"  # display name of the secret we create (a re-run finds it by this name)
_SERVICE_ACCOUNT = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-.a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class PlanOptions:
    """Choices of the operator (flags of ``plan`` and ``script``)."""

    app_name: str = "sentinel-signl4"
    secret_days: int = 180
    oidc_issuer: str | None = None  # workload identity: the cluster's service account token issuer
    service_account: str | None = None  # workload identity: "<namespace>/<name>"
    out_dir: str = "."


@dataclass(frozen=True)
class FederatedCredential:
    """A Kubernetes service account trusted to sign in as the app (workload identity)."""

    name: str
    issuer: str
    subject: str
    audience: str = "api://AzureADTokenExchange"


@dataclass(frozen=True)
class IdentityPlan:
    """One identity of a tenant and everything granted to it."""

    tenant_id: str
    kinds: tuple[IdentityKind, ...]  # the credential kinds its connectors use
    client_id: str | None  # None: the app registration ``app_name`` is created (or found)
    app_name: str
    connectors: tuple[str, ...]
    roles: tuple[RoleDefinition, ...]
    graph_permissions: tuple[str, ...]
    federated: FederatedCredential | None
    graph_endpoint: str

    @property
    def managed(self) -> bool:
        return self.kinds == ("managed_identity",)

    @property
    def creates_app(self) -> bool:
        return not self.managed and self.client_id is None

    @property
    def creates_secret(self) -> bool:
        return self.creates_app and "client_secret" in self.kinds

    @property
    def creates_certificate(self) -> bool:
        return self.creates_app and "certificate" in self.kinds


#: The config's cloud names as the Azure CLI and Az PowerShell (``az cloud set``, ``-Environment``) and the Microsoft
#: Graph PowerShell SDK (``Connect-MgGraph -Environment``) spell them.
AZ_CLOUD_NAMES = {"AzurePublic": "AzureCloud", "AzureUSGovernment": "AzureUSGovernment",
                  "AzureChina": "AzureChinaCloud"}
MG_ENVIRONMENTS = {"AzurePublic": "Global", "AzureUSGovernment": "USGov", "AzureChina": "China"}


@dataclass(frozen=True)
class TenantPlan:
    tenant_id: str
    identities: tuple[IdentityPlan, ...]
    cloud: str = "AzurePublic"  # the config's name (``[connectors.azure] cloud``); a tenant lives in one cloud

    @property
    def az_cloud(self) -> str:
        return AZ_CLOUD_NAMES[self.cloud]

    @property
    def mg_environment(self) -> str:
        return MG_ENVIRONMENTS[self.cloud]


def build_plan(targets: Sequence[ConnectorTarget], options: PlanOptions) -> list[TenantPlan]:
    """Group the connectors by tenant and identity; ``ProvisionInputError`` lists every value still missing."""
    problems: list[str] = []
    if options.secret_days < 1 or options.secret_days > 730:
        problems.append(f"--secret-days: must be between 1 and 730 (Entra's maximum is 2 years), "
                        f"got {options.secret_days}")
    federated = _federated(targets, options, problems)
    groups: dict[tuple[str, str | None, bool], list[ConnectorTarget]] = {}
    for target in targets:
        managed = target.identity == "managed_identity"
        groups.setdefault((target.tenant_id, target.client_id, managed), []).append(target)
    kinds_by_group = {key: tuple(dict.fromkeys(t.identity for t in members)) for key, members in groups.items()}
    clouds: dict[str, set[str]] = {}
    for target in targets:
        clouds.setdefault(target.tenant_id, set()).add(target.cloud)
    for tenant, names in clouds.items():
        if len(names) > 1:
            problems.append(f"tenant {tenant}: its connectors name different clouds ({', '.join(sorted(names))}); "
                            "a tenant lives in one")
    for (tenant, client_id, _), kinds in kinds_by_group.items():
        if "managed_identity" in kinds and len(kinds) > 1:
            problems.append(f"tenant {tenant}: client id {client_id} is used as a managed identity and as an app")
    if problems:
        raise ProvisionInputError("provision", problems)
    tenants: dict[str, list[IdentityPlan]] = {}
    for key, members in groups.items():
        tenant, client_id, _managed = key
        kinds = kinds_by_group[key]
        cloud = CLOUDS.get(members[0].cloud, CLOUDS["AzurePublic"])
        permissions = tuple(dict.fromkeys(p for t in members for p in graph_permissions(t)))
        tenants.setdefault(tenant, []).append(IdentityPlan(
            tenant_id=tenant, kinds=kinds, client_id=client_id, app_name=options.app_name,
            connectors=tuple(t.name for t in members),
            roles=tuple(role for t in members if (role := role_of(t)) is not None),
            graph_permissions=permissions,
            federated=federated if "workload_identity" in kinds else None,
            graph_endpoint=cloud.graph,
        ))
    return [TenantPlan(tenant, tuple(identities), cloud=min(clouds[tenant])) for tenant, identities in tenants.items()]


def _federated(targets: Sequence[ConnectorTarget], options: PlanOptions,
               problems: list[str]) -> FederatedCredential | None:
    if not any(t.identity == "workload_identity" for t in targets):
        return None
    if not options.oidc_issuer:
        problems.append("--oidc-issuer: required for workload identity (the cluster's OIDC issuer URL, e.g. "
                        "`az aks show --query oidcIssuerProfile.issuerUrl`)")
    elif not options.oidc_issuer.startswith("https://"):
        problems.append(f"--oidc-issuer: must be an https:// URL, got {options.oidc_issuer!r}")
    if not options.service_account:
        problems.append("--service-account: required for workload identity (<namespace>/<name> of the "
                        "connector's Kubernetes service account)")
    elif not _SERVICE_ACCOUNT.match(options.service_account):
        problems.append(f"--service-account: must be <namespace>/<name>, got {options.service_account!r}")
    if not (options.oidc_issuer and options.service_account):
        return None
    namespace, name = options.service_account.split("/", 1)
    return FederatedCredential(name=f"sentinel-signl4-{namespace}-{name}"[:120], issuer=options.oidc_issuer,
                               subject=f"system:serviceaccount:{namespace}:{name}")


def render_plan(plans: Sequence[TenantPlan], options: PlanOptions) -> str:
    """The plan as text for a human: what would be created where, and why each action is in each role."""
    lines = ["What `provision script` creates (each step only if it does not exist yet):", ""]
    for plan in plans:
        cloud = f" (cloud {plan.cloud})" if plan.cloud != "AzurePublic" else ""
        lines.append(f"Tenant {plan.tenant_id}{cloud}")
        for identity in plan.identities:
            lines += [f"  {line}" for line in _identity_lines(identity, options)]
        lines.append("")
    return "\n".join(lines)


def _identity_lines(identity: IdentityPlan, options: PlanOptions) -> list[str]:
    lines: list[str] = []
    connectors = ", ".join(identity.connectors)
    if identity.managed:
        lines.append(f"Managed identity {identity.client_id} (connectors: {connectors}): no app registration, "
                     "no secret, no consent prompt")
    elif identity.client_id is not None:
        lines.append(f"Existing app registration {identity.client_id} (connectors: {connectors}); its service "
                     "principal if missing; its secrets and certificates are left as they are")
    else:
        lines.append(f"App registration \"{identity.app_name}\" and its service principal (connectors: {connectors})")
    if identity.creates_secret:
        lines.append(f"  client secret \"{CREDENTIAL_NAME}\", valid {options.secret_days} days, written to a "
                     "file with mode 0600 (never printed)")
    if identity.creates_certificate:
        lines.append(f"  certificate generated locally (valid {options.secret_days} days); only its public part "
                     "is uploaded")
    if identity.federated is not None:
        lines.append(f"  federated credential \"{identity.federated.name}\": {identity.federated.subject} "
                     f"issued by {identity.federated.issuer}")
    for role in identity.roles:
        lines += [f"  custom role \"{role.name}\" (assignable in {role.assignable_scopes[0]})",
                  f"    assigned on {role.assign_at}"]
        lines += [f"      {action}" for action in role.actions]
    if identity.graph_permissions:
        lines.append("  Microsoft Graph application permissions, as app role assignments to its service principal "
                     f"(this is the admin consent): {', '.join(identity.graph_permissions)}")
    return lines
