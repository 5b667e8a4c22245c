"""SentinelClient against the ARM Sentinel emulator: paging, filters, etag-safe PUTs (bodies built by the adapter's
wire module), failure mapping."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest

from clients_world import CLIENT_ID, ORIGIN, RESOURCE_GROUP, SUBSCRIPTION, WORKSPACE, EmulatorTokenProvider, World
from sentinel_signl4.clients.retry import RetryPolicy, RetryStats
from sentinel_signl4.clients.sentinel import SentinelClient
from sentinel_signl4.domain import Classification, IncidentFilter, IncidentStatus, Severity
from sentinel_signl4.errors import AuthError, ConflictError, NotFoundError, PermanentError
from sentinel_signl4.sources.sentinel_wire import incident_from_arm, put_body, with_label, writable_properties
from sentinel_signl4_emulators.common.faults import FaultRule
from sentinel_signl4_emulators.sentinel.model import EntitySeed, Role, SecurityAlertSeed
from spec_validation import assert_valid


def incident_requests(sent: list[httpx.Request]) -> list[httpx.Request]:
    return [r for r in sent if "/providers/Microsoft.SecurityInsights/incidents" in r.url.path]


async def test_listing_follows_next_link_across_pages_oldest_first(
    world: World, sentinel: SentinelClient, sent: list[httpx.Request]
) -> None:
    names = []
    for minutes in range(7):
        world.clock.advance(60)
        names.append(world.incident(title=f"incident {minutes}")["name"])
    listed = [i async for i in sentinel.list_incidents(IncidentFilter(), world.clock.now, top=3)]
    assert [i["name"] for i in listed] == names
    pages = [r for r in incident_requests(sent) if r.method == "GET"]
    assert len(pages) == 3
    assert "$skipToken" in str(pages[1].url) or "skiptoken" in str(pages[1].url).lower()
    assert all(r.headers["Authorization"].startswith("Bearer ") for r in pages)


async def test_the_server_side_filter_selects_status_severity_and_age(
    world: World, sentinel: SentinelClient, sent: list[httpx.Request]
) -> None:
    old = world.incident(title="too old", created=world.clock.now - timedelta(hours=30))
    wanted = world.incident(title="wanted", severity="High")
    medium = world.incident(title="medium", severity="Medium")
    active = world.incident(title="active", severity="High", status="Active")
    low = world.incident(title="low", severity="Low")
    flt = IncidentFilter(severities=frozenset({Severity.HIGH, Severity.MEDIUM}))
    listed = {i["name"] async for i in sentinel.list_incidents(flt, world.clock.now)}
    assert listed == {wanted["name"], medium["name"]}
    assert not listed & {old["name"], active["name"], low["name"]}
    query = str(incident_requests(sent)[-1].url)
    assert "%20" in query  # spaces percent-encoded, never '+'
    assert "properties/createdTimeUtc%20ge%202026-11-25T10:00:00Z" in query


async def test_list_modified_since_sees_recent_changes_only(world: World, sentinel: SentinelClient) -> None:
    untouched = world.incident(title="untouched")
    changed = world.incident(title="changed")
    world.clock.advance(600)
    since = world.clock.now
    world.state.sentinel.close_incident_as_analyst(world.workspace.ref, changed["name"],
                                                   classification="Undetermined")
    seen = [i async for i in sentinel.list_modified_since(since)]
    assert [i["name"] for i in seen] == [changed["name"]]
    closed = [i async for i in sentinel.list_modified_since(since, statuses=[IncidentStatus.CLOSED])]
    assert [i["properties"]["status"] for i in closed] == ["Closed"]
    assert untouched["name"] not in {i["name"] for i in closed}


async def test_get_incident_and_unknown_incident(world: World, sentinel: SentinelClient) -> None:
    seeded = world.incident(title="one", description="details")
    incident = await sentinel.get_incident(seeded["name"])
    assert incident["properties"]["title"] == "one" and incident["properties"]["description"] == "details"
    assert incident["etag"] == seeded["etag"]
    with pytest.raises(NotFoundError) as caught:
        await sentinel.get_incident("00000000-0000-0000-0000-000000000000")
    assert caught.value.status == 404
    assert "sentinel: GET" in caught.value.message


async def test_tagging_put_keeps_owner_labels_classification_and_matches_the_schema(
    world: World, sentinel: SentinelClient, sent: list[httpx.Request]
) -> None:
    world.state.entra.add_user(world.workspace.tenant_id, user_principal_name="ann@contoso.com",
                               display_name="Ann Analyst", mail="ann@contoso.com")
    seeded = world.incident(title="keep me", status="Active", owner="ann@contoso.com", labels=["vip"],
                            auto_labels=["Phishing"], classification="TruePositive",
                            classification_reason="SuspiciousActivity", classification_comment="confirmed",
                            description="long text")
    incident = incident_from_arm(await sentinel.get_incident(seeded["name"]))
    properties = with_label(writable_properties(incident), "SIGNL4")
    assert properties is not None
    updated = incident_from_arm(await sentinel.put_incident(incident.name, put_body(incident, properties)))

    body = json.loads(next(r for r in reversed(sent) if r.method == "PUT").content)
    assert body["etag"] == incident.etag
    assert_valid(body, "Incident")
    reread = incident_from_arm(await sentinel.get_incident(seeded["name"]))
    for current in (updated, reread):
        assert current.owner == incident.owner
        assert current.owner.upn == "ann@contoso.com"
        assert set(current.labels) == {"vip", "Phishing", "SIGNL4"}
        assert current.classification is Classification.TRUE_POSITIVE
        assert current.raw["properties"]["classificationComment"] == "confirmed"
        assert current.description == "long text"
        assert current.etag != incident.etag
    auto = [label for label in reread.raw["properties"]["labels"] if label["labelName"] == "Phishing"]
    assert auto[0]["labelType"] == "AutoAssigned"


async def test_a_stale_etag_is_a_conflict_and_the_human_edit_survives(world: World, sentinel: SentinelClient) -> None:
    seeded = world.incident(title="contended")
    incident = incident_from_arm(await sentinel.get_incident(seeded["name"]))
    world.state.sentinel.update_incident_as_analyst(world.workspace.ref, seeded["name"], title="edited by human")
    with pytest.raises(ConflictError) as caught:
        await sentinel.put_incident(incident.name, put_body(incident, with_label(writable_properties(incident),
                                                                                 "SIGNL4") or {}))
    assert caught.value.status == 409
    assert "Newer version" in caught.value.message
    assert (await sentinel.get_incident(seeded["name"]))["properties"]["title"] == "edited by human"


async def test_a_rejected_write_is_permanent_with_the_arm_message(world: World, sentinel: SentinelClient) -> None:
    incident = incident_from_arm(await sentinel.get_incident(world.incident()["name"]))
    props = writable_properties(incident) | {"status": "Closed", "classification": "BenignPositive"}
    with pytest.raises(PermanentError) as caught:
        await sentinel.put_incident(incident.name, put_body(incident, props))
    assert caught.value.status == 400
    assert "classificationReason" in caught.value.message


async def test_429_is_retried_after_the_advertised_delay(
    world: World, sentinel: SentinelClient, stats: RetryStats
) -> None:
    seeded = world.incident()
    world.state.faults.add(FaultRule(path="/incidents", method="GET", status=429, retry_after=3, count=1))
    assert (await sentinel.get_incident(seeded["name"]))["name"] == seeded["name"]
    assert stats.delays == [3.0]
    assert stats.rate_limited == 1


async def test_a_503_then_success_is_one_retry(world: World, sentinel: SentinelClient, stats: RetryStats) -> None:
    world.incident()
    world.state.faults.add(FaultRule(path="/incidents", method="GET", status=503, count=1))
    assert len([i async for i in sentinel.list_incidents(IncidentFilter(), world.clock.now)]) == 1
    assert stats.retries == 1
    assert stats.rate_limited == 0


async def test_a_lost_put_answer_is_retried_and_the_repeat_is_a_conflict(
    world: World, sentinel: SentinelClient, stats: RetryStats
) -> None:
    """The first PUT is applied but its answer is lost; the retry carries the old etag, so ARM refuses it and
    the caller re-reads: the write happened exactly once."""
    incident = incident_from_arm(await sentinel.get_incident(world.incident()["name"]))
    world.state.faults.add(FaultRule(path="/incidents/", method="PUT", kind="reset", phase="after", count=1))
    with pytest.raises(ConflictError):
        await sentinel.put_incident(incident.name, put_body(incident, with_label(writable_properties(incident),
                                                                                 "SIGNL4") or {}))
    assert stats.retries == 1
    assert "SIGNL4" in incident_from_arm(await sentinel.get_incident(incident.name)).labels


async def test_throttling_beyond_the_budget_is_handed_to_the_caller(
    world: World, http: httpx.AsyncClient, tokens: EmulatorTokenProvider
) -> None:
    world.state.faults.add(FaultRule(path="/incidents", status=429, retry_after=600))
    client = SentinelClient(http, tokens, arm_endpoint=ORIGIN, subscription_id=SUBSCRIPTION,
                            resource_group=RESOURCE_GROUP, workspace_name=WORKSPACE,
                            retry=RetryPolicy(total_timeout=30))
    with pytest.raises(Exception) as caught:  # noqa: PT011 - checked below
        await client.get_incident("x")
    assert getattr(caught.value, "retry_after", None) == 600.0


async def test_comments_put_and_list_match_the_schema(
    world: World, sentinel: SentinelClient, sent: list[httpx.Request]
) -> None:
    name = world.incident()["name"]
    created = await sentinel.put_comment(name, "c0ffee00-0000-4000-8000-000000000001", "Acknowledged by Alice")
    again = await sentinel.put_comment(name, "c0ffee00-0000-4000-8000-000000000001", "Acknowledged by Alice")
    assert created["name"] == again["name"]
    body = json.loads(next(r for r in reversed(sent) if r.method == "PUT").content)
    assert body == {"properties": {"message": "Acknowledged by Alice"}}
    assert_valid(body, "IncidentComment")
    assert_valid(created, "IncidentComment")
    world.state.entra.add_user(world.workspace.tenant_id, user_principal_name="ann@contoso.com",
                               display_name="Ann Analyst", mail="ann@contoso.com")
    world.state.sentinel.add_comment_as_analyst(world.workspace.ref, name, message="human note",
                                                analyst="ann@contoso.com")
    messages = [c["properties"]["message"] for c in await sentinel.list_comments(name)]
    assert sorted(messages) == ["Acknowledged by Alice", "human note"]


async def test_alerts_and_entities_of_an_incident(world: World, sentinel: SentinelClient) -> None:
    account = EntitySeed(kind="Account", properties={"accountName": "admin", "friendlyName": "admin"})
    alert = SecurityAlertSeed(display_name="Impossible travel", severity=Severity.HIGH,
                              product_name="Microsoft Entra ID Protection", time_generated=world.clock.now,
                              entity_ids=(account.entity_id,))
    name = world.incident(alerts=[alert], entities=[account])["name"]
    alerts = await sentinel.list_alerts(name)
    assert [a["properties"]["alertDisplayName"] for a in alerts] == ["Impossible travel"]
    assert_valid({"value": alerts}, "IncidentAlertList")
    entities = await sentinel.list_entities(name)
    assert [e["kind"] for e in entities["entities"]] == ["Account"]
    assert_valid(entities, "IncidentEntitiesResponse")


async def test_check_access_passes_for_a_reader(world: World, sentinel: SentinelClient) -> None:
    await sentinel.check_access()


async def test_check_access_names_the_missing_role(
    world: World, http: httpx.AsyncClient, stats: RetryStats
) -> None:
    world.state.entra.register_app(world.workspace.tenant_id, client_id="0badc0de-0000-4000-8000-000000000000",
                                   secret="another-secret-value")
    tokens = EmulatorTokenProvider(http, client_id="0badc0de-0000-4000-8000-000000000000",
                                   secret="another-secret-value")
    client = SentinelClient(http, tokens, arm_endpoint=ORIGIN, subscription_id=SUBSCRIPTION,
                            resource_group=RESOURCE_GROUP, workspace_name=WORKSPACE, retry=RetryPolicy())
    with pytest.raises(AuthError) as caught:
        await client.check_access()
    message = caught.value.message
    assert caught.value.status == 403
    assert "lacks action Microsoft.SecurityInsights/incidents/read on workspace 'ws-soc'" in message
    assert "sentinel-signl4 provision apply" in message and "custom role" in message
    assert "Responder" not in message and "Reader" not in message
    assert "or the workspace does not exist" in message
    assert "AuthorizationFailed" in message


async def test_a_reader_cannot_write(world: World, http: httpx.AsyncClient) -> None:
    world.state.entra.register_app(world.workspace.tenant_id, client_id="0eade400-0000-4000-8000-000000000000",
                                   secret="reader-secret-value")
    world.state.sentinel.assign_role("0eade400-0000-4000-8000-000000000000", world.workspace.ref, Role.READER)
    tokens = EmulatorTokenProvider(http, client_id="0eade400-0000-4000-8000-000000000000",
                                   secret="reader-secret-value")
    client = SentinelClient(http, tokens, arm_endpoint=ORIGIN, subscription_id=SUBSCRIPTION,
                            resource_group=RESOURCE_GROUP, workspace_name=WORKSPACE, retry=RetryPolicy())
    incident = incident_from_arm(await client.get_incident(world.incident()["name"]))
    with pytest.raises(AuthError) as caught:
        await client.put_incident(incident.name, put_body(incident, writable_properties(incident)))
    assert caught.value.status == 403


async def test_check_access_names_a_missing_workspace(world: World, http: httpx.AsyncClient,
                                                      tokens: EmulatorTokenProvider) -> None:
    """With a role on the resource group, ARM can say "not found"; without one it answers 403 first."""
    world.state.sentinel.assign_role(CLIENT_ID, f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}",
                                     Role.READER)
    client = SentinelClient(http, tokens, arm_endpoint=ORIGIN, subscription_id=SUBSCRIPTION,
                            resource_group=RESOURCE_GROUP, workspace_name="ws-typo", retry=RetryPolicy())
    with pytest.raises(NotFoundError) as caught:
        await client.check_access()
    assert caught.value.status == 404
    assert "workspace 'ws-typo' (resource group 'rg-soc'" in caught.value.message
    assert "not found" in caught.value.message


class _BadTokens(EmulatorTokenProvider):
    async def token(self, scope: str) -> str:
        return "not-a-token-the-emulator-issued"


async def test_a_rejected_token_is_an_auth_error_with_the_arm_code(world: World, http: httpx.AsyncClient) -> None:
    client = SentinelClient(http, _BadTokens(http), arm_endpoint=ORIGIN, subscription_id=SUBSCRIPTION,
                            resource_group=RESOURCE_GROUP, workspace_name=WORKSPACE, retry=RetryPolicy())
    with pytest.raises(AuthError) as caught:
        await client.check_access()
    assert caught.value.status == 401
    assert caught.value.code is not None
    assert caught.value.code in caught.value.message
    assert "not-a-token" not in caught.value.message
