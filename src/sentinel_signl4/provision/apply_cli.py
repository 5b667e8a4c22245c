"""The operator's sign-in for ``provision apply``: the Azure CLI's login, or a device code, per tenant."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sentinel_signl4.clients.http import build_http_client
from sentinel_signl4.clients.identity import TokenProvider
from sentinel_signl4.provision.apply import OperatorTokens, apply_plans
from sentinel_signl4.provision.plan import PlanOptions, TenantPlan
from sentinel_signl4.provision.verify import check_new_identities

__all__ = ["run_apply"]


class _SyncCredentialTokens:
    """Tokens from a synchronous azure-identity credential (``DeviceCodeCredential`` has no async variant)."""

    def __init__(self, credential: Any) -> None:
        self._credential = credential

    async def token(self, scope: str) -> str:
        access = await asyncio.to_thread(self._credential.get_token, scope)
        return str(access.token)


async def run_apply(plans: Sequence[TenantPlan], options: PlanOptions, *, device_code: bool,
                    echo: Callable[[str], None], show_secret: bool = False,
                    config: tuple[str, Path] | None = None) -> int:
    """Apply ``plans``, then (given ``config``: its text and absolute path) run ``check`` per tenant against the
    new identities; the exit status is 1 when any tenant failed or its check did."""
    from azure.identity import DeviceCodeCredential
    from azure.identity.aio import AzureCliCredential

    providers: list[TokenProvider] = []

    def tokens_for(tenant_id: str) -> OperatorTokens:
        if device_code:
            return _SyncCredentialTokens(DeviceCodeCredential(tenant_id=tenant_id))
        provider = TokenProvider(AzureCliCredential(tenant_id=tenant_id))
        providers.append(provider)
        return provider

    http = build_http_client()
    try:
        outcomes = await apply_plans(plans, tokens_for=tokens_for, http=http, echo=echo, options=options,
                                     show_secret=show_secret)
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
