"""The lease keeper: every lease a replica holds renewed together, in its epoch; a lease lost meanwhile is dropped."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest

from sentinel_signl4.domain import ActionKind
from sentinel_signl4.engine.lease_keeper import LeaseKeeper
from sentinel_signl4.engine.leases import fence_for
from sentinel_signl4.store import Lease, LeaseLostError, OutboxAction, StateStore

TTL = 0.6  # seconds of real time: the keeper renews every 0.2 s
# For the check that a held lease is still current after the keeper stopped: the keeper counts a lease as current
# while more than a third of its TTL is left. With TTL that is 0.2 s after the last renewal, which a stalled event
# loop on a loaded machine outlasts; with HELD_TTL it is 2 s.
HELD_TTL = 3.0


def utcnow() -> datetime:
    return datetime.now(UTC)


async def until(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def acquire(store: StateStore, name: str, owner: str = "replica-a", ttl: float = TTL) -> Lease:
    lease = await store.acquire_lease(name, owner, utcnow(), ttl)
    assert lease is not None
    return lease


async def test_held_leases_outlive_their_ttl_renewed_together_in_their_epoch(store: StateStore) -> None:
    keeper = LeaseKeeper(store, "replica-a", utcnow)
    leases = [await acquire(store, f"connector:c{i}", ttl=HELD_TTL) for i in range(20)]
    for lease in leases:
        keeper.hold(lease, HELD_TTL)
    first_expiry = max(lease.expires_at for lease in leases)

    async def all_renewed_past_first_expiry() -> bool:
        rows = [await store.get_lease(lease.name) for lease in leases]
        return all(row is not None and row.expires_at > first_expiry for row in rows)

    task = asyncio.create_task(keeper.run())
    try:
        await until(all_renewed_past_first_expiry)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    rows = [await store.get_lease(lease.name) for lease in leases]
    assert {row.epoch for row in rows if row is not None} == {leases[0].epoch}
    assert all(row is not None and row.owner == "replica-a" for row in rows)
    # Due together, renewed in one call: one expiry for all of them.
    assert len({row.expires_at for row in rows if row is not None}) == 1
    # Other replicas are still refused: the leases never lapsed.
    assert keeper.current(leases[0].name) is not None
    assert await store.acquire_lease(leases[0].name, "replica-b", utcnow(), HELD_TTL) is None


async def test_a_lease_taken_over_while_paused_is_dropped_and_its_fence_refused(store: StateStore) -> None:
    keeper = LeaseKeeper(store, "replica-a", utcnow)
    lease = await acquire(store, "connector:c1")
    keeper.hold(lease, TTL)
    await asyncio.sleep(TTL + 0.1)  # replica-a paused past its TTL (no keeper ran)
    taken = await acquire(store, "connector:c1", owner="replica-b")
    assert taken.epoch == lease.epoch + 1

    task = asyncio.create_task(keeper.run())  # replica-a resumes: its renewal is long due
    try:
        async def dropped() -> bool:
            return keeper.held() == []

        await until(dropped)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert keeper.current("connector:c1") is None
    holder = await store.get_lease("connector:c1")
    assert holder is not None and holder.owner == "replica-b" and holder.epoch == taken.epoch
    action = OutboxAction(key="k1", connector="c1", kind=ActionKind.RAISE_SIGNL, incident_id="i1")
    await store.enqueue(action, utcnow())
    with pytest.raises(LeaseLostError):
        await store.mark_in_flight("k1", utcnow(), fence=fence_for(lease, utcnow))


async def test_a_lease_close_to_expiry_is_not_current(store: StateStore) -> None:
    keeper = LeaseKeeper(store, "replica-a", utcnow)
    lease = await acquire(store, "connector:c1", ttl=3.0)
    keeper.hold(lease, 3.0)
    assert keeper.current("connector:c1") == lease
    keeper.hold(Lease(lease.name, lease.owner, lease.epoch, utcnow()), 3.0)  # as if its renewals had failed
    assert keeper.current("connector:c1") is None
    keeper.drop("connector:c1")
    assert keeper.held() == []
