"""``outbox_health``: the oldest pending page, open and dead pages, and failed rows awaiting a retry, per connector."""

from __future__ import annotations

from datetime import datetime, timedelta

from sentinel_signl4.domain.enums import ActionKind
from sentinel_signl4.store.base import OutboxHealth
from sentinel_signl4.store.sql import SqlStateStore
from store_fixtures import make_action

S = timedelta(seconds=1)


async def test_an_empty_outbox_has_nothing_pending(store: SqlStateStore) -> None:
    assert await store.outbox_health("c1") == OutboxHealth(oldest_pending_at=None, open_raises=0, dead_raises=0,
                                                           retrying=0, open_rows=0)


async def test_outbox_health_counts_only_what_matters_for_the_connector(store: SqlStateStore,
                                                                        now: datetime) -> None:
    # Oldest open raise: "flying" (in flight since before "waiting" was queued).
    await store.enqueue(make_action("flying"), now)
    await store.mark_in_flight("flying", now + S)
    await store.enqueue(make_action("waiting"), now + 2 * S)
    await store.mark_in_flight("waiting", now + 3 * S)
    await store.mark_retry("waiting", now + 3 * S, now + 60 * S, "TransientError: 503", in_doubt=False)
    # Not open pages: sent, dead-lettered, another kind, another connector.
    await store.enqueue(make_action("old-done"), now - 100 * S)
    await store.complete("old-done", now, {})
    await store.enqueue(make_action("old-dead"), now - 90 * S)
    await store.mark_dead("old-dead", now, "PermanentError: 400")
    await store.enqueue(make_action("tag", kind=ActionKind.TAG_INCIDENT), now - 80 * S)
    await store.mark_retry("tag", now, now + 60 * S, "ConflictError: 409", in_doubt=False)
    await store.enqueue(make_action("dead-tag", kind=ActionKind.TAG_INCIDENT), now - 70 * S)
    await store.mark_dead("dead-tag", now, "AuthError: 403")
    await store.enqueue(make_action("elsewhere", connector="c2"), now - 200 * S)
    await store.mark_dead("elsewhere", now, "gave up")

    health = await store.outbox_health("c1")
    assert health == OutboxHealth(oldest_pending_at=now, open_raises=2, dead_raises=1, retrying=2, open_rows=3)
    assert health.oldest_pending_at is not None and health.oldest_pending_at.utcoffset() == timedelta(0)

    await store.complete("flying", now + 4 * S, {})
    assert (await store.outbox_health("c1")).oldest_pending_at == now + 2 * S
    other = await store.outbox_health("c2")
    assert other == OutboxHealth(oldest_pending_at=None, open_raises=0, dead_raises=1, retrying=0)
