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


AppNameOption = Annotated[str, typer.Option(
    "--app-name", help="Display name of the app registration created for connectors without a client id.")]
SecretDaysOption = Annotated[int, typer.Option(
    "--secret-days", help="Lifetime of a created client secret or certificate, in days.")]
IssuerOption = Annotated[str | None, typer.Option(
    "--oidc-issuer", help="Workload identity: the Kubernetes cluster's OIDC issuer URL.")]
ServiceAccountOption = Annotated[str | None, typer.Option(
    "--service-account", help="Workload identity: <namespace>/<name> of the connector's Kubernetes service account.")]
OutDirOption = Annotated[str, typer.Option(
    "--out-dir", help="Where the script writes created secrets and certificates (mode 0600); $OUT_DIR overrides.")]


def _plans(config: Path, connector: list[str] | None, tenant: str | None, subscription: str | None,
           resource_group: str | None, workspace_name: str | None, workspace_id: str | None, client_id: str | None,
           options: object) -> list[object]:
    from sentinel_signl4.provision.plan import PlanOptions, build_plan
    from sentinel_signl4.provision.targets import ConnectorTarget, ProvisionInputError

    assert isinstance(options, PlanOptions)
    targets = [t for t in _targets(config, connector, tenant, subscription, resource_group, workspace_name,
                                   workspace_id, client_id) if isinstance(t, ConnectorTarget)]
    try:
        return list(build_plan(targets, options))
    except ProvisionInputError as exc:
        typer.echo(f"Cannot provision: {len(exc.problems)} value(s) missing or invalid:\n{exc}", err=True)
        raise typer.Exit(2) from None


@provision_app.command("plan")
def plan(config: ConfigOption, connector: ConnectorOption = None, tenant: TenantOption = None,
         subscription: SubscriptionOption = None, resource_group: GroupOption = None,
         workspace_name: WorkspaceNameOption = None, workspace_id: WorkspaceIdOption = None,
         client_id: ClientIdOption = None, app_name: AppNameOption = "sentinel-signl4",
         secret_days: SecretDaysOption = 180, oidc_issuer: IssuerOption = None,
         service_account: ServiceAccountOption = None) -> None:
    """Show, per tenant and identity, what would be created: app or managed identity, roles, assignments, consent."""
    from sentinel_signl4.provision.plan import PlanOptions, TenantPlan, render_plan

    options = PlanOptions(app_name=app_name, secret_days=secret_days, oidc_issuer=oidc_issuer,
                          service_account=service_account)
    plans = [p for p in _plans(config, connector, tenant, subscription, resource_group, workspace_name,
                               workspace_id, client_id, options) if isinstance(p, TenantPlan)]
    typer.echo(render_plan(plans, options), nl=False)


@provision_app.command("script")
def script(config: ConfigOption, shell: Annotated[Shell, typer.Option(help="Script language.")] = Shell.BASH,
           connector: ConnectorOption = None, tenant: TenantOption = None, subscription: SubscriptionOption = None,
           resource_group: GroupOption = None, workspace_name: WorkspaceNameOption = None,
           workspace_id: WorkspaceIdOption = None, client_id: ClientIdOption = None,
           app_name: AppNameOption = "sentinel-signl4", secret_days: SecretDaysOption = 180,
           oidc_issuer: IssuerOption = None, service_account: ServiceAccountOption = None,
           out_dir: OutDirOption = ".") -> None:
    """Print an idempotent script that creates the identities, roles, assignments and Graph permissions."""
    from sentinel_signl4.provision.bash import bash_script
    from sentinel_signl4.provision.plan import PlanOptions, TenantPlan
    from sentinel_signl4.provision.powershell import powershell_script

    options = PlanOptions(app_name=app_name, secret_days=secret_days, oidc_issuer=oidc_issuer,
                          service_account=service_account, out_dir=out_dir)
    plans = [p for p in _plans(config, connector, tenant, subscription, resource_group, workspace_name,
                               workspace_id, client_id, options) if isinstance(p, TenantPlan)]
    render = bash_script if shell is Shell.BASH else powershell_script
    typer.echo(render(plans, options), nl=False)


class Operator(StrEnum):
    """``provision apply --operator``: how the operator signs in."""

    CLI = "cli"
    DEVICE_CODE = "device-code"


@provision_app.command("apply")
def apply(config: ConfigOption, connector: ConnectorOption = None, tenant: TenantOption = None,
          subscription: SubscriptionOption = None, resource_group: GroupOption = None,
          workspace_name: WorkspaceNameOption = None, workspace_id: WorkspaceIdOption = None,
          client_id: ClientIdOption = None, app_name: AppNameOption = "sentinel-signl4",
          secret_days: SecretDaysOption = 180, oidc_issuer: IssuerOption = None,
          service_account: ServiceAccountOption = None, out_dir: OutDirOption = ".",
          operator: Annotated[Operator, typer.Option(
              help="Sign in as the operator with the Azure CLI's login or a device code.")] = Operator.CLI,
          dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the plan; change nothing.")] = False,
          show_secret: Annotated[bool, typer.Option(
              "--show-secret", help="Also print a created client secret (it is always written to a 0600 file).")]
          = False,
          ) -> None:
    """Create the identities, roles, assignments and Graph permissions through Azure's APIs, as you."""
    import asyncio

    from sentinel_signl4.provision.apply_cli import run_apply
    from sentinel_signl4.provision.plan import PlanOptions, TenantPlan

    options = PlanOptions(app_name=app_name, secret_days=secret_days, oidc_issuer=oidc_issuer,
                          service_account=service_account, out_dir=out_dir)
    plans = [p for p in _plans(config, connector, tenant, subscription, resource_group, workspace_name,
                               workspace_id, client_id, options) if isinstance(p, TenantPlan)]
    if dry_run:
        from sentinel_signl4.provision.plan import render_plan

        typer.echo(render_plan(plans, options), nl=False)
        return
    # Then `check` per tenant against the new identities (provision/verify.py).
    text = config.read_text(encoding="utf-8")
    raise typer.Exit(asyncio.run(run_apply(plans, options, device_code=operator is Operator.DEVICE_CODE,
                                           echo=typer.echo, show_secret=show_secret,
                                           config=(text, config.absolute()))))
