"""The reverse path on fakes: SIGNL4 events reach the incident once, wait for their link, and the incident's own
lifecycle (closed, reopened, merged) reaches the Signl."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from engine_fakes import FakePager
from engine_world import CONNECTOR, EngineWorld

from sentinel_signl4.domain import (
    ActionKind,
    ActionState,
    Classification,
    ClassificationReason,
    IncidentStatus,
    SignlStatus,
)
from sentinel_signl4.domain.signl4_events import EventKind
from sentinel_signl4.domain.sync import ClassificationChoice
from sentinel_signl4.engine.report import PollReport
from sentinel_signl4.engine.reverse import ReverseSettings
from sentinel_signl4.errors import OutcomeUnknownError
from sentinel_signl4.store import StateStore


async def test_an_acknowledgement_delivered_twice_activates_the_incident_and_comments_once(
        world: EngineWorld) -> None:
    incident = world.incident(1)
    await world.cycle()
    # The webhook's notification and the poll's find of the same acknowledgement: two ids, one intent.
    await world.deliver(world.event(incident, EventKind.ACKNOWLEDGED, event_id="webhook-1"))
    await world.deliver(world.event(incident, EventKind.ACKNOWLEDGED, event_id="poll:alert-1:ack"))
    await world.cycle(minutes=1)
    assert world.source.incidents[incident.resource_id].status is IncidentStatus.ACTIVE
    comments = world.source.comment_texts(incident.resource_id)
    acks = [c for c in comments if c.startswith("Acknowledged in SIGNL4 by Adele (adele@contoso.test)")]
    assert len(acks) == 1
    assert len(comments) == 2 and "Owner not assigned" in comments[0]  # no owner_map entry: said once too
    assert await world.store.pending_inbox(CONNECTOR, 10) == []


async def test_a_close_uses_the_classification_a_responder_annotated(world: EngineWorld) -> None:
    incident = world.incident(1)
    await world.cycle()
    await world.deliver(world.event(incident, EventKind.ANNOTATED, event_id="n1", annotation="#fp:logic wrong rule"))
    await world.deliver(world.event(incident, EventKind.CLOSED, event_id="c1"))
    await world.cycle(minutes=1)
    closed = world.source.incidents[incident.resource_id]
    assert (closed.status, closed.classification, closed.classification_reason) == (
        IncidentStatus.CLOSED, Classification.FALSE_POSITIVE, ClassificationReason.INCORRECT_ALERT_LOGIC)
    link = await world.link(incident)
    assert link is not None and not link.open and link.data.get("closed_by") == "signl4"
    assert "close_action" not in link.data, "the applied close must clear its marker"


async def test_an_event_for_a_signl_whose_send_is_in_doubt_waits_for_the_link_then_applies(
        world: EngineWorld) -> None:
    incident = world.incident(1)
    world.pager.faults.fail_next("send", OutcomeUnknownError("timeout after sending"), after=True)
    await world.cycle()
    assert await world.link(incident) is None
    # SIGNL4 delivered the page, and a responder acknowledged it before we know it went out.
    await world.deliver(world.event(incident, EventKind.ACKNOWLEDGED, event_id="early-ack"))
    await world.reverse.process_inbox(world.now, PollReport(CONNECTOR))
    assert [e.event_id for e in await world.store.pending_inbox(CONNECTOR, 10)] == ["early-ack"]
    await world.cycle(minutes=5)  # the in-doubt send is reconciled: linked
    await world.cycle(minutes=1)  # the waiting event applies
    assert len(world.pager.alerts) == 1
    assert world.source.incidents[incident.resource_id].status is IncidentStatus.ACTIVE


async def test_an_event_whose_link_never_comes_is_dead_after_the_limit(store: StateStore) -> None:
    world = EngineWorld(store, settings=ReverseSettings(close_choice=ClassificationChoice(
        Classification.UNDETERMINED, None), unmatched_event_limit=timedelta(minutes=10)))
    incident = world.incident(1)
    world.pager.faults.fail_next("send", OutcomeUnknownError("timeout"), after=False)
    world.pager.faults.fail_next("find_by_external_id", OutcomeUnknownError("timeout"), times=10)
    await world.deliver(world.event(incident, EventKind.ACKNOWLEDGED, event_id="orphan"))
    await world.cycle()
    assert [e.event_id for e in await world.store.pending_inbox(CONNECTOR, 10)] == ["orphan"]
    await world.cycle(minutes=11)
    assert await world.store.pending_inbox(CONNECTOR, 10) == []
    assert world.metrics.registry.get_sample_value("s4s_inbox_unmatched_total", {"connector": CONNECTOR}) == 1
    assert world.source.incidents[incident.resource_id].status is IncidentStatus.NEW


async def test_an_event_for_an_alert_another_integration_raised_is_ignored(world: EngineWorld) -> None:
    incident = world.incident(1)
    foreign = replace(world.event(incident, EventKind.ACKNOWLEDGED, event_id="other"), external_id="zabbix:42")
    await world.deliver(foreign)
    await world.cycle()
    assert await world.store.pending_inbox(CONNECTOR, 10) == []
    assert world.source.incidents[incident.resource_id].status is IncidentStatus.NEW


async def test_an_incident_closed_in_the_source_resolves_its_signl_and_the_echo_changes_nothing(
        world: EngineWorld) -> None:
    incident = world.incident(1)
    await world.cycle()
    world.advance(minutes=1)
    world.source.change(incident.resource_id, status=IncidentStatus.CLOSED,
                        classification=Classification.TRUE_POSITIVE,
                        classification_reason=ClassificationReason.SUSPICIOUS_ACTIVITY)
    await world.cycle(minutes=1)
    assert [r.status for r in world.pager.requests] == [SignlStatus.NEW, SignlStatus.RESOLVED]
    link = await world.link(incident)
    assert link is not None and not link.open and link.data.get("closed_by") == "sentinel"
    await world.deliver(world.event(incident, EventKind.CLOSED, event_id="echo", user=None))
    await world.cycle(minutes=1)
    closed = world.source.incidents[incident.resource_id]
    assert closed.classification is Classification.TRUE_POSITIVE, "our own resolve echoed back re-closed it"
    assert world.source.comment_texts(incident.resource_id) == []


@pytest.mark.parametrize("reraise", [True, False])
async def test_a_reopened_incident_gets_a_new_signl_only_when_configured(store: StateStore, reraise: bool) -> None:
    world = EngineWorld(store, settings=ReverseSettings(
        close_choice=ClassificationChoice(Classification.UNDETERMINED, None), reraise_on_reopen=reraise))
    incident = world.incident(1)
    await world.cycle()
    world.source.change(incident.resource_id, status=IncidentStatus.CLOSED)
    await world.cycle(minutes=1)
    world.source.change(incident.resource_id, status=IncidentStatus.ACTIVE)
    await world.cycle(minutes=1)
    pages = [a.request.external_id for a in world.pager.alerts]
    assert pages == ([world.external_id(incident), world.external_id(incident, 2)] if reraise
                     else [world.external_id(incident)])


async def test_a_merged_incident_moves_its_signl_to_a_survivor_that_has_none(store: StateStore) -> None:
    world = EngineWorld(store, pager=FakePager(api_key=True))
    merged = world.incident(1)
    await world.cycle()
    survivor = world.incident(2, status=IncidentStatus.ACTIVE)  # not New: never paged on its own
    world.source.merged_into[merged.resource_id] = survivor.resource_id
    world.source.change(merged.resource_id, status=IncidentStatus.CLOSED, merged=True)
    await world.cycle(minutes=1)
    moved = await world.link(survivor)
    assert moved is not None and moved.external_id == world.external_id(merged)
    assert await world.link(merged) is None
    [alert] = world.pager.alerts
    assert alert.open and len(alert.annotations) == 1 and "#2" in alert.annotations[0]
    # Later events of that Signl go to the survivor.
    await world.deliver(world.event(merged, EventKind.ACKNOWLEDGED, event_id="after-merge"))
    await world.cycle(minutes=1)
    assert world.source.comment_texts(survivor.resource_id)[-1].startswith("Acknowledged in SIGNL4")


async def test_an_in_doubt_annotation_already_on_the_signl_is_not_added_again(store: StateStore) -> None:
    world = EngineWorld(store)
    merged = world.incident(1)
    await world.cycle()
    world.source.merged_into[merged.resource_id] = "gone"  # the survivor cannot be read: resolve with a note
    world.source.change(merged.resource_id, status=IncidentStatus.CLOSED, merged=True)
    world.pager.faults.fail_next("annotate", OutcomeUnknownError("timeout after sending"), after=True)
    await world.cycle(minutes=1)
    [row] = [r for r in await world.store.list_actions(CONNECTOR) if r.kind is ActionKind.ANNOTATE_SIGNL]
    assert row.in_doubt and row.state is ActionState.PENDING
    await world.cycle(minutes=10)
    [row] = [r for r in await world.store.list_actions(CONNECTOR) if r.kind is ActionKind.ANNOTATE_SIGNL]
    assert row.state is ActionState.DONE and row.result is not None and row.result.get("reconciled") is True
    assert len(world.pager.alerts[0].annotations) == 1
