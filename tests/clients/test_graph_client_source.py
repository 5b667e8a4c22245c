"""GraphSource (the engine's IncidentSource over Graph) against the emulator: mapping, tagging, merges."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from clients_world import (
    CLIENT_ID,
    ORIGIN,
    TENANT,
    EmulatorTokenProvider,
    World,
)
from fake_clock import FakeClock
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
from sentinel_signl4.domain.incident_change import OwnerRef
from sentinel_signl4.domain.sync import ClassificationChoice
from sentinel_signl4.errors import AuthError
from sentinel_signl4.sources.graph import GraphSource
from sentinel_signl4.sources.graph_wire import comment_marker, graph_incident_id, graph_resource_id
from sentinel_signl4_emulators.graph.model import AlertSeed, GraphModel, Permission


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
    # incidentWebUrl is the incident in the Defender portal: a "Defender portal" link, no Azure portal one.
    assert incident.provider_url == f"https://security.microsoft.com/incidents/{seeded['id']}?tid={TENANT}"
    assert incident.url == "" and incident.merged is False
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
    assert merged.merged and merged.raw["redirectIncidentId"] == second
    survivor = await source.follow_merge(merged)
    assert survivor is not None and survivor.resource_id == graph_resource_id(TENANT, third)
    assert await source.follow_merge(survivor) is None  # not merged: nothing to follow


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


def stored(model: GraphModel, incident_id: str) -> dict[str, Any]:
    return model.get_incident(TENANT, incident_id, expand_alerts=False, include_unknown=True)


async def test_list_modified_since_filters_on_the_server_by_last_update(
        source: GraphSource, graph_model: GraphModel, clock: FakeClock) -> None:
    old, touched = seed(graph_model, clock)["id"], seed(graph_model, clock)["id"]
    since = clock.now + timedelta(seconds=30)
    clock.advance(60)
    graph_model.update_incident(TENANT, touched, {"status": "resolved"}, actor="analyst@contoso.com",
                                include_unknown=True)
    fresh = seed(graph_model, clock)["id"]
    changed = {i.name: i.status async for i in source.list_modified_since(since)}
    assert changed == {touched: IncidentStatus.CLOSED, fresh: IncidentStatus.NEW}
    assert old not in changed


async def test_acknowledge_moves_active_to_in_progress_and_assigns_the_upn(
        source: GraphSource, graph_model: GraphModel, clock: FakeClock) -> None:
    incident_id = seed(graph_model, clock, custom_tags=["VIP"])["id"]
    owner = OwnerRef(object_id="87d349ed-0000-0000-0000-000000000001", upn="AdeleV@contoso.com",
                     email="adele@contoso.com")
    assert await source.acknowledge(graph_resource_id(TENANT, incident_id), owner) is True
    after = stored(graph_model, incident_id)
    assert (after["status"], after["assignedTo"], after["customTags"]) == ("inProgress", "AdeleV@contoso.com",
                                                                           ["VIP"])
    assert await source.acknowledge(graph_resource_id(TENANT, incident_id), owner) is False  # nothing left to do


async def test_acknowledge_with_only_an_email_assigns_the_email_and_never_reopens(
        source: GraphSource, graph_model: GraphModel, clock: FakeClock) -> None:
    open_id = seed(graph_model, clock)["id"]
    resolved_id = seed(graph_model, clock, status="resolved", classification="truePositive",
                       determination="malware", assigned_to="analyst@contoso.com")["id"]
    owner = OwnerRef(object_id="87d349ed-0000-0000-0000-000000000001", email="megan@contoso.com")
    assert await source.acknowledge(graph_resource_id(TENANT, open_id), owner) is True
    assert stored(graph_model, open_id)["assignedTo"] == "megan@contoso.com"
    assert await source.acknowledge(graph_resource_id(TENANT, resolved_id), owner) is False
    kept = stored(graph_model, resolved_id)
    assert (kept["status"], kept["assignedTo"], kept["determination"]) == ("resolved", "analyst@contoso.com",
                                                                           "malware")


@pytest.mark.parametrize(("choice", "verdict"), [
    (ClassificationChoice(Classification.UNDETERMINED, None), ("unknown", "unknown")),
    (ClassificationChoice(Classification.TRUE_POSITIVE, ClassificationReason.SUSPICIOUS_ACTIVITY),
     ("truePositive", "other")),
    (ClassificationChoice(Classification.BENIGN_POSITIVE, ClassificationReason.SUSPICIOUS_BUT_EXPECTED),
     ("informationalExpectedActivity", "confirmedActivity")),
    (ClassificationChoice(Classification.FALSE_POSITIVE, ClassificationReason.INCORRECT_ALERT_LOGIC),
     ("falsePositive", "notMalicious")),
    (ClassificationChoice(Classification.FALSE_POSITIVE, ClassificationReason.INACCURATE_DATA),
     ("falsePositive", "other")),
])
async def test_close_resolves_with_the_mapped_verdict_and_reads_back_as_the_same_choice(
        source: GraphSource, graph_model: GraphModel, clock: FakeClock, choice: ClassificationChoice,
        verdict: tuple[str, str]) -> None:
    incident_id = seed(graph_model, clock)["id"]
    resource_id = graph_resource_id(TENANT, incident_id)
    owner = OwnerRef(upn="LeeG@contoso.com")
    assert await source.close(resource_id, choice, "Closed in SIGNL4", owner) is True
    after = stored(graph_model, incident_id)
    assert (after["status"], after["classification"], after["determination"]) == ("resolved", *verdict)
    assert after["assignedTo"] == "LeeG@contoso.com"  # nobody was assigned
    read = await source.get(resource_id)
    assert (read.status, read.classification, read.classification_reason) == (
        IncidentStatus.CLOSED, choice.classification, choice.reason)


async def test_close_keeps_an_assignee_and_an_analysts_earlier_verdict(
        source: GraphSource, graph_model: GraphModel, clock: FakeClock) -> None:
    assigned = seed(graph_model, clock, assigned_to="AdeleV@contoso.com")["id"]
    tp = ClassificationChoice(Classification.TRUE_POSITIVE, ClassificationReason.SUSPICIOUS_ACTIVITY)
    assert await source.close(graph_resource_id(TENANT, assigned), tp, "", OwnerRef(upn="LeeG@contoso.com"))
    assert stored(graph_model, assigned)["assignedTo"] == "AdeleV@contoso.com"
    fp = ClassificationChoice(Classification.FALSE_POSITIVE, ClassificationReason.INACCURATE_DATA)
    assert await source.close(graph_resource_id(TENANT, assigned), fp, "", None) is False
    assert stored(graph_model, assigned)["classification"] == "truePositive"


async def test_add_comment_is_idempotent_through_its_marker(
        source: GraphSource, graph_model: GraphModel, clock: FakeClock) -> None:
    incident_id = seed(graph_model, clock)["id"]
    resource_id = graph_resource_id(TENANT, incident_id)
    await source.add_comment(resource_id, "comment-1", "Acknowledged in SIGNL4 by Adele")
    await source.add_comment(resource_id, "comment-1", "Acknowledged in SIGNL4 by Adele")  # a replay
    await source.add_comment(resource_id, "comment-2", "Acknowledged in SIGNL4 by Adele")  # another event
    texts = [c["comment"] for c in stored(graph_model, incident_id)["comments"]]
    assert texts == [f"Acknowledged in SIGNL4 by Adele\n{comment_marker('comment-1')}",
                     f"Acknowledged in SIGNL4 by Adele\n{comment_marker('comment-2')}"]


async def test_writes_to_a_merged_incident_land_on_the_survivor(
        source: GraphSource, graph_model: GraphModel, clock: FakeClock) -> None:
    merged, survivor = seed(graph_model, clock)["id"], seed(graph_model, clock)["id"]
    graph_model.merge_incidents(TENANT, merged, survivor)
    resource_id = graph_resource_id(TENANT, merged)
    assert await source.acknowledge(resource_id, OwnerRef(upn="AdeleV@contoso.com"))
    await source.add_comment(resource_id, "c-1", "note")
    after = stored(graph_model, survivor)
    assert (after["status"], after["assignedTo"], len(after["comments"])) == ("inProgress", "AdeleV@contoso.com", 1)
    assert stored(graph_model, merged)["comments"] == []


async def test_alerts_resource_reads_and_writes_alerts_v2(
        http: httpx.AsyncClient, tokens: EmulatorTokenProvider, graph_model: GraphModel, clock: FakeClock) -> None:
    graph_model.grant(CLIENT_ID, [Permission.SECURITY_ALERT_READ_WRITE])
    source = GraphSource(GraphClient(http, tokens, graph_endpoint=ORIGIN, retry=RetryPolicy()), tenant_id=TENANT,
                         resource="alerts")
    seeded = seed(graph_model, clock, alerts=[AlertSeed(title="Suspicious PowerShell", severity="high",
                                                        category="Execution", mitre_techniques=("T1059",))])
    (alert,) = [a async for a in source.list_matching(IncidentFilter(), clock.now)]
    assert alert.resource_id == f"graph:{TENANT}:alerts/{alert.name}"
    assert (alert.title, alert.number, alert.severity) == ("Suspicious PowerShell", int(seeded["id"]),
                                                           Severity.HIGH)
    assert alert.provider_url.startswith("https://security.microsoft.com/alerts/")
    assert await source.add_tag(alert.resource_id, "SIGNL4") is False  # alerts carry no tags
    assert await source.acknowledge(alert.resource_id, OwnerRef(upn="AdeleV@contoso.com")) is True
    await source.add_comment(alert.resource_id, "c-1", "Acknowledged")
    await source.add_comment(alert.resource_id, "c-1", "Acknowledged")
    fp = ClassificationChoice(Classification.FALSE_POSITIVE, ClassificationReason.INCORRECT_ALERT_LOGIC)
    assert await source.close(alert.resource_id, fp, "", None) is True
    read = await source.get(alert.resource_id)
    assert (read.status, read.classification, read.owner.upn) == (
        IncidentStatus.CLOSED, Classification.FALSE_POSITIVE, "AdeleV@contoso.com")
    assert len(read.raw["comments"]) == 1
    await source.check_access()
