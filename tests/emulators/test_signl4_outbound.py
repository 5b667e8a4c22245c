"""Outbound notifications of the SIGNL4 emulator: envelope shapes (ref §2.3) and at-least-once delivery."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from sentinel_signl4_emulators.signl4.model import RawParameter, Signl4Model

RAISED_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")
SIGNL4_ID = re.compile(r"^\d{19}_[0-9a-f-]{36}$")

# The samples of signl4.com/outbound-webhooks as reproduced in the reference (§2.3).
SAMPLE_200 = {
    "eventType": 200, "eventRaisedUtc": "2017-09-01T08:11:37.4815663Z",
    "subscription": {"id": "0acf8014-22f2-4503-88d7-f7d05b46744f"},
    "alert": {"statusCode": 1, "eventId": "2518783235949759942_fbc7b4a4-badd-47b8-9e1d-702fb6a1a0b2",
              "externalEventId": "INC091210", "id": "2518981069381242800_2ab1b5e0-f1b7-4c3e-9adf-6c157eeb4685"},
    "id": "dd209a2d-e037-41ee-b37d-f605cc0a39fb",
}
SAMPLE_201 = {
    "eventType": 201, "eventRaisedUtc": "2017-09-01T08:11:37.4815663Z",
    "subscription": {"id": "0acf8014-22f2-4503-88d7-f7d05b46744f"},
    "user": {"username": "Rene", "mailaddress": "rene@signl4.com", "id": "f0bd5063-9588-51cf-b3d9-94e5647dedc5"},
    "alert": {"statusCode": 2, "eventId": "2518783235949759942_fbc7b4a4-badd-47b8-9e1d-702fb6a1a0b2",
              "externalEventId": "Content you passed in the X-S4-ExternalID parameter",
              "acknowledgedUserIds": ["f0bd5063-9588-51cf-b3d9-94e5647dedc5"],
              "id": "2518981069381242800_2ab1b5e0-f1b7-4c3e-9adf-6c157eeb4685"},
    "id": "dd209a2d-e037-41ee-b37d-f605cc0a39fb",
}
SAMPLE_202 = {
    "eventType": 202, "eventRaisedUtc": "2020-01-10T12:27:19Z",
    "subscription": {"id": "b8fdd850-e2ad-45ff-924d-9c332a063200"},
    "team": {"id": "0e8979f7-0c6a-472d-8918-ecfd339252f8"},
    "alert": {"statusCode": 1, "eventId": "2518236416806594587_0e67b746-6c88-4ddf-8872-99690b0457d9",
              "externalEventId": "INC091210", "acknowledgedUserIds": [],
              "id": "2518236416804564453_12ea0f6f-948c-43d0-9034-f9565d7b6bd2"},
    "id": "27283793-47c8-4da2-9767-d37be224338d",
}
SAMPLE_203 = {
    "eventType": 203, "eventRaisedUtc": "2018-04-17T15:00:32Z",
    "subscription": {"id": "1578ebd9-0a27-44ab-bc8e-52cd7d32e81d"},
    "user": {"username": "Rene", "mailaddress": "rene@signl4.com", "id": "f0bd5063-9588-51cf-b3d9-94e5647dedc5"},
    "alert": {"statusCode": 0, "eventId": "2518783235949759942_fbc7b4a4-badd-47b8-9e1d-702fb6a1a0b2",
              "externalEventId": "Content you passed in the X-S4-ExternalID parameter",
              "id": "2518783235958846071_4e2dfab2-4717-42bc-8d37-8682402309c2"},
    "annotation": {"message": "OK, I'll take care about it.",
                   "id": "2518783235661483318_99ebffe0-1b90-40ef-990a-fbd842484761"},
    "id": "141c0f88-7831-4d5e-b055-f6e83c269770",
}


def shape(value: Any) -> Any:
    """Keys (in order) and JSON types, recursively."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return type(value).__name__


@pytest.fixture
def model() -> Signl4Model:
    model = Signl4Model(lambda: datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC), seed=3)
    model.create_subscription("sub-1")
    model.create_team("sub-1", "Ops", team_id="team-1", secret="s3cret")
    model.create_team("sub-1", "Facilities", team_id="team-2", secret="fac")
    model.create_user("sub-1", "Rene", "rene@signl4.com", user_id="u-rene", team_ids=["team-1"])
    return model


def raise_new(model: Signl4Model, external_id: str = "INC091210", team: str = "team-1") -> str:
    event = model.raise_event(team, [RawParameter("Title", "t"), RawParameter("X-S4-ExternalID", external_id)])
    return event.target_alert_ids[0]


# -- envelopes ---------------------------------------------------------------------------------------------------------


def test_each_notification_has_the_keys_and_types_of_the_published_sample(model: Signl4Model) -> None:
    alert_id = raise_new(model)
    model.escalate(alert_id)
    model.acknowledge(alert_id, "u-rene")
    model.annotate(alert_id, "u-rene", "OK, I'll take care about it.")
    model.close(alert_id, "rene@signl4.com")
    created, escalated, acked, annotated, closed = model.drain_notifications()
    assert shape(created) == shape(SAMPLE_200)
    assert shape(escalated) == shape(SAMPLE_202)
    assert shape(acked) == shape(SAMPLE_201)
    assert shape(annotated) == shape(SAMPLE_203)
    assert shape(closed) == shape(SAMPLE_201)
    for notification in (created, escalated, acked, annotated, closed):
        assert RAISED_UTC.match(notification["eventRaisedUtc"])
        assert SIGNL4_ID.match(notification["alert"]["id"])
        assert SIGNL4_ID.match(notification["alert"]["eventId"])
        assert notification["alert"]["externalEventId"] == "INC091210"
        assert notification["subscription"] == {"id": "sub-1"}


