"""REST API v2 of the SIGNL4 emulator, checked against SIGNL4's published v1 OpenAPI document where shapes agree.

v1 schemas that match a v2 shape exactly (``ErrorResponseContent``, ``TeamInfo``, ``EventParameterInfo``, the
continuation token) are validated strictly. For v2 objects that grew fields (alert, user, annotation, event, paged
results) the v1 schema is applied with ``additionalProperties`` relaxed: every field both versions share must have
the v1 type and enum.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]
import pytest

from fake_clock import FakeClock
from sentinel_signl4_emulators.signl4.model import RateLimit, RateLimitPolicy, RawParameter, Signl4Model
from sentinel_signl4_emulators.signl4.routes import build_signl4_app

SPEC = Path(__file__).resolve().parents[1] / "specs" / "signl4" / "openapi-v1.json"
T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
KEY = "key-sub-1"
AUTH = {"X-S4-Api-Key": KEY}


def _json_schema(node: Any, *, relaxed: bool) -> Any:
    """OpenAPI 3.0 → JSON Schema: ``nullable: true`` becomes a ``null`` alternative; optionally relax objects."""
    if isinstance(node, list):
        return [_json_schema(item, relaxed=relaxed) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {k: _json_schema(v, relaxed=relaxed) for k, v in node.items()}
    if relaxed and converted.get("additionalProperties") is False:
        del converted["additionalProperties"]
    if converted.pop("nullable", False):
        if "type" in converted:
            converted["type"] = [converted["type"], "null"]
        else:
            converted = {"anyOf": [converted, {"type": "null"}]}
    return converted


@cache
def _components(relaxed: bool) -> dict[str, Any]:
    spec = json.loads(SPEC.read_text())
    components: dict[str, Any] = _json_schema(spec["components"], relaxed=relaxed)
    return components


def validate(instance: Any, schema_name: str, *, relaxed: bool = False) -> None:
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": _components(relaxed)}
    jsonschema.Draft202012Validator(schema).validate(instance)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def model(clock: FakeClock) -> Signl4Model:
    model = Signl4Model(clock)
    model.create_subscription("sub-1")
    model.create_team("sub-1", "Ops", team_id="team-1", secret="s3cret")
    model.create_team("sub-1", "Facilities", team_id="team-2", secret="fac")
    model.create_user("sub-1", "Rene", "Rene@signl4.com", user_id="u-rene", team_ids=["team-1", "team-2"])
    model.create_user("sub-1", "Ann", "ann@signl4.com", user_id="u-ann", team_ids=["team-2"])
    model.create_api_key("sub-1", KEY)
    model.create_subscription("sub-2")
    model.create_team("sub-2", "Elsewhere", team_id="team-x", secret="xsecret")
    model.create_user("sub-2", "Xavier", "x@example.com", user_id="u-x", team_ids=["team-x"])
    model.create_api_key("sub-2", "key-sub-2")
    return model


@pytest.fixture
async def client(model: Signl4Model) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_signl4_app(model))
    async with httpx.AsyncClient(transport=transport, base_url="https://signl4.test") as client:
        yield client


def raise_alert(model: Signl4Model, clock: FakeClock, external_id: str, team: str = "team-1", **extra: str) -> str:
    clock.advance(1)
    fields = [RawParameter("Title", f"Alert {external_id}"), RawParameter("Message", "text"),
              RawParameter("X-S4-ExternalID", external_id), *(RawParameter(k, v) for k, v in extra.items())]
    return model.raise_event(team, fields).target_alert_ids[0]


async def search(client: httpx.AsyncClient, body: dict[str, Any], *, user: str = "u-rene",
                 max_results: int | str = 100) -> httpx.Response:
    return await client.post("/api/v2/alerts/paged", params={"userId": user, "maxResults": max_results},
                             json=body, headers=AUTH)


# -- authentication and errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"X-S4-Api-Key": "wrong"}])
async def test_missing_or_wrong_api_key_is_401(client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    response = await client.get("/api/v2/users", headers=headers)
    assert response.status_code == 401
    validate(response.json(), "ErrorResponseContent")


async def test_every_error_body_is_an_error_response_content(client: httpx.AsyncClient, model: Signl4Model,
                                                             clock: FakeClock) -> None:
    alert_id = raise_alert(model, clock, "INC1")
    model.close(alert_id, "u-rene")
    model.set_rate_limits(RateLimitPolicy(events=(RateLimit(1, timedelta(seconds=15)),),
                                          rest=(RateLimit(5, timedelta(seconds=15)),)))
    responses = [
        await client.post("/webhook/unknown", json={}),
        await client.get("/webhook/s3cret"),
        await client.post("/webhook/s3cret", content=b"{", headers={"Content-Type": "application/json"}),
        await client.post("/webhook/s3cret", json={"Title": "uses the only event"}),
        await client.post("/webhook/s3cret", json={"Title": "throttled"}),
        await client.get("/api/v2/alerts/nope", headers=AUTH),
        await client.post(f"/api/v2/alerts/{alert_id}/close", json={"userId": "u-rene"}, headers=AUTH),
        await client.post(f"/api/v2/alerts/{alert_id}/close", json={}, headers=AUTH),
        await client.post("/api/v2/alerts/paged", params={"userId": "u-rene", "maxResults": 0}, json={},
                          headers=AUTH),
        await client.get("/api/v2/nothing-here", headers=AUTH),
        await client.get("/api/v2/users", headers=AUTH),
        await client.get("/api/v2/users", headers=AUTH),
    ]
    statuses = [r.status_code for r in responses]
    assert statuses == [404, 405, 400, 201, 429, 404, 409, 400, 400, 404, 200, 429]
    for response in responses:
        if response.status_code >= 400:
            validate(response.json(), "ErrorResponseContent")
            assert response.json()["requestId"]


async def test_rest_calls_are_limited_per_subscription(client: httpx.AsyncClient, model: Signl4Model,
                                                       clock: FakeClock) -> None:
    model.set_rate_limits(RateLimitPolicy(events=(RateLimit(150, timedelta(seconds=15)),),
                                          rest=(RateLimit(2, timedelta(seconds=15)),)), subscription_id="sub-1")
    assert [(await client.get("/api/v2/teams", headers=AUTH)).status_code for _ in range(3)] == [200, 200, 429]
    assert (await client.get("/api/v2/teams", headers={"X-S4-Api-Key": "key-sub-2"})).status_code == 200
    clock.advance(30)
    assert (await client.get("/api/v2/teams", headers=AUTH)).status_code == 200


async def test_api_key_in_the_query_is_accepted(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v2/teams", params={"x-s4-api-key": KEY})).status_code == 200


# -- users and teams -------------------------------------------------------------------------------------------------


async def test_users_of_the_subscription_only(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v2/users", headers=AUTH)
    assert sorted(u["mail"] for u in response.json()) == ["Rene@signl4.com", "ann@signl4.com"]
    for user in response.json():
        validate(user, "UserInfo", relaxed=True)


@pytest.mark.parametrize("reference", ["u-rene", "rene@SIGNL4.com"])
async def test_user_by_id_or_mail(client: httpx.AsyncClient, reference: str) -> None:
    response = await client.get(f"/api/v2/users/{reference}", headers=AUTH)
    assert response.status_code == 200
    assert response.json()["id"] == "u-rene"


async def test_unknown_or_foreign_user_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/v2/users/nobody@example.com", headers=AUTH)).status_code == 404
    assert (await client.get("/api/v2/users/u-x", headers=AUTH)).status_code == 404


async def test_teams_are_team_info(client: httpx.AsyncClient) -> None:
    teams = (await client.get("/api/v2/teams", headers=AUTH)).json()
    assert {t["name"]: t["memberIds"] for t in teams} == {"Ops": ["u-rene"], "Facilities": ["u-rene", "u-ann"]}
    for team in teams:
        validate(team, "TeamInfo")


# -- alerts -----------------------------------------------------------------------------------------------------------


async def test_get_alert_has_the_v2_fields(client: httpx.AsyncClient, model: Signl4Model, clock: FakeClock) -> None:
    alert_id = raise_alert(model, clock, "INC1", **{"X-S4-Service": "Security"})
    model.acknowledge(alert_id, "u-rene")
    body = (await client.get(f"/api/v2/alerts/{alert_id}", headers=AUTH)).json()
    assert (body["id"], body["externalId"], body["status"], body["teamId"], body["categoryName"]) == (
        alert_id, "INC1", 2, "team-1", "Security")
    assert body["history"]["acknowledgements"] == ["u-rene"]
    assert body["history"]["acknowledgedAt"].endswith("Z")
    assert body["history"]["closedAt"] is None
    validate(body, "AlertInfo", relaxed=True)


async def test_alert_details_carry_parameters(client: httpx.AsyncClient, model: Signl4Model,
                                              clock: FakeClock) -> None:
    alert_id = raise_alert(model, clock, "INC1", Gate="A45")
    details = (await client.get(f"/api/v2/alerts/{alert_id}/details", headers=AUTH)).json()
    assert {p["name"]: p["value"] for p in details["parameters"]}["Gate"] == "A45"
    for parameter in details["parameters"]:
        validate(parameter, "EventParameterInfo")
    validate(details, "AlertInfo", relaxed=True)


async def test_alerts_of_another_subscription_are_not_found(client: httpx.AsyncClient, model: Signl4Model,
                                                            clock: FakeClock) -> None:
    foreign = raise_alert(model, clock, "INC1", team="team-x")
    assert (await client.get(f"/api/v2/alerts/{foreign}", headers=AUTH)).status_code == 404
    response = await client.post(f"/api/v2/alerts/{foreign}/close", json={"userId": "u-rene"}, headers=AUTH)
    assert response.status_code == 404


@pytest.mark.parametrize(("body", "user"), [
    ({"userId": "u-rene", "description": "on it"}, "u-rene"),
    ({"uid": "ann@signl4.com", "descr": "on it"}, "u-ann"),
])
async def test_acknowledge_then_close_accepts_both_body_spellings(
        client: httpx.AsyncClient, model: Signl4Model, clock: FakeClock, body: dict[str, str], user: str) -> None:
    alert_id = raise_alert(model, clock, "INC1", team="team-2")
    acked = await client.post(f"/api/v2/alerts/{alert_id}/acknowledge", json=body, headers=AUTH)
    assert acked.status_code == 200
    assert acked.json()["status"] == 2
    assert acked.json()["history"]["acknowledgements"] == [user]
    closed = await client.post(f"/api/v2/alerts/{alert_id}/close", json=body, headers=AUTH)
    assert closed.status_code == 200
    assert closed.json()["status"] == 4
    assert closed.json()["history"]["closedBy"] == user
    again = await client.post(f"/api/v2/alerts/{alert_id}/close", json=body, headers=AUTH)
    assert again.status_code == 409
    late_ack = await client.post(f"/api/v2/alerts/{alert_id}/acknowledge", json=body, headers=AUTH)
    assert late_ack.status_code == 409


async def test_status_changes_need_a_known_alert_and_user(client: httpx.AsyncClient, model: Signl4Model,
                                                          clock: FakeClock) -> None:
    alert_id = raise_alert(model, clock, "INC1")
    unknown_alert = "2518236416804564453_12ea0f6f-948c-43d0-9034-f9565d7b6bd2"
    assert (await client.post(f"/api/v2/alerts/{unknown_alert}/acknowledge", json={"userId": "u-rene"},
                              headers=AUTH)).status_code == 404
    assert (await client.post(f"/api/v2/alerts/{alert_id}/acknowledge", json={},
                              headers=AUTH)).status_code == 400
    assert (await client.post(f"/api/v2/alerts/{alert_id}/acknowledge", json={"userId": "u-x"},
                              headers=AUTH)).status_code == 404
    assert model.alerts[alert_id].status == 1


async def test_annotate_and_list_annotations(client: httpx.AsyncClient, model: Signl4Model,
                                             clock: FakeClock) -> None:
    alert_id = raise_alert(model, clock, "INC1")
    assert (await client.get(f"/api/alerts/{alert_id}/annotations", headers=AUTH)).status_code == 204
    response = await client.post(f"/api/v2/alerts/{alert_id}/annotate", headers=AUTH,
                                 json={"type": 1, "text": "OK, I'll take care about it.", "userId": "u-rene"})
    assert response.status_code == 200
    annotation = response.json()
    assert annotation.keys() == {"id", "teamId", "text", "timestamp", "type", "userId"}
    assert (annotation["teamId"], annotation["type"], annotation["userId"]) == ("team-1", 1, "u-rene")
    listed = (await client.get(f"/api/alerts/{alert_id}/annotations", headers=AUTH)).json()
    assert listed == [{"annotationType": 1, "id": annotation["id"], "text": annotation["text"],
                       "timestamp": annotation["timestamp"], "userId": "u-rene"}]
    validate(listed[0], "AlertAnnotationInfo")  # the v1 path answers in the v1 shape, strictly
    validate(annotation, "AlertAnnotationInfo", relaxed=True)
    # No source shows a v2 annotations list: only the v1 path and the v2 timeline exist.
    assert (await client.get(f"/api/v2/alerts/{alert_id}/annotations", headers=AUTH)).status_code == 404
    bad = await client.post(f"/api/v2/alerts/{alert_id}/annotate", headers=AUTH,
                            json={"type": 2, "text": "x", "userId": "u-rene"})
    assert bad.status_code == 400


async def test_event_lists_its_target_alerts(client: httpx.AsyncClient, model: Signl4Model) -> None:
    event = model.raise_event("team-1", [RawParameter("Title", "x"), RawParameter("X-S4-ExternalID", "E1")])
    body = (await client.get(f"/api/v2/events/{event.id}", headers=AUTH)).json()
    assert [t["alertId"] for t in body["targets"]] == event.target_alert_ids
    assert (body["externalId"], body["eventStatus"]) == ("E1", 2)
    validate(body, "OverviewEvent", relaxed=True)
    assert (await client.get("/api/v2/events/unknown", headers=AUTH)).status_code == 404


# -- paged search -----------------------------------------------------------------------------------------------------


async def test_paged_search_by_external_id_follows_continuation_over_three_pages(
        client: httpx.AsyncClient, model: Signl4Model, clock: FakeClock) -> None:
    wanted = [raise_alert(model, clock, "INC-7") for _ in range(7)]
    for i in range(4):
        raise_alert(model, clock, f"noise-{i}")
    seen: list[str] = []
    pages = 0
    body: dict[str, Any] = {"externalId": "INC-7"}
    while True:
        response = await search(client, body, max_results=3)
        assert response.status_code == 200
        page = response.json()
        validate(page, "OverviewAlertPagedResultsPublic", relaxed=True)
        validate(page["continuationToken"], "PagedResultsPublicContinuationToken")
        seen += [a["id"] for a in page["results"]]
        pages += 1
        if not page["hasMore"]:
            assert page["continuationToken"]["nextRowKey"] is None
            break
        body = {"externalId": "INC-7", "continuationToken": page["continuationToken"]}
    assert pages == 3
    assert seen == list(reversed(wanted))  # newest first, each exactly once


async def test_paging_is_stable_when_alerts_arrive_between_pages(
        client: httpx.AsyncClient, model: Signl4Model, clock: FakeClock) -> None:
    first_batch = [raise_alert(model, clock, "INC-1") for _ in range(4)]
    page = (await search(client, {"externalId": "INC-1"}, max_results=2)).json()
    raise_alert(model, clock, "INC-1")  # newer: sorts before the cursor
    rest = (await search(client, {"externalId": "INC-1", "continuationToken": page["continuationToken"]},
                         max_results=2)).json()
    assert [a["id"] for a in page["results"] + rest["results"]] == list(reversed(first_batch))


async def test_no_match_is_204(client: httpx.AsyncClient, model: Signl4Model, clock: FakeClock) -> None:
    raise_alert(model, clock, "INC-1")
    response = await search(client, {"externalId": "nope"})
    assert response.status_code == 204
    assert response.content == b""


async def test_only_alerts_of_the_users_teams_are_visible(client: httpx.AsyncClient, model: Signl4Model,
                                                          clock: FakeClock) -> None:
    raise_alert(model, clock, "INC-1", team="team-1")
    assert (await search(client, {}, user="ann@signl4.com")).status_code == 204
    assert len((await search(client, {}, user="u-rene")).json()["results"]) == 1


@pytest.mark.parametrize("max_results", [0, 101, "many"])
async def test_max_results_outside_1_to_100_is_400(client: httpx.AsyncClient, max_results: int | str) -> None:
    assert (await search(client, {}, max_results=max_results)).status_code == 400


async def test_user_id_is_required(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v2/alerts/paged", params={"maxResults": 10}, json={}, headers=AUTH)
    assert response.status_code == 400


async def test_filters_accept_both_spellings_and_a_status_bitmask(
        client: httpx.AsyncClient, model: Signl4Model, clock: FakeClock) -> None:
    open_1 = raise_alert(model, clock, "A", team="team-1")
    acked_1 = raise_alert(model, clock, "B", team="team-1")
    model.acknowledge(acked_1, "u-rene")
    closed_2 = raise_alert(model, clock, "C", team="team-2")
    model.close(closed_2, "u-ann")
    cut = clock.now
    clock.advance(10)
    model.annotate(open_1, "u-rene", "touch")  # modified after the cut

    async def ids(body: dict[str, Any]) -> set[str]:
        response = await search(client, body)
        return {a["id"] for a in response.json()["results"]} if response.status_code == 200 else set()

    assert await ids({"teamid": "team-2"}) == {closed_2}
    assert await ids({"teamIds": ["team-1"]}) == {open_1, acked_1}
    assert await ids({"alertStatusCodes": 0}) == {open_1, acked_1, closed_2}
    assert await ids({"alertStatusCodes": 2 | 4}) == {acked_1, closed_2}
    assert await ids({"alertStatusCodes": 1}) == {open_1}
    since = (cut + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    assert await ids({"modSince": since}) == {open_1}
    assert await ids({"modifiedSince": since}) == {open_1}
    created_b = model.alerts[acked_1].created.isoformat()
    assert await ids({"minCreated": created_b, "maxCreated": created_b}) == {acked_1}
    assert await ids({"textToSearch": "alert b"}) == {acked_1}
    assert await ids({"teamid": "", "alertIds": [], "afterId": "", "categoryIds": [], "modSince": "",
                      "continuationToken": {"nextPartitionKey": "", "nextRowKey": "", "nextTableName": ""},
                      "showPersonalHiddenCategories": True, "alertStatusCodes": 0, "textToSearch": ""}) == {
        open_1, acked_1, closed_2}  # the official sample body (alert-export.js) with empty values


@pytest.mark.parametrize("body", [{"alertStatusCodes": 64}, {"teamIds": "team-1"}, {"minCreated": "yesterday"},
                                  {"afterId": "x"}, {"continuationToken": "abc"}])
async def test_invalid_filters_are_400(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    response = await search(client, body)
    assert response.status_code == 400
    validate(response.json(), "ErrorResponseContent")
