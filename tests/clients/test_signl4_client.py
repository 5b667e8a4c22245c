"""Signl4Client against the SIGNL4 emulator: events, throttling, unsafe retries refused, REST paging."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest

from clients_world import (
    API_KEY,
    ORIGIN,
    TEAM_SECRET,
    World,
    fake_time_limiter,
    make_signl4,
)
from fake_clock import FakeClock
from sentinel_signl4.clients.retry import RetryPolicy, RetryStats
from sentinel_signl4.clients.signl4 import Signl4Client
from sentinel_signl4.domain import SignlRequest, SignlStatus
from sentinel_signl4.errors import (
    AuthError,
    ConflictError,
    NotFoundError,
    OutcomeUnknownError,
    PermanentError,
    RateLimitedError,
)
from sentinel_signl4_emulators.common.faults import FaultRule
from sentinel_signl4_emulators.signl4.model import AlertStatus, RateLimit, RateLimitPolicy, RawParameter


def request(external_id: str = "s4s:soc:abc123", title: str = "42 | Suspicious sign-in") -> SignlRequest:
    return SignlRequest(external_id=external_id, title=title, message="High severity", service="Security",
                        parameters={"Severity": "High"})


def alerts_for(world: World, external_id: str) -> list[object]:
    return list(world.state.signl4.list_alerts(external_id=external_id))


def posts(sent: list[httpx.Request]) -> list[httpx.Request]:
    return [r for r in sent if r.method == "POST"]


async def test_a_new_event_raises_one_signl_and_returns_its_event_id(
    world: World, signl4: Signl4Client, sent: list[httpx.Request]
) -> None:
    event_id = await signl4.send_event(request())
    alerts = world.state.signl4.list_alerts(external_id="s4s:soc:abc123")
    assert len(alerts) == 1
    assert alerts[0].title == "42 | Suspicious sign-in"
    assert alerts[0].event_id == event_id
    body = json.loads(posts(sent)[0].content)
    assert body["X-S4-ExternalID"] == "s4s:soc:abc123"
    assert body["X-S4-Status"] == "new"
    assert body["X-S4-Service"] == "Security"
    assert "x-s4-api-key" not in posts(sent)[0].headers


async def test_the_events_api_variant_sends_the_key_in_a_header_only(
    world: World, http: httpx.AsyncClient, clock: FakeClock, stats: RetryStats, sent: list[httpx.Request]
) -> None:
    client = make_signl4(http, clock, stats, send_via="events_api")
    event_id = await client.send_event(request("s4s:soc:via-api"))
    assert event_id
    assert len(alerts_for(world, "s4s:soc:via-api")) == 1
    sent_request = posts(sent)[0]
    assert sent_request.url.path == f"/api/v2/events/{TEAM_SECRET}"
    assert sent_request.headers["X-S4-Api-Key"] == API_KEY
    assert API_KEY not in str(sent_request.url)


async def test_a_resolve_event_closes_the_signl(world: World, signl4: Signl4Client) -> None:
    await signl4.send_event(request("s4s:soc:res"))
    await signl4.send_event(SignlRequest(external_id="s4s:soc:res", status=SignlStatus.RESOLVED))
    (alert,) = world.state.signl4.list_alerts(external_id="s4s:soc:res")
    assert alert.status == AlertStatus.CLOSED


async def test_an_unknown_team_secret_is_not_found_code_3004_without_echoing_the_secret(
    world: World, http: httpx.AsyncClient, clock: FakeClock, stats: RetryStats
) -> None:
    client = make_signl4(http, clock, stats, webhook_url=f"{ORIGIN}/webhook/wrongSecret123")
    with pytest.raises(NotFoundError) as caught:
        await client.send_event(request())
    assert caught.value.code == "3004"
    assert "SIGNL4 team secret not recognised (code 3004)" in caught.value.message
    assert "wrongSecret123" not in caught.value.message
    assert stats.retries == 0


async def test_a_rejected_body_is_permanent_with_signl4s_message(world: World, signl4: Signl4Client) -> None:
    world.state.faults.add(FaultRule(path="/webhook/", status=400, count=1, body={
        "requestId": "r1", "code": 0, "message": "Error raising event.",
        "details": "The submitted body is invalid and not in the format specified in the content-type."}))
    with pytest.raises(PermanentError) as caught:
        await signl4.send_event(request())
    assert caught.value.status == 400
    assert "Error raising event." in caught.value.message
    assert "submitted body is invalid" in caught.value.message


async def test_a_2xx_without_event_id_is_an_unexpected_answer(world: World, signl4: Signl4Client) -> None:
    world.state.faults.add(FaultRule(path="/webhook/", status=200, count=1, body={"ok": True}))
    with pytest.raises(PermanentError, match="unexpected answer"):
        await signl4.send_event(request())


def tight_limits(world: World, events: int) -> None:
    window = timedelta(seconds=15)
    world.state.signl4.set_rate_limits(
        RateLimitPolicy(events=(RateLimit(events, window),), rest=(RateLimit(50, window),)), world.signl4_subscription
    )


def another_sender_uses_the_budget(world: World, events: int) -> None:
    """Events of another integration on the same SIGNL4 subscription, invisible to our limiter."""
    for _ in range(events):
        assert world.state.signl4.check_event_limit(world.signl4_subscription).allowed


async def test_the_limiter_learns_a_smaller_server_limit_and_paces_without_a_429(
    world: World, signl4: Signl4Client, clock: FakeClock, stats: RetryStats
) -> None:
    tight_limits(world, 3)
    started = clock.now
    for n in range(4):
        await signl4.send_event(request(f"s4s:soc:p{n}"))
    assert stats.rate_limited == 0
    assert clock.now - started >= timedelta(seconds=1)  # the 4th waited for SIGNL4's window to reset
    assert sum(len(alerts_for(world, f"s4s:soc:p{n}")) for n in range(4)) == 4


async def test_server_throttling_waits_until_the_advertised_reset_then_sends_once(
    world: World, signl4: Signl4Client, clock: FakeClock, stats: RetryStats
) -> None:
    tight_limits(world, 3)
    another_sender_uses_the_budget(world, 3)
    started = clock.now
    await signl4.send_event(request("s4s:soc:throttled"))
    assert stats.rate_limited == 1
    assert 0 < stats.delays[0] <= 15.0
    assert clock.now - started >= timedelta(seconds=stats.delays[0])  # sent again only after the reset
    assert len(alerts_for(world, "s4s:soc:throttled")) == 1


async def test_throttling_beyond_the_retry_budget_is_raised_with_retry_after_and_blocks_the_limiter(
    world: World, http: httpx.AsyncClient, clock: FakeClock, stats: RetryStats
) -> None:
    tight_limits(world, 2)
    another_sender_uses_the_budget(world, 2)
    limiter = fake_time_limiter(clock)
    client = make_signl4(http, clock, stats, limiter=limiter, retry=RetryPolicy(total_timeout=5.0))
    with pytest.raises(RateLimitedError) as caught:
        await client.send_event(request("s4s:soc:second"))
    assert caught.value.retry_after is not None
    assert 5.0 < caught.value.retry_after <= 15.0
    assert limiter.delay() == pytest.approx(caught.value.retry_after)
    assert alerts_for(world, "s4s:soc:second") == []


async def test_a_retry_after_header_wins_over_the_reset_header(
    world: World, signl4: Signl4Client, stats: RetryStats
) -> None:
    world.state.faults.add(FaultRule(path="/webhook/", status=429, retry_after=2, count=1))
    await signl4.send_event(request())
    assert stats.delays == [2.0]


async def test_a_connection_reset_after_sending_is_outcome_unknown_and_the_signl_exists(
    world: World, signl4: Signl4Client, stats: RetryStats
) -> None:
    world.state.faults.add(FaultRule(path="/webhook/", method="POST", kind="reset", phase="after", count=1))
    with pytest.raises(OutcomeUnknownError):
        await signl4.send_event(request("s4s:soc:unknown"))
    assert stats.retries == 0  # never re-sent blindly
    assert len(alerts_for(world, "s4s:soc:unknown")) == 1
    found = await signl4.find_alerts_by_external_id("s4s:soc:unknown")
    assert len(found) == 1  # what the engine uses to reconcile


async def test_a_connection_reset_before_the_request_was_read_is_retried_to_exactly_one_signl(
    world: World, signl4: Signl4Client, stats: RetryStats
) -> None:
    world.state.faults.add(FaultRule(path="/webhook/", method="POST", kind="reset", phase="before", count=1))
    with pytest.raises(OutcomeUnknownError):  # the client cannot tell "before" from "after": still unknown
        await signl4.send_event(request("s4s:soc:before"))
    assert alerts_for(world, "s4s:soc:before") == []


async def test_a_500_may_have_raised_the_signl_so_it_is_not_retried(
    world: World, signl4: Signl4Client, stats: RetryStats
) -> None:
    world.state.faults.add(FaultRule(path="/webhook/", status=500, count=1))
    with pytest.raises(OutcomeUnknownError) as caught:
        await signl4.send_event(request())
    assert caught.value.status == 500
    assert stats.retries == 0


async def test_a_503_is_retried_and_pages_once(world: World, signl4: Signl4Client, stats: RetryStats) -> None:
    world.state.faults.add(FaultRule(path="/webhook/", status=503, count=1))
    await signl4.send_event(request("s4s:soc:503"))
    assert stats.retries == 1
    assert len(alerts_for(world, "s4s:soc:503")) == 1


async def test_find_alerts_by_external_id_follows_the_continuation_across_pages(
    world: World, signl4: Signl4Client, sent: list[httpx.Request]
) -> None:
    for _ in range(5):
        world.state.signl4.raise_event(world.team_id, [RawParameter("Title", "dup"),
                                                       RawParameter("X-S4-ExternalID", "s4s:soc:many")])
        world.clock.advance(1)
    world.state.signl4.raise_event(world.team_id, [RawParameter("Title", "other"),
                                                   RawParameter("X-S4-ExternalID", "s4s:soc:other")])
    found = await signl4.find_alerts_by_external_id("s4s:soc:many", page_size=2)
    assert len(found) == 5
    assert len({a["id"] for a in found}) == 5
    assert {a["externalId"] for a in found} == {"s4s:soc:many"}
    searches = [r for r in sent if r.url.path == "/api/v2/alerts/paged"]
    assert len(searches) == 3
    assert json.loads(searches[1].content)["continuationToken"]["nextRowKey"]
    assert all(r.headers["X-S4-Api-Key"] == API_KEY and r.url.params["userId"] for r in searches)


async def test_find_alerts_by_external_id_returns_nothing_on_204(world: World, signl4: Signl4Client) -> None:
    assert await signl4.find_alerts_by_external_id("s4s:soc:never-sent") == []


async def test_alert_event_and_user_reads(world: World, signl4: Signl4Client) -> None:
    event_id = await signl4.send_event(request("s4s:soc:reads"))
    event = await signl4.get_event(event_id)
    alert_id = event["targets"][0]["alertId"]
    alert = await signl4.get_alert(alert_id)
    assert alert["externalId"] == "s4s:soc:reads"
    users = await signl4.list_users()
    assert {u["mail"] for u in users} == {"alice@contoso.com", "bob@contoso.com"}


async def test_acknowledge_annotate_close_and_a_repeat_close_is_a_conflict(
    world: World, signl4: Signl4Client
) -> None:
    await signl4.send_event(request("s4s:soc:life"))
    (alert,) = world.state.signl4.list_alerts(external_id="s4s:soc:life")
    await signl4.acknowledge_alert(alert.id, world.alice_id, "on it")
    assert world.state.signl4.get_alert(alert.id).status == AlertStatus.ACKNOWLEDGED
    annotation = await signl4.annotate_alert(alert.id, world.alice_id, "Incident assigned in Sentinel")
    assert annotation["text"] == "Incident assigned in Sentinel"
    await signl4.close_alert(alert.id, world.alice_id, "closed in Sentinel")
    assert world.state.signl4.get_alert(alert.id).status == AlertStatus.CLOSED
    with pytest.raises(ConflictError):
        await signl4.close_alert(alert.id, world.alice_id, "again")


async def test_a_wrong_api_key_is_an_auth_error_without_the_key(
    world: World, http: httpx.AsyncClient, clock: FakeClock, stats: RetryStats
) -> None:
    client = make_signl4(http, clock, stats, api_key="Wrong-Api-Key-999")
    with pytest.raises(AuthError) as caught:
        await client.list_users()
    assert "Wrong-Api-Key-999" not in caught.value.message
    assert caught.value.status in (401, 403)


async def test_rest_calls_without_an_api_key_say_what_is_missing(
    world: World, http: httpx.AsyncClient, clock: FakeClock, stats: RetryStats
) -> None:
    client = make_signl4(http, clock, stats, api_key=None)
    assert client.has_api is False
    with pytest.raises(PermanentError, match="api_key"):
        await client.find_alerts_by_external_id("x")


async def test_check_access_proves_secret_and_key_without_raising_a_signl(world: World, signl4: Signl4Client) -> None:
    report = await signl4.check_access()
    assert report.probe_event_id
    assert report.team_members == 2
    assert world.state.signl4.list_alerts() == []


async def test_check_access_with_a_wrong_secret_fails_clearly(
    world: World, http: httpx.AsyncClient, clock: FakeClock, stats: RetryStats
) -> None:
    client = make_signl4(http, clock, stats, webhook_url=f"{ORIGIN}/webhook/notTheSecret77")
    with pytest.raises(NotFoundError, match="team secret not recognised"):
        await client.check_access()


def test_events_api_needs_url_and_key(http: httpx.AsyncClient, clock: FakeClock, stats: RetryStats) -> None:
    with pytest.raises(ValueError, match="events_api"):
        make_signl4(http, clock, stats, send_via="events_api", api_key=None)
    with pytest.raises(ValueError, match="webhook URL"):
        make_signl4(http, clock, stats, webhook_url=f"{ORIGIN}/not-a-webhook")


class _RefuseFirstConnection(httpx.AsyncBaseTransport):
    """Refuses the first connection like a restarting load balancer; then delegates."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.refused = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.refused == 0:
            self.refused += 1
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return await self.inner.handle_async_request(request)


async def test_a_refused_connection_never_reached_signl4_so_it_is_retried(
    world: World, clock: FakeClock, stats: RetryStats
) -> None:
    from sentinel_signl4.clients.http import build_http_client
    from sentinel_signl4_emulators.app import EmulatorTransport, build_app

    transport = _RefuseFirstConnection(EmulatorTransport(build_app(world.state)))
    async with build_http_client(transport=transport) as http:
        client = make_signl4(http, clock, stats)
        await client.send_event(request("s4s:soc:refused"))
    assert transport.refused == 1
    assert stats.retries == 1
    assert len(alerts_for(world, "s4s:soc:refused")) == 1
