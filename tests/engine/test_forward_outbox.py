"""The forward path and the outbox on fakes: one page per incident whatever fails, in-doubt sends reconciled
before anything is sent again, the minimal Signl when SIGNL4 refuses the body, retries and dead letters."""

from __future__ import annotations

from engine_world import CONNECTOR, EngineWorld

from sentinel_signl4.domain import ActionKind, ActionState, IncidentStatus, Severity
from sentinel_signl4.engine.keys import raise_key
from sentinel_signl4.errors import AuthError, OutcomeUnknownError, PermanentError, TransientError


async def test_an_incident_is_paged_once_linked_and_tagged_however_many_cycles_see_it(world: EngineWorld) -> None:
    incident = world.incident(1)
    world.incident(2, severity=Severity.LOW, status=IncidentStatus.ACTIVE)  # not New: filtered out
    for minutes in range(4):
        await world.cycle(minutes=minutes)
    external_id = world.external_id(incident)
    assert [a.request.external_id for a in world.pager.alerts] == [external_id]
    link = await world.link(incident)
    assert link is not None and (link.external_id, link.event_id, link.incident_number) == (external_id,
                                                                                              "event-1", 1)
    assert world.source.incidents[incident.resource_id].labels == ("SIGNL4",)


async def test_a_send_lost_after_signl4_accepted_it_is_found_by_its_external_id_not_sent_again(
        world: EngineWorld) -> None:
    incident = world.incident(1)
    world.pager.faults.fail_next("send", OutcomeUnknownError("read timeout after sending"), after=True)
    first = await world.cycle()
    assert first.retried[ActionKind.RAISE_SIGNL] == 1
    row = await world.store.get_action(raise_key(CONNECTOR, world.external_id(incident)))
    assert row is not None and row.in_doubt and row.state is ActionState.PENDING
    second = await world.cycle(minutes=5)
    assert second.reconciled_sends == 1
    assert len(world.pager.pages(world.external_id(incident))) == 1, "paged twice"
    link = await world.link(incident)
    assert link is not None and link.alert_id == "alert-1"


async def test_an_in_doubt_send_that_never_arrived_is_sent_once_after_the_lookup(world: EngineWorld) -> None:
    incident = world.incident(1)
    world.pager.faults.fail_next("send", OutcomeUnknownError("connection reset before the answer"))
    await world.cycle()
    assert world.pager.alerts == []
    report = await world.cycle(minutes=5)
    assert report.reconciled_sends == 0 and report.done[ActionKind.RAISE_SIGNL] == 1
    assert len(world.pager.pages(world.external_id(incident))) == 1


async def test_a_refused_body_falls_back_to_the_minimal_signl_with_the_same_external_id(world: EngineWorld) -> None:
    incident = world.incident(1, title="x" * 3000)
    world.pager.reject_body_over = 2000
    await world.cycle()
    [alert] = world.pager.pages(world.external_id(incident))
    assert len(str(alert.request.to_payload())) <= 2000
    row = await world.store.get_action(raise_key(CONNECTOR, world.external_id(incident)))
    assert row is not None and row.state is ActionState.DONE
    assert row.result is not None
    assert row.result["fallback"] == "minimal" and row.result["rejected_status"] == 413


async def test_when_the_minimal_signl_is_refused_too_the_row_is_dead_with_both_reasons(world: EngineWorld) -> None:
    incident = world.incident(1)
    world.pager.faults.fail_next("send", PermanentError("Title too long", status=400))
    world.pager.faults.fail_next("send", PermanentError("Body not in the expected format", status=400))
    report = await world.cycle()
    assert report.dead[ActionKind.RAISE_SIGNL] == 1
    row = await world.store.get_action(raise_key(CONNECTOR, world.external_id(incident)))
    assert row is not None and row.state is ActionState.DEAD
    assert "HTTP 400" in (row.last_error or "") and "minimal fallback" in (row.last_error or "")
    assert world.pager.alerts == []


async def test_a_transient_failure_is_retried_after_its_backoff_not_before(world: EngineWorld) -> None:
    incident = world.incident(1)
    world.pager.faults.fail_next("send", TransientError("503 from SIGNL4", status=503))
    await world.cycle()
    row = await world.store.get_action(raise_key(CONNECTOR, world.external_id(incident)))
    assert row is not None and row.next_attempt_at is not None
    assert row.next_attempt_at > world.now and not row.in_doubt
    due = row.next_attempt_at
    await world.cycle()  # same instant: not due yet
    assert world.pager.alerts == []
    world.now = due
    await world.cycle()
    assert len(world.pager.pages(world.external_id(incident))) == 1


async def test_a_refused_credential_holds_every_send_of_the_pass_and_reports_a_config_error(
        world: EngineWorld) -> None:
    world.incident(1)
    world.incident(2)
    world.runtime.outbox.concurrency = 1  # one send after the other: the second starts after the refusal
    world.pager.faults.fail_next("send", AuthError("401 team secret rejected", status=401))
    report = await world.cycle()
    assert world.pager.requests == [] and report.retried[ActionKind.RAISE_SIGNL] == 1
    assert world.runtime.health.error is not None and "team secret rejected" in world.runtime.health.error
    counts = await world.store.count_actions(CONNECTOR)
    assert counts[ActionState.PENDING] == 2, "the other raise must wait, not be dead-lettered"


async def test_the_tag_of_an_incident_waits_for_its_raise(world: EngineWorld) -> None:
    incident = world.incident(1)
    world.source.faults.fail_next("add_tag", TransientError("Sentinel 503", status=503))
    await world.cycle()
    assert world.source.incidents[incident.resource_id].labels == ()
    assert len(world.pager.alerts) == 1
    await world.cycle(minutes=30)
    assert world.source.incidents[incident.resource_id].labels == ("SIGNL4",)
    assert len(world.pager.alerts) == 1
