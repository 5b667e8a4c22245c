"""Cursors cached for one lease epoch: an idle cycle reads none, a lease taken again reads the store afresh."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import UTC, datetime

from sentinel_signl4.engine.cursor_cache import CursorCache
from sentinel_signl4.engine.leases import fence_for, fenced
from sentinel_signl4.store import Lease, StateStore


async def fence(store: StateStore, epoch: int) -> AbstractContextManager[None]:
    """A cycle's fence on a real lease in ``epoch`` (cursor writes are fenced: the lease must exist)."""
    now = datetime.now(UTC)
    held: Lease | None = None
    while held is None or held.epoch < epoch:
        if held is not None:
            await store.release_lease("connector:c1", "replica-a")
        held = await store.acquire_lease("connector:c1", "replica-a", now, 600)
        assert held is not None
    assert held.epoch == epoch
    return fenced(fence_for(held, lambda: datetime.now(UTC)))


async def test_within_one_epoch_the_cursor_is_read_once_and_kept_as_written(store: StateStore) -> None:
    cache = CursorCache(store, "c1")
    await store.set_cursor("c1", "since", "t0")
    with await fence(store, 1):
        assert await cache.get("since") == "t0"
        await store.set_cursor("c1", "since", "changed behind the cache")  # nobody else may, while we hold it
        assert await cache.get("since") == "t0"
        await cache.set("since", "t1")
        assert await cache.get("since") == "t1"
        assert await store.get_cursor("c1", "since") == "t1"  # written through
        assert await cache.get("never-set") is None


async def test_a_new_epoch_or_no_fence_reads_the_store(store: StateStore) -> None:
    cache = CursorCache(store, "c1")
    with await fence(store, 1):
        await cache.set("since", "t1")
    # The lease lapsed; another replica ran the connector and moved the cursor; we took the lease again.
    await store.set_cursor("c1", "since", "t2 (another replica)")
    with await fence(store, 2):
        assert await cache.get("since") == "t2 (another replica)"
    await store.set_cursor("c1", "since", "t3")
    assert await cache.get("since") == "t3"  # outside a leased cycle: always the store
