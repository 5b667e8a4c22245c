"""The least-privilege custom role of a connector, derived from the calls its configuration makes.

:func:`calls_of` names the client methods a connector's features use (the same choices ``bootstrap`` makes when it
builds the connector); each method declares its Azure actions next to its code (``clients.azure_actions``), and the
role holds the union of those actions and nothing else. A Graph-source connector makes no Azure Resource Manager
call: it gets no role, only Microsoft Graph application permissions (:func:`graph_permissions`).

One role per connector: its actions are exactly that connector's, and a re-run updates it in place when the
configuration changes. Azure accepts management groups, subscriptions and resource groups as assignable scopes (not
single resources), so the role is assignable in the workspace's resource group and **assigned on the workspace**.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sentinel_signl4.clients.azure_actions import declaration_of
from sentinel_signl4.clients.loganalytics import LogAnalyticsClient
from sentinel_signl4.clients.sentinel import SentinelClient
from sentinel_signl4.engine.enrich import build_query
from sentinel_signl4.provision.targets import ConnectorTarget

__all__ = [
    "GRAPH_ALERTS",
    "GRAPH_INCIDENTS",
    "GRAPH_USERS",
    "RoleDefinition",
    "actions_of",
    "calls_of",
    "graph_permissions",
    "role_of",
]

GRAPH_INCIDENTS = "SecurityIncident.ReadWrite.All"  # source = "graph", resource = "incidents"
GRAPH_ALERTS = "SecurityAlert.ReadWrite.All"  # source = "graph", resource = "alerts"
GRAPH_USERS = "User.Read.All"  # owner lookup by e-mail, when no owner_map is configured

Call = tuple[Callable[..., Any], Mapping[str, Any]]


@dataclass(frozen=True)
class RoleDefinition:
    """An Azure custom role definition (the JSON ``az role definition create`` and ``New-AzRoleDefinition`` read)."""

    name: str
    description: str
    actions: tuple[str, ...]
    assignable_scopes: tuple[str, ...]
    assign_at: str  # the scope of its one role assignment: the workspace

    def to_json(self) -> dict[str, Any]:
        return {
            "Name": self.name,
            "IsCustom": True,
            "Description": self.description,
            "Actions": list(self.actions),
            "NotActions": [],
            "DataActions": [],
            "NotDataActions": [],
            "AssignableScopes": list(self.assignable_scopes),
        }


def calls_of(target: ConnectorTarget) -> list[Call]:
    """The Azure Resource Manager and Log Analytics calls the connector makes, with the arguments that matter."""
    if target.source != "sentinel":
        return []
    features = target.features
    calls: list[Call] = [
        (SentinelClient.check_access, {}),  # `check`
        (SentinelClient.list_incidents, {}),  # the forward path's poll and full scans
    ]
    if features.lifecycle_reads:
        calls.append((SentinelClient.list_modified_since, {}))  # the reverse path's lifecycle poll
    if features.tags or features.sync_writes:
        calls += [(SentinelClient.get_incident, {}), (SentinelClient.put_incident, {})]  # read-modify-write
    if features.sync_writes:
        calls.append((SentinelClient.put_comment, {}))  # acknowledgements, closes and annotations as comments
    enrichment = features.enrichment
    if enrichment is not None:
        if enrichment.alerts:
            calls.append((SentinelClient.list_alerts, {}))
        if enrichment.entities:
            calls.append((SentinelClient.list_entities, {}))
        kql = build_query(enrichment.query, system_alert_ids=["id"], incident_names=["name"],
                          columns=enrichment.columns, max_rows=enrichment.max_rows)
        calls += [(LogAnalyticsClient.query, {"kql": kql}), (LogAnalyticsClient.check_access, {})]
    return calls


def actions_of(target: ConnectorTarget) -> tuple[str, ...]:
    """The sorted union of the actions the connector's calls declare."""
    actions: set[str] = set()
    for method, arguments in calls_of(target):
        actions |= declaration_of(method).actions(arguments)
    return tuple(sorted(actions))


def role_of(target: ConnectorTarget, *, prefix: str = "sentinel-signl4") -> RoleDefinition | None:
    """The connector's custom role, or ``None`` when it needs none (a Graph-source connector)."""
    actions = actions_of(target)
    if not actions or target.workspace is None:
        return None
    features = target.features
    uses = ["read incidents"]
    if features.tags or features.sync_writes:
        uses.append("update incidents")
    if features.sync_writes:
        uses.append("add comments")
    if features.enrichment is not None:
        tables = sorted(a.split("/")[-2] for a in actions if a.startswith("Microsoft.OperationalInsights/workspaces/"
                                                                          "query/") and a.count("/") == 4)
        uses.append(f"query {', '.join(tables)}")
    return RoleDefinition(
        name=f"{prefix} {target.name}",
        description=(f"sentinel-signl4 connector {target.name} on workspace {target.workspace.name}: "
                     f"{'; '.join(uses)}. Generated from the connector code and configuration."),
        actions=actions,
        assignable_scopes=(target.workspace.resource_group_id,),
        assign_at=target.workspace.resource_id,
    )


def graph_permissions(target: ConnectorTarget) -> tuple[str, ...]:
    """The Microsoft Graph application permissions (app roles) the connector needs."""
    permissions: list[str] = []
    if target.source == "graph":
        permissions.append(GRAPH_ALERTS if target.features.graph_resource == "alerts" else GRAPH_INCIDENTS)
    if target.features.owner_lookup:
        permissions.append(GRAPH_USERS)
    return tuple(permissions)
