"""``/_control/signl4/inbound-rejections``: make the inbound webhook refuse large bodies (413) or a field (400)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from sentinel_signl4_emulators.signl4.model import Signl4Model
from sentinel_signl4_emulators.signl4.routes import build_signl4_app

CONTROL = "/_control/signl4"


@pytest.fixture
def model() -> Signl4Model:
    return Signl4Model()


@pytest.fixture
async def client(model: Signl4Model) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_signl4_app(model))
    async with httpx.AsyncClient(transport=transport, base_url="https://signl4.test") as client:
        sub = (await client.post(f"{CONTROL}/subscriptions", json={"id": "sub-1"})).json()
        await client.post(f"{CONTROL}/teams", json={"subscriptionId": sub["id"], "name": "SecOps",
                                                    "secret": "s3cret"})
        key = (await client.post(f"{CONTROL}/api-keys", json={"subscriptionId": "sub-1", "key": "k3y"})).json()
        assert key["key"] == "k3y"
        yield client


async def rejections(client: httpx.AsyncClient, body: dict[str, Any], expect: int = 200) -> Any:
    response = await client.put(f"{CONTROL}/inbound-rejections", json=body)
    assert response.status_code == expect, response.text
    return response.json()


async def test_bodies_above_the_limit_get_413_and_raise_nothing(client: httpx.AsyncClient,
                                                                model: Signl4Model) -> None:
    assert await rejections(client, {"maxBodyBytes": 200}) == {"maxBodyBytes": 200, "rejectFields": []}
    big = await client.post("/webhook/s3cret", json={"Title": "big", "Message": "x" * 300})
    assert big.status_code == 413
    assert "more than 200" in big.text
    assert model.list_alerts() == []
    small = await client.post("/webhook/s3cret", json={"Title": "small", "X-S4-ExternalID": "E1"})
    assert small.status_code == 201
    assert [a.external_id for a in model.list_alerts()] == ["E1"]


async def test_a_rejected_field_gets_400_error_response_content(client: httpx.AsyncClient,
                                                                model: Signl4Model) -> None:
    await rejections(client, {"rejectFields": ["Evidence 1"]})
    refused = await client.post("/webhook/s3cret", json={"Title": "t", "evidence 1": "row", "X-S4-ExternalID": "E"})
    assert refused.status_code == 400
    body = refused.json()
    assert set(body) == {"requestId", "code", "details", "message"}
    assert body["code"] == 0 and body["message"] == "Error raising event."
    assert "'evidence 1' is not accepted" in body["details"]
    # A nested object's fields count too, and the events API refuses the same bodies.
    nested = await client.post("/api/v2/events/s3cret", headers={"X-S4-Api-Key": "k3y"},
                               json={"Title": "t", "Evidence 1": {"host": "h"}})
    assert nested.status_code == 400
    assert model.list_alerts() == []
    accepted = await client.post("/webhook/s3cret", json={"Title": "t", "Evidence 2": "row"})
    assert accepted.status_code == 201


async def test_reset_and_an_empty_put_lift_the_rules(client: httpx.AsyncClient, model: Signl4Model) -> None:
    await rejections(client, {"maxBodyBytes": 10, "rejectFields": ["Title"]})
    assert (await client.get(f"{CONTROL}/inbound-rejections")).json() == {"maxBodyBytes": 10,
                                                                           "rejectFields": ["title"]}
    await rejections(client, {})
    assert (await client.post("/webhook/s3cret", json={"Title": "t"})).status_code == 201
    await rejections(client, {"maxBodyBytes": 10})
    model.reset()
    assert model.inbound_rejections.max_body_bytes is None


@pytest.mark.parametrize("body", [{"maxBodyBytes": -1}, {"maxBodyBytes": "10"}, {"maxBodyBytes": True},
                                  {"rejectFields": "Title"}, {"rejectFields": [""]}, {"rejectFields": [3]}])
async def test_bad_rules_are_refused_with_400(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    answer = await rejections(client, body, expect=400)
    assert answer["message"] == "Invalid inbound rejections." or answer["message"] == "Invalid rejectFields."
    assert (await client.get(f"{CONTROL}/inbound-rejections")).json() == {"maxBodyBytes": None, "rejectFields": []}
