"""Leases (one replica per connector), cursors, timestamps and the store's lifecycle."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest

from sentinel_signl4.store.sql import SqlStateStore
from store_fixtures import make_action, make_event

S = timedelta(seconds=1)


# -- leases ----------------------------------------------------------------------------------------------------
async def test_lease_is_taken_renewed_by_its_owner_and_refused_to_others(
        store: SqlStateStore, now: datetime) -> None:
    async def holds(owner: str, at: datetime) -> bool:
        return await store.acquire_lease("connector:c1", owner, at, 30) is not None

    assert await holds("replica-a", now)
    assert not await holds("replica-b", now + S)
    assert await holds("replica-a", now + 20 * S)  # renewed to +50s
    assert not await holds("replica-b", now + 49 * S)
    assert await holds("replica-b", now + 50 * S)  # expired: taken
    assert not await holds("replica-a", now + 51 * S)
    assert await store.acquire_lease("connector:c2", "replica-a", now + 51 * S, 30) is not None  # other lease


async def test_release_frees_the_lease_only_for_its_owner(store: SqlStateStore, now: datetime) -> None:
    await store.acquire_lease("l", "a", now, 300)
    await store.release_lease("l", "b")
    assert await store.acquire_lease("l", "b", now + S, 300) is None
    await store.release_lease("l", "a")
    assert await store.acquire_lease("l", "b", now + S, 300) is not None
    await store.release_lease("never-taken", "a")


async def test_lease_ttl_must_be_positive(store: SqlStateStore, now: datetime) -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        await store.acquire_lease("l", "a", now, 0)


async def test_two_replicas_racing_for_a_lease_exactly_one_wins(
        store: SqlStateStore, other_store: SqlStateStore, now: datetime) -> None:
    # Warm both pools so the race is between statements, not between connection set-ups.
    await asyncio.gather(store.ping(), other_store.ping())
    for round_ in range(20):
        name = f"race-{round_}"
        if round_ % 2:  # odd rounds: the lease exists and has just expired, so both try to take it over
            await store.acquire_lease(name, "old-owner", now - 60 * S, 30)
        granted = await asyncio.gather(
            store.acquire_lease(name, "replica-a", now, 30),
            other_store.acquire_lease(name, "replica-b", now, 30),
        )
        won = [lease is not None for lease in granted]
        assert sorted(won) == [False, True], f"round {round_}: {granted}"


async def test_renew_leases_renews_only_the_owners_unexpired_leases_in_their_epoch(
        store: SqlStateStore, now: datetime) -> None:
    mine = await store.acquire_lease("l-mine", "a", now, 30)
    short = await store.acquire_lease("l-short", "a", now, 5)
    assert mine is not None and short is not None
    await store.acquire_lease("l-expired", "a", now - 60 * S, 30)
    await store.acquire_lease("l-theirs", "b", now, 30)
    released = await store.acquire_lease("l-released", "a", now, 30)
    assert released is not None
    await store.release_lease("l-released", "a")

    at = now + 3 * S
    renewed = await store.renew_leases("a", {"l-mine": 30, "l-short": 5, "l-expired": 30, "l-theirs": 30,
                                             "l-released": 30, "l-never": 30}, at)

    assert set(renewed) == {"l-mine", "l-short"}
    assert renewed["l-mine"].epoch == mine.epoch and renewed["l-mine"].expires_at == at + 30 * S
    assert renewed["l-short"].epoch == short.epoch and renewed["l-short"].expires_at == at + 5 * S
    # Not renewed means not acquired either: the others' rows are as they were.
    theirs = await store.get_lease("l-theirs")
    assert theirs is not None and theirs.owner == "b" and theirs.expires_at == now + 30 * S
    expired = await store.get_lease("l-expired")
    assert expired is not None and expired.expires_at == now - 30 * S
    assert await store.get_lease("l-never") is None
    # A renewed lease keeps its fence: the owner still holds it in the same epoch past its first expiry.
    again = await store.acquire_lease("l-short", "a", now + 7 * S, 5)
    assert again is not None and again.epoch == short.epoch


async def test_renew_leases_loses_a_lease_taken_over_after_expiry(store: SqlStateStore, now: datetime) -> None:
    first = await store.acquire_lease("l", "a", now, 30)
    taken = await store.acquire_lease("l", "b", now + 31 * S, 30)  # "a" was paused past its TTL
    assert first is not None and taken is not None and taken.epoch == first.epoch + 1
    assert await store.renew_leases("a", {"l": 30}, now + 32 * S) == {}
    holder = await store.get_lease("l")
    assert holder is not None and holder.owner == "b" and holder.epoch == taken.epoch


async def test_renew_leases_in_one_call_for_more_leases_than_one_statement_binds(
        store: SqlStateStore, now: datetime) -> None:
    names = [f"connector:c{i:04d}" for i in range(1_200)]
    for name in names:
        assert await store.acquire_lease(name, "a", now, 60) is not None
    renewed = await store.renew_leases("a", dict.fromkeys(names, 60.0), now + 20 * S)
    assert sorted(renewed) == names
    assert {lease.expires_at for lease in renewed.values()} == {now + 80 * S}


async def test_renew_leases_refuses_a_ttl_that_is_not_positive(store: SqlStateStore, now: datetime) -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        await store.renew_leases("a", {"l": 0}, now)
    assert await store.renew_leases("a", {}, now) == {}


# -- cursors ---------------------------------------------------------------------------------------------------
async def test_cursors_are_set_overwritten_and_scoped(store: SqlStateStore) -> None:
    assert await store.get_cursor("c1", "last_poll") is None
    await store.set_cursor("c1", "last_poll", "2025-03-01T12:00:00Z")
    await store.set_cursor("c1", "last_poll", "2025-03-01T12:01:00Z")
    await store.set_cursor("c2", "last_poll", "other")
    await store.set_cursor("c1", "reconciled", "ünïcode ✓")
    assert await store.get_cursor("c1", "last_poll") == "2025-03-01T12:01:00Z"
    assert await store.get_cursor("c2", "last_poll") == "other"
    assert await store.get_cursor("c1", "reconciled") == "ünïcode ✓"


# -- time ------------------------------------------------------------------------------------------------------
async def test_timestamps_come_back_as_the_same_instant_in_utc(store: SqlStateStore) -> None:
    berlin = timezone(timedelta(hours=2))
    local = datetime(2025, 7, 1, 3, 30, 15, 123456, tzinfo=berlin)  # 01:30:15.123456 UTC
    await store.enqueue(make_action("k1", next_attempt_at=local), local)
    await store.add_inbox(make_event("ev1", local))

    row = await store.get_action("k1")
    assert row is not None
    assert row.created_at is not None
    assert row.next_attempt_at is not None
    assert row.created_at == local
    assert row.created_at.utcoffset() == timedelta(0)
    assert row.next_attempt_at.tzinfo is not None
    assert row.next_attempt_at.utcoffset() == timedelta(0)
    (event,) = await store.pending_inbox("c1", 1)
    assert event.received_at == local
    assert event.received_at.utcoffset() == timedelta(0)


async def test_due_time_compares_instants_not_wall_clock_text(store: SqlStateStore) -> None:
    # 12:30+02:00 is 10:30 UTC: due at 11:00 UTC even though "12:30" > "11:00" as text.
    plus_two = timezone(timedelta(hours=2))
    created = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)
    await store.enqueue(make_action("k1", next_attempt_at=datetime(2025, 1, 1, 12, 30, tzinfo=plus_two)), created)
    assert [r.key for r in await store.due_actions("c1", datetime(2025, 1, 1, 11, 0, tzinfo=UTC), 5)] == ["k1"]
    assert await store.due_actions("c1", datetime(2025, 1, 1, 10, 29, tzinfo=UTC), 5) == []


async def test_naive_datetimes_are_refused(store: SqlStateStore, now: datetime) -> None:
    naive = datetime(2025, 1, 1, 12, 0)
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.enqueue(make_action("k1"), naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.enqueue(make_action("k1", next_attempt_at=naive), now)
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.add_inbox(make_event("ev1", naive))
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.acquire_lease("l", "a", naive, 10)
    assert await store.get_action("k1") is None


# -- lifecycle -------------------------------------------------------------------------------------------------
async def test_ping_and_async_context_manager(store_url: str, store: SqlStateStore) -> None:
    from sentinel_signl4.store.factory import open_store

    async with open_store(store_url) as opened:
        await opened.ping()
        assert await opened.get_action("anything") is None


async def test_lease_holder_and_compare_and_set_take_over(store: SqlStateStore, now: datetime) -> None:
    assert await store.lease_holder("l") is None
    await store.acquire_lease("l", "host:111:aaaa", now, 300)
    assert await store.lease_holder("l") == "host:111:aaaa"
    # Only from the holder named: a stale view of the holder must not win.
    assert await store.take_over_lease("l", "host:222:bbbb", "host:333:cccc", now, 300) is None
    assert await store.take_over_lease("l", "host:111:aaaa", "host:333:cccc", now, 300) is not None
    assert await store.lease_holder("l") == "host:333:cccc"
    assert await store.acquire_lease("l", "host:111:aaaa", now + S, 300) is None
    assert await store.take_over_lease("missing", "x", "y", now, 300) is None
