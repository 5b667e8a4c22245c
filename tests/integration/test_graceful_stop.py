"""A stop request ends a cycle after the side effects in progress, however long the backlog (in-process; the
subprocess version with SIGTERM is in test_crash.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from integration_harness import Harness
from sentinel_signl4.domain import ActionKind, ActionState
from sentinel_signl4_emulators.common.faults import FaultRule

BURST = 24


async def test_stop_mid_cycle_finishes_attempts_in_progress_and_leaves_the_rest_queued(harness: Harness) -> None:
    now = datetime.now(UTC)
    for n in range(BURST):
        harness.state.sentinel.create_incident(harness.world.workspace, title=f"Stop burst {n}", severity="High",
                                               created=now - timedelta(minutes=5, seconds=n))
    harness.state.faults.add(FaultRule(path=r"^/webhook/", method="POST", kind="delay", phase="after", delay=0.1))
    runtime = await harness.runtime(overrides={"filter": {"severities": ["High"], "max_age": "15m"}})
    connector = runtime.connectors["contoso"].runtime
    stop = asyncio.Event()
    cycle = asyncio.create_task(connector.run_once(now, stop=stop))
    async with asyncio.timeout(30):
        while True:  # stop as soon as SIGNL4 has the first Signl: the rest of the burst is still queued
            if harness.alerts():
                break
            await asyncio.sleep(0.005)
    stop.set()
    report = await asyncio.wait_for(cycle, timeout=30)

    raised = report.done[ActionKind.RAISE_SIGNL]
    assert 0 < raised < BURST, "the cycle should stop part-way through the burst"
    assert len(harness.alerts()) == raised, "every send that reached SIGNL4 was recorded"
    counts = await runtime.store.count_actions("contoso")
    assert counts[ActionState.IN_FLIGHT] == 0 and counts[ActionState.PENDING] >= BURST - raised

    harness.state.faults.clear()
    await connector.run_once(now + timedelta(seconds=5))
    externals = [a.external_id for a in harness.alerts()]
    assert len(externals) == len(set(externals)) == BURST
