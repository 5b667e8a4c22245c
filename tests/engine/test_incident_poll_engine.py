"""The incident poll's cursor on the in-memory source: where a read of changes starts, and when it must not move."""

from __future__ import annotations

from engine_world import CONNECTOR, EngineWorld

from sentinel_signl4.engine.incident_poll import CHANGES_CURSOR, CURSOR_STEP
from sentinel_signl4.store import StateStore


async def test_a_read_that_lists_an_incident_twice_keeps_the_cursor_and_reads_the_window_again(
        store: StateStore) -> None:
    world = EngineWorld(store)
    first = world.incident(1)
    await world.cycle()
    start = await store.get_cursor(CONNECTOR, CHANGES_CURSOR)
    assert start == world.now.isoformat()
    second = world.incident(2)
    world.source.listed_twice.add(second.resource_id)
    world.advance(seconds=CURSOR_STEP.total_seconds() + 30)
    report = await world.cycle()
    # The read saw #2 twice (it changed while the pages were read, so a neighbour may have been skipped): the cursor
    # stays, and the next poll reads the same window again.
    assert await store.get_cursor(CONNECTOR, CHANGES_CURSOR) == start
    assert [i.number for i in report.enqueued] == [2]
    await world.cycle(seconds=30)
    assert await store.get_cursor(CONNECTOR, CHANGES_CURSOR) == world.now.isoformat()
    assert [len(world.pager.pages(world.external_id(i))) for i in (first, second)] == [1, 1]
