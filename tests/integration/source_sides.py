"""The two incident sources as a test sees them: create incidents, act as an analyst or as Defender, and read the
result back in one vocabulary (ours), so a scenario is written once and runs against Sentinel and Graph alike.

Only the emulators' state models are touched here (what a human or Microsoft would do); the connector under test
always goes through its real clients.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from integration_harness import Harness
from sentinel_signl4.domain.enums import Classification, ClassificationReason
from sentinel_signl4.domain.graph_vocab import classification_from_graph, verdict_for
from sentinel_signl4.sources.graph_wire import graph_resource_id
from sentinel_signl4_emulators.graph.model import AlertSeed
from sentinel_signl4_emulators.seed import DemoUser

__all__ = ["GraphSide", "SentinelSide", "Side", "View", "side_for"]

_GRAPH_STATUS = {"active": "New", "inProgress": "Active", "awaitingAction": "Active", "resolved": "Closed",
                 "redirected": "Redirected"}


@dataclass(frozen=True, slots=True)
class View:
    """An incident in our vocabulary: status New/Active/Closed (or Redirected), owner as the source shows it."""

    status: str
    severity: str
    created: datetime
    owner: str | None
    labels: tuple[str, ...]
    classification: str | None
    reason: str | None
    comments: tuple[str, ...]
    number: int
    raw: dict[str, Any]


class Side(Protocol):
    kind: str

    def create(self, title: str, *, severity: str = "High", minutes_ago: float = 3.0) -> str: ...
    def resource_id(self, name: str) -> str: ...
    def view(self, name: str) -> View: ...
    def views(self) -> dict[str, View]: ...
    def owner_of(self, user: DemoUser) -> str: ...
    def analyst_close(self, name: str, classification: str, reason: str | None = None) -> None: ...
    def analyst_reopen(self, name: str) -> None: ...
    def analyst_set_owner(self, name: str, user: DemoUser) -> None: ...
    def analyst_tag(self, name: str, tag: str) -> None: ...
    def merge(self, name: str, into: str) -> None: ...


class SentinelSide:
    kind = "sentinel"

    def __init__(self, harness: Harness) -> None:
        self.h = harness
        self.sentinel = harness.state.sentinel
        self.ws = harness.world.workspace

    def create(self, title: str, *, severity: str = "High", minutes_ago: float = 3.0) -> str:
        created = datetime.now(UTC) - timedelta(minutes=minutes_ago)
        return str(self.sentinel.create_incident(self.ws, title=title, severity=severity, created=created)["name"])

    def resource_id(self, name: str) -> str:
        return str(self.sentinel.get_incident(self.ws, name)["id"])

    def view(self, name: str) -> View:
        return self._view(self.sentinel.get_incident(self.ws, name))

    def views(self) -> dict[str, View]:
        return {str(i["name"]): self._view(i) for i in self.sentinel.list_incidents(self.ws)}

    def _view(self, resource: dict[str, Any]) -> View:
        p = resource["properties"]
        comments = tuple(c["properties"]["message"] for c in self.sentinel.comments(self.ws, resource["name"]))
        return View(status=p["status"], severity=p["severity"], created=datetime.fromisoformat(p["createdTimeUtc"]),
                    owner=(p.get("owner") or {}).get("objectId"), labels=tuple(
                        label["labelName"] for label in p["labels"]), classification=p.get("classification"),
                    reason=p.get("classificationReason"), comments=comments, number=p["incidentNumber"],
                    raw=resource)

    def owner_of(self, user: DemoUser) -> str:
        return user.object_id

    def analyst_close(self, name: str, classification: str, reason: str | None = None) -> None:
        self.sentinel.close_incident_as_analyst(self.ws, name, classification=classification,
                                                classification_reason=reason)

    def analyst_reopen(self, name: str) -> None:
        self.sentinel.update_incident_as_analyst(self.ws, name, status="New")

    def analyst_set_owner(self, name: str, user: DemoUser) -> None:
        self.sentinel.update_incident_as_analyst(self.ws, name, owner=user.object_id)

    def analyst_tag(self, name: str, tag: str) -> None:
        self.sentinel.update_incident_as_analyst(self.ws, name, add_labels=[tag])

    def merge(self, name: str, into: str) -> None:
        self.sentinel.merge_incidents(self.ws, name, into)


class GraphSide:
    kind = "graph"

    def __init__(self, harness: Harness) -> None:
        self.h = harness
        self.graph = harness.state.graph
        self.tenant = harness.world.tenant_id

    def create(self, title: str, *, severity: str = "High", minutes_ago: float = 3.0) -> str:
        created = datetime.now(UTC) - timedelta(minutes=minutes_ago)
        incident = self.graph.create_incident(self.tenant, display_name=title, created=created, alerts=[
            AlertSeed(title=title, severity=severity.lower(), created=created, category="Execution")])
        return str(incident["id"])

    def resource_id(self, name: str) -> str:
        return graph_resource_id(self.tenant, name)

    def view(self, name: str) -> View:
        return self._view(self.graph.get_incident(self.tenant, name, expand_alerts=False, include_unknown=True))

    def views(self) -> dict[str, View]:
        return {str(i["id"]): self._view(i) for i in self.graph.incidents(self.tenant)}

    @staticmethod
    def _view(item: dict[str, Any]) -> View:
        classification, reason = classification_from_graph(item["classification"], item["determination"],
                                                           resolved=item["status"] == "resolved")
        # Our comments end with their idempotency marker on a line of its own; a reader sees the text above it.
        comments = tuple(c["comment"].rsplit("\n[s4:", 1)[0] for c in item["comments"])
        return View(status=_GRAPH_STATUS[item["status"]], severity=item["severity"].capitalize(),
                    created=datetime.fromisoformat(item["createdDateTime"].replace("Z", "+00:00")),
                    owner=item["assignedTo"], labels=tuple(item["customTags"]),
                    classification=classification.value if classification else None,
                    reason=reason.value if reason else None, comments=comments, number=int(item["id"]), raw=item)

    def owner_of(self, user: DemoUser) -> str:
        return user.mail  # the demo users' UPN is their mail address

    def analyst_close(self, name: str, classification: str, reason: str | None = None) -> None:
        verdict = verdict_for(Classification(classification), ClassificationReason(reason) if reason else None)
        self.graph.update_incident(self.tenant, name, {"status": "resolved", **verdict.to_json()},
                                   actor="analyst@contoso.com", include_unknown=True)

    def analyst_reopen(self, name: str) -> None:
        self.graph.update_incident(self.tenant, name, {"status": "active"}, actor="analyst@contoso.com",
                                   include_unknown=True)

    def analyst_set_owner(self, name: str, user: DemoUser) -> None:
        self.graph.update_incident(self.tenant, name, {"assignedTo": user.mail}, actor="analyst@contoso.com",
                                   include_unknown=True)

    def analyst_tag(self, name: str, tag: str) -> None:
        tags = self.graph.get_incident(self.tenant, name, expand_alerts=False, include_unknown=True)["customTags"]
        self.graph.update_incident(self.tenant, name, {"customTags": [*tags, tag]}, actor="analyst@contoso.com",
                                   include_unknown=True)

    def merge(self, name: str, into: str) -> None:
        self.graph.merge_incidents(self.tenant, name, into)


def side_for(kind: str, harness: Harness) -> Side:
    return SentinelSide(harness) if kind == "sentinel" else GraphSide(harness)
