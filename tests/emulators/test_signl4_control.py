"""The ``/_control/signl4`` plane: set a tenant up, script users' actions and read notifications, over HTTP only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sentinel_signl4_emulators.signl4.model import Signl4Model
from sentinel_signl4_emulators.signl4.routes import build_signl4_app

CONTROL = "/_control/signl4"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_signl4_app(Signl4Model()))
    async with httpx.AsyncClient(transport=transport, base_url="https://signl4.test") as client:
        yield client


async def post(client: httpx.AsyncClient, path: str, body: dict[str, Any] | None = None,
               expect: int = 201) -> Any:
    response = await client.post(f"{CONTROL}{path}", json=body or {})
    assert response.status_code == expect, response.text
    return response.json() if response.content else None


@pytest.fixture
async def tenant(client: httpx.AsyncClient) -> dict[str, Any]:
    subscription = await post(client, "/subscriptions", {"id": "sub-1"})
    team = await post(client, "/teams", {"subscriptionId": "sub-1", "name": "SecOps", "secret": "s3cret"})
    user = await post(client, "/users", {"subscriptionId": "sub-1", "name": "Rene", "mail": "rene@signl4.com",
                                         "teamIds": [team["id"]]})
    key = await post(client, "/api-keys", {"subscriptionId": "sub-1"})
    return {"subscription": subscription, "team": team, "user": user, "key": key["key"]}


async def test_set_up_a_tenant_and_use_it(client: httpx.AsyncClient, tenant: dict[str, Any]) -> None:
    assert tenant["team"]["webhookPaths"] == ["/webhook/s3cret"]
    assert (await client.post("/webhook/s3cret", json={"Title": "x"})).status_code == 201
    teams = await client.get("/api/v2/teams", headers={"X-S4-Api-Key": tenant["key"]})
    assert [t["memberIds"] for t in teams.json()] == [[tenant["user"]["id"]]]


async def test_second_secret_and_member(client: httpx.AsyncClient, tenant: dict[str, Any]) -> None:
    team_id = tenant["team"]["id"]
    secret = await post(client, f"/teams/{team_id}/secrets", {"secret": "integration-1"})
    assert secret["webhookPath"] == "/webhook/integration-1"
    assert (await client.post("/webhook/integration-1", json={"Title": "x"})).status_code == 201
    ann = await post(client, "/users", {"subscriptionId": "sub-1", "name": "Ann", "mail": "ann@signl4.com"})
    team = await post(client, f"/teams/{team_id}/members", {"userId": ann["id"]}, expect=200)
    assert team["memberIds"] == [tenant["user"]["id"], ann["id"]]


async def test_user_actions_by_external_id_and_by_alert_id(client: httpx.AsyncClient,
                                                           tenant: dict[str, Any]) -> None:
    await client.post("/webhook/s3cret", json={"Title": "Disk", "X-S4-ExternalID": "INC-1"})
    acked = await post(client, "/actions/acknowledge", {"externalId": "INC-1", "user": "rene@signl4.com"},
                       expect=200)
    assert acked["status"] == 2
    annotated = await post(client, "/actions/annotate",
                           {"alertId": acked["id"], "user": tenant["user"]["id"], "text": "looking"}, expect=200)
    assert [a["text"] for a in annotated["annotations"]] == ["looking"]
    closed = await post(client, "/actions/close", {"alertId": acked["id"], "user": "rene@signl4.com"}, expect=200)
    assert closed["status"] == 4
    conflict = await post(client, "/actions/close", {"externalId": "INC-1", "user": "rene@signl4.com"}, expect=409)
    assert conflict["message"].startswith("Alert can't be closed")
    listed = (await client.get(f"{CONTROL}/alerts", params={"externalId": "INC-1"})).json()
    assert [(a["id"], a["status"], a["externalId"]) for a in listed] == [(acked["id"], 4, "INC-1")]
    notifications = (await client.get(f"{CONTROL}/notifications")).json()
    assert [(n["eventType"], n["alert"]["statusCode"]) for n in notifications] == [(200, 1), (201, 2), (203, 0),
                                                                                   (201, 4)]


async def test_escalate_then_drain(client: httpx.AsyncClient, tenant: dict[str, Any]) -> None:
    await client.post("/webhook/s3cret", json={"Title": "Disk", "X-S4-ExternalID": "INC-1"})
    escalated = await post(client, "/actions/escalate", {"externalId": "INC-1"}, expect=200)
    assert escalated["flags"] & 16
    drained = await post(client, "/notifications/drain", expect=200)
    assert [n["eventType"] for n in drained] == [200, 202]
    assert (await client.get(f"{CONTROL}/notifications")).json() == []


async def test_action_errors(client: httpx.AsyncClient, tenant: dict[str, Any]) -> None:
    await client.post("/webhook/s3cret", json={"Title": "Disk", "X-S4-ExternalID": "INC-1"})
    await post(client, "/actions/dance", {"externalId": "INC-1"}, expect=404)
    await post(client, "/actions/close", {"externalId": "nope", "user": "rene@signl4.com"}, expect=404)
    await post(client, "/actions/close", {"externalId": "INC-1"}, expect=400)
    await post(client, "/actions/close", {"user": "rene@signl4.com"}, expect=400)


async def test_webhook_registration_and_deliveries(client: httpx.AsyncClient, tenant: dict[str, Any]) -> None:
    webhook = await post(client, "/webhooks", {"subscriptionId": "sub-1", "url": "https://connector.test/in?t=1",
                                               "teamId": tenant["team"]["id"], "name": "Sentinel"})
    assert webhook.keys() == {"enabled", "externalAddress", "id", "name", "subscriptionId", "teamId"}
    await post(client, "/webhooks", {"subscriptionId": "sub-1", "url": "https://signl4.test/webhook/s3cret"},
               expect=400)
    await client.post("/webhook/s3cret", json={"Title": "x"})
    deliveries = (await client.get(f"{CONTROL}/deliveries")).json()
    assert [(d["url"], d["notification"]["eventType"]) for d in deliveries] == [("https://connector.test/in?t=1",
                                                                                 200)]


async def test_rate_limits_can_be_tightened_and_reset(client: httpx.AsyncClient, tenant: dict[str, Any]) -> None:
    limits = await client.put(f"{CONTROL}/rate-limits", json={"subscriptionId": "sub-1",
                                                               "events": [{"limit": 1, "windowSeconds": 60}]})
    assert limits.status_code == 200
    current = (await client.get(f"{CONTROL}/rate-limits", params={"subscriptionId": "sub-1"})).json()
    assert current["events"] == [{"limit": 1, "windowSeconds": 60.0}]
    assert current["rest"][0] == {"limit": 150, "windowSeconds": 15.0}
    statuses = [(await client.post("/webhook/s3cret", json={"Title": "x"})).status_code for _ in range(2)]
    assert statuses == [201, 429]
    free = (await client.put(f"{CONTROL}/rate-limits", json={"plan": "free"})).json()
    assert free["events"][0] == {"limit": 10, "windowSeconds": 15.0}
    bad = await client.put(f"{CONTROL}/rate-limits", json={"events": [{"limit": 0, "windowSeconds": 1}]})
    assert bad.status_code == 400
    assert (await client.post(f"{CONTROL}/reset")).status_code == 204
    assert (await client.post("/webhook/s3cret", json={"Title": "x"})).status_code == 404
    after = (await client.get(f"{CONTROL}/rate-limits")).json()
    assert after["events"][0] == {"limit": 150, "windowSeconds": 15.0}


async def test_setup_validation(client: httpx.AsyncClient, tenant: dict[str, Any]) -> None:
    await post(client, "/subscriptions", {"id": "sub-1"}, expect=409)
    await post(client, "/teams", {"subscriptionId": "missing", "name": "x"}, expect=404)
    await post(client, "/teams", {"subscriptionId": "sub-1", "name": "y", "secret": "s3cret"}, expect=409)
    await post(client, "/users", {"subscriptionId": "sub-1", "name": "x"}, expect=400)
    await post(client, "/subscriptions", {"plan": "platinum"}, expect=400)
