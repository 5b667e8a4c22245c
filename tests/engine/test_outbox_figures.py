"""The outbox figures behind health and ``s4s_outbox_pending``: a cycle that found nothing to do reuses a recent
read; an operator's change made from another process shows within ``FIGURES_MAX_AGE``."""

from __future__ import annotations

from engine_world import CONNECTOR, EngineWorld

from sentinel_signl4.domain import ActionKind
from sentinel_signl4.engine.connector import FIGURES_MAX_AGE
from sentinel_signl4.errors import TransientError
from sentinel_signl4.store import OutboxAction, StateStore


async def test_an_operators_discard_shows_in_health_within_figures_max_age(store: StateStore,
                                                                           world: EngineWorld) -> None:
    action = OutboxAction(key="dead-page", connector=CONNECTOR, kind=ActionKind.RAISE_SIGNL, incident_id="i1")
    await store.enqueue(action, world.now)
    await store.mark_dead("dead-page", world.now, "PermanentError: 400")
    await world.cycle()
    assert world.runtime.health.dead_letters == 1

    assert await store.discard_actions(world.now, "not wanted", keys=["dead-page"]) == ["dead-page"]
    await world.cycle(seconds=1)  # idle: may still show the figures read a second ago
    await world.cycle(seconds=FIGURES_MAX_AGE.total_seconds())
    assert world.runtime.health.dead_letters == 0


async def test_a_cycle_with_work_reads_the_figures_at_once(world: EngineWorld) -> None:
    await world.cycle()
    assert world.runtime.health.oldest_pending_at is None
    world.incident(1)
    world.pager.faults.fail_next("send", TransientError("signl4: POST webhook -> HTTP 503"))
    report = await world.cycle(seconds=1)  # within FIGURES_MAX_AGE of the last read
    assert report.retried[ActionKind.RAISE_SIGNL] == 1 and report.outbox_may_have_changed()
    assert world.runtime.health.oldest_pending_at is not None
    assert world.metrics.outbox_pending.labels(CONNECTOR)._value.get() == 1
