"""Operator commands on the outbox: list by state, requeue dead letters, discard — atomic against the worker."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from sentinel_signl4.domain.enums import ActionState
from sentinel_signl4.store.base import ActionClosedError
from sentinel_signl4.store.sql import SqlStateStore
from store_fixtures import make_action

S = timedelta(seconds=1)


async def one_of_each(store: SqlStateStore, now: datetime, connector: str = "c1", prefix: str = "") -> None:
    """Rows named after their state: pending, in_flight, done, dead, dead-in-doubt, discarded."""
    for n, key in enumerate(("pending", "in_flight", "done", "dead", "dead-in-doubt", "discarded")):
        await store.enqueue(make_action(prefix + key, connector, payload={"n": n}), now + n * S)
    await store.mark_in_flight(prefix + "in_flight", now)
    await store.complete(prefix + "done", now, {"event_id": "e1"})
    await store.mark_in_flight(prefix + "dead", now)
    await store.mark_dead(prefix + "dead", now, "PermanentError: HTTP 400")
    await store.mark_retry(prefix + "dead-in-doubt", now, now, "OutcomeUnknownError: reset", in_doubt=True)
    await store.mark_dead(prefix + "dead-in-doubt", now, "gave up after 25 attempts")
    await store.mark_dead(prefix + "discarded", now, "x")
    assert await store.discard_actions(now, "test set-up", keys=[prefix + "discarded"]) == [prefix + "discarded"]


async def state_of(store: SqlStateStore, key: str) -> ActionState:
    row = await store.get_action(key)
    assert row is not None
    return row.state


async def test_get_actions_by_state_filters_by_state_and_connector_oldest_first(
        store: SqlStateStore, now: datetime) -> None:
    await one_of_each(store, now)
    await one_of_each(store, now + 10 * S, connector="c2", prefix="c2-")
    dead = await store.get_actions_by_state([ActionState.DEAD])
    assert [row.key for row in dead] == ["dead", "dead-in-doubt", "c2-dead", "c2-dead-in-doubt"]
    assert [row.key for row in await store.get_actions_by_state([ActionState.DEAD], connector="c2")] == [
        "c2-dead", "c2-dead-in-doubt"]
    assert len(await store.get_actions_by_state()) == 12
    assert [r.key for r in await store.get_actions_by_state(None, connector="c1", limit=2)] == ["pending",
                                                                                                 "in_flight"]
    [discarded] = await store.get_actions_by_state([ActionState.DISCARDED], connector="c1")
    assert discarded.result == {"discarded_reason": "test set-up", "discarded_by": ""}


async def test_requeue_dead_makes_only_dead_rows_due_now_with_attempts_reset_and_doubt_kept(
        store: SqlStateStore, now: datetime) -> None:
    await one_of_each(store, now)
    later = now + 60 * S
    requeued = await store.requeue_dead(later, keys=["dead", "dead-in-doubt", "done", "pending", "in_flight",
                                                     "discarded", "no-such-key"])
    assert requeued == ["dead", "dead-in-doubt"]
    for key in ("done", "pending", "in_flight", "discarded"):
        assert (await state_of(store, key)).value == key.replace("-", "_")
    rows = {row.key: row for row in await store.due_actions("c1", later, 100)}
    assert {"dead", "dead-in-doubt"} <= set(rows)
    again = rows["dead-in-doubt"]
    assert (again.state, again.attempts, again.in_doubt, again.next_attempt_at, again.payload) == (
        ActionState.PENDING, 0, True, later, {"n": 4})
    assert again.last_error == "gave up after 25 attempts"
    assert rows["dead"].in_doubt is False
    # The requeued row runs the normal path again: it can be started, and finished once.
    started = await store.mark_in_flight("dead", later)
    assert started.attempts == 1


async def test_requeue_dead_by_connector_or_everywhere(store: SqlStateStore, now: datetime) -> None:
    await one_of_each(store, now)
    await one_of_each(store, now, connector="c2", prefix="c2-")
    assert await store.requeue_dead(now, connector="c2") == ["c2-dead", "c2-dead-in-doubt"]
    assert await state_of(store, "dead") is ActionState.DEAD
    assert await store.requeue_dead(now, keys=["dead"], connector="c2") == []
    assert await store.requeue_dead(now) == ["dead", "dead-in-doubt"]
    assert await store.requeue_dead(now) == []


async def test_discard_takes_named_dead_or_pending_rows_and_all_dead_of_a_connector(
        store: SqlStateStore, now: datetime) -> None:
    await one_of_each(store, now)
    await one_of_each(store, now, connector="c2", prefix="c2-")
    discarded = await store.discard_actions(now + S, "ticket 42", keys=["pending", "dead", "in_flight", "done"],
                                            by="alice")
    assert discarded == ["dead", "pending"]
    row = await store.get_action("dead")
    assert row is not None
    assert (row.state, row.result, row.last_error, row.updated_at) == (
        ActionState.DISCARDED, {"discarded_reason": "ticket 42", "discarded_by": "alice"},
        "PermanentError: HTTP 400", now + S)
    assert await state_of(store, "in_flight") is ActionState.IN_FLIGHT
    assert await state_of(store, "done") is ActionState.DONE
    # "All" means the dead letters of that connector; its pending rows keep going.
    assert await store.discard_actions(now, "tenant removed", connector="c2") == ["c2-dead", "c2-dead-in-doubt"]
    assert await state_of(store, "c2-pending") is ActionState.PENDING
    assert await state_of(store, "dead-in-doubt") is ActionState.DEAD


async def test_a_discarded_row_is_final_for_the_engine(store: SqlStateStore, now: datetime) -> None:
    await store.enqueue(make_action("k"), now)
    await store.discard_actions(now, "not wanted", keys=["k"])
    assert "k" not in {row.key for row in await store.due_actions("c1", now + S, 100)}
    with pytest.raises(ActionClosedError) as closed:
        await store.mark_in_flight("k", now)
    assert closed.value.state is ActionState.DISCARDED
    await store.complete("k", now, {"event_id": "late"})
    await store.mark_retry("k", now, now, "late failure", in_doubt=True)
    await store.mark_dead("k", now, "late")
    row = await store.get_action("k")
    assert row is not None and row.state is ActionState.DISCARDED and row.in_doubt is False
    assert (await store.count_actions("c1"))[ActionState.DISCARDED] == 1
    assert await store.requeue_dead(now) == []
    # Kept by pruning, like a dead letter: its key is what stops the next poll queueing the page again.
    assert await store.prune("c1", now + timedelta(days=365)) == (0, 0)
    assert await store.enqueue(make_action("k"), now) is False


async def test_concurrent_requeues_of_one_row_succeed_once(store: SqlStateStore, other_store: SqlStateStore,
                                                           now: datetime) -> None:
    await store.enqueue(make_action("k"), now)
    await store.mark_dead("k", now, "x")
    results = await asyncio.gather(store.requeue_dead(now, keys=["k"]), other_store.requeue_dead(now, keys=["k"]))
    assert sorted(map(len, results)) == [0, 1]


async def test_a_row_the_worker_started_or_finished_is_never_discarded(store: SqlStateStore, other_store: SqlStateStore,
                                                                now: datetime) -> None:
    await store.enqueue(make_action("k"), now)
    await store.mark_in_flight("k", now)
    worker = asyncio.create_task(store.complete("k", now, {"event_id": "e"}))
    operator = asyncio.create_task(other_store.discard_actions(now, "too late", keys=["k"]))
    await asyncio.gather(worker, operator)
    assert operator.result() == [] and await state_of(store, "k") is ActionState.DONE


async def test_many_keys_are_handled_in_one_call(store: SqlStateStore, now: datetime) -> None:
    keys = [f"k{n:04d}" for n in range(510)]
    for key in keys:
        await store.enqueue(make_action(key), now)
        await store.mark_dead(key, now, "x")
    assert await store.requeue_dead(now, keys=keys) == keys
    assert await store.discard_actions(now, "bulk", keys=[*keys, *keys]) == keys
