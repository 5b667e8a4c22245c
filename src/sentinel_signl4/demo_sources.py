"""The demo's view of the incident source it runs against: Sentinel (an ARM workspace) or Defender XDR (Graph).

``demo.py`` narrates the same story for both; what differs — where incidents are created, how an analyst closes
one, which request the injected faults hit, how the result reads — lives here. Only the emulators' state models are
touched (what Microsoft or a human would do); the connector always goes through its real clients. Incidents are
shown through the adapters' own read mappings (``sources/*_wire.py``), so the demo predicts what the connector
will see.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from sentinel_signl4.domain import Incident
from sentinel_signl4.domain.enums import Classification, ClassificationReason
from sentinel_signl4.domain.graph_vocab import verdict_for
from sentinel_signl4.sources.graph_wire import graph_incident_id, incident_from_graph
from sentinel_signl4.sources.sentinel_wire import incident_from_arm
from sentinel_signl4_emulators.app import EmulatorState
from sentinel_signl4_emulators.common.faults import FaultRule
from sentinel_signl4_emulators.graph.model import AlertSeed
from sentinel_signl4_emulators.seed import DemoWorld

__all__ = ["DemoSource", "IncidentState", "demo_source"]

_SEVERITIES = ("High", "Medium", "Low", "Informational")
_GRAPH_STATUS: Final[Mapping[str, str]] = {
    "active": "New", "inProgress": "Active", "awaitingAction": "Active", "resolved": "Closed",
    "redirected": "Redirected",
}


@dataclass(frozen=True, slots=True)
class IncidentState:
    """How an incident reads after the responders acted: our status vocabulary, the source's owner field."""

    status: str
    owner: str
    classification: str
    comments: tuple[str, ...]


class DemoSource(Protocol):
    kind: str
    title: str  # "Sentinel workspace 'x'" / "Defender XDR (Graph) tenant x"
    portal: str  # where an analyst works: "the Sentinel portal" / "the Defender portal"

    def incidents(self) -> list[Incident]: ...
    def create(self, title: str, severity: str, created: datetime) -> str: ...
    def faults(self) -> list[tuple[FaultRule, str]]: ...
    def state_of(self, incident_id: str) -> IncidentState: ...
    def analyst_close(self, incident_id: str) -> None: ...
    def merge(self, incident_id: str, into: str) -> None: ...


class SentinelDemo:
    kind = "sentinel"
    portal = "the Sentinel portal"

    def __init__(self, state: EmulatorState, world: DemoWorld) -> None:
        self.sentinel = state.sentinel
        self.ws = world.workspace
        self.title = f"Sentinel workspace '{world.workspace_name}'"

    def incidents(self) -> list[Incident]:
        return [incident_from_arm(r) for r in self.sentinel.list_incidents(self.ws)]

    def create(self, title: str, severity: str, created: datetime) -> str:
        return str(self.sentinel.create_incident(
            self.ws, title=title, severity=severity, created=created,
            description="Encoded command line spawned by an Office process.",
            product_names=["Microsoft Defender for Endpoint"], tactics=["Execution"])["id"])

    def faults(self) -> list[tuple[FaultRule, str]]:
        return [(FaultRule(path=r"/incidents$", method="GET", kind="status", status=503, count=2),
                 "Sentinel list 503 x2"),
                (FaultRule(path=r"/incidents/[^/]+$", method="PUT", kind="status", status=500, count=2),
                 "Sentinel PUT 500 x2")]

    def state_of(self, incident_id: str) -> IncidentState:
        name = incident_id.rsplit("/", 1)[-1]
        props = self.sentinel.get_incident(self.ws, name)["properties"]
        verdict = f"{props.get('classification') or '-'} {props.get('classificationReason') or ''}".rstrip()
        return IncidentState(status=props["status"], owner=(props.get("owner") or {}).get("assignedTo") or "-",
                             classification=verdict, comments=tuple(
                                 c["properties"]["message"] for c in self.sentinel.comments(self.ws, name)))

    def analyst_close(self, incident_id: str) -> None:
        self.sentinel.close_incident_as_analyst(self.ws, incident_id.rsplit("/", 1)[-1],
                                                classification="TruePositive",
                                                classification_reason="SuspiciousActivity")

    def merge(self, incident_id: str, into: str) -> None:
        self.sentinel.merge_incidents(self.ws, incident_id.rsplit("/", 1)[-1], into.rsplit("/", 1)[-1])


class GraphDemo:
    kind = "graph"
    portal = "the Defender portal"

    def __init__(self, state: EmulatorState, world: DemoWorld) -> None:
        self.graph = state.graph
        self.tenant = world.tenant_id
        self.title = f"Defender XDR (Microsoft Graph) tenant {world.tenant_id}"

    def incidents(self) -> list[Incident]:
        return [incident_from_graph(i, tenant_id=self.tenant) for i in self.graph.incidents(self.tenant)]

    def create(self, title: str, severity: str, created: datetime) -> str:
        incident = self.graph.create_incident(self.tenant, display_name=title, created=created, alerts=[
            AlertSeed(title=title, severity=severity.lower(), created=created, category="Execution",
                      mitre_techniques=("T1059.001",))])
        return incident_from_graph(incident, tenant_id=self.tenant).resource_id

    def faults(self) -> list[tuple[FaultRule, str]]:
        return [(FaultRule(path=r"/security/incidents$", method="GET", kind="status", status=503, count=2),
                 "Graph list 503 x2"),
                (FaultRule(path=r"/security/incidents/[^/]+$", method="PATCH", kind="status", status=500, count=2),
                 "Graph PATCH 500 x2")]

    def state_of(self, incident_id: str) -> IncidentState:
        item = self.graph.get_incident(self.tenant, graph_incident_id(incident_id), expand_alerts=False,
                                       include_unknown=True)
        return IncidentState(status=_GRAPH_STATUS.get(item["status"], item["status"]),
                             owner=item["assignedTo"] or "-",
                             classification=f"{item['classification']} / {item['determination']}",
                             comments=tuple(c["comment"].rsplit("\n[s4:", 1)[0] for c in item["comments"]))

    def analyst_close(self, incident_id: str) -> None:
        verdict = verdict_for(Classification.TRUE_POSITIVE, ClassificationReason.SUSPICIOUS_ACTIVITY)
        self.graph.update_incident(self.tenant, graph_incident_id(incident_id),
                                   {"status": "resolved", **verdict.to_json()}, actor="analyst@contoso.com",
                                   include_unknown=True)

    def merge(self, incident_id: str, into: str) -> None:
        self.graph.merge_incidents(self.tenant, graph_incident_id(incident_id), graph_incident_id(into))


def demo_source(kind: str, state: EmulatorState, world: DemoWorld) -> DemoSource:
    return GraphDemo(state, world) if kind == "graph" else SentinelDemo(state, world)


def burst_severity(n: int) -> str:
    return _SEVERITIES[n % len(_SEVERITIES)]
