"""CycleSlots: at most N cycles under way, waiters served in arrival order, a long cycle stops counting after
``hold``; and the supervisor runs its connectors' cycles under it. Ordered by events, not by a clock (the one timer
is ``hold`` itself)."""

from __future__ import annotations

import asyncio

import pytest
from engine_world import EngineWorld

from sentinel_signl4.engine.admission import CycleSlots
from sentinel_signl4.engine.connector import ConnectorRuntime
from sentinel_signl4.engine.report import PollReport
from sentinel_signl4.engine.supervisor import ScheduledConnector, Supervisor


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


class GatedRuntime(ConnectorRuntime):
    """A connector whose cycle waits for ``gate`` and records how many cycles were under way at once."""

    under_way = 0
    most = 0

    def __init__(self, name: str, world: EngineWorld, gate: asyncio.Event, ran: list[str]) -> None:
        super().__init__(name, store=world.store, forward=world.forward, metrics=world.metrics)
        self.gate, self.ran = gate, ran

    async def run_once(self, now: object, *, stop: asyncio.Event | None = None) -> PollReport:
        cls = GatedRuntime
        cls.under_way += 1
        cls.most = max(cls.most, cls.under_way)
        try:
            await self.gate.wait()
        finally:
            cls.under_way -= 1
        self.ran.append(self.name)
        return PollReport(self.name)


async def test_the_supervisor_runs_no_more_cycles_at_once_than_its_slots(world: EngineWorld) -> None:
    gate, ran = asyncio.Event(), []
    GatedRuntime.under_way = GatedRuntime.most = 0
    runtimes = [GatedRuntime(f"c{n}", world, gate, ran) for n in range(4)]
    supervisor = Supervisor([ScheduledConnector(rt, 3600.0) for rt in runtimes], world.store, owner="replica-a",
                            slots=CycleSlots(2, hold=3600.0))
    stop = asyncio.Event()
    task = asyncio.create_task(supervisor.run(stop))
    try:
        async with asyncio.timeout(30):
            while GatedRuntime.under_way < 2 or not supervisor.slots.waiting():
                assert not task.done()
                await asyncio.sleep(0.01)
            for _ in range(20):  # the other two connectors are due as well, and stay queued for a slot
                await asyncio.sleep(0.01)
                assert GatedRuntime.under_way == 2
            gate.set()
            while len(ran) < 4:
                assert not task.done()
                await asyncio.sleep(0.01)
    finally:
        stop.set()
        gate.set()  # a failed check must not leave cycles waiting for the gate
        await task
    assert sorted(ran) == ["c0", "c1", "c2", "c3"] and GatedRuntime.most == 2
