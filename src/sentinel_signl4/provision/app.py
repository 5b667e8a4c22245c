"""``sentinel-signl4 provision …``: the connector's least-privilege identity, as a plan, a role or a script.

Nothing here contacts Azure and nothing needs the connector's secrets: the configuration is read for its ids and
features only (``provision.targets``). Every value that is missing is reported in one go, with the flag that
supplies it.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["provision_app"]

provision_app = typer.Typer(
    help="Create the connector's identity with a least-privilege custom role: plan, role JSON or a script.",
    no_args_is_help=True,
)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="Path to the TOML config file.")]
ConnectorOption = Annotated[list[str] | None, typer.Option(
    "--connector", help="Only this connector ([[connectors]] name); repeat for several.")]
TenantOption = Annotated[str | None, typer.Option("--tenant", help="Tenant id (replaces azure.tenant_id).")]
SubscriptionOption = Annotated[str | None, typer.Option(
    "--subscription", help="Subscription id of the workspace (replaces azure.subscription_id).")]
GroupOption = Annotated[str | None, typer.Option(
    "--resource-group", help="Resource group of the workspace (replaces azure.resource_group).")]
WorkspaceNameOption = Annotated[str | None, typer.Option(
    "--workspace-name", help="ARM name of the workspace (replaces azure.workspace_name).")]
WorkspaceIdOption = Annotated[str | None, typer.Option(
    "--workspace-id", help="Workspace GUID; enrichment queries need it (replaces azure.workspace_id).")]
ClientIdOption = Annotated[str | None, typer.Option(
    "--client-id", help="Client id of an existing app or managed identity (replaces azure.credential.client_id).")]


class Shell(StrEnum):
    """``provision script --shell``."""

    BASH = "bash"
    POWERSHELL = "powershell"


def _targets(config: Path, connector: list[str] | None, tenant: str | None, subscription: str | None,
             resource_group: str | None, workspace_name: str | None, workspace_id: str | None,
             client_id: str | None) -> list[object]:
    from sentinel_signl4.provision.targets import IdOverrides, ProvisionInputError, load_targets

    overrides = IdOverrides(tenant_id=tenant, subscription_id=subscription, resource_group=resource_group,
                            workspace_name=workspace_name, workspace_id=workspace_id, client_id=client_id,
                            connectors=tuple(connector or ()))
    try:
        return list(load_targets(config, overrides))
    except ProvisionInputError as exc:
        typer.echo(f"Cannot provision: {len(exc.problems)} value(s) missing or invalid:\n{exc}", err=True)
        raise typer.Exit(2) from None


@provision_app.command("role-definition")
def role_definition(config: ConfigOption, connector: ConnectorOption = None, tenant: TenantOption = None,
                    subscription: SubscriptionOption = None, resource_group: GroupOption = None,
                    workspace_name: WorkspaceNameOption = None, workspace_id: WorkspaceIdOption = None) -> None:
    """Print the custom role definition (JSON for `az role definition create`) of one Sentinel connector."""
    from sentinel_signl4.provision.role import role_of
    from sentinel_signl4.provision.targets import ConnectorTarget

    targets = [t for t in _targets(config, connector, tenant, subscription, resource_group, workspace_name,
                                   workspace_id, None) if isinstance(t, ConnectorTarget)]
    roles = {t.name: role for t in targets if (role := role_of(t)) is not None}
    if not roles:
        typer.echo("No connector needs an Azure role: a source = \"graph\" connector only needs Microsoft Graph "
                   "application permissions (see `provision plan`).", err=True)
        raise typer.Exit(1)
    if len(roles) > 1:
        typer.echo(f"Each connector has its own role; choose one with --connector ({', '.join(roles)}).", err=True)
        raise typer.Exit(2)
    (role,) = roles.values()
    typer.echo(json.dumps(role.to_json(), indent=2))
