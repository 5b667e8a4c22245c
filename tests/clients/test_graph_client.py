"""GraphClient against the Graph emulator: paging, filters, writes, users, 429s, the shared tenant budget."""

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
from sentinel_signl4.clients.graph import GraphClient, GraphUser, graph_limiter
from sentinel_signl4.clients.ratelimit import SlidingWindowLimiter, reset_limiters
from sentinel_signl4.clients.retry import RetryPolicy, RetryStats
from sentinel_signl4.domain import IncidentFilter, IncidentStatus, Severity
from sentinel_signl4.errors import AuthError, OutcomeUnknownError, PermanentError, RateLimitedError
from sentinel_signl4_emulators.app import EmulatorState
from sentinel_signl4_emulators.common.faults import FaultRule
from sentinel_signl4_emulators.graph.model import AlertSeed, GraphModel, Permission

ALL_PERMISSIONS = [Permission.SECURITY_INCIDENT_READ_WRITE, Permission.SECURITY_ALERT_READ_WRITE,
                   Permission.USER_READ_ALL]


@pytest.fixture
def state(clock: FakeClock) -> EmulatorState:
    """The shared emulator state, with the Graph request budget on the test clock (not wall time)."""
    state = EmulatorState.new(clock=clock, fault_seed=1)
    state.graph = GraphModel(clock=clock, monotonic=clock.epoch)
    return state


@pytest.fixture
def graph_model(world: World) -> GraphModel:
    world.state.graph.grant(CLIENT_ID, ALL_PERMISSIONS)
    return world.state.graph


def make_client(http: httpx.AsyncClient, tokens: EmulatorTokenProvider, stats: RetryStats,
                **kwargs: Any) -> GraphClient:
    kwargs.setdefault("retry", RetryPolicy())
    return GraphClient(http, tokens, graph_endpoint=ORIGIN, on_retry=stats, **kwargs)


@pytest.fixture
def graph(http: httpx.AsyncClient, tokens: EmulatorTokenProvider, stats: RetryStats,
          graph_model: GraphModel) -> GraphClient:
    return make_client(http, tokens, stats, page_size=2)


def incident(model: GraphModel, clock: FakeClock, title: str = "Suspicious sign-in", **kwargs: Any) -> str:
    clock.advance(60)
    return str(model.create_incident(TENANT, display_name=title, **kwargs)["id"])


def graph_requests(sent: list[httpx.Request]) -> list[httpx.Request]:
    return [r for r in sent if r.url.path.startswith("/v1.0/")]


async def test_listing_follows_next_link_over_pages_with_the_server_side_filter(
    graph: GraphClient, graph_model: GraphModel, clock: FakeClock, sent: list[httpx.Request]
) -> None:
    wanted = [incident(graph_model, clock, f"incident {n}", alerts=[AlertSeed(title="a")]) for n in range(7)]
    incident(graph_model, clock, "resolved", status="resolved")
    incident(graph_model, clock, "too old", created=clock.now - timedelta(days=2))
    listed = [i async for i in graph.list_incidents(IncidentFilter(), clock.now)]
    assert [i["id"] for i in listed] == list(reversed(wanted))
    assert all(len(i["alerts"]) == 1 for i in listed)  # $expand=alerts
    requests = graph_requests(sent)
    assert len(requests) == 4  # 2 + 2 + 2 + 1
    first = str(requests[0].url)
    assert "$filter=createdDateTime%20ge%202026-11-25T10:" in first and "status%20eq%20'active'" in first
    assert "$expand=alerts" in first
    assert all(r.headers["Prefer"] == "include-unknown-enum-members" for r in requests)
    assert all(r.headers["Authorization"].startswith("Bearer ") for r in requests)
    assert len({r.headers["client-request-id"] for r in requests}) == 4


async def test_statuses_map_to_graph_values_and_merged_incidents_never_list(
    graph: GraphClient, graph_model: GraphModel, clock: FakeClock
) -> None:
    active = incident(graph_model, clock, status="active")
    in_progress = incident(graph_model, clock, status="inProgress")
    waiting = incident(graph_model, clock, status="awaitingAction")
    resolved = incident(graph_model, clock, status="resolved")
    merged = incident(graph_model, clock, status="active")
    graph_model.merge_incidents(TENANT, merged, active)

    async def ids(*statuses: IncidentStatus) -> set[str]:
        flt = IncidentFilter(statuses=frozenset(statuses))
        return {i["id"] async for i in graph.list_incidents(flt, clock.now)}

    assert await ids(IncidentStatus.NEW) == {active}
    assert await ids(IncidentStatus.ACTIVE) == {in_progress, waiting}
    assert await ids(IncidentStatus.CLOSED) == {resolved}
    assert await ids(*IncidentStatus) == {active, in_progress, waiting, resolved}


async def test_severity_filter_selects_on_the_server(graph: GraphClient, graph_model: GraphModel,
                                                     clock: FakeClock, sent: list[httpx.Request]) -> None:
    high = incident(graph_model, clock, severity="high")
    incident(graph_model, clock, severity="low")
    flt = IncidentFilter(severities=frozenset({Severity.HIGH, Severity.MEDIUM}))
    assert [i["id"] async for i in graph.list_incidents(flt, clock.now)] == [high]
    assert "(severity%20eq%20'high'%20or%20severity%20eq%20'medium')" in str(graph_requests(sent)[-1].url)


