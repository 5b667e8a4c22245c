"""CycleSlots: at most N cycles under way, waiters served in arrival order, a long cycle stops counting after
``hold``. Ordered by events, not by a clock (the one timer is ``hold`` itself)."""

from __future__ import annotations

import asyncio

import pytest

from sentinel_signl4.engine.admission import CycleSlots


async def started(events: list[str], name: str, slots: CycleSlots, release: asyncio.Event) -> None:
    async with slots.slot():
        events.append(f"{name} started")
        await release.wait()
    events.append(f"{name} ended")


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_cycles_beyond_the_bound_wait_and_start_in_arrival_order() -> None:
    slots, events = CycleSlots(2, hold=60.0), []
    releases = {name: asyncio.Event() for name in "abcd"}
    tasks = [asyncio.create_task(started(events, name, slots, releases[name])) for name in "abcd"]
    await settle()
    assert events == ["a started", "b started"] and slots.waiting()
    releases["b"].set()
    await settle()
    assert events[2:] == ["b ended", "c started"]  # c came before d
    releases["a"].set()
    await settle()
    assert events[4:] == ["a ended", "d started"]
    releases["c"].set()
    releases["d"].set()
    await asyncio.gather(*tasks)
    assert not slots.waiting()


async def test_a_cycle_running_past_hold_stops_counting_and_gives_its_slot_back_once() -> None:
    slots, events = CycleSlots(1, hold=0.05), []
    slow, quick = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(started(events, "slow", slots, slow))
    await settle()
    second = asyncio.create_task(started(events, "quick", slots, quick))
    await settle()
    assert events == ["slow started"]  # waiting: the slow cycle holds the only slot
    async with asyncio.timeout(30):
        while "quick started" not in events:  # after hold, without the slow cycle ending
            assert not first.done()
            await asyncio.sleep(0.01)
    quick.set()
    slow.set()
    await asyncio.gather(first, second)
    # Both gave their slot back exactly once: one slot is free again, not two.
    async with slots.slot():
        assert slots.waiting()


def test_the_bound_must_be_positive() -> None:
    with pytest.raises(ValueError, match="slots must be >= 1"):
        CycleSlots(0)
