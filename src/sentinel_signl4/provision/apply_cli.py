"""The operator's sign-in for ``provision apply``: the Azure CLI's login, or a device code, per tenant."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sentinel_signl4.clients.http import build_http_client
from sentinel_signl4.clients.identity import TokenProvider
from sentinel_signl4.config.schema import CLOUDS, CloudEndpoints
from sentinel_signl4.provision.apply import OperatorTokens, apply_plans
from sentinel_signl4.provision.plan import AZ_CLOUD_NAMES, PlanOptions, TenantPlan
from sentinel_signl4.provision.verify import check_new_identities

__all__ = ["by_cloud", "run_apply"]


class _SyncCredentialTokens:
    """Tokens from a synchronous azure-identity credential (``DeviceCodeCredential`` has no async variant)."""

    def __init__(self, credential: Any) -> None:
        self._credential = credential

    async def token(self, scope: str) -> str:
        access = await asyncio.to_thread(self._credential.get_token, scope)
        return str(access.token)


def by_cloud(plans: Sequence[TenantPlan]) -> list[tuple[CloudEndpoints, list[TenantPlan]]]:
    """The plans grouped by their tenants' cloud (its endpoints and token scopes), in the order they first appear."""
    groups: dict[str, list[TenantPlan]] = {}
    for plan in plans:
        groups.setdefault(plan.cloud, []).append(plan)
    return [(CLOUDS[cloud], members) for cloud, members in groups.items()]


async def run_apply(plans: Sequence[TenantPlan], options: PlanOptions, *, device_code: bool,
                    echo: Callable[[str], None], show_secret: bool = False,
                    config: tuple[str, Path] | None = None) -> int:
    """Apply ``plans``, then (given ``config``: its text and absolute path) run ``check`` per tenant against the
    new identities; the exit status is 1 when any tenant failed or its check did.

    Each tenant is written in its own cloud: the endpoints and token scopes are that cloud's, and the device code
    sign-in goes to its authority. The Azure CLI signs in to one cloud at a time (``az cloud set``), so a config
    that spans clouds is best applied with ``--device-code``, or once per cloud.
    """
    from azure.identity import DeviceCodeCredential
    from azure.identity.aio import AzureCliCredential

    providers: list[TokenProvider] = []
    outcomes = []
    http = build_http_client()
    try:
        for cloud, members in by_cloud(plans):
            def tokens_for(tenant_id: str, cloud: CloudEndpoints = cloud) -> OperatorTokens:
                if device_code:
                    return _SyncCredentialTokens(DeviceCodeCredential(tenant_id=tenant_id,
                                                                      authority=cloud.authority_host))
                provider = TokenProvider(AzureCliCredential(tenant_id=tenant_id))
                providers.append(provider)
                return provider

            if not device_code and cloud.authority_host != CLOUDS["AzurePublic"].authority_host:
                name = AZ_CLOUD_NAMES[members[0].cloud]
                echo(f"Tenants in {members[0].cloud}: the Azure CLI must be signed in to that cloud "
                     f"(az cloud set --name {name}; az login --tenant <tenant>), or use --device-code.")
            outcomes += await apply_plans(
                members, tokens_for=tokens_for, http=http, echo=echo, options=options, show_secret=show_secret,
                arm_endpoint=cloud.resource_manager, graph_endpoint=cloud.graph,
                arm_scope=cloud.scope("resource_manager"), graph_scope=cloud.scope("graph"))
    finally:
        await http.aclose()
        for provider in providers:
            await provider.close()
    echo("Summary:")
    for outcome in outcomes:
        state = "OK    " if outcome.ok else "FAILED"
        echo(f"  {state} tenant {outcome.tenant_id}: {len(outcome.done)} step(s) done"
             + (f", {len(outcome.skipped)} skipped" if outcome.skipped else "")
             + (f"; {outcome.error}" if outcome.error else ""))
    checked = True
    if config is not None:
        checked = await check_new_identities(config[0], config[1], outcomes, echo=echo)
    return 0 if all(outcome.ok for outcome in outcomes) and checked else 1
