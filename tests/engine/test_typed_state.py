"""Typed outbox payloads and link state in the engine: rows and links written before they carried a version are
worked off as before; a payload this version cannot read is a dead letter that says why, not a crashed cycle."""

from __future__ import annotations

from engine_world import CONNECTOR, EngineWorld

from sentinel_signl4.domain import ActionKind, ActionState, Classification, ClassificationReason, IncidentStatus
from sentinel_signl4.domain.link_state import ClosedBy
from sentinel_signl4.store import Link, OutboxAction


async def test_a_close_queued_the_old_way_is_applied_with_the_classification_in_the_old_link_data(
        world: EngineWorld) -> None:
    incident = world.incident(1)
    external_id = world.external_id(incident)
    key = f"{CONNECTOR}:old-close"
    await world.store.put_link(Link(
        connector=CONNECTOR, incident_id=incident.resource_id, external_id=external_id, incident_number=1,
        open=False, data={"closed_by": "signl4", "close_action": key,
                          "classification": {"classification": "TruePositive", "reason": "SuspiciousActivity"}}),
        world.now)
    event = {"id": "e1", "kind": "closed", "type": 201, "raised_at": world.now.isoformat(),
             "external_id": external_id, "alert_id": "a1", "user": None, "annotation": None,
             "annotation_id": None}
    await world.store.enqueue(OutboxAction(key=key, connector=CONNECTOR, kind=ActionKind.UPDATE_INCIDENT,
                                           incident_id=incident.resource_id,
                                           payload={"op": "close", "event": event}), world.now)
    await world.cycle()
    closed = world.source.incidents[incident.resource_id]
    assert (closed.status, closed.classification, closed.classification_reason) == (
        IncidentStatus.CLOSED, Classification.TRUE_POSITIVE, ClassificationReason.SUSPICIOUS_ACTIVITY)
    link = await world.link(incident)
    assert link is not None and link.state.close_action is None and link.state.closed_by is ClosedBy.SIGNL4
    assert link.data["v"] == 1


async def test_a_payload_of_a_later_version_is_dead_with_its_reason_and_the_others_still_run(
        world: EngineWorld) -> None:
    incident = world.incident(1)
    await world.store.enqueue(OutboxAction(key=f"{CONNECTOR}:future", connector=CONNECTOR,
                                           kind=ActionKind.RESOLVE_SIGNL, incident_id="elsewhere",
                                           payload={"v": 2, "external_ids": ["x"]}), world.now)
    await world.store.enqueue(OutboxAction(key=f"{CONNECTOR}:bad-op", connector=CONNECTOR,
                                           kind=ActionKind.UPDATE_INCIDENT, incident_id="elsewhere-2",
                                           payload={"op": "reopen", "event": {}}), world.now)
    report = await world.cycle()
    assert report.dead[ActionKind.RESOLVE_SIGNL] == 1 and report.dead[ActionKind.UPDATE_INCIDENT] == 1
    future = await world.store.get_action(f"{CONNECTOR}:future")
    assert future is not None and future.state is ActionState.DEAD
    assert "version 2 is not known" in (future.last_error or "")
    assert dict(future.payload) == {"v": 2, "external_ids": ["x"]}, "the payload must be kept for a later version"
    bad = await world.store.get_action(f"{CONNECTOR}:bad-op")
    assert bad is not None and "unknown update op 'reopen'" in (bad.last_error or "")
    assert [r.status.value for r in world.pager.requests] == ["new"]  # the poll's raise still went out
    assert len(world.pager.pages(world.external_id(incident))) == 1
