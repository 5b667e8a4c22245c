"""GraphSource (the engine's IncidentSource over Graph) against the emulator: mapping, tagging, merges."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from conftest import CLIENT_ID, ORIGIN, TENANT, EmulatorTokenProvider, FakeClock, World

from sentinel_signl4.clients.errors import AuthError
from sentinel_signl4.clients.graph import GraphClient
from sentinel_signl4.clients.retry import RetryPolicy
from sentinel_signl4.domain import (
    Classification,
    ClassificationReason,
    IncidentFilter,
    IncidentStatus,
    Severity,
    skip_reason,
)
from sentinel_signl4.emulators.graph_model import AlertSeed, GraphModel, Permission
from sentinel_signl4.sources.graph import GraphSource, graph_incident_id, graph_resource_id


@pytest.fixture
def graph_model(world: World) -> GraphModel:
    world.state.graph.grant(CLIENT_ID, [Permission.SECURITY_INCIDENT_READ_WRITE])
    return world.state.graph


@pytest.fixture
def source(http: httpx.AsyncClient, tokens: EmulatorTokenProvider, graph_model: GraphModel) -> GraphSource:
    client = GraphClient(http, tokens, graph_endpoint=ORIGIN, retry=RetryPolicy(), page_size=3)
    return GraphSource(client, tenant_id=TENANT.upper())


def seed(model: GraphModel, clock: FakeClock, **kwargs: Any) -> dict[str, Any]:
    clock.advance(60)
    kwargs.setdefault("display_name", "Multi-stage incident involving Initial access")
    return model.create_incident(TENANT, **kwargs)


async def test_incidents_map_to_the_domain(source: GraphSource, graph_model: GraphModel, clock: FakeClock) -> None:
    seeded = seed(graph_model, clock, description="Raspberry Robin worm activity", custom_tags=["Demo"],
                  assigned_to="KaiC@contoso.onmicrosoft.com", alerts=[
                      AlertSeed(title="Hidden file", severity="medium", category="DefenseEvasion",
                                mitre_techniques=("T1564.001",)),
                      AlertSeed(title="Rule hit", severity="low", service_source="microsoftSentinel",
                                category="InitialAccess", mitre_techniques=("T1078",)),
                      AlertSeed(title="Another hidden file", severity="low", category="DefenseEvasion"),
                  ])
    (incident,) = [i async for i in source.list_matching(IncidentFilter(), clock.now)]
    assert incident.resource_id == f"graph:{TENANT}:incidents/{seeded['id']}"
    assert (incident.name, incident.number) == (seeded["id"], int(seeded["id"]))
    assert (incident.title, incident.description) == (seeded["displayName"], "Raspberry Robin worm activity")
    assert (incident.severity, incident.status) == (Severity.MEDIUM, IncidentStatus.NEW)
    assert incident.url == f"https://security.microsoft.com/incidents/{seeded['id']}?tid={TENANT}"
    assert incident.product_names == ("Microsoft Defender for Endpoint", "Microsoft Sentinel")
    assert incident.tactics == ("DefenseEvasion", "InitialAccess", "T1564.001", "T1078")
    assert (incident.labels, incident.alerts_count) == (("Demo",), 3)
    assert (incident.owner.upn, incident.owner.name) == ("KaiC@contoso.onmicrosoft.com",) * 2
    assert incident.created == clock.now and incident.classification is None
    assert skip_reason(incident, IncidentFilter(), clock.now) is None  # the engine's own check agrees


async def test_resolved_incidents_carry_their_classification(source: GraphSource, graph_model: GraphModel,
                                                             clock: FakeClock) -> None:
    seeded = seed(graph_model, clock, status="resolved", classification="falsePositive",
                  determination="notMalicious")
    incident = await source.get(graph_resource_id(TENANT, seeded["id"]))
    assert incident.status is IncidentStatus.CLOSED
    assert (incident.classification, incident.classification_reason) == (
        Classification.FALSE_POSITIVE, ClassificationReason.INCORRECT_ALERT_LOGIC)


async def test_list_matching_applies_the_filter_on_the_server(source: GraphSource, graph_model: GraphModel,
                                                              clock: FakeClock) -> None:
    wanted = [seed(graph_model, clock, severity="high")["id"] for _ in range(4)]
    seed(graph_model, clock, severity="low")
    seed(graph_model, clock, severity="high", status="inProgress")
    seed(graph_model, clock, severity="high", created=clock.now - timedelta(hours=30))
    flt = IncidentFilter(severities=frozenset({Severity.HIGH}))
    assert [i.name async for i in source.list_matching(flt, clock.now)] == list(reversed(wanted))


async def test_add_tag_merges_into_the_tags_analysts_set(source: GraphSource, graph_model: GraphModel,
                                                         clock: FakeClock) -> None:
    seeded = seed(graph_model, clock, custom_tags=["Finance"], assigned_to="AdeleV@contoso.com")
    resource_id = graph_resource_id(TENANT, seeded["id"])
    graph_model.update_incident(TENANT, seeded["id"], {"customTags": ["Finance", "VIP"]}, actor="AdeleV@contoso.com",
                                include_unknown=True)
    assert await source.add_tag(resource_id, "SIGNL4") is True
    assert await source.add_tag(resource_id, "signl4") is False  # any case counts as present
    stored = graph_model.get_incident(TENANT, seeded["id"], expand_alerts=False, include_unknown=True)
    assert stored["customTags"] == ["Finance", "VIP", "SIGNL4"]
    assert stored["assignedTo"] == "AdeleV@contoso.com"  # PATCH sends only customTags


async def test_add_tag_on_a_merged_incident_tags_the_survivor(source: GraphSource, graph_model: GraphModel,
                                                              clock: FakeClock) -> None:
    first, second, third = (seed(graph_model, clock)["id"] for _ in range(3))
    graph_model.merge_incidents(TENANT, first, second)
    graph_model.merge_incidents(TENANT, second, third)
    assert await source.add_tag(graph_resource_id(TENANT, first), "SIGNL4") is True
    tags = {i["id"]: i["customTags"] for i in graph_model.incidents(TENANT)}
    assert tags == {first: [], second: [], third: ["SIGNL4"]}
    merged = await source.get(first)
    assert merged.status is IncidentStatus.ACTIVE  # neither pages (New) nor resolves a Signl (Closed)
    assert merged.raw["redirectIncidentId"] == second


async def test_check_access_fails_without_the_permission(source: GraphSource, graph_model: GraphModel) -> None:
    await source.check_access()
    graph_model.revoke(CLIENT_ID)
    with pytest.raises(AuthError, match=r"SecurityIncident\.ReadWrite\.All"):
        await source.check_access()


def test_resource_ids_are_unique_per_tenant_and_reversible() -> None:
    assert graph_resource_id("ABC", "42") == "graph:abc:incidents/42"
    assert graph_resource_id("abc", "42") != graph_resource_id("def", "42")
    assert graph_incident_id("graph:abc:incidents/42") == "42"
    assert graph_incident_id("42") == "42"
