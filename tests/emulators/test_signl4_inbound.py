"""Inbound side of the SIGNL4 emulator over HTTP: ``POST /webhook/{secret}`` and ``POST /api/v2/events/{team}``."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fake_clock import FakeClock
from sentinel_signl4_emulators.signl4.model import AlertStatus, RateLimit, RateLimitPolicy, Signl4Model
from sentinel_signl4_emulators.signl4.routes import PayloadError, build_signl4_app, decode_payload

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
EVENT_ID = re.compile(r"^\d{19}_[0-9a-f-]{36}$")
API_KEY = "key-sub-1"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def model(clock: FakeClock) -> Signl4Model:
    model = Signl4Model(clock)
    model.create_subscription("sub-1")
    model.create_team("sub-1", "Ops", team_id="team-1", secret="s3cret")
    model.create_user("sub-1", "Rene", "rene@signl4.com", user_id="u-rene", team_ids=["team-1"])
    model.create_api_key("sub-1", API_KEY)
    model.create_subscription("sub-2")
    model.create_team("sub-2", "Elsewhere", team_id="team-x", secret="xsecret")
    return model


@pytest.fixture
async def client(model: Signl4Model) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_signl4_app(model))
    async with httpx.AsyncClient(transport=transport, base_url="https://signl4.test") as client:
        yield client


def only_alert(model: Signl4Model) -> Any:
    (alert,) = model.list_alerts()
    return alert


def assert_rate_headers(response: httpx.Response, limit: int) -> None:
    assert response.headers["X-RateLimit-Limit"] == str(limit)
    assert int(response.headers["X-RateLimit-Remaining"]) >= 0
    assert int(response.headers["X-RateLimit-Reset"]) > int(T0.timestamp())
    assert "Retry-After" not in response.headers  # not documented for SIGNL4; the emulator does not invent it


# -- success and parsing ---------------------------------------------------------------------------------------------


async def test_json_event_creates_an_alert_and_answers_201_with_an_event_id(
        client: httpx.AsyncClient, model: Signl4Model) -> None:
    response = await client.post("/webhook/s3cret", json={
        "Title": "Critical production failure", "Message": "Check line machine C immediately", "Severity": "High",
        "Business Details": {"Impact": "Major", "Scope": {"Region": "EU"}}, "Count": 3,
        "X-S4-Service": "Production", "X-S4-ExternalID": "INC091210", "X-S4-Status": "new",
    })
    assert response.status_code == 201
    assert response.json().keys() == {"eventId"}
    assert EVENT_ID.match(response.json()["eventId"])
    assert_rate_headers(response, 150)
    assert response.headers["X-RateLimit-Remaining"] == "149"
    alert = only_alert(model)
    assert (alert.title, alert.text, alert.category, alert.external_id, alert.status) == (
        "Critical production failure", "Check line machine C immediately", "Production", "INC091210",
        AlertStatus.OPEN)
    values = {p.name: p.value for p in alert.parameters}
    assert values["Business Details.Impact"] == "Major"
    assert values["Business Details.Scope.Region"] == "EU"
    assert values["Count"] == "3"
    assert values["X-S4-ExternalID"] == "INC091210"  # control parameters are kept as parameters
    assert alert.event_id == response.json()["eventId"]


async def test_form_urlencoded_event_from_the_docs(client: httpx.AsyncClient, model: Signl4Model) -> None:
    response = await client.post(
        "/webhook/s3cret", content=b"Title=Fire%20alert&Message=Fire%20alert&Param1=Value%201&Param2=Value%202",
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 201
    alert = only_alert(model)
    assert (alert.title, alert.text) == ("Fire alert", "Fire alert")
    assert {p.name: p.value for p in alert.parameters}["Param2"] == "Value 2"


async def test_text_plain_key_value_lines(client: httpx.AsyncClient, model: Signl4Model) -> None:
    body = "Subject: Disk full\nDescription: /var is at 99%\n  on host db-1\nX-S4-ExternalID: disk-1\n"
    response = await client.post("/webhook/s3cret", content=body.encode(), headers={"Content-Type": "text/plain"})
    assert response.status_code == 201
    alert = only_alert(model)
    assert (alert.title, alert.text, alert.external_id) == ("Disk full", "/var is at 99%\non host db-1", "disk-1")


async def test_plain_text_without_content_type_becomes_the_text(client: httpx.AsyncClient,
                                                                model: Signl4Model) -> None:
    response = await client.post("/webhook/s3cret", content=b"Hello world.")
    assert response.status_code == 201
    assert only_alert(model).text == "Hello world."


async def test_duplicate_new_events_create_two_alerts(client: httpx.AsyncClient, model: Signl4Model) -> None:
    """SIGNL4 does not de-duplicate on X-S4-ExternalID: a re-sent ``new`` raises a second Signl."""
    body = {"Title": "Test", "Message": "Alert", "X-S4-ExternalID": "sensor-id-1", "X-S4-Status": "new"}
    first = await client.post("/webhook/s3cret", json=body)
    second = await client.post("/webhook/s3cret", json=body)
    assert first.json()["eventId"] != second.json()["eventId"]
    assert len(model.list_alerts(external_id="sensor-id-1")) == 2
    assert [n["eventType"] for n in model.drain_notifications()] == [200, 200]


async def test_acknowledge_and_resolve_by_external_id(client: httpx.AsyncClient, model: Signl4Model) -> None:
    await client.post("/webhook/s3cret", json={"Title": "Test", "X-S4-ExternalID": "sensor-id-1"})
    await client.post("/webhook/s3cret", json={"Title": "Other", "X-S4-ExternalID": "sensor-id-2"})
    ack = await client.post("/webhook/s3cret", json={"X-S4-ExternalID": "sensor-id-1",
                                                     "X-S4-Status": "acknowledged"})
    assert ack.status_code == 201
    assert [a.status for a in model.list_alerts(external_id="sensor-id-1")] == [AlertStatus.ACKNOWLEDGED]
    resolve = await client.post("/webhook/s3cret", json={"X-S4-ExternalID": "sensor-id-1", "X-S4-Status": "resolved"})
    assert resolve.status_code == 201
    assert [a.status for a in model.list_alerts(external_id="sensor-id-1")] == [AlertStatus.CLOSED]
    assert [a.status for a in model.list_alerts(external_id="sensor-id-2")] == [AlertStatus.OPEN]
    status_changes = [n for n in model.drain_notifications() if n["eventType"] == 201]
    assert [(n["alert"]["statusCode"], n["user"]) for n in status_changes] == [(2, None), (4, None)]


async def test_unknown_status_is_discarded_but_still_answered_201(client: httpx.AsyncClient,
                                                                  model: Signl4Model) -> None:
    response = await client.post("/webhook/s3cret", json={"Title": "x", "X-S4-ExternalID": "e",
                                                          "X-S4-Status": "firing"})
    assert response.status_code == 201
    assert model.list_alerts() == []
    assert model.get_event(response.json()["eventId"]).status == 5


@pytest.mark.parametrize("query", [
    "ExtIDParam=groupKey&ExtStatusParam=status&ResolvedStatus=resolved",  # Alertmanager legacy (prometheus.md)
    "extidparam=groupKey&EXTSTATUSPARAM=status&resolvedstatus=RESOLVED",  # spellings vary in the docs
])
async def test_query_parameter_status_mapping(client: httpx.AsyncClient, model: Signl4Model, query: str) -> None:
    firing = {"groupKey": "{}:{alertname=\"Down\"}", "status": "firing", "title": "Down"}
    await client.post(f"/webhook/s3cret?{query}", json=firing)
    assert [a.status for a in model.list_alerts(external_id=firing["groupKey"])] == [AlertStatus.OPEN]
    await client.post(f"/webhook/s3cret?{query}", json={**firing, "status": "resolved"})
    assert [a.status for a in model.list_alerts(external_id=firing["groupKey"])] == [AlertStatus.CLOSED]


async def test_query_mapping_with_new_status_discards_other_values(client: httpx.AsyncClient,
                                                                   model: Signl4Model) -> None:
    query = "ExtIdParam=alertId&ExtStatusParam=alertTransition&NewStatus=Triggered&ResolvedStatus=Recovered" \
            "&AckStatus=Acked"
    await client.post(f"/webhook/s3cret?{query}", json={"alertId": "7", "alertTransition": "Warn", "title": "x"})
    assert model.list_alerts() == []
    await client.post(f"/webhook/s3cret?{query}", json={"alertId": "7", "alertTransition": "Triggered"})
    await client.post(f"/webhook/s3cret?{query}", json={"alertId": "7", "alertTransition": "Acked"})
    assert only_alert(model).status == AlertStatus.ACKNOWLEDGED


@settings(max_examples=300, deadline=None)
@given(content_type=st.sampled_from([None, "application/json", "application/x-www-form-urlencoded", "text/plain",
                                     "application/xml", "application/vnd.api+json; charset=utf-8"]),
       body=st.binary(max_size=200))
def test_any_body_either_decodes_or_is_a_payload_error(content_type: str | None, body: bytes) -> None:
    """Bad input gets a clear 400, never a crash: decoding raises nothing but PayloadError."""
    try:
        params = decode_payload(content_type, body)
    except PayloadError:
        return
    assert all(isinstance(p.name, str) and isinstance(p.value, str) for p in params)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(document=st.dictionaries(st.text(min_size=1, max_size=8), JSON_VALUES, max_size=5))
def test_json_objects_flatten_to_one_parameter_per_leaf(document: dict[str, Any]) -> None:
    def leaves(value: Any) -> int:
        if isinstance(value, dict):
            return sum(leaves(v) for v in value.values())
        return 0 if value is None else 1

    params = decode_payload("application/json", json.dumps(document).encode())
    assert len(params) == leaves(document)


# -- errors -----------------------------------------------------------------------------------------------------------


async def test_unknown_secret_is_404_with_code_3004(client: httpx.AsyncClient, model: Signl4Model) -> None:
    response = await client.post("/webhook/96sbq49u", json={"Title": "x"})
    assert response.status_code == 404
    body = response.json()
    assert body.keys() == {"requestId", "code", "details", "message"}
    assert (body["code"], body["details"], body["message"]) == (
        3004, "An event source with ID 96sbq49u was not found.", "Error raising event.")
    assert_rate_headers(response, 10)
    assert model.list_alerts() == []


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_other_methods_are_405(client: httpx.AsyncClient, method: str) -> None:
    response = await client.request(method, "/webhook/s3cret")
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert_rate_headers(response, 150)
    assert response.headers["X-RateLimit-Remaining"] == "150"  # a refused method does not use the quota


async def test_invalid_json_is_400_and_changes_nothing(client: httpx.AsyncClient, model: Signl4Model) -> None:
    response = await client.post("/webhook/s3cret", content=b'{"Title": "broken',
                                 headers={"Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 400
    assert response.json()["message"] == "Error raising event."
    assert_rate_headers(response, 10)
    assert model.list_alerts() == []
    assert model.events == {}


# -- throttling (ref §1.7) --------------------------------------------------------------------------------------------


async def test_throttled_events_get_429_until_the_block_ends(client: httpx.AsyncClient, model: Signl4Model,
                                                            clock: FakeClock) -> None:
    model.set_rate_limits(RateLimitPolicy(events=(RateLimit(2, timedelta(seconds=15)),),
                                          rest=(RateLimit(150, timedelta(seconds=15)),)))
    ok = [await client.post("/webhook/s3cret", json={"Title": str(i)}) for i in range(2)]
    assert [r.status_code for r in ok] == [201, 201]
    assert [r.headers["X-RateLimit-Remaining"] for r in ok] == ["1", "0"]
    assert ok[0].headers["X-RateLimit-Reset"] == str(int((T0 + timedelta(seconds=15)).timestamp()))
    clock.advance(5)
    throttled = await client.post("/webhook/s3cret", json={"Title": "too many"})
    assert throttled.status_code == 429
    assert throttled.json().keys() >= {"requestId", "code", "details", "message"}
    assert throttled.headers["X-RateLimit-Remaining"] == "0"
    assert throttled.headers["X-RateLimit-Reset"] == str(int((T0 + timedelta(seconds=20)).timestamp()))
    assert "Retry-After" not in throttled.headers
    clock.advance(12)  # 17 s: the original window is over, the 15 s block is not
    assert (await client.post("/webhook/s3cret", json={"Title": "still"})).status_code == 429
    clock.advance(3)
    assert (await client.post("/webhook/s3cret", json={"Title": "again"})).status_code == 201
    assert len(model.list_alerts()) == 3


async def test_wrong_secrets_are_limited_at_ten_per_minute(client: httpx.AsyncClient, clock: FakeClock) -> None:
    statuses = [(await client.post("/webhook/typo", json={})).status_code for _ in range(11)]
    assert statuses == [404] * 10 + [429]
    clock.advance(61)
    assert (await client.post("/webhook/typo", json={})).status_code == 404


async def test_corrupted_payloads_count_against_the_low_limit(client: httpx.AsyncClient) -> None:
    headers = {"Content-Type": "application/json"}
    statuses = [(await client.post("/webhook/s3cret", content=b"{", headers=headers)).status_code for _ in range(11)]
    assert statuses == [400] * 10 + [429]
    # Valid events of the same subscription are not affected.
    assert (await client.post("/webhook/s3cret", json={"Title": "fine"})).status_code == 201


# -- POST /api/v2/events/{teamSecretOrTeamId} --------------------------------------------------------------------


@pytest.mark.parametrize("reference", ["s3cret", "team-1"])
async def test_events_endpoint_with_api_key(client: httpx.AsyncClient, model: Signl4Model, reference: str) -> None:
    response = await client.post(f"/api/v2/events/{reference}", headers={"X-S4-Api-Key": API_KEY},
                                 json={"Title": "Hi", "Message": "Test", "X-S4-ExternalID": "test101",
                                       "X-S4-Status": ""})
    assert response.status_code == 201
    assert EVENT_ID.match(response.json()["eventId"])
    assert_rate_headers(response, 150)
    assert only_alert(model).external_id == "test101"
    event = await client.get(f"/api/v2/events/{response.json()['eventId']}", headers={"X-S4-Api-Key": API_KEY})
    assert [t["alertId"] for t in event.json()["targets"]] == [only_alert(model).id]


async def test_events_endpoint_needs_a_valid_key_and_a_team_of_its_subscription(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/v2/events/s3cret", json={"Title": "x"})).status_code == 401
    wrong = await client.post("/api/v2/events/s3cret", json={"Title": "x"}, headers={"X-S4-Api-Key": "nope"})
    assert wrong.status_code == 401
    foreign = await client.post("/api/v2/events/team-x", json={"Title": "x"}, headers={"X-S4-Api-Key": API_KEY})
    assert foreign.status_code == 404
    assert foreign.json()["code"] == 3004
