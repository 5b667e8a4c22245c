"""Two-way sync through the real receiver: SIGNL4's outbound webhooks (delivered by the emulator, at least once,
optionally duplicated and shuffled) → inbox → Sentinel; and the incident lifecycle back to SIGNL4."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from integration_harness import Harness
from sentinel_signl4.domain import external_id_for
from sentinel_signl4.web.app import build_web_app
from sentinel_signl4_emulators.common.faults import FaultRule
from sentinel_signl4_emulators.signl4.model import AlertStatus
from sync_support import ONLY_FRESH_HIGH, TOKEN, resolves_sent, start


async def test_acknowledge_sets_owner_active_and_comments(harness: Harness) -> None:
    s = await start(harness)
    adele = harness.world.users[0]
    harness.state.signl4.acknowledge(s.alert_id, adele.mail)
    await s.deliver()
    await s.cycle()
    props = s.props()
    assert props["status"] == "Active"
    assert props["owner"]["objectId"] == adele.object_id
    assert any(m.startswith(f"Acknowledged in SIGNL4 by {adele.display_name} ({adele.mail}) at ") for m in s.comments())
    assert "SIGNL4" in [label["labelName"] for label in props["labels"]]  # nothing dropped


async def test_close_uses_the_configured_classification_and_sets_owner_if_unset(harness: Harness) -> None:
    s = await start(harness, sync={"close_classification": "BenignPositive",
                                   "close_classification_reason": "SuspiciousButExpected"})
    megan = harness.world.users[1]
    harness.state.signl4.close(s.alert_id, megan.mail)
    await s.deliver()
    await s.cycle()
    props = s.props()
    assert props["status"] == "Closed"
    assert (props["classification"], props["classificationReason"]) == ("BenignPositive", "SuspiciousButExpected")
    assert props["owner"]["objectId"] == megan.object_id
    assert any(m.startswith(f"Closed in SIGNL4 by {megan.display_name}") for m in s.comments())


async def test_annotation_keyword_sets_the_classification_of_the_later_close(harness: Harness) -> None:
    s = await start(harness)
    lee = harness.world.users[3]
    harness.state.signl4.annotate(s.alert_id, lee.mail, "#fp:data sensor clock was off")
    await s.deliver()
    await s.cycle()
    assert f"[SIGNL4] {lee.display_name}: #fp:data sensor clock was off" in s.comments()
    harness.state.signl4.close(s.alert_id, lee.mail)
    await s.deliver()
    await s.cycle()
    props = s.props()
    assert (props["classification"], props["classificationReason"]) == ("FalsePositive", "InaccurateData")


async def test_invalid_keyword_gets_an_explaining_comment_not_a_failure(harness: Harness) -> None:
    s = await start(harness)
    harness.state.signl4.annotate(s.alert_id, harness.world.users[0].mail, "#fp:banana")
    await s.deliver()
    await s.cycle()
    assert any("not name a valid reason" in m and "#fp:logic" in m for m in s.comments())
    assert s.connector.health.error is None
    assert s.props()["status"] == "New"


async def test_escalation_comment_is_optional(harness: Harness) -> None:
    s = await start(harness, sync={"comment_on_escalation": True})
    harness.state.signl4.escalate(s.alert_id)
    await s.deliver()
    await s.cycle()
    assert any(m.startswith("Escalated in SIGNL4") for m in s.comments())


async def test_duplicated_and_shuffled_deliveries_end_in_the_right_state_without_duplicate_comments(
        harness: Harness) -> None:
    s = await start(harness)
    adele, megan = harness.world.users[0], harness.world.users[1]
    harness.state.signl4.acknowledge(s.alert_id, adele.mail)
    harness.state.signl4.annotate(s.alert_id, megan.mail, "#tp confirmed with the user")
    harness.state.signl4.close(s.alert_id, megan.mail)
    await s.deliver(duplicate_rate=1.0, shuffle=True)
    await s.cycle()
    await s.deliver(duplicate_rate=1.0, shuffle=True)  # nothing left; a replay of nothing
    await s.cycle()
    props = s.props()
    assert props["status"] == "Closed"
    assert (props["classification"], props["classificationReason"]) == ("TruePositive", "SuspiciousActivity")
    assert props["owner"]["objectId"] in {adele.object_id, megan.object_id}
    counts = Counter(s.comments())
    assert counts and all(n == 1 for n in counts.values()), counts


async def test_replayed_event_after_processing_adds_nothing(harness: Harness) -> None:
    s = await start(harness)
    harness.state.signl4.acknowledge(s.alert_id, harness.world.users[0].mail)
    notifications = [n for n in harness.state.signl4.notifications() if n.get("eventType") == 201]
    await s.deliver()
    await s.cycle()
    before = s.comments()
    for body in notifications:  # SIGNL4 re-sends the same notification later
        response = await s.web.post(f"/webhooks/signl4/contoso/{TOKEN}", json=body)
        assert response.status_code in (200, 202)
    await s.cycle()
    assert s.comments() == before


async def test_analyst_edit_racing_our_write_is_kept(harness: Harness) -> None:
    s = await start(harness)
    adele, alex = harness.world.users[0], harness.world.users[2]
    harness.state.signl4.acknowledge(s.alert_id, adele.mail)
    await s.deliver()
    harness.state.faults.add(FaultRule(path=rf"/incidents/{s.name}$", method="PUT", kind="delay", delay=0.6,
                                       count=1))
    cycle = asyncio.create_task(s.cycle())
    await asyncio.sleep(0.3)
    harness.state.sentinel.update_incident_as_analyst(harness.world.workspace, s.name, add_labels=["VIP"],
                                                      severity="Medium", description="handled with legal")
    await cycle
    props = s.props()
    assert props["status"] == "Active" and props["owner"]["objectId"] == adele.object_id
    assert "VIP" in [label["labelName"] for label in props["labels"]]
    assert props["severity"] == "Medium" and props["description"] == "handled with legal"
    assert alex.object_id != props["owner"]["objectId"]


async def test_owner_is_resolved_through_graph_without_an_owner_map(harness: Harness) -> None:
    s = await start(harness, sync={"owner_map": {}})
    lee = harness.world.users[3]
    harness.state.signl4.acknowledge(s.alert_id, lee.mail)
    await s.deliver()
    await s.cycle()
    assert s.props()["owner"]["objectId"] == lee.object_id


async def test_unknown_responder_gets_a_comment_instead_of_a_failure(harness: Harness) -> None:
    s = await start(harness, sync={"owner_map": {}})
    stranger = harness.state.signl4.create_user(harness.world.signl4_subscription_id, "Temp Contractor",
                                                "temp@partner.example", team_ids=[harness.world.signl4_team_id])
    harness.state.signl4.acknowledge(s.alert_id, stranger.mail)
    await s.deliver()
    await s.cycle()
    props = s.props()
    assert props["status"] == "Active" and not props["owner"].get("objectId")
    assert any("Owner not assigned: temp@partner.example was not found in Entra ID" in m for m in s.comments())
    assert s.connector.health.error is None


async def test_polling_mode_needs_no_receiver(harness: Harness) -> None:
    s = await start(harness, webhook=False, sync={"mode": "poll", "poll_signl4_interval": "1s"})
    megan = harness.world.users[1]
    harness.state.signl4.acknowledge(s.alert_id, megan.mail)
    harness.state.signl4.annotate(s.alert_id, megan.mail, "#bp expected admin activity")
    harness.state.signl4.close(s.alert_id, megan.mail)
    await s.cycle(minutes=1)
    props = s.props()
    assert props["status"] == "Closed" and props["owner"]["objectId"] == megan.object_id
    assert (props["classification"], props["classificationReason"]) == ("BenignPositive", "SuspiciousButExpected")
    await s.cycle(minutes=2)
    assert all(n == 1 for n in Counter(s.comments()).values())


async def test_close_from_signl4_does_not_echo_back_as_a_resolve(harness: Harness) -> None:
    s = await start(harness)
    harness.state.signl4.close(s.alert_id, harness.world.users[1].mail)
    await s.deliver()
    await s.cycle()
    await s.cycle(minutes=1)
    await s.deliver()
    await s.cycle(minutes=2)
    assert s.props()["status"] == "Closed"
    assert resolves_sent(harness, external_id_for("contoso", s.resource_id)) == 0


async def test_analyst_close_resolves_the_signl_and_the_echo_adds_no_comment(harness: Harness) -> None:
    s = await start(harness)
    harness.state.sentinel.close_incident_as_analyst(harness.world.workspace, s.name,
                                                     classification="TruePositive",
                                                     classification_reason="SuspiciousActivity")
    await s.cycle()
    alert = harness.alerts(external_id_for("contoso", s.resource_id))[0]
    assert alert.status == AlertStatus.CLOSED
    assert resolves_sent(harness, external_id_for("contoso", s.resource_id)) == 1
    await s.deliver()  # SIGNL4 tells us the Signl was closed (by our resolve): the echo
    await s.cycle(minutes=1)
    assert resolves_sent(harness, external_id_for("contoso", s.resource_id)) == 1
    assert not any("Closed in SIGNL4" in m for m in s.comments())
    assert s.props()["classification"] == "TruePositive"


@pytest.mark.parametrize("reraise", [True, False])
async def test_reopened_incident_gets_a_new_signl_only_when_configured(harness: Harness, reraise: bool) -> None:
    s = await start(harness, sync={"reraise_on_reopen": reraise})
    harness.state.sentinel.close_incident_as_analyst(harness.world.workspace, s.name,
                                                     classification="Undetermined")
    await s.cycle()
    harness.state.sentinel.update_incident_as_analyst(harness.world.workspace, s.name, status="New")
    await s.cycle(minutes=1)
    first = external_id_for("contoso", s.resource_id)
    second = external_id_for("contoso", s.resource_id, 2)
    assert len(harness.alerts(first)) == 1
    assert len(harness.alerts(second)) == (1 if reraise else 0)
    await s.cycle(minutes=2)
    assert len(harness.alerts(second)) == (1 if reraise else 0)


async def test_both_modes_at_once_write_one_comment_per_action(harness: Harness) -> None:
    s = await start(harness, sync={"mode": "both", "poll_signl4_interval": "1s"})
    megan = harness.world.users[1]
    harness.state.signl4.acknowledge(s.alert_id, megan.mail)
    harness.state.signl4.annotate(s.alert_id, megan.mail, "#tp on it")
    harness.state.signl4.close(s.alert_id, megan.mail)
    await s.deliver()                 # the webhook notifications …
    await s.cycle(minutes=1)          # … and the REST poll finds the same three changes
    await s.cycle(minutes=2)
    props = s.props()
    assert props["status"] == "Closed" and props["classification"] == "TruePositive"
    counts = Counter(s.comments())
    assert len(counts) >= 3 and all(n == 1 for n in counts.values()), counts


async def test_a_webhook_wakes_its_connector_instead_of_waiting_for_the_next_poll(harness: Harness) -> None:
    s = await start(harness)
    # Re-built with an hour-long poll interval: without the wake-up nothing would happen during this test.
    runtime = await harness.runtime(overrides={"filter": ONLY_FRESH_HIGH, "connector": {"poll_interval": "1h"},
                                               "sync": {"webhook_token": TOKEN}})
    supervisor = runtime.supervisor()
    web = httpx.AsyncClient(transport=httpx.ASGITransport(app=build_web_app(runtime, on_event=supervisor.wake)),
                            base_url="https://connector.test")
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    try:
        for _ in range(200):  # the first cycle runs at start
            if runtime.connectors["contoso"].runtime.health.cycles:
                break
            await asyncio.sleep(0.05)
        harness.state.signl4.acknowledge(s.alert_id, harness.world.users[0].mail)
        report = await harness.state.signl4.deliver_outbound(web)
        assert report.failed == 0
        for _ in range(200):
            if s.props()["status"] == "Active":
                break
            await asyncio.sleep(0.05)
        assert s.props()["status"] == "Active"
    finally:
        stop.set()
        await task
        await web.aclose()


async def test_a_close_not_applied_yet_is_not_taken_for_a_reopen(harness: Harness) -> None:
    s = await start(harness, sync={"reraise_on_reopen": True})
    megan = harness.world.users[1]
    harness.state.signl4.acknowledge(s.alert_id, megan.mail)
    harness.state.signl4.close(s.alert_id, megan.mail)
    await s.deliver()
    # Sentinel refuses the writes for a while: the close is recorded (link closed) but waits for a retry, so the
    # incident is still open when the next cycle's lifecycle pass (which runs before the outbox) looks at it.
    harness.state.faults.add(FaultRule(path=rf"/incidents/{s.name}$", method="PUT", kind="status", status=503))
    await s.cycle()
    assert s.props()["status"] == "New"
    harness.state.faults.clear()
    await s.cycle(minutes=1)
    await s.cycle(minutes=2)
    assert s.props()["status"] == "Closed"
    assert harness.alerts(external_id_for("contoso", s.resource_id, 2)) == [], "re-paged as if reopened"


async def test_polling_catches_up_when_more_signls_changed_than_one_cycle_reads(harness: Harness) -> None:
    """More changed Signls than ``max_alerts``: every cycle must make progress, so the older ones (the paged search
    lists newest first) are synced too instead of the same newest ones being read again forever."""
    s = await start(harness, webhook=False, sync={"mode": "poll", "poll_signl4_interval": "1s"})
    names = [s.name] + [harness.state.sentinel.create_incident(
        harness.world.workspace, title=f"Burst {i}", severity="High",
        created=datetime.now(UTC) - timedelta(minutes=2))["name"] for i in range(2)]
    await s.cycle(minutes=0.1)
    alert_ids = [str(harness.alerts(external_id_for("contoso", str(harness.incident(n)["id"])))[0].id)
                 for n in names]
    poller = s.connector.signl4_poller
    assert poller is not None
    poller.max_alerts = 2
    megan = harness.world.users[1]
    for alert_id in alert_ids:
        harness.state.signl4.close(alert_id, megan.mail)
    for step in range(2, 6):
        await s.cycle(minutes=step / 10)
    assert [harness.incident(n)["properties"]["status"] for n in names] == ["Closed"] * 3


async def test_a_deleted_incident_does_not_stop_the_reconciliation_sweep(harness: Harness) -> None:
    """An open link whose incident no longer exists (deleted, or past the source's retention) is skipped by the
    sweep: it neither marks the connector failed on every cycle nor hides the drift of the links after it."""
    s = await start(harness)
    other = harness.state.sentinel.create_incident(harness.world.workspace, title="Second", severity="High",
                                                   created=datetime.now(UTC) - timedelta(minutes=2))["name"]
    await s.cycle()
    other_id = str(harness.incident(other)["id"])
    assert len(harness.alerts(external_id_for("contoso", other_id))) == 1
    harness.state.faults.add(FaultRule(path=rf"/incidents/{s.name}$", method="GET", kind="status", status=404,
                                       body={"error": {"code": "NotFound", "message": "Incident not found"}}))
    harness.state.sentinel.close_incident_as_analyst(harness.world.workspace, other, classification="Undetermined")
    # The lifecycle pass misses the close (as with clock skew beyond its overlap); only the sweep can find it.
    later = datetime.now(UTC) + timedelta(minutes=20)
    await s.runtime.store.set_cursor("contoso", "lifecycle_since", (later + timedelta(hours=1)).isoformat())
    await s.connector.run_once(later)
    assert s.connector.health.error is None
    assert harness.alerts(external_id_for("contoso", other_id))[0].status == AlertStatus.CLOSED


async def test_an_incident_busy_with_other_writers_gets_the_action_later_not_never(harness: Harness) -> None:
    """A 409 that outlasts the in-call re-reads (automation rules rewriting the incident for a few seconds) is
    rescheduled like any transient failure, not dead-lettered: the acknowledgement still reaches Sentinel."""
    s = await start(harness)
    harness.state.faults.add(FaultRule(path=rf"/incidents/{s.name}$", method="PUT", kind="status", status=409,
                                       count=5, body={"error": {"code": "Conflict", "message": "etag mismatch"}}))
    harness.state.signl4.acknowledge(s.alert_id, harness.world.users[0].mail)
    await s.deliver()
    await s.cycle()
    assert s.props()["status"] == "New"
    await s.cycle(minutes=10)
    assert s.props()["status"] == "Active"
