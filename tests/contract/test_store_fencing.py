"""Fencing: every acquisition bumps the lease's epoch, and a state change carrying a stale fence writes nothing.

Also the upgrade of a store created at revision 0001 (before epochs existed), with data in it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Connection

from sentinel_signl4.domain.enums import ActionState
from sentinel_signl4.store import Fence, LeaseLostError, StoreReplacedError
from sentinel_signl4.store.base import InboxState
from sentinel_signl4.store.migrate import _alembic_config, head_revision
from sentinel_signl4.store.sql import SqlStateStore
from store_fixtures import make_action, make_event, make_link, open_sql_store

S = timedelta(seconds=1)
LEASE = "connector:c1"


def clock_at(at: datetime) -> Callable[[], datetime]:
    return lambda: at


async def fence_for(store: SqlStateStore, owner: str, now: datetime, *, ttl: float = 30,
                    checked_at: datetime | None = None) -> Fence:
    lease = await store.acquire_lease(LEASE, owner, now, ttl)
    assert lease is not None, f"{owner} should get {LEASE}"
    return Fence(LEASE, owner, lease.epoch, clock_at(checked_at or now))


async def test_acquisition_bumps_the_epoch_and_renewal_keeps_it(store: SqlStateStore, now: datetime) -> None:
    first = await store.acquire_lease(LEASE, "a", now, 30)
    renewed = await store.acquire_lease(LEASE, "a", now + 10 * S, 30)
    taken = await store.acquire_lease(LEASE, "b", now + 41 * S, 30)  # a's lease expired at +40 s
    back = await store.acquire_lease(LEASE, "a", now + 72 * S, 30)  # b's expired at +71 s
    assert first is not None and renewed is not None and taken is not None and back is not None
    assert (first.epoch, renewed.epoch, taken.epoch, back.epoch) == (1, 1, 2, 3)
    assert renewed.expires_at == now + 40 * S
    assert await store.get_lease(LEASE) == back
    assert await store.get_lease("never-taken") is None
    # An owner re-taking its own lease after it expired also acquires it: a pause past the TTL ends the epoch.
    again = await store.acquire_lease(LEASE, "a", now + 200 * S, 30)
    assert again is not None and again.epoch == 4


async def test_release_then_reacquire_moves_the_epoch_on(store: SqlStateStore, now: datetime) -> None:
    first = await store.acquire_lease(LEASE, "a", now, 30)
    await store.release_lease(LEASE, "a")
    second = await store.acquire_lease(LEASE, "a", now + S, 30)
    assert first is not None and second is not None and second.epoch == first.epoch + 1
    assert await store.lease_holder(LEASE) == "a"


async def test_take_over_bumps_the_epoch_only_from_the_named_holder(store: SqlStateStore, now: datetime) -> None:
    first = await store.acquire_lease(LEASE, "dead", now, 600)
    assert await store.take_over_lease(LEASE, "someone-else", "b", now + S, 30) is None
    taken = await store.take_over_lease(LEASE, "dead", "b", now + S, 30)
    assert first is not None and taken is not None
    assert (taken.owner, taken.epoch) == ("b", first.epoch + 1)


def _writes(store: SqlStateStore, now: datetime) -> dict[str, Callable[[Fence], Any]]:
    return {
        "mark_in_flight": lambda f: store.mark_in_flight("k1", now, fence=f),
        "complete": lambda f: store.complete("k1", now, {"eventId": "e"}, link=make_link("inc-k1"),
                                             follow_ups=[make_action("k2")], fence=f),
        "mark_retry": lambda f: store.mark_retry("k1", now, now + S, "boom", in_doubt=True, fence=f),
        "mark_dead": lambda f: store.mark_dead("k1", now, "boom", fence=f),
        "finish_inbox": lambda f: store.finish_inbox("c1", "ev1", now, state=InboxState.DONE,
                                                     follow_ups=[make_action("k3")], fence=f),
        "set_cursor": lambda f: store.set_cursor("c1", "changes_since", "moved", fence=f),
    }


async def _snapshot(store: SqlStateStore) -> Mapping[str, Any]:
    return {
        "actions": await store.list_actions("c1", limit=100),
        "inbox": await store.pending_inbox("c1", 100),
        "link": await store.get_link("c1", "inc-k1"),
        "cursor": await store.get_cursor("c1", "changes_since"),
    }


@pytest.mark.parametrize("write", ["mark_in_flight", "complete", "mark_retry", "mark_dead", "finish_inbox",
                                   "set_cursor"])
@pytest.mark.parametrize("why", ["taken over", "expired", "re-acquired", "released"])
async def test_a_stale_fence_is_refused_and_nothing_is_written(
        store: SqlStateStore, now: datetime, write: str, why: str) -> None:
    await store.enqueue(make_action("k1"), now)
    await store.add_inbox(make_event("ev1", now))
    stale = await fence_for(store, "a", now)
    if why == "taken over":
        await store.acquire_lease(LEASE, "b", now + 31 * S, 30)
        stale = Fence(LEASE, "a", stale.epoch, clock_at(now + 32 * S))
    elif why == "expired":  # nobody took it, but a's TTL ran out: a was paused past it
        stale = Fence(LEASE, "a", stale.epoch, clock_at(now + 30 * S))
    elif why == "re-acquired":  # a lost it and got it back: work planned in the old epoch is not trusted
        await store.acquire_lease(LEASE, "b", now + 31 * S, 30)
        await store.acquire_lease(LEASE, "a", now + 62 * S, 30)
        stale = Fence(LEASE, "a", stale.epoch, clock_at(now + 63 * S))
    else:
        await store.release_lease(LEASE, "a")
    before = await _snapshot(store)
    with pytest.raises(LeaseLostError, match="nothing was written"):
        await _writes(store, now)[write](stale)
    assert await _snapshot(store) == before


async def test_a_current_fence_lets_every_state_change_through(store: SqlStateStore, now: datetime) -> None:
    await store.enqueue(make_action("k1"), now)
    await store.add_inbox(make_event("ev1", now))
    first = await fence_for(store, "a", now)
    # Renewed later: the fence from the first acquisition still holds, checked at a time past the first expiry.
    await store.acquire_lease(LEASE, "a", now + 20 * S, 30)
    fence = Fence(LEASE, "a", first.epoch, clock_at(now + 45 * S))
    writes = _writes(store, now)
    started = await writes["mark_in_flight"](fence)
    assert started.state is ActionState.IN_FLIGHT
    await writes["mark_retry"](fence)
    await writes["mark_in_flight"](fence)
    await writes["complete"](fence)
    await writes["finish_inbox"](fence)
    await writes["set_cursor"](fence)
    assert await store.get_cursor("c1", "changes_since") == "moved"
    done = await store.get_action("k1")
    assert done is not None and done.state is ActionState.DONE
    assert await store.get_link("c1", "inc-k1") is not None
    assert {a.key for a in await store.list_actions("c1")} == {"k1", "k2", "k3"}
    assert await store.pending_inbox("c1", 10) == []


async def test_a_fence_on_a_lease_that_never_existed_is_refused(store: SqlStateStore, now: datetime) -> None:
    await store.enqueue(make_action("k1"), now)
    with pytest.raises(LeaseLostError, match="does not exist"):
        await store.mark_in_flight("k1", now, fence=Fence("connector:nobody", "a", 1, clock_at(now)))


# -- upgrade from revision 0001, with data ----------------------------------------------------------------------
def _upgrade_to(revision: str) -> Callable[[Connection], None]:
    def run(connection: Connection) -> None:
        command.upgrade(_alembic_config(connection), revision)
    return run


async def test_a_store_at_revision_0001_with_data_upgrades_and_keeps_everything(
        fresh_store_url: str, now: datetime) -> None:
    store = open_sql_store(fresh_store_url)
    try:
        def to_0001(conn: sa.Connection) -> None:
            if store._schema is not None:
                conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{store._schema}"'))
            _upgrade_to("0001")(conn)
            conn.execute(sa.text("INSERT INTO leases (name, owner, expires_at) VALUES (:n, :o, :e)"),
                         {"n": LEASE, "o": "old-replica", "e": _stored_time(store, now + 600 * S)})
        await store._tx.migrate(to_0001)  # white-box: the API only migrates to head
        await store.enqueue(make_action("k1"), now)
        await store.put_link(make_link("inc-k1"), now)
        await store.add_inbox(make_event("ev1", now))

        await store.migrate()

        version = await store._tx.read_one(
            lambda conn: conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one())
        assert version == head_revision()
        assert await store.get_action("k1") is not None
        assert await store.get_link("c1", "inc-k1") is not None
        assert [e.event_id for e in await store.pending_inbox("c1", 10)] == ["ev1"]
        # The lease survived with epoch 1 and is still the old replica's until it expires.
        assert await store.lease_holder(LEASE) == "old-replica"
        assert await store.acquire_lease(LEASE, "new", now + S, 30) is None
        renewed = await store.acquire_lease(LEASE, "old-replica", now + S, 30)
        assert renewed is not None and renewed.epoch == 1
        taken = await store.acquire_lease(LEASE, "new", now + 100 * S, 30)
        assert taken is not None and taken.epoch == 2
    finally:
        await store.close()


def _stored_time(store: SqlStateStore, at: datetime) -> Any:
    """``at`` as revision 0001 stores it: ISO text on SQLite, timestamptz on PostgreSQL."""
    return at.isoformat(timespec="microseconds") if store.dialect == "sqlite" else at


# -- the SQLite file itself ------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["deleted", "replaced"])
async def test_a_sqlite_file_deleted_or_replaced_under_the_store_is_never_written_again(
        tmp_path: Path, now: datetime, how: str) -> None:
    path = tmp_path / "state.db"
    store = open_sql_store(f"sqlite:///{path}")
    try:
        await store.migrate()
        await store.enqueue(make_action("k1"), now)
        _delete_database(path)
        if how == "replaced":
            other = open_sql_store(f"sqlite:///{path}")
            await other.migrate()  # a new, empty, valid store at the same path
            await other.close()
        with pytest.raises(StoreReplacedError, match="deleted or replaced while running"):
            await store.enqueue(make_action("k2"), now)
        with pytest.raises(StoreReplacedError):
            await store.get_action("k1")
        with pytest.raises(StoreReplacedError):
            await store.add_inbox(make_event("ev1", now))
    finally:
        await store.close()
    if how == "replaced":
        fresh = open_sql_store(f"sqlite:///{path}")
        try:
            assert await fresh.list_actions("c1") == []
            assert await fresh.pending_inbox("c1", 10) == []
        finally:
            await fresh.close()


def _delete_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