def test_notification_values_follow_the_change(model: Signl4Model) -> None:
    alert_id = raise_new(model)
    model.escalate(alert_id)
    model.acknowledge(alert_id, "u-rene")
    model.annotate(alert_id, "u-rene", "note")
    model.close(alert_id, "u-rene")
    created, escalated, acked, annotated, closed = model.drain_notifications()
    assert [n["eventType"] for n in (created, escalated, acked, annotated, closed)] == [200, 202, 201, 203, 201]
    assert [n["alert"]["statusCode"] for n in (created, escalated, acked, closed)] == [1, 1, 2, 4]
    assert annotated["alert"]["statusCode"] == 0  # as in the official 203 sample: do not read status from a 203
    assert escalated["team"] == {"id": "team-1"}
    assert acked["user"] == {"username": "Rene", "mailaddress": "rene@signl4.com", "id": "u-rene"}
    assert acked["alert"]["acknowledgedUserIds"] == ["u-rene"]
    assert annotated["annotation"]["message"] == "note"
    assert annotated["annotation"]["id"] == model.alerts[alert_id].annotations[0].id
    assert len({n["id"] for n in (created, escalated, acked, annotated, closed)}) == 5


def test_acknowledging_with_a_description_carries_an_annotation(model: Signl4Model) -> None:
    alert_id = raise_new(model)
    model.acknowledge(alert_id, "u-rene", "on my way")
    _, acked = model.drain_notifications()
    assert acked["annotation"]["message"] == "on my way"


def test_drain_empties_the_record(model: Signl4Model) -> None:
    raise_new(model)
    assert len(model.notifications()) == 1
    assert len(model.drain_notifications()) == 1
    assert model.drain_notifications() == []


# -- delivery ----------------------------------------------------------------------------------------------------------


class Receiver:
    """An outbound webhook receiver that fails the first ``failures`` requests."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.received: list[tuple[str, dict[str, Any], httpx.Headers]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.failures:
            self.failures -= 1
            return httpx.Response(503)
        self.received.append((str(request.url), json.loads(request.content), request.headers))
        return httpx.Response(200)


async def test_delivery_posts_each_notification_to_the_matching_webhooks(model: Signl4Model) -> None:
    model.register_webhook("sub-1", "https://connector.test/hooks/all?token=t0k3n")
    model.register_webhook("sub-1", "https://connector.test/hooks/team2", team_id="team-2")
    raise_new(model, team="team-1")
    raise_new(model, team="team-2")
    receiver = Receiver()
    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as client:
        report = await model.deliver_outbound(client)
    assert (report.delivered, report.failed, report.pending) == (3, 0, 0)
    by_url = sorted((url, body["alert"]["id"]) for url, body, _ in receiver.received)
    team2_alert = model.list_alerts(team_id="team-2")[0].id
    assert [u for u, a in by_url if a == team2_alert] == [
        "https://connector.test/hooks/all?token=t0k3n", "https://connector.test/hooks/team2"]
    for _, _, headers in receiver.received:
        assert "authorization" not in headers  # SIGNL4 signs nothing (ref §2.1)
        assert headers["content-type"] == "application/json"


async def test_failed_deliveries_stay_queued_until_a_2xx(model: Signl4Model) -> None:
    model.register_webhook("sub-1", "https://connector.test/hooks")
    raise_new(model)
    receiver = Receiver(failures=1)
    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as client:
        first = await model.deliver_outbound(client)
        assert (first.delivered, first.failed, first.pending) == (0, 1, 1)
        second = await model.deliver_outbound(client)
    assert (second.delivered, second.pending) == (1, 0)
    assert len(receiver.received) == 1


async def test_unreachable_receiver_keeps_the_notification(model: Signl4Model) -> None:
    model.register_webhook("sub-1", "https://connector.test/hooks")
    raise_new(model)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        report = await model.deliver_outbound(client)
    assert (report.failed, report.pending) == (1, 1)
    assert model.pending_deliveries()[0][0] == "https://connector.test/hooks"


async def test_fault_mode_duplicates_and_reorders(model: Signl4Model) -> None:
    model.register_webhook("sub-1", "https://connector.test/hooks")
    ids = [raise_new(model, external_id=f"INC{i}") for i in range(8)]
    receiver = Receiver()
    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as client:
        report = await model.deliver_outbound(client, duplicate_rate=1.0, shuffle=True)
    assert (report.delivered, report.duplicates, report.pending) == (8, 8, 0)
    delivered = [body["alert"]["id"] for _, body, _ in receiver.received]
    assert sorted(delivered) == sorted(ids * 2)
    assert delivered[::2] != ids  # out of queue order (the model's random source is seeded)
    notification_ids = [body["id"] for _, body, _ in receiver.received]
    assert len(set(notification_ids)) == 8  # a duplicate carries the same id, so receivers can de-duplicate


async def test_no_webhook_means_nothing_to_deliver_but_the_record_remains(model: Signl4Model) -> None:
    raise_new(model)
    assert model.pending_deliveries() == []
    assert len(model.notifications()) == 1
