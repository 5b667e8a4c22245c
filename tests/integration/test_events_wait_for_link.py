"""A SIGNL4 event can arrive before its Signl is linked: SIGNL4 created the alert, but the send's answer was lost
(in doubt until a later pass reconciles it), so the connector does not know the Signl yet. The event waits in the
inbox, untouched, and is applied once the link exists, exactly once. An event that never finds its Signl is given
up after ``sync.unmatched_event_limit``, logged and counted; one that can never match is finished at once."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import structlog

from integration_harness import Harness
from sentinel_signl4.domain import ActionState, external_id_for
from sentinel_signl4.store import InboxEvent, InboxState
from sentinel_signl4_emulators.common.faults import FaultRule
from source_sides import side_for
from sync_support import ONLY_FRESH_HIGH, TOKEN, Sync

WEBHOOK = r"^/webhook/"


async def in_doubt_start(harness: Harness, *, sync: dict[str, object] | None = None) -> Sync:
    """An incident whose send reached SIGNL4 but whose answer was lost: alert raised, nothing linked."""
    side = side_for("sentinel", harness)
    name = side.create("Credential dumping on DC01")
    overrides = {"filter": ONLY_FRESH_HIGH, "sync": {"mode": "webhook", "webhook_token": TOKEN, **(sync or {}),
                                                      "owner_map": {u.mail: u.object_id for u in harness.world.users}}}
    harness.state.signl4.register_webhook(
        harness.world.signl4_subscription_id, f"https://connector.test/webhooks/signl4/contoso/{TOKEN}")
    runtime = await harness.runtime(source=side.kind, api_key=True, overrides=overrides)
    s = Sync(harness, side, runtime, name)
    harness.state.faults.add(FaultRule(path=WEBHOOK, method="POST", kind="reset", phase="after", count=1))
    await s.cycle()
    assert len(harness.alerts(s.ext)) == 1, "SIGNL4 must have created the alert"
    assert await runtime.store.get_link("contoso", s.resource_id) is None, "the send must be in doubt"
    return s


async def inbox_states(s: Sync) -> Counter[str]:
    rows = await s.runtime.store.pending_inbox("contoso", 100)
    return Counter(row.state for row in rows)


async def test_an_acknowledgement_that_arrives_before_the_link_is_applied_once_the_signl_is_linked(
        harness: Harness) -> None:
    s = await in_doubt_start(harness)
    adele = harness.world.users[0]
    harness.state.signl4.acknowledge(s.alert_id, adele.mail)
    await s.deliver()  # the 200 "new" and the 201 "acknowledged", both before the link exists
    now = datetime.now(UTC)
    await s.connector.run_once(now)  # the in-doubt retry is not due yet: the event finds no link
    assert s.props()["status"] == "New"
    assert await inbox_states(s) == Counter({InboxState.PENDING: 1}), "the early acknowledgement was dropped"
    (waiting,) = await s.runtime.store.pending_inbox("contoso", 10)
    assert waiting.attempts == 0, "waiting for the link must not count as a failed attempt"

    for minute in range(1, 30):  # until the in-doubt send is reconciled (found by ExternalID) and then applied
        await s.connector.run_once(now + timedelta(minutes=minute))
        if s.props()["status"] == "Active":
            break
    assert await s.runtime.store.get_link("contoso", s.resource_id) is not None
    props = s.props()
    assert props["status"] == "Active" and props["owner"]["objectId"] == adele.object_id
    assert len(harness.alerts(s.ext)) == 1, "the in-doubt send was paged twice"
    await s.connector.run_once(now + timedelta(minutes=31))
    acks = [m for m in s.comments() if m.startswith("Acknowledged in SIGNL4")]
    assert len(acks) == 1, s.comments()
    assert await s.runtime.store.pending_inbox("contoso", 10) == []


async def test_an_event_whose_signl_never_gets_linked_is_dead_after_the_limit_logged_and_counted(
        harness: Harness) -> None:
    s = await in_doubt_start(harness, sync={"unmatched_event_limit": "2h"})
    orphan = external_id_for("contoso", "/subscriptions/x/incidents/never-raised-here")
    received = datetime.now(UTC)
    await s.runtime.store.add_inbox(InboxEvent(connector="contoso", event_id="orphan-ack", received_at=received,
                                               payload={"id": "orphan-ack", "eventType": 201,
                                                        "alert": {"statusCode": 2, "externalEventId": orphan,
                                                                  "id": "alert-elsewhere"}}))
    await s.connector.run_once(received + timedelta(minutes=90))
    assert [e.event_id for e in await s.runtime.store.pending_inbox("contoso", 10)] == ["orphan-ack"]
    with structlog.testing.capture_logs() as logs:
        await s.connector.run_once(received + timedelta(hours=2, minutes=1))
    assert await s.runtime.store.pending_inbox("contoso", 10) == []
    [line] = [entry for entry in logs if entry["event"] == "signl4_event_unmatched"]
    assert line["external_id"] == orphan and "limit 2 h)" in line["reason"]
    assert s.runtime.metrics.registry.get_sample_value("s4s_inbox_unmatched_total", {"connector": "contoso"}) == 1
    # The dead event did not hold up the rest: the in-doubt send was reconciled and linked meanwhile.
    assert await s.runtime.store.get_link("contoso", s.resource_id) is not None


async def test_an_event_of_another_integration_is_finished_at_once_not_kept_waiting(harness: Harness) -> None:
    s = await in_doubt_start(harness)
    for event_id, external_id in (("foreign", "INC-42 from another tool"), ("other-connector",
                                                                            "s4s:fabrikam:0123456789abcdef0123")):
        response = await s.web.post(f"/webhooks/signl4/contoso/{TOKEN}", json={
            "id": event_id, "eventType": 201, "alert": {"statusCode": 2, "externalEventId": external_id,
                                                        "id": f"alert-{event_id}"}})
        assert response.status_code == 202
    await s.connector.run_once(datetime.now(UTC))
    assert await s.runtime.store.pending_inbox("contoso", 10) == []
    assert (await s.runtime.store.count_actions("contoso"))[ActionState.DEAD] == 0