async def test_an_incident_created_while_paging_never_makes_one_come_twice(
    graph: GraphClient, graph_model: GraphModel, clock: FakeClock
) -> None:
    d, c, b, a = reversed([incident(graph_model, clock, f"incident {n}") for n in range(4)])
    pages = graph.list_incidents(IncidentFilter(), clock.now, expand_alerts=False)
    seen = [(await anext(pages))["id"], (await anext(pages))["id"]]
    incident(graph_model, clock, "arrives mid-listing")  # pushes every other incident one place down
    seen += [i["id"] async for i in pages]
    assert seen == [d, c, b, a]  # c is on page 2 again; yielded once. The newcomer comes with the next poll.


async def test_get_update_and_comment_an_incident(graph: GraphClient, graph_model: GraphModel,
                                                  clock: FakeClock) -> None:
    incident_id = incident(graph_model, clock, custom_tags=["Finance"], alerts=[AlertSeed(title="a")])
    got = await graph.get_incident(incident_id)
    assert (got["id"], len(got["alerts"])) == (incident_id, 1)
    updated = await graph.update_incident(incident_id, {"status": "inProgress", "assignedTo": "AdeleV@contoso.com"})
    assert (updated["status"], updated["assignedTo"], updated["customTags"]) == (
        "inProgress", "AdeleV@contoso.com", ["Finance"])
    comments = await graph.add_incident_comment(incident_id, "Acknowledged in SIGNL4 by Adele Vance")
    assert [c["comment"] for c in comments] == ["Acknowledged in SIGNL4 by Adele Vance"]
    stored = graph_model.get_incident(TENANT, incident_id, expand_alerts=False, include_unknown=True)
    assert (stored["status"], len(stored["comments"])) == ("inProgress", 1)
    with pytest.raises(ValueError, match="text"):
        await graph.add_incident_comment(incident_id, "  ")


async def test_alerts_list_get_update_and_comment(graph: GraphClient, graph_model: GraphModel,
                                                  clock: FakeClock) -> None:
    incident(graph_model, clock, alerts=[AlertSeed(title="low one", severity="low"),
                                         AlertSeed(title="high one", severity="high",
                                                   service_source="microsoftSentinel")])
    flt = IncidentFilter(severities=frozenset({Severity.HIGH}))
    (found,) = [a async for a in graph.list_alerts(flt, clock.now)]
    assert (found["title"], found["serviceSource"]) == ("high one", "microsoftSentinel")  # evolvable, opted in
    assert (await graph.get_alert(found["id"]))["title"] == "high one"
    resolved = await graph.update_alert(found["id"], {"status": "resolved", "classification": "truePositive",
                                                      "determination": "malware"})
    assert resolved["status"] == "resolved" and resolved["resolvedDateTime"]
    assert [c["comment"] for c in await graph.add_alert_comment(found["id"], "closed from SIGNL4")] == [
        "closed from SIGNL4"]
    assert [a["title"] async for a in graph.query_alerts("status eq 'new'")] == ["low one"]


async def test_users_by_upn_object_id_dollar_upn_and_guest_upn(graph: GraphClient, world: World) -> None:
    entra = world.state.entra
    adele = entra.add_user(TENANT, user_principal_name="AdeleV@contoso.com", display_name="Adele Vance",
                           mail="adele.vance@contoso.com")
    dollar = entra.add_user(TENANT, user_principal_name="$soc@contoso.com", display_name="SOC")
    guest = entra.add_user(TENANT, user_principal_name="lee_fabrikam.com#EXT#@contoso.onmicrosoft.com",
                           display_name="Lee", mail="lee@fabrikam.com")
    expected = GraphUser(adele.object_id, "AdeleV@contoso.com", "Adele Vance", "adele.vance@contoso.com")
    assert await graph.get_user("adelev@contoso.com") == expected
    assert await graph.get_user(adele.object_id) == expected
    assert (await graph.get_user("$soc@contoso.com")) == GraphUser(dollar.object_id, "$soc@contoso.com", "SOC")
    assert (await graph.get_user(guest.user_principal_name)) is not None
    # A mail that is not the UPN is not a path key; the mail filter finds it.
    assert await graph.get_user("adele.vance@contoso.com") is None
    assert await graph.find_user_by_mail("Adele.Vance@contoso.com") == expected
    assert await graph.find_user_by_mail("o'brien@contoso.com") is None
    entra.add_user(TENANT, user_principal_name="adele2@contoso.com", display_name="Adele (2)",
                   mail="adele.vance@contoso.com")
    assert await graph.find_user_by_mail("adele.vance@contoso.com") is None  # ambiguous: never guess an owner


