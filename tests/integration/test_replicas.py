"""Scale-out: several replicas sharing one store (here: three supervisors in one process, which share host name
and PID) run each connector once; every incident pages exactly once, and no replica takes a live one's lease."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from integration_harness import Harness
from sentinel_signl4.domain import ActionState, external_id_for
from store_fixtures import any_store_url  # noqa: F401 - fixture

LEASE = "connector:contoso"
DEADLINE = 90.0


async def test_three_replicas_sharing_a_store_page_each_incident_once(
        harness: Harness, any_store_url: str) -> None:  # noqa: F811
    now = datetime.now(UTC)
    names = [harness.state.sentinel.create_incident(
        harness.world.workspace, title=f"Replica burst {n}", severity="High",
        created=now - timedelta(minutes=2, seconds=n))["name"] for n in range(40)]
    runtimes = [await harness.runtime(store_url=any_store_url, overrides={"connector": {"poll_interval": "0.2s"}})
                for _ in range(3)]
    # A TTL no event-loop stall on a loaded machine reaches: any change of hands below is a take-over.
    supervisors = [r.supervisor(lease_ttl=30.0) for r in runtimes]
    assert len({s.owner for s in supervisors}) == 3
    store = runtimes[0].store
    incidents = {i["name"]: i["id"] for i in harness.incidents()}
    wanted = {external_id_for("contoso", incidents[n]) for n in names}

    async def all_paged_and_quiet() -> bool:
        if not wanted <= {a.external_id for a in harness.alerts()}:
            return False
        counts = await store.count_actions("contoso")
        return counts[ActionState.PENDING] + counts[ActionState.IN_FLIGHT] == 0

    stop = asyncio.Event()
    tasks = [asyncio.create_task(s.run(stop)) for s in supervisors]
    try:
        deadline = time.monotonic() + DEADLINE
        while not await all_paged_and_quiet():
            assert time.monotonic() < deadline, f"not all paged within {DEADLINE:.0f} s: {len(harness.alerts())}"
            assert not any(t.done() for t in tasks), "a supervisor stopped"
            await asyncio.sleep(0.05)
        lease = await store.get_lease(LEASE)
        assert lease is not None
        # Every replica without the lease claims once more: none gets it, none pages.
        for supervisor in supervisors:
            if supervisor.owner != lease.owner:
                assert await supervisor.run_each_once() == {"contoso": None}
        # Acquired once, never taken over while its holder lived (a take-over would have moved the epoch on).
        still = await store.get_lease(LEASE)
        assert still is not None and (still.owner, still.epoch) == (lease.owner, 1), f"{lease} -> {still}"
    finally:
        stop.set()
        await asyncio.gather(*tasks)
    counts = Counter(a.external_id for a in harness.alerts())
    assert all(counts[e] == 1 for e in wanted), {e: counts[e] for e in wanted if counts[e] != 1}
