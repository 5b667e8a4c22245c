"""A row an operator discards while a cycle is working the outbox is skipped: not sent, and the cycle goes on."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

from integration_harness import Harness
from sentinel_signl4.domain import ActionState, external_id_for
from sentinel_signl4.engine.keys import raise_key
from sentinel_signl4_emulators.common.faults import FaultRule

BURST = 6  # more incidents than the outbox works at once (4), so some rows wait while the first sends hang


async def test_a_row_discarded_after_the_worker_read_it_is_skipped(harness: Harness) -> None:
    now = datetime.now(UTC)
    ids = [harness.state.sentinel.create_incident(
        harness.world.workspace, title=f"Discard race {n}", severity="High",
        created=now - timedelta(minutes=3, seconds=n))["id"] for n in range(BURST)]
    keys = [raise_key("contoso", external_id_for("contoso", i)) for i in ids]
    slow = harness.state.faults.add(FaultRule(path=r"^/webhook/", method="POST", kind="delay", delay=2.0))
    runtime = await harness.runtime(overrides={"filter": {"severities": ["High"], "max_age": "15m"}})
    connector = runtime.connectors["contoso"].runtime
    cycle = asyncio.create_task(connector.run_once(now))
    async with asyncio.timeout(60):
        while True:  # four sends hang in SIGNL4; the other rows were read and wait their turn
            if slow.fired >= 4:
                break
            await asyncio.sleep(0.01)
    discarded = await runtime.store.discard_actions(datetime.now(UTC), "not wanted", keys=keys, by="test")
    assert discarded, "no row was still waiting"
    report = await cycle
    assert connector.health.error is None and not report.errors
    raised = Counter(a.external_id for a in harness.alerts())
    for key, incident_id in zip(keys, ids, strict=True):
        row = await runtime.store.get_action(key)
        assert row is not None
        state = row.state
        count = raised[external_id_for("contoso", incident_id)]
        if key in discarded:
            assert (state, count) == (ActionState.DISCARDED, 0)
        else:
            assert (state, count) == (ActionState.DONE, 1)
