"""The SIGNL4 poll (no-inbound mode) on a fake of its port: found events reach the inbox once, a catch-up larger
than one cycle makes progress, the annotation path survives a restart, unreadable annotations are reported."""

from __future__ import annotations

from datetime import timedelta

from engine_world import CONNECTOR, EngineWorld
from structlog.testing import capture_logs

from sentinel_signl4.domain import IncidentStatus
from sentinel_signl4.domain.signl4_events import EventKind
from sentinel_signl4.engine.signl4_poll import ANNOTATIONS_PATH_CURSOR, POLL_CURSOR, Signl4Poller
from sentinel_signl4.store import StateStore


async def _linked_world(store: StateStore, count: int = 1) -> EngineWorld:
    world = EngineWorld(store, poll_signl4=True)
    for number in range(1, count + 1):
        world.incident(number)
    await world.cycle()
    return world


async def test_a_polled_acknowledgement_also_delivered_by_the_webhook_is_applied_once(store: StateStore) -> None:
    world = await _linked_world(store)
    [incident] = world.source.incidents.values()
    ack = world.event(incident, EventKind.ACKNOWLEDGED, event_id="poll:alert-1:ack")
    world.changes.publish("alert-1", world.external_id(incident), world.now, [ack])
    await world.deliver(world.event(incident, EventKind.ACKNOWLEDGED, event_id="webhook-77"))
    await world.cycle(minutes=1)
    await world.cycle(minutes=1)  # read again within the overlap: the inbox absorbs it
    assert world.source.incidents[incident.resource_id].status is IncidentStatus.ACTIVE
    acks = [c for c in world.source.comment_texts(incident.resource_id) if c.startswith("Acknowledged")]
    assert len(acks) == 1
    assert await store.get_cursor(CONNECTOR, POLL_CURSOR) == world.now.isoformat()


async def test_a_catch_up_larger_than_one_cycle_reads_every_alert_once(store: StateStore) -> None:
    world = await _linked_world(store, count=5)
    assert world.poller is not None
    world.poller.max_alerts = 2
    for number, incident in enumerate(world.source.incidents.values(), start=1):
        close = world.event(incident, EventKind.CLOSED, event_id=f"poll:alert-{number}:close",
                            alert_id=f"alert-{number}")
        world.changes.publish(f"alert-{number}", world.external_id(incident), world.now, [close])
    for _ in range(4):
        await world.cycle(minutes=1)
    assert sorted(world.changes.reads) == [f"alert-{n}" for n in range(1, 6)], "an alert read twice or never"
    assert {i.status for i in world.source.incidents.values()} == {IncidentStatus.CLOSED}


async def test_the_annotation_path_that_answered_is_kept_for_the_next_process(store: StateStore) -> None:
    world = await _linked_world(store)
    [incident] = world.source.incidents.values()
    world.changes.publish("alert-1", world.external_id(incident), world.now, [])
    await world.cycle(minutes=1)
    assert await store.get_cursor(CONNECTOR, ANNOTATIONS_PATH_CURSOR) == "v1"
    # A new process: its adapter knows no path yet and is told the stored one before it reads.
    restarted = EngineWorld(store, poll_signl4=True, now=world.now)
    restarted.changes.publish("alert-1", world.external_id(incident), restarted.now, [])
    await store.set_cursor(CONNECTOR, ANNOTATIONS_PATH_CURSOR, "v2_timeline")
    await restarted.cycle(minutes=1)
    assert restarted.changes.annotations_path == "v2_timeline"


async def test_unreadable_annotations_are_reported_every_cycle_and_the_cursor_still_moves(
        store: StateStore) -> None:
    world = await _linked_world(store)
    [incident] = world.source.incidents.values()
    world.changes.annotations_unreadable = "neither path answered"
    close = world.event(incident, EventKind.CLOSED, event_id="poll:alert-1:close")
    world.changes.publish("alert-1", world.external_id(incident), world.now, [close])
    report = await world.cycle(minutes=1)
    assert any("annotations of 1 Signl(s) not read (#1)" in e for e in report.errors)
    assert await store.get_cursor(CONNECTOR, POLL_CURSOR) == world.now.isoformat()
    assert await store.get_cursor(CONNECTOR, ANNOTATIONS_PATH_CURSOR) is None
    await world.cycle(minutes=1)
    assert world.source.incidents[incident.resource_id].status is IncidentStatus.CLOSED


async def test_no_poll_before_the_interval(store: StateStore) -> None:
    world = await _linked_world(store)
    poller = world.poller
    assert isinstance(poller, Signl4Poller)
    [incident] = world.source.incidents.values()
    world.changes.publish("alert-1", world.external_id(incident), world.now, [])
    await world.cycle(minutes=1)
    world.changes.reads.clear()
    world.now += timedelta(seconds=poller.interval.total_seconds() / 2)
    await world.cycle()
    assert world.changes.reads == []


async def test_unreadable_annotations_are_logged_once_per_process_but_reported_every_cycle(
        store: StateStore) -> None:
    world = await _linked_world(store)
    [incident] = world.source.incidents.values()
    world.changes.annotations_unreadable = "neither path answered"
    errors = []
    with capture_logs() as logs:
        for number in range(3):
            world.changes.publish("alert-1", world.external_id(incident), world.now, [
                world.event(incident, EventKind.ANNOTATED, event_id=f"poll:alert-1:note-{number}",
                            annotation=f"note {number}")])
            report = await world.cycle(minutes=1)
            errors.append(sum("not read" in e for e in report.errors))
    warnings = [line for line in logs if line["event"] == "signl4_annotations_unreadable"]
    assert len(warnings) == 1 and warnings[0]["error"] == "neither path answered"
    assert errors == [1, 1, 1]  # the connector's status says so at every cycle; the log does not repeat it
