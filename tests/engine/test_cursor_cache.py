"""Cursors cached for one lease epoch: an idle cycle reads none, a lease taken again reads the store afresh."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import UTC, datetime

from sentinel_signl4.engine.cursor_cache import CursorCache
from sentinel_signl4.engine.leases import fence_for, fenced
from sentinel_signl4.store import Lease, StateStore


def lease(epoch: int) -> Lease:
    return Lease(name="connector:c1", owner="replica-a", epoch=epoch, expires_at=datetime(2100, 1, 1, tzinfo=UTC))


def fence(epoch: int) -> AbstractContextManager[None]:
    return fenced(fence_for(lease(epoch), lambda: datetime.now(UTC)))


async def test_within_one_epoch_the_cursor_is_read_once_and_kept_as_written(store: StateStore) -> None:
    cache = CursorCache(store, "c1")
    await store.set_cursor("c1", "since", "t0")
    with fence(1):
        assert await cache.get("since") == "t0"
        await store.set_cursor("c1", "since", "changed behind the cache")  # nobody else may, while we hold it
        assert await cache.get("since") == "t0"
        await cache.set("since", "t1")
        assert await cache.get("since") == "t1"
        assert await store.get_cursor("c1", "since") == "t1"  # written through
        assert await cache.get("never-set") is None


async def test_a_new_epoch_or_no_fence_reads_the_store(store: StateStore) -> None:
    cache = CursorCache(store, "c1")
    with fence(1):
        await cache.set("since", "t1")
    # The lease lapsed; another replica ran the connector and moved the cursor; we took the lease again.
    await store.set_cursor("c1", "since", "t2 (another replica)")
    with fence(2):
        assert await cache.get("since") == "t2 (another replica)"
    await store.set_cursor("c1", "since", "t3")
    assert await cache.get("since") == "t3"  # outside a leased cycle: always the store
