"""The demo world's Defender XDR side: Graph permissions for the demo apps and a realistic set of incidents.

Called by ``seed.seed_demo`` after the directory (tenant, apps, users) exists. The incidents cover what a Graph
connector meets in practice: new ones of every severity, one in progress with an owner, one awaiting action (an
evolvable status), one resolved with a verdict, and one that Defender merged into another (status
``redirected``), so ``demo`` in Graph mode shows a merge being followed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sentinel_signl4_emulators.graph.model import AlertSeed, GraphModel, Permission

__all__ = ["GraphDemo", "seed_graph_demo"]

SIGNL4_TAG = "SIGNL4"


@dataclass(frozen=True, slots=True)
class GraphDemo:
    """What the seed created: incident ids (newest last) and the merge it scripted."""

    incident_ids: tuple[str, ...]
    merged_id: str
    survivor_id: str


def _alert(title: str, severity: str, age: timedelta, now: datetime, **kwargs: Any) -> AlertSeed:
    return AlertSeed(title=title, severity=severity, created=now - age, **kwargs)


def seed_graph_demo(
    graph: GraphModel,
    *,
    tenant_id: str,
    client_id: str,
    reader_client_id: str | None,
    owner_upn: str,
    now: datetime,
) -> GraphDemo:
    """Grant the demo app every permission the connector needs (the reader app: read-only) and seed incidents."""
    graph.grant(client_id, [Permission.SECURITY_INCIDENT_READ_WRITE, Permission.SECURITY_ALERT_READ_WRITE,
                            Permission.USER_READ_ALL])
    if reader_client_id:
        graph.grant(reader_client_id, [Permission.SECURITY_INCIDENT_READ, Permission.SECURITY_ALERT_READ])

    def incident(title: str, age: timedelta, alerts: list[AlertSeed], **kwargs: Any) -> str:
        created = graph.create_incident(tenant_id, display_name=title, created=now - age, alerts=alerts, **kwargs)
        return str(created["id"])

    ids = [
        incident("Multi-stage incident involving Execution & Defense evasion on one endpoint", timedelta(hours=30), [
            _alert("Ransomware behavior detected in the file system", "high", timedelta(hours=30), now,
                   category="Impact", mitre_techniques=("T1486",)),
            _alert("Shadow copies deleted", "high", timedelta(hours=30), now, category="Impact",
                   mitre_techniques=("T1490",)),
        ], status="resolved", classification="truePositive", determination="malware", assigned_to=owner_upn,
            custom_tags=[SIGNL4_TAG]),
        incident("Suspicious inbox forwarding rule", timedelta(hours=5), [
            _alert("Suspicious inbox forwarding", "medium", timedelta(hours=5), now,
                   service_source="microsoftDefenderForCloudApps", detection_source="cloudAppSecurity",
                   category="Exfiltration", mitre_techniques=("T1114.003",)),
        ], status="inProgress", assigned_to=owner_upn, custom_tags=[SIGNL4_TAG]),
        incident("Unfamiliar sign-in properties", timedelta(hours=3), [
            _alert("Unfamiliar sign-in properties", "low", timedelta(hours=3), now,
                   service_source="azureAdIdentityProtection", detection_source="azureAdIdentityProtection",
                   category="InitialAccess", mitre_techniques=("T1078",)),
        ], status="awaitingAction"),
        incident("Email messages containing malicious URL removed after delivery", timedelta(minutes=40), [
            _alert("Email messages containing malicious URL removed after delivery", "informational",
                   timedelta(minutes=40), now, service_source="microsoftDefenderForOffice365",
                   detection_source="microsoftDefenderForOffice365", category="InitialAccess",
                   mitre_techniques=("T1566.002",)),
        ]),
        incident("Suspicious PowerShell command line on FIN-WS-042", timedelta(minutes=12), [
            _alert("Suspicious PowerShell command line", "medium", timedelta(minutes=12), now, category="Execution",
                   mitre_techniques=("T1059.001",)),
        ]),
        incident("Multiple failed sign-ins followed by a success (Microsoft Sentinel)", timedelta(minutes=8), [
            _alert("Brute force attack against Azure Portal", "high", timedelta(minutes=8), now,
                   service_source="microsoftSentinel", detection_source="scheduledAlerts",
                   category="CredentialAccess", mitre_techniques=("T1110",)),
        ]),
        incident("Hidden file executed on FIN-WS-042", timedelta(minutes=5), [
            _alert("Suspicious execution of hidden file", "low", timedelta(minutes=5), now,
                   category="DefenseEvasion", mitre_techniques=("T1564.001",)),
        ]),
    ]
    # Defender correlates the hidden file with the PowerShell incident on the same device and merges them.
    merged, survivor = ids[-1], ids[-3]
    graph.merge_incidents(tenant_id, merged, survivor)
    return GraphDemo(incident_ids=tuple(ids), merged_id=merged, survivor_id=survivor)