async def test_a_429_is_retried_after_its_retry_after(graph: GraphClient, graph_model: GraphModel,
                                                      clock: FakeClock, world: World, stats: RetryStats) -> None:
    incident_id = incident(graph_model, clock)
    world.state.faults.add(FaultRule(path=r"^/v1\.0/security/incidents/", status=429, retry_after=7, count=1))
    assert (await graph.get_incident(incident_id))["id"] == incident_id
    assert (stats.rate_limited, stats.delays) == (1, [7.0])


async def test_the_emulators_own_throttle_surfaces_as_rate_limited(
    http: httpx.AsyncClient, tokens: EmulatorTokenProvider, stats: RetryStats, graph_model: GraphModel,
    clock: FakeClock,
) -> None:
    incident_id = incident(graph_model, clock)
    graph_model.configure_throttle(1, 60)
    client = make_client(http, tokens, stats, retry=RetryPolicy(total_timeout=30))
    await client.get_incident(incident_id)
    with pytest.raises(RateLimitedError) as caught:
        await client.get_incident(incident_id)
    # Retry-After (60 s) does not fit the 30 s budget: raised at once, for the engine to reschedule.
    assert (caught.value.retry_after, caught.value.code, stats.retries) == (60.0, "TooManyRequests", 0)


async def test_connectors_sharing_a_tenant_budget_stay_under_the_limit(
    http: httpx.AsyncClient, tokens: EmulatorTokenProvider, stats: RetryStats, graph_model: GraphModel,
    clock: FakeClock,
) -> None:
    incident_id = incident(graph_model, clock)
    graph_model.configure_throttle(5, 60)
    budget = SlidingWindowLimiter(4, 60, clock=clock.epoch, wall_clock=clock.epoch, sleep=clock.sleep)
    first, second = (make_client(http, tokens, stats, limiter=budget) for _ in range(2))
    started = clock.now
    for _ in range(5):
        await first.get_incident(incident_id)
        await second.get_incident(incident_id)
    assert stats.rate_limited == 0  # ten requests, never more than four a minute, so never a 429
    assert clock.now - started >= timedelta(minutes=2)


def test_graph_limiter_is_one_per_tenant() -> None:
    reset_limiters()
    try:
        assert graph_limiter(TENANT) is graph_limiter(TENANT.upper())
        assert graph_limiter(TENANT) is not graph_limiter("another-tenant")
        assert (graph_limiter(TENANT).limit, graph_limiter(TENANT).window) == (140, 60.0)
    finally:
        reset_limiters()


async def test_check_access_names_the_missing_permission(graph: GraphClient, graph_model: GraphModel) -> None:
    await graph.check_access(users=True)
    graph_model.revoke(CLIENT_ID, [Permission.USER_READ_ALL])
    await graph.check_access()
    with pytest.raises(AuthError, match=r"User\.Read\.All"):
        await graph.check_access(users=True)
    graph_model.revoke(CLIENT_ID)
    with pytest.raises(AuthError, match=r"SecurityIncident\.ReadWrite\.All") as caught:
        await graph.check_access()
    assert caught.value.status == 403
    with pytest.raises(AuthError, match=r"SecurityAlert\.ReadWrite\.All"):
        await graph.check_access(resource="alerts")


async def test_a_token_for_the_wrong_resource_is_an_auth_error(
    http: httpx.AsyncClient, tokens: EmulatorTokenProvider, stats: RetryStats, graph_model: GraphModel
) -> None:
    client = make_client(http, tokens, stats, graph_scope="https://management.azure.com/.default")
    with pytest.raises(AuthError) as caught:
        await client.get_incident("1")
    assert (caught.value.status, caught.value.code) == (401, "InvalidAuthenticationToken")
    assert stats.retries == 0


async def test_a_comment_is_not_resent_when_its_outcome_is_unknown(
    graph: GraphClient, graph_model: GraphModel, clock: FakeClock, world: World, sent: list[httpx.Request]
) -> None:
    incident_id = incident(graph_model, clock)
    world.state.faults.add(FaultRule(path=r"/comments$", kind="reset", phase="after", count=1))
    with pytest.raises(OutcomeUnknownError):
        await graph.add_incident_comment(incident_id, "posted once")
    stored = graph_model.get_incident(TENANT, incident_id, expand_alerts=False, include_unknown=True)
    assert [c["comment"] for c in stored["comments"]] == ["posted once"]
    assert sum(r.method == "POST" and r.url.path.endswith("/comments") for r in sent) == 1


async def test_a_next_link_to_another_host_is_refused_without_sending_the_token(stats: RetryStats) -> None:
    seen: list[httpx.Request] = []

    def graph_elsewhere(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"value": [{"id": "1"}],
                                         "@odata.nextLink": "https://evil.example/v1.0/security/incidents?$skip=1"})

    class Tokens(EmulatorTokenProvider):
        async def token(self, scope: str) -> str:
            return "secret-token"

    async with httpx.AsyncClient(transport=httpx.MockTransport(graph_elsewhere)) as http:
        client = GraphClient(http, Tokens(http), graph_endpoint="https://graph.microsoft.com", retry=RetryPolicy())
        with pytest.raises(PermanentError, match="another host"):
            _ = [i async for i in client.query_incidents(None)]
    assert [r.url.host for r in seen] == ["graph.microsoft.com"]
